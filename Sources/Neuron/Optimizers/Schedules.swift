import Foundation

/// When a learning-rate schedule steps: `Trainer` calls `step()` after every epoch or after every
/// optimiser step (batch).
public enum ScheduleInterval: Sendable, Equatable {
    /// After each epoch (PyTorch's usual `scheduler.step()` at the end of the epoch loop).
    case epoch
    /// After each optimiser step, as PyTorch's `OneCycleLR` and Keras's `LearningRateSchedule`s count.
    case batch
}

/// A learning rate in closed form over a step count: call `step()` after each epoch (or each batch,
/// see `interval`) and it sets its optimiser's `learningRate` to the closed form at the new count
/// (PyTorch's `torch.optim.lr_scheduler`; Keras's `LearningRateSchedule`s count batches).
///
/// The base rate is the optimiser's rate when the schedule is created (for `OneCycleLR`, its initial
/// rate, which it sets). To resume from a checkpoint, build the optimiser and the schedule as at the
/// start, then `loadStateDict` the saved `stateDict()`: the step count is restored and the
/// optimiser's rate set to match.
public protocol LearningRateSchedule: AnyObject {
    /// The optimiser whose learning rate this schedule sets.
    var optimizer: any Optimizer { get }
    /// The rate at step 0 (PyTorch's `base_lrs`): the optimiser's learning rate when the schedule was
    /// created, except for `OneCycleLR`, which starts at `maxLearningRate / divFactor`.
    var baseLearningRate: Float { get }
    /// Completed steps (epochs or batches, per `interval`): 0 at creation, +1 per `step()` (PyTorch's
    /// `last_epoch`, which counts batches too for per-batch schedulers). Setting it sets the
    /// optimiser's learning rate to `learningRate(atEpoch:)` of the new value.
    var lastEpoch: Int { get set }
    /// Whether `Trainer` steps this schedule after each epoch or after each batch.
    var interval: ScheduleInterval { get }
    /// The learning rate after `epoch` completed steps, in closed form.
    func learningRate(atEpoch epoch: Int) -> Float
}

extension LearningRateSchedule {
    /// `.epoch`, for schedules that do not say.
    public var interval: ScheduleInterval { .epoch }

    /// Ends an epoch (or a batch): advances `lastEpoch` and updates the optimiser's learning rate.
    public func step() { lastEpoch += 1 }

    /// `["last_epoch": rank-0 integer]`.
    public func stateDict() -> [String: StoredTensor] { ["last_epoch": .int(IntTensor(Int64(lastEpoch)))] }

    /// Restores `lastEpoch` from `stateDict()` and sets the optimiser's learning rate to match.
    /// - Throws: `NeuronError.invalidArgument` when `last_epoch` is missing, not one integer, or negative.
    public func loadStateDict(_ state: [String: StoredTensor]) throws {
        guard let stored = state["last_epoch"] else {
            throw NeuronError.invalidArgument("learning-rate schedule state has no 'last_epoch' (keys: \(state.keys.sorted()))")
        }
        guard case .int(let t) = stored, t.count == 1, t.scalars[0] >= 0 else {
            throw NeuronError.invalidArgument("learning-rate schedule 'last_epoch' must be one non-negative integer, got \(stored)")
        }
        lastEpoch = Int(t.scalars[0])
    }

    /// Sets the optimiser's rate for the current epoch; conformers call it when `lastEpoch` changes.
    func applyLearningRate() { optimizer.learningRate = learningRate(atEpoch: lastEpoch) }
}

/// Multiplies the learning rate by `gamma` every `stepSize` epochs (PyTorch's `StepLR`):
/// lr(e) = base · gamma^⌊e / stepSize⌋. Keras's nearest is `ExponentialDecay(staircase: true)`, per batch.
public final class StepLR: LearningRateSchedule {
    /// The optimiser whose learning rate this schedule sets.
    public let optimizer: any Optimizer
    /// The rate at step 0 (PyTorch's `base_lrs`).
    public let baseLearningRate: Float
    /// Steps between two multiplications by `gamma`.
    public let stepSize: Int
    /// The factor applied every `stepSize` steps.
    public let gamma: Float
    /// When `Trainer` steps it; `.batch` counts `stepSize` in batches.
    public var interval = ScheduleInterval.epoch
    /// Completed steps; setting it sets the optimiser's rate (see `LearningRateSchedule.lastEpoch`).
    public var lastEpoch = 0 {
        didSet {
            precondition(lastEpoch >= 0, "StepLR lastEpoch must not be negative, got \(lastEpoch)")
            applyLearningRate()
        }
    }

