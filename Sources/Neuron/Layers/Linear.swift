/// A fully connected layer, y = x Wᵀ + b, for x [N, in] (PyTorch's `nn.Linear`, Keras's `Dense`).
///
/// Parameters: `weight` [out, in] and `bias` [out]. Initialisation is PyTorch's: weight
/// kaiming-uniform with a = √5 (U(±1/√in)), bias U(±1/√in), drawn from `Random`'s default generator.
public final class Linear: Module {
    /// [out, in], PyTorch's layout (x Wᵀ), so weights load from `state_dict`s unchanged.
    public let weight: Parameter
    /// [out], added to every row; nil when built with `bias: false`.
    public let bias: Parameter?
    /// Training mode; a linear layer behaves the same in both modes.
    public var isTraining = true
    /// The input width, PyTorch's `in_features`.
    public let inFeatures: Int
    /// The output width, PyTorch's `out_features`.
    public let outFeatures: Int

    /// A fully connected layer with PyTorch's initialisation.
    /// - Parameters:
    ///   - inFeatures: the input width, `in_features`.
    ///   - outFeatures: the output width, `out_features`.
    ///   - bias: whether to add a learned bias (PyTorch's `bias=True`).
    /// - Throws: `NeuronError.invalidArgument` for a negative size or a weight over the allocation cap.
    public init(in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws {
        try Hyperparameter.require(inFeatures >= 0 && outFeatures >= 0,
                                   "Linear sizes must not be negative, got in \(inFeatures), out \(outFeatures)")
        try Sizes.checkShape([outFeatures, inFeatures], "Linear weight")
        // With no inputs the weight is empty whatever `out` is; the bias is not.
        if bias { try Sizes.checkShape([outFeatures], "Linear bias") }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(Tensor.kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures))
        let bound = inFeatures > 0 ? 1 / Float(inFeatures).squareRoot() : 0
        self.bias = bias ? Parameter(Tensor.uniform([outFeatures], low: -bound, high: bound)) : nil
    }

    /// x [N, in] -> [N, out].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        traced(try Tensor.linear(x, weight: weight.value, bias: bias?.value))
    }

    /// PyTorch's repr: `in_features=400, out_features=120, bias=True`.
    public var configurationDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\((bias != nil).reprValue)"
    }

    /// `weight` and, when present, `bias`.
    public var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// Keras's name for `Linear`.
public typealias Dense = Linear
