import Foundation

/// Divides the learning rate when a monitored quantity stops improving (PyTorch's
/// `ReduceLROnPlateau`, Keras's `ReduceLROnPlateau`): after each epoch `step(_:)` gets the value;
/// once `patience` epochs in a row have not improved on the best by more than the threshold, the rate
/// becomes max(rate · factor, minLearningRate), then `cooldown` epochs pass before counting again.
///
/// Improvement, as PyTorch: in `.min` mode a value v improves on the best b when v < b · (1 − threshold)
/// (relative threshold) or v < b − threshold (absolute); in `.max` mode when v > b · (1 + threshold) or
/// v > b + threshold. A NaN value never improves. A reduction smaller than `eps` is skipped.
///
/// `Trainer` steps it after every epoch with the value of `monitor` (set `trainer.plateau`); it cannot
/// be combined with a closed-form `schedule`, which would overwrite its reductions.
public final class ReduceLROnPlateau {
    /// Whether a relative or absolute threshold decides improvement.
    public enum ThresholdMode: Sendable {
        /// Improvement beyond best · (1 ∓ threshold) (PyTorch's "rel").
        case relative
        /// Improvement beyond best ∓ threshold (PyTorch's "abs").
        case absolute
    }

    /// The optimiser whose learning rate it reduces.
    public let optimizer: any Optimizer
    /// The quantity `Trainer` passes to `step(_:)`.
    public let monitor: Monitor
    /// `.min` or `.max` (`.auto` resolved by `monitor`).
    public let mode: MonitorMode
    /// The multiplier of each reduction.
    public let factor: Float
    /// Epochs without improvement tolerated before a reduction.
    public let patience: Int
    /// The least improvement that counts, relative or absolute per `thresholdMode`.
    public let threshold: Double
    /// Whether `threshold` is relative to the best value or absolute.
    public let thresholdMode: ThresholdMode
    /// Epochs after a reduction during which bad epochs are not counted.
    public let cooldown: Int
    /// The rate is never reduced below this.
    public let minLearningRate: Float
    /// Reductions smaller than this are skipped.
    public let eps: Float
    /// The best value so far (+∞ in `.min` mode, −∞ in `.max` before the first step).
    public private(set) var best: Double
    /// Epochs since the last improvement (PyTorch's `num_bad_epochs`).
    public private(set) var badEpochs = 0
    /// Cooldown epochs left.
    public private(set) var cooldownCounter = 0
    /// Steps taken.
    public private(set) var lastEpoch = 0

    /// - Parameters:
    ///   - optimizer: the optimiser whose learning rate is reduced.
    ///   - monitor: what `Trainer` watches (default the validation loss, else the training loss).
    ///   - mode: `.min`, `.max`, or `.auto` (from `monitor`: `.max` for accuracy-like metrics).
    ///   - factor: the multiplier of each reduction, in [0, 1) (PyTorch's default 0.1).
    ///   - patience: epochs without improvement tolerated before reducing (default 10).
    ///   - threshold: the least improvement that counts (default 1e-4, relative).
    ///   - thresholdMode: `.relative` (PyTorch's "rel", the default) or `.absolute` ("abs").
    ///   - cooldown: epochs to wait after a reduction before counting bad epochs again (default 0).
    ///   - minLearningRate: the floor of the rate (default 0).
    ///   - eps: reductions smaller than this are skipped (default 1e-8).
    /// - Throws: `NeuronError.invalidArgument` for a factor outside [0, 1), a negative patience,
    ///   cooldown, threshold, floor or eps.
    public init(_ optimizer: any Optimizer, monitor: Monitor = .validationLoss, mode: MonitorMode = .auto,
                factor: Float = 0.1, patience: Int = 10, threshold: Double = 1e-4, thresholdMode: ThresholdMode = .relative,
                cooldown: Int = 0, minLearningRate: Float = 0, eps: Float = 1e-8) throws {
        try Hyperparameter.require(factor >= 0 && factor < 1, "ReduceLROnPlateau factor must be in [0, 1), got \(factor)")
        try Hyperparameter.require(patience >= 0 && cooldown >= 0, "ReduceLROnPlateau patience and cooldown must not be negative, got \(patience) and \(cooldown)")
        try Hyperparameter.require(threshold.isFinite && threshold >= 0, "ReduceLROnPlateau threshold must be finite and non-negative, got \(threshold)")
        try Hyperparameter.requireNonNegative("ReduceLROnPlateau minLearningRate", minLearningRate)
        try Hyperparameter.requireNonNegative("ReduceLROnPlateau eps", eps)
        self.optimizer = optimizer
        self.monitor = monitor
        self.mode = mode.resolved(for: monitor)
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.minLearningRate = minLearningRate
        self.eps = eps
        best = self.mode == .max ? -.infinity : .infinity
    }