    /// - Throws: `NeuronError.invalidArgument` when `stepSize` < 1 or `gamma` is negative or not finite.
    public init(_ optimizer: any Optimizer, stepSize: Int, gamma: Float = 0.1) throws {
        try Hyperparameter.require(stepSize >= 1, "StepLR stepSize must be at least 1, got \(stepSize)")
        try Hyperparameter.requireNonNegative("StepLR gamma", gamma)
        self.optimizer = optimizer
        baseLearningRate = optimizer.learningRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// The learning rate after `epoch` completed steps.
    public func learningRate(atEpoch epoch: Int) -> Float {
        // In double, as PyTorch's Python floats, so long runs do not drift.
        Float(Double(baseLearningRate) * Foundation.pow(Double(gamma), Double(epoch / stepSize)))
    }
}

/// Anneals the learning rate from its base to `etaMin` along half a cosine over `tMax` epochs
/// (PyTorch's `CosineAnnealingLR`, closed form, without restarts):
/// lr(e) = etaMin + (base − etaMin)·(1 + cos(π·e / tMax)) / 2. Past `tMax` the cosine continues and the
/// rate climbs back, as PyTorch's. Keras's `CosineDecay` counts batches and stays at its floor.
public final class CosineAnnealingLR: LearningRateSchedule {
    /// The optimiser whose learning rate this schedule sets.
    public let optimizer: any Optimizer
    /// The rate at step 0 (PyTorch's `base_lrs`).
    public let baseLearningRate: Float
    /// Steps from the base rate down to `etaMin` (half a cosine period).
    public let tMax: Int
    /// The lowest rate, reached after `tMax` steps.
    public let etaMin: Float
    /// When `Trainer` steps it; `.batch` counts `tMax` in batches (cosine decay over every batch of a run).
    public var interval = ScheduleInterval.epoch
    /// Completed steps; setting it sets the optimiser's rate (see `LearningRateSchedule.lastEpoch`).
    public var lastEpoch = 0 {
        didSet {
            precondition(lastEpoch >= 0, "CosineAnnealingLR lastEpoch must not be negative, got \(lastEpoch)")
            applyLearningRate()
        }
    }

    /// - Throws: `NeuronError.invalidArgument` when `tMax` < 1 or `etaMin` is negative or not finite.
    public init(_ optimizer: any Optimizer, tMax: Int, etaMin: Float = 0) throws {
        try Hyperparameter.require(tMax >= 1, "CosineAnnealingLR tMax must be at least 1, got \(tMax)")
        try Hyperparameter.requireNonNegative("CosineAnnealingLR etaMin", etaMin)
        self.optimizer = optimizer
        baseLearningRate = optimizer.learningRate
        self.tMax = tMax
        self.etaMin = etaMin
    }

    /// The learning rate after `epoch` completed steps.
    public func learningRate(atEpoch epoch: Int) -> Float {
        let base = Double(baseLearningRate), floor = Double(etaMin)
        return Float(floor + (base - floor) * (1 + Foundation.cos(Double.pi * Double(epoch) / Double(tMax))) / 2)
    }
}

/// Scales the learning rate linearly from `startFactor` · base to `endFactor` · base over `totalIters`
/// steps, then holds it (PyTorch's `LinearLR`, closed form): lr(s) = base · (startFactor +
/// (endFactor − startFactor) · min(s, totalIters) / totalIters). With `startFactor` small and
/// `endFactor` 1 it is the linear warm-up, usually per batch (`interval: .batch`).
public final class LinearLR: LearningRateSchedule {
    /// The optimiser whose learning rate this schedule sets.
    public let optimizer: any Optimizer
    /// The rate at step 0 (PyTorch's `base_lrs`).
    public let baseLearningRate: Float
    /// The multiple of the base rate at step 0.
    public let startFactor: Float
    /// The multiple of the base rate from step `totalIters` on.
    public let endFactor: Float
    /// Steps from `startFactor` to `endFactor`.
    public let totalIters: Int
    /// Whether `Trainer` steps it per epoch or per batch.
    public let interval: ScheduleInterval
    /// Completed steps; setting it sets the optimiser's rate (see `LearningRateSchedule.lastEpoch`).
    public var lastEpoch = 0 {
        didSet {
            precondition(lastEpoch >= 0, "LinearLR lastEpoch must not be negative, got \(lastEpoch)")
            applyLearningRate()
        }
    }

