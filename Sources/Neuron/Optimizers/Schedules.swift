import Foundation

/// A learning rate that changes per epoch: call `step()` after each epoch and it sets its optimiser's
/// `learningRate` to the closed form at the new epoch count (PyTorch's `torch.optim.lr_scheduler`,
/// stepped per epoch; Keras's `LearningRateSchedule`s count batches instead).
///
/// The base rate is the optimiser's rate when the schedule is created. To resume from a checkpoint,
/// build the optimiser and the schedule as at the start, then `loadStateDict` the saved
/// `stateDict()`: the epoch count is restored and the optimiser's rate set to match.
public protocol LearningRateSchedule: AnyObject {
    /// The optimiser whose learning rate this schedule sets.
    var optimizer: any Optimizer { get }
    /// The optimiser's learning rate when the schedule was created (PyTorch's `base_lrs`).
    var baseLearningRate: Float { get }
    /// Completed epochs: 0 at creation, +1 per `step()` (PyTorch's `last_epoch`). Setting it sets the
    /// optimiser's learning rate to `learningRate(atEpoch:)` of the new value.
    var lastEpoch: Int { get set }
    /// The learning rate after `epoch` completed epochs, in closed form.
    func learningRate(atEpoch epoch: Int) -> Float
}

extension LearningRateSchedule {
    /// Ends an epoch: advances `lastEpoch` and updates the optimiser's learning rate.
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
    public let optimizer: any Optimizer
    public let baseLearningRate: Float
    public let stepSize: Int
    public let gamma: Float
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
    public let optimizer: any Optimizer
    public let baseLearningRate: Float
    public let tMax: Int
    public let etaMin: Float
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

    public func learningRate(atEpoch epoch: Int) -> Float {
        let base = Double(baseLearningRate), floor = Double(etaMin)
        return Float(floor + (base - floor) * (1 + Foundation.cos(Double.pi * Double(epoch) / Double(tMax))) / 2)
    }
}