    /// Whether `value` improves on `best` by more than the threshold.
    func isImprovement(_ value: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.max, .relative): return value > best * (1 + threshold)
        case (.max, .absolute): return value > best + threshold
        case (_, .relative): return value < best * (1 - threshold)
        case (_, .absolute): return value < best - threshold
        }
    }

    /// Ends an epoch whose monitored quantity was `value`; reduces the optimiser's rate when patience has
    /// run out.
    public func step(_ value: Double) {
        lastEpoch += 1
        if isImprovement(value) {
            best = value
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            badEpochs = 0
        }
        if badEpochs > patience {
            // In double, as PyTorch's Python floats.
            let old = Double(optimizer.learningRate)
            let new = Swift.max(old * Double(factor), Double(minLearningRate))
            if old - new > Double(eps) { optimizer.learningRate = Float(new) }
            cooldownCounter = cooldown
            badEpochs = 0
        }
    }

    /// `best` (Double bits), `num_bad_epochs`, `cooldown_counter` and `last_epoch` as integer tensors,
    /// and `learning_rate` (the optimiser's current rate, which it set).
    public func stateDict() -> [String: StoredTensor] {
        ["best": .int(IntTensor(Int64(bitPattern: best.bitPattern))), "num_bad_epochs": .int(IntTensor(Int64(badEpochs))),
         "cooldown_counter": .int(IntTensor(Int64(cooldownCounter))), "last_epoch": .int(IntTensor(Int64(lastEpoch))),
         "learning_rate": .float(Tensor(optimizer.learningRate))]
    }

    /// Restores `stateDict()`, the optimiser's learning rate included.
    /// - Throws: `NeuronError.invalidArgument` naming a missing or malformed key; the state is then
    ///   unchanged.
    public func loadStateDict(_ state: [String: StoredTensor]) throws {
        func integer(_ key: String) throws -> Int64 {
            guard case .int(let t)? = state[key], t.count == 1 else {
                throw NeuronError.invalidArgument("ReduceLROnPlateau state has no integer '\(key)' (keys: \(state.keys.sorted()))")
            }
            return t.scalars[0]
        }
        let bestBits = try integer("best"), bad = try integer("num_bad_epochs")
        let counter = try integer("cooldown_counter"), epoch = try integer("last_epoch")
        guard case .float(let rate)? = state["learning_rate"], rate.count == 1, rate.scalars[0].isFinite, rate.scalars[0] >= 0 else {
            throw NeuronError.invalidArgument("ReduceLROnPlateau state has no finite non-negative 'learning_rate'")
        }
        guard bad >= 0, counter >= 0, epoch >= 0 else {
            throw NeuronError.invalidArgument("ReduceLROnPlateau state has a negative count")
        }
        best = Double(bitPattern: UInt64(bitPattern: bestBits))
        badEpochs = Int(bad)
        cooldownCounter = Int(counter)
        lastEpoch = Int(epoch)
        optimizer.learningRate = rate.scalars[0]
    }
}