    /// Sets the optimiser's rate to `startFactor` · its current rate.
    /// - Parameters:
    ///   - optimizer: the optimiser whose learning rate the schedule sets.
    ///   - startFactor: the first step's multiple of the base rate, in (0, 1] (PyTorch's default 1/3).
    ///   - endFactor: the multiple reached after `totalIters` steps, in [0, 1].
    ///   - totalIters: steps from start to end, at least 1 (PyTorch's default 5).
    ///   - interval: whether `Trainer` steps it per epoch or per batch.
    /// - Throws: `NeuronError.invalidArgument` for factors outside those ranges or `totalIters` < 1.
    public init(_ optimizer: any Optimizer, startFactor: Float = 1.0 / 3, endFactor: Float = 1, totalIters: Int = 5,
                interval: ScheduleInterval = .epoch) throws {
        try Hyperparameter.require(startFactor > 0 && startFactor <= 1, "LinearLR startFactor must be in (0, 1], got \(startFactor)")
        try Hyperparameter.require(endFactor >= 0 && endFactor <= 1, "LinearLR endFactor must be in [0, 1], got \(endFactor)")
        try Hyperparameter.require(totalIters >= 1, "LinearLR totalIters must be at least 1, got \(totalIters)")
        self.optimizer = optimizer
        baseLearningRate = optimizer.learningRate
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.totalIters = totalIters
        self.interval = interval
        applyLearningRate()
    }

    /// The learning rate after `epoch` completed steps.
    public func learningRate(atEpoch epoch: Int) -> Float {
        let progress = Double(Swift.min(epoch, totalIters)) / Double(totalIters)
        return Float(Double(baseLearningRate) * (Double(startFactor) + (Double(endFactor) - Double(startFactor)) * progress))
    }
}

/// The one-cycle policy (Smith & Topin, "Super-Convergence"; PyTorch's `OneCycleLR`), stepped per
/// batch: the rate climbs from maxLearningRate / divFactor to maxLearningRate over the first
/// `pctStart` of `totalSteps`, then anneals to initial / finalDivFactor. With `threePhase` it climbs,
/// comes back down to the initial rate symmetrically, and then anneals to the minimum (the paper's
/// form). Each phase anneals by half a cosine (or linearly) from its start to its end value.
///
/// Differences from PyTorch: momentum is not cycled (PyTorch's `cycle_momentum=False`); from
/// step `totalSteps` − 1 on the rate stays at its minimum (PyTorch overshoots it at step `totalSteps` and
/// raises an error after).
public final class OneCycleLR: LearningRateSchedule {
    /// How each phase moves between its two rates.
    public enum Annealing: Sendable {
        /// Half a cosine from the start rate to the end rate (PyTorch's "cos").
        case cosine
        /// A straight line (PyTorch's "linear").
        case linear
    }

    /// The optimiser whose learning rate this schedule sets.
    public let optimizer: any Optimizer
    /// The rate at step 0 (PyTorch's `base_lrs`).
    public let baseLearningRate: Float
    /// The peak rate, reached at the end of the first phase.
    public let maxLearningRate: Float
    /// The steps in the whole cycle.
    public let totalSteps: Int
    /// The share of the steps spent climbing to the peak.
    public let pctStart: Double
    /// How each phase moves between its rates: half a cosine, or linearly.
    public let annealing: Annealing
    /// Initial rate = `maxLearningRate / divFactor`.
    public let divFactor: Double
    /// Minimum rate = initial rate / `finalDivFactor`.
    public let finalDivFactor: Double
    /// Whether the rate comes back down to the initial rate before the final annealing.
    public let threePhase: Bool
    /// Whether `Trainer` steps it per epoch or per batch.
    public let interval: ScheduleInterval
    /// (last step of the phase, its start rate, its end rate), in order.
    private let phases: [(end: Double, from: Double, to: Double)]
    /// Completed steps; setting it sets the optimiser's rate (see `LearningRateSchedule.lastEpoch`).
    public var lastEpoch = 0 {
        didSet {
            precondition(lastEpoch >= 0, "OneCycleLR lastEpoch must not be negative, got \(lastEpoch)")
            applyLearningRate()
        }
    }

