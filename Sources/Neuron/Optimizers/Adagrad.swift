import CKernels

/// Adagrad: per-element learning rates that shrink with the accumulated squared gradient
/// (PyTorch's `torch.optim.Adagrad`).
///
/// Per element, at step t (counting from 1): g ← g + weightDecay·p; s ← s + g²;
/// p ← p − lr / (1 + (t − 1)·lrDecay) · g / (√s + eps).
///
/// - Parameters (in initialiser order):
///   - parameters: the named parameters to update (`model.namedParameters`).
///   - lr: learning rate, 1e-2 (Keras: 1e-3).
///   - lrDecay: decays the learning rate with the step count, 0.
///   - weightDecay: coupled L2 penalty added to the gradient, 0.
///   - initialAccumulatorValue: the starting value of s, 0 (Keras: 0.1).
///   - eps: 1e-10, added outside the square root as PyTorch does (Keras: 1e-7).
///
/// The accumulator is allocated for every parameter at construction, as PyTorch does. State: `sum`
/// and `step`.
public final class Adagrad: Optimizer {
    /// The learning rate the next `step()` uses; schedules set it between steps.
    public var learningRate: Float
    /// Divides the learning rate by 1 + (t − 1)·lrDecay at step t.
    public let lrDecay: Float
    /// The coupled L2 penalty: weightDecay·p is added to the gradient.
    public let weightDecay: Float
    /// The starting value of the `sum` accumulators.
    public let initialAccumulatorValue: Float
    /// Added to √s (outside the root, as PyTorch) so zero accumulators do not divide by 0.
    public let eps: Float
    let state: OptimizerState

    /// The same optimiser over a module's parameters (`Adagrad(model)`) or an array of parameters.
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float = 1e-2, lrDecay: Float = 0,
                            weightDecay: Float = 0, initialAccumulatorValue: Float = 0, eps: Float = 1e-10) throws {
        try self.init(source.optimizerParameters(), lr: lr, lrDecay: lrDecay, weightDecay: weightDecay,
                      initialAccumulatorValue: initialAccumulatorValue, eps: eps)
    }

    /// Adagrad over named parameters, whose names key `stateDict()`; the `sum` accumulators are allocated now.
    /// - Parameters:
    ///   - parameters: the named parameters to update (`model.namedParameters`).
    ///   - lr: the learning rate before decay.
    ///   - lrDecay: divides the rate by 1 + (t − 1)·lrDecay at step t.
    ///   - weightDecay: coupled L2 penalty added to the gradient.
    ///   - initialAccumulatorValue: the starting value of every `sum` element.
    ///   - eps: added to √s so zero accumulators do not divide by 0.
    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite lr, lr decay, weight decay,
    ///   initial accumulator value or eps, or two parameters under one name.
    public init(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-2, lrDecay: Float = 0,
                weightDecay: Float = 0, initialAccumulatorValue: Float = 0, eps: Float = 1e-10) throws {
        try Hyperparameter.requireNonNegative("Adagrad learning rate", lr)
        try Hyperparameter.requireNonNegative("Adagrad lr decay", lrDecay)
        try Hyperparameter.requireNonNegative("Adagrad weight decay", weightDecay)
        try Hyperparameter.requireNonNegative("Adagrad initial accumulator value", initialAccumulatorValue)
        try Hyperparameter.requireNonNegative("Adagrad eps", eps)
        learningRate = lr
        self.lrDecay = lrDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.eps = eps
        state = try OptimizerState(parameters, bufferNames: ["sum"], initialValue: initialAccumulatorValue,
                                   allocatesEagerly: true)
    }

    /// The parameters being updated, under their `state_dict` names.
    public var parameters: [(name: String, parameter: Parameter)] { state.parameters }

    /// Updates every parameter that has a gradient, in place, and counts its step.
    /// - Throws: `NeuronError.invalidArgument` when `learningRate` has been set negative or non-finite.
    public func step() throws {
        try state.updateEach(learningRate: learningRate) { i, p, g, n in
            nn_adagrad_step(p, state.pointer("sum", i), g, n, learningRate, lrDecay, weightDecay, eps, state.steps[i])
        }
    }

    /// The per-parameter buffers and step counts, PyTorch's optimiser state under `"<buffer>.<parameter name>"`.
    public func stateDict() -> [String: StoredTensor] { state.stateDict() }
    /// Restores a `stateDict()` so training resumes exactly.
    /// - Parameter dict: state saved by `stateDict()` for parameters of the same names and shapes.
    /// - Throws: `NeuronError` naming missing or unexpected keys or mismatched shapes; the state is then unchanged.
    public func loadStateDict(_ dict: [String: StoredTensor]) throws { try state.load(dict) }
}
