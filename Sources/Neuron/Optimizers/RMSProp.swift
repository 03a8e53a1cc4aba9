import CKernels

/// RMSProp: divides the gradient by a running root mean square of recent gradients
/// (PyTorch's `torch.optim.RMSprop`).
///
/// Per element: g ← g + weightDecay·p; v ← αv + (1 − α)g²; when centered, ḡ ← αḡ + (1 − α)g and
/// v̂ = v − ḡ², else v̂ = v; d = g / (√v̂ + eps); with momentum, b ← momentum·b + d, p ← p − lr·b,
/// else p ← p − lr·d.
///
/// - Parameters (in initialiser order):
///   - parameters: the named parameters to update (`model.namedParameters`).
///   - lr: learning rate, 1e-2 (Keras: 1e-3).
///   - alpha: smoothing constant of the running averages, 0.99, in [0, 1] (Keras calls it `rho`, 0.9).
///   - eps: 1e-8, added outside the square root (Keras: 1e-7).
///   - weightDecay: coupled L2 penalty added to the gradient, 0.
///   - momentum: 0 turns momentum off (no buffer is kept).
///   - centered: normalise by an estimate of the gradient's variance instead of its second moment.
///
/// State: `square_avg`, `momentum_buffer` (momentum > 0), `grad_avg` (centered) and `step`.
public final class RMSProp: Optimizer {
    /// The learning rate the next `step()` uses; schedules set it between steps.
    public var learningRate: Float
    /// The smoothing constant α of the running averages (Keras's `rho`).
    public let alpha: Float
    /// Added to the root mean square (outside the root) so small averages do not divide by 0.
    public let eps: Float
    /// The coupled L2 penalty: weightDecay·p is added to the gradient.
    public let weightDecay: Float
    /// The momentum factor (0: no buffer kept).
    public let momentum: Float
    /// Whether the squared average is centred by the mean gradient (keeps `grad_avg`).
    public let centered: Bool
    let state: OptimizerState

    /// The same optimiser over a module's parameters (`RMSProp(model)`) or an array of parameters.
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float = 1e-2, alpha: Float = 0.99,
                            eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) throws {
        try self.init(source.optimizerParameters(), lr: lr, alpha: alpha, eps: eps, weightDecay: weightDecay,
                      momentum: momentum, centered: centered)
    }

    /// RMSProp over named parameters, whose names key `stateDict()`.
    /// - Parameters:
    ///   - parameters: the named parameters to update (`model.namedParameters`).
    ///   - lr: the learning rate.
    ///   - alpha: the smoothing constant of the running averages, in [0, 1].
    ///   - eps: added to the root mean square so small averages do not divide by 0.
    ///   - weightDecay: coupled L2 penalty added to the gradient.
    ///   - momentum: the momentum factor; 0 keeps no buffer.
    ///   - centered: normalise by the gradient's estimated variance (keeps `grad_avg`).
    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite lr, eps, weight decay or
    ///   momentum, an alpha outside [0, 1] (PyTorch only rejects alpha < 0; above 1 the average of
    ///   squares turns negative), or two parameters under one name.
    public init(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-2, alpha: Float = 0.99,
                eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) throws {
        try Hyperparameter.requireNonNegative("RMSProp learning rate", lr)
        try Hyperparameter.require(alpha >= 0 && alpha <= 1, "RMSProp alpha must be in [0, 1], got \(alpha)")
        try Hyperparameter.requireNonNegative("RMSProp eps", eps)
        try Hyperparameter.requireNonNegative("RMSProp weight decay", weightDecay)
        try Hyperparameter.requireNonNegative("RMSProp momentum", momentum)
        learningRate = lr
        self.alpha = alpha
        self.eps = eps
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        state = try OptimizerState(parameters, bufferNames: ["square_avg"]
                                   + (momentum > 0 ? ["momentum_buffer"] : []) + (centered ? ["grad_avg"] : []))
    }

    /// The parameters being updated, under their `state_dict` names.
    public var parameters: [(name: String, parameter: Parameter)] { state.parameters }

    /// Updates every parameter that has a gradient, in place, and counts its step.
    /// - Throws: `NeuronError.invalidArgument` when `learningRate` has been set negative or non-finite.
    public func step() throws {
        try state.updateEach(learningRate: learningRate) { i, p, g, n in
            nn_rmsprop_step(p, state.pointer("square_avg", i), state.pointer("grad_avg", i),
                            state.pointer("momentum_buffer", i), g, n, learningRate, alpha, eps, weightDecay,
                            momentum, centered ? 1 : 0)
        }
    }

    /// The per-parameter buffers and step counts, PyTorch's optimiser state under `"<buffer>.<parameter name>"`.
    public func stateDict() -> [String: StoredTensor] { state.stateDict() }
    /// Restores a `stateDict()` so training resumes exactly.
    /// - Parameter dict: state saved by `stateDict()` for parameters of the same names and shapes.
    /// - Throws: `NeuronError` naming missing or unexpected keys or mismatched shapes; the state is then unchanged.
    public func loadStateDict(_ dict: [String: StoredTensor]) throws { try state.load(dict) }
}