    /// Sets the optimiser's rate to `maxLearningRate / divFactor`.
    /// - Parameters:
    ///   - optimizer: the optimiser whose learning rate the schedule sets.
    ///   - maxLearningRate: the peak rate.
    ///   - totalSteps: the steps in the cycle (epochs × batches per epoch), at least 2.
    ///   - pctStart: the share of the steps spent climbing, in (0, 1) (PyTorch's default 0.3).
    ///   - annealing: cosine (PyTorch's default) or linear.
    ///   - divFactor: initial rate = maxLearningRate / divFactor (default 25).
    ///   - finalDivFactor: minimum rate = initial rate / finalDivFactor (default 10⁴).
    ///   - threePhase: whether to come back down to the initial rate before annealing to the minimum.
    ///   - interval: `.batch` (the policy's own), or `.epoch` to count `totalSteps` in epochs.
    /// - Throws: `NeuronError.invalidArgument` for a non-positive or non-finite rate or factor, fewer
    ///   than 2 steps, `pctStart` outside (0, 1), or phases that would have no steps.
    public init(_ optimizer: any Optimizer, maxLearningRate: Float, totalSteps: Int, pctStart: Double = 0.3,
                annealing: Annealing = .cosine, divFactor: Double = 25, finalDivFactor: Double = 1e4,
                threePhase: Bool = false, interval: ScheduleInterval = .batch) throws {
        try Hyperparameter.require(maxLearningRate.isFinite && maxLearningRate > 0, "OneCycleLR maxLearningRate must be finite and positive, got \(maxLearningRate)")
        try Hyperparameter.require(totalSteps >= 2, "OneCycleLR totalSteps must be at least 2, got \(totalSteps)")
        try Hyperparameter.require(pctStart > 0 && pctStart < 1, "OneCycleLR pctStart must be in (0, 1), got \(pctStart)")
        try Hyperparameter.require(divFactor.isFinite && divFactor > 0 && finalDivFactor.isFinite && finalDivFactor > 0,
                                   "OneCycleLR divFactor and finalDivFactor must be finite and positive, got \(divFactor) and \(finalDivFactor)")
        let peak = Double(maxLearningRate), initial = peak / divFactor, minimum = initial / finalDivFactor
        // PyTorch's phase ends: float(pct_start * total_steps) - 1, then the mirror, then total_steps - 1.
        let up = pctStart * Double(totalSteps) - 1, last = Double(totalSteps - 1)
        phases = threePhase
            ? [(up, initial, peak), (2 * pctStart * Double(totalSteps) - 2, peak, initial), (last, initial, minimum)]
            : [(up, initial, peak), (last, peak, minimum)]
        var start = 0.0
        for phase in phases {
            try Hyperparameter.require(phase.end > start, "OneCycleLR: with totalSteps \(totalSteps) and pctStart \(pctStart) a phase has no steps")
            start = phase.end
        }
        self.optimizer = optimizer
        baseLearningRate = Float(initial)
        self.maxLearningRate = maxLearningRate
        self.totalSteps = totalSteps
        self.pctStart = pctStart
        self.annealing = annealing
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
        self.threePhase = threePhase
        self.interval = interval
        applyLearningRate()
    }

    /// The learning rate after `epoch` completed steps.
    public func learningRate(atEpoch epoch: Int) -> Float {
        let step = Double(Swift.min(epoch, totalSteps - 1))
        var start = 0.0
        for (i, phase) in phases.enumerated() {
            if step <= phase.end || i == phases.count - 1 {
                let pct = (step - start) / (phase.end - start)
                switch annealing {
                case .cosine: return Float(phase.to + (phase.from - phase.to) / 2 * (Foundation.cos(Double.pi * pct) + 1))
                case .linear: return Float((phase.to - phase.from) * pct + phase.from)
                }
            }
            start = phase.end
        }
        return Float(phases[phases.count - 1].to)
    }
}
