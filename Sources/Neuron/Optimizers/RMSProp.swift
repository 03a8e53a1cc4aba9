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
    public var learningRate: Float
    public let alpha: Float
    public let eps: Float
    public let weightDecay: Float
    public let momentum: Float
    public let centered: Bool
    let state: OptimizerState

    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite lr, eps, weight decay or
    ///   momentum, an alpha outside [0, 1] (PyTorch only rejects alpha < 0; above 1 the average of
    ///   squares turns negative), or two parameters under one name.
    /// The same optimiser over a module's parameters (`RMSProp(model)`) or an array of parameters.
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float = 1e-2, alpha: Float = 0.99,
                            eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) throws {
        try self.init(source.optimizerParameters(), lr: lr, alpha: alpha, eps: eps, weightDecay: weightDecay,
                      momentum: momentum, centered: centered)
    }

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

    public var parameters: [(name: String, parameter: Parameter)] { state.parameters }

    public func step() throws {
        try state.updateEach(learningRate: learningRate) { i, p, g, n in
            nn_rmsprop_step(p, state.pointer("square_avg", i), state.pointer("grad_avg", i),
                            state.pointer("momentum_buffer", i), g, n, learningRate, alpha, eps, weightDecay,
                            momentum, centered ? 1 : 0)
        }
    }

    public func stateDict() -> [String: StoredTensor] { state.stateDict() }
    public func loadStateDict(_ dict: [String: StoredTensor]) throws { try state.load(dict) }
}
