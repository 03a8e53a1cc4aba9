import CKernels

/// Adam with bias-corrected moment estimates (PyTorch's `torch.optim.Adam`; `AdamW` is the
/// decoupled-weight-decay variant).
///
/// Per element, at step t (counting from 1): g ← g + weightDecay·p; m ← β₁m + (1 − β₁)g;
/// v ← β₂v + (1 − β₂)g²; p ← p − lr·(m / (1 − β₁ᵗ)) / (√v / √(1 − β₂ᵗ) + eps).
///
/// - Parameters (in initialiser order):
///   - parameters: the named parameters to update (`model.namedParameters`).
///   - lr: learning rate, 1e-3 (as Keras).
///   - betas: decay rates (β₁, β₂) of the first and second moments, each in [0, 1).
///   - eps: 1e-8, added to the bias-corrected √v (Keras: 1e-7, added to the uncorrected √v).
///   - weightDecay: coupled L2 penalty added to the gradient, 0.
///
/// Always bias-corrected, as in PyTorch: the first step moves each element by about lr whatever the
/// gradient's scale. No AMSGrad. State: `exp_avg`, `exp_avg_sq` and `step`.
public class Adam: Optimizer {
    /// The learning rate the next `step()` uses; schedules set it between steps.
    public var learningRate: Float
    /// (β₁, β₂), the decay rates of the first and second moment estimates.
    public let betas: (Float, Float)
    /// Added to the bias-corrected √v so parameters with tiny gradients do not divide by 0.
    public let eps: Float
    /// The L2 penalty: added to the gradient (Adam) or decaying the weights directly (AdamW).
    public let weightDecay: Float
    /// AdamW: decay the weights directly (p ← p·(1 − lr·weightDecay)) instead of the gradient.
    let decouplesWeightDecay: Bool
    let state: OptimizerState

    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite lr, eps or weight decay,
    ///   a beta outside [0, 1), or two parameters under one name.
    public convenience init(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-3,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 0) throws {
        try self.init(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: false)
    }

    /// The same optimiser over a module's parameters (`Adam(model, lr: 1e-3)`) or an array of
    /// parameters (`Adam(model.parameters)`).
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float = 1e-3,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 0) throws {
        try self.init(source.optimizerParameters(), lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: false)
    }

    init(_ parameters: [(name: String, parameter: Parameter)], lr: Float, betas: (Float, Float), eps: Float,
         weightDecay: Float, decoupled: Bool) throws {
        let kind = decoupled ? "AdamW" : "Adam"
        try Hyperparameter.requireNonNegative("\(kind) learning rate", lr)
        for (i, beta) in [betas.0, betas.1].enumerated() {
            try Hyperparameter.require(beta >= 0 && beta < 1, "\(kind) beta\(i + 1) must be in [0, 1), got \(beta)")
        }
        try Hyperparameter.requireNonNegative("\(kind) eps", eps)
        try Hyperparameter.requireNonNegative("\(kind) weight decay", weightDecay)
        learningRate = lr
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
        decouplesWeightDecay = decoupled
        state = try OptimizerState(parameters, bufferNames: ["exp_avg", "exp_avg_sq"])
    }

    /// The parameters being updated, under their `state_dict` names.
    public var parameters: [(name: String, parameter: Parameter)] { state.parameters }

    /// Updates every parameter that has a gradient, in place, and counts its step.
    /// - Throws: `NeuronError.invalidArgument` when `learningRate` has been set negative or non-finite.
    public func step() throws {
        try state.updateEach(learningRate: learningRate) { i, p, g, n in
            nn_adam_step(p, state.pointer("exp_avg", i), state.pointer("exp_avg_sq", i), g, n, learningRate,
                         betas.0, betas.1, eps, weightDecay, decouplesWeightDecay ? 1 : 0, state.steps[i])
        }
    }

    /// The per-parameter buffers and step counts, PyTorch's optimiser state under `"<buffer>.<parameter name>"`.
    public func stateDict() -> [String: StoredTensor] { state.stateDict() }
    /// Restores a `stateDict()` so training resumes exactly.
    /// - Parameter dict: state saved by `stateDict()` for parameters of the same names and shapes.
    /// - Throws: `NeuronError` naming missing or unexpected keys or mismatched shapes; the state is then unchanged.
    public func loadStateDict(_ dict: [String: StoredTensor]) throws { try state.load(dict) }
}

/// Adam with decoupled weight decay (PyTorch's `torch.optim.AdamW`).
///
/// Per element, before the Adam update: p ← p·(1 − lr·weightDecay); the gradient itself is not
/// decayed, so the decay is not rescaled by the adaptive denominator.
///
/// - Parameters (in initialiser order):
///   - parameters: the named parameters to update (`model.namedParameters`).
///   - lr: learning rate, 1e-3.
///   - betas: (β₁, β₂), each in [0, 1).
///   - eps: 1e-8 (Keras: 1e-7).
///   - weightDecay: 1e-2, as PyTorch (Keras's `AdamW` defaults to 0.004).
///
/// State: `exp_avg`, `exp_avg_sq` and `step`, as `Adam`'s.
public final class AdamW: Adam {
    /// - Throws: as `Adam`.
    public init(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-3,
                betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 1e-2) throws {
        try super.init(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: true)
    }

    /// The same optimiser over a module's parameters (`AdamW(model)`) or an array of parameters.
    /// - Throws: as the named-parameter initialiser, and what `Module.checkParts()` throws.
    public convenience init(_ source: some ParameterSource, lr: Float = 1e-3,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 1e-2) throws {
        try self.init(source.optimizerParameters(), lr: lr, betas: betas, eps: eps, weightDecay: weightDecay)
    }
}
