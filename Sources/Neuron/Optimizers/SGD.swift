import CKernels

/// Stochastic gradient descent with optional momentum, dampening, L2 weight decay and Nesterov
/// momentum (PyTorch's `torch.optim.SGD`).
///
/// Per element: g ← g + weightDecay·p; with momentum, b ← g on the first step and
/// b ← momentum·b + (1 − dampening)·g afterwards, then d = nesterov ? g + momentum·b : b; p ← p − lr·d.
///
/// - Parameters (in initialiser order):
///   - parameters: the named parameters to update (`model.namedParameters`).
///   - lr: learning rate, required (Keras's `SGD` defaults to 0.01).
///   - momentum: 0 turns momentum off (no buffer is kept).
///   - dampening: scales the new gradient in the momentum buffer; must be 0 with Nesterov.
///   - weightDecay: coupled L2 penalty added to the gradient (Keras 3 decays the weights directly).
///   - nesterov: Nesterov momentum; needs momentum > 0 and dampening 0.
///
/// Keras keeps lr inside its velocity (v ← momentum·v − lr·g), PyTorch and Neuron outside (b holds
/// gradients), so changing lr mid-training scales the whole step here, not just the new gradient.
/// State: `momentum_buffer` (when momentum > 0) and `step`.
public final class SGD: Optimizer {
    /// The learning rate the next `step()` uses; schedules set it between steps.
    public var learningRate: Float
    /// The momentum factor (0: plain SGD, no buffer kept).
    public let momentum: Float
    /// Scales the new gradient entering the momentum buffer by 1 − dampening.
    public let dampening: Float
    /// The coupled L2 penalty: weightDecay·p is added to the gradient.
    public let weightDecay: Float
    /// Whether the step looks ahead along the momentum (Nesterov).
    public let nesterov: Bool
    let state: OptimizerState

    /// The same optimiser over a module's parameters (`SGD(model, lr: 0.1)`) or an array of parameters.
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float, momentum: Float = 0,
                            dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) throws {
        try self.init(source.optimizerParameters(), lr: lr, momentum: momentum, dampening: dampening,
                      weightDecay: weightDecay, nesterov: nesterov)
    }

    /// SGD over named parameters, whose names key `stateDict()`.
    /// - Parameters:
    ///   - parameters: the named parameters to update (`model.namedParameters`).
    ///   - lr: the learning rate.
    ///   - momentum: the momentum factor; 0 keeps no buffer.
    ///   - dampening: scales the new gradient in the momentum buffer; 0 with Nesterov.
    ///   - weightDecay: coupled L2 penalty added to the gradient.
    ///   - nesterov: Nesterov momentum (needs momentum > 0, dampening 0).
    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite lr, momentum or weight
    ///   decay, a non-finite dampening, Nesterov without momentum or with dampening, or two parameters
    ///   under one name.
    public init(_ parameters: [(name: String, parameter: Parameter)], lr: Float, momentum: Float = 0,
                dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) throws {
        try Hyperparameter.requireNonNegative("SGD learning rate", lr)
        try Hyperparameter.requireNonNegative("SGD momentum", momentum)
        try Hyperparameter.require(dampening.isFinite, "SGD dampening must be finite, got \(dampening)")
        try Hyperparameter.requireNonNegative("SGD weight decay", weightDecay)
        try Hyperparameter.require(!nesterov || (momentum > 0 && dampening == 0),
                                   "Nesterov momentum requires momentum > 0 and dampening 0, got momentum \(momentum), dampening \(dampening)")
        learningRate = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        state = try OptimizerState(parameters, bufferNames: momentum != 0 ? ["momentum_buffer"] : [])
    }

    /// The parameters being updated, under their `state_dict` names.
    public var parameters: [(name: String, parameter: Parameter)] { state.parameters }

    /// Updates every parameter that has a gradient, in place, and counts its step.
    /// - Throws: `NeuronError.invalidArgument` when `learningRate` has been set negative or non-finite.
    public func step() throws {
        try state.updateEach(learningRate: learningRate) { i, p, g, n in
            nn_sgd_step(p, state.pointer("momentum_buffer", i), g, n, learningRate, momentum, dampening,
                        weightDecay, nesterov ? 1 : 0, state.steps[i] == 1 ? 1 : 0)
        }
    }

    /// The per-parameter buffers and step counts, PyTorch's optimiser state under `"<buffer>.<parameter name>"`.
    public func stateDict() -> [String: StoredTensor] { state.stateDict() }
    /// Restores a `stateDict()` so training resumes exactly.
    /// - Parameter dict: state saved by `stateDict()` for parameters of the same names and shapes.
    /// - Throws: `NeuronError` naming missing or unexpected keys or mismatched shapes; the state is then unchanged.
    public func loadStateDict(_ dict: [String: StoredTensor]) throws { try state.load(dict) }
}
