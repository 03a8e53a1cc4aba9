extension Tensor {
    /// x / max(‖x‖₂, eps) along `axis` (PyTorch's `F.normalize(x, p=2, dim=axis, eps=1e-12)`), so each
    /// row of a `[N, D]` batch becomes a unit vector. Differentiable; an all-zero row stays zero with a
    /// finite gradient (the norm is clamped before its square root).
    public func l2Normalized(axis: Int = 1, eps: Float = 1e-12) throws -> Tensor {
        let norm = try squared().sum(axis: axis, keepingDims: true).clamped(min: eps * eps).sqrt()
        return try self / norm
    }
}

/// One encoder applied to several inputs with shared weights (a Siamese or triplet network, Taigman et al.
/// 2014, Schroff et al. 2015): every branch runs the same `encoder` module, so the gradients from all
/// branches accumulate into the same parameters.
///
/// `Siamese(encoder:normalize:)` maps a batch `[N, ...]` to embeddings `[N, D]`, L2-normalised per row when
/// `normalize` is true (FaceNet's embeddings live on the unit sphere). Parameters are the encoder's, under
/// `encoder.` (`encoder.0.weight`).
public final class Siamese: Module {
    /// The network every branch runs, mapping `[N, ...]` to `[N, D]`; its parameters are the only ones.
    public let encoder: any Module
    /// Whether each embedding row is scaled to unit L2 norm.
    public let normalizesEmbeddings: Bool
    /// Training or evaluation mode; `train()`/`eval()` pass it on to the encoder.
    public var isTraining = true

    /// - Parameters:
    ///   - encoder: maps a batch `[N, ...]` to embeddings `[N, D]`.
    ///   - normalize: L2-normalise each embedding (FaceNet), so squared distances lie in [0, 4].
    public init(encoder: any Module, normalize: Bool = true) {
        self.encoder = encoder
        self.normalizesEmbeddings = normalize
    }

    /// The embeddings `[N, D]` of one batch.
    /// - Throws: `NeuronError.shapeMismatch` when the encoder does not produce `[N, D]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let e = try encoder(x)
        guard e.rank == 2 else {
            throw NeuronError.shapeMismatch("Siamese: the encoder must produce embeddings [N, D], got \(shapeString(e.shape)) for input \(shapeString(x.shape))")
        }
        return normalizesEmbeddings ? try e.l2Normalized() : e
    }

    /// The embeddings of each batch (anchor, positive, negative; or the two sides of a pair), through the
    /// same weights.
    public func callAsFunction(_ inputs: [Tensor]) throws -> [Tensor] {
        try inputs.map { try self($0) }
    }

    /// The encoder, under `encoder` (its keys are `encoder.…`).
    public var children: [(name: String, module: any Module)] { [("encoder", encoder)] }
}

/// A learned same/different classifier on two embeddings (DeepFace's similarity head, Taigman et al. 2014):
/// ŷ = σ(Σ_k w_k φ(f_i, f_j)_k + b), trained with binary cross-entropy (1 = same person).
///
/// The pair features φ are `.absoluteDifference`, |f_i − f_j|, or `.chiSquare`,
/// (f_i − f_j)² / (|f_i + f_j| + ε): the chi-square distance's terms, meant for non-negative features; the
/// ε keeps the division finite where both are zero. Parameters `fc.weight` `[1, D]` and `fc.bias` `[1]`.
public final class SimilarityHead: Module {
    /// The pair features φ the classifier weighs.
    public enum Features: String, Sendable, CaseIterable {
        /// |f_i − f_j| per dimension; `.chiSquare`: (f_i − f_j)² / (|f_i + f_j| + ε).
        case absoluteDifference, chiSquare
    }

    /// The weights w `[1, D]` and bias b `[1]` over the pair features (`fc.weight`, `fc.bias`).
    public let fc: Linear
    /// Which pair features φ are used.
    public let features: Features
    /// ε in the chi-square denominator.
    public let epsilon: Float
    /// Training or evaluation mode (the head behaves the same in both).
    public var isTraining = true

    /// - Parameters:
    ///   - embeddingSize: D, the length of each embedding.
    ///   - features: the pair features φ.
    ///   - epsilon: the chi-square denominator's guard, at least 0.
    /// - Throws: `NeuronError.invalidArgument` for D < 1 or a negative epsilon.
    public init(embeddingSize: Int, features: Features = .absoluteDifference, epsilon: Float = 1e-6) throws {
        guard embeddingSize >= 1 else { throw NeuronError.invalidArgument("SimilarityHead: embedding size must be >= 1, got \(embeddingSize)") }
        guard epsilon >= 0 else { throw NeuronError.invalidArgument("SimilarityHead: epsilon must be >= 0, got \(epsilon)") }
        fc = try Linear(in: embeddingSize, out: 1)
        self.features = features
        self.epsilon = epsilon
    }

    /// φ(a, b) `[N, D]` for embeddings a, b `[N, D]`.
    public func pairFeatures(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.rank == 2, a.shape == b.shape, a.shape[1] == fc.inFeatures else {
            throw NeuronError.shapeMismatch("SimilarityHead: embeddings \(shapeString(a.shape)) and \(shapeString(b.shape)) (expects two [N, \(fc.inFeatures)])")
        }
        switch features {
        case .absoluteDifference: return try (a - b).abs()
        case .chiSquare: return try (a - b).squared() / ((a + b).abs() + epsilon)
        }
    }

    /// The logits `[N]` (before the sigmoid), for `binaryCrossEntropyWithLogits`.
    public func logits(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let z = try fc(try pairFeatures(a, b))
        return try z.reshaped([z.shape[0]])
    }

    /// The probabilities ŷ `[N]` that each pair shows the same person.
    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor { try logits(a, b).sigmoid() }

    /// The probabilities for a stacked pair `[2, N, D]` (`Tensor.stack([a, b])`).
    public func callAsFunction(_ pair: Tensor) throws -> Tensor {
        guard pair.rank == 3, pair.shape[0] == 2 else {
            throw NeuronError.shapeMismatch("SimilarityHead expects a stacked pair [2, N, D], got \(shapeString(pair.shape))")
        }
        let n = pair.shape[1], d = pair.shape[2]
        return try self(try pair.slice(0..<1).reshaped([n, d]), try pair.slice(1..<2).reshaped([n, d]))
    }

    /// The linear classifier, under `fc`.
    public var children: [(name: String, module: any Module)] { [("fc", fc)] }
}
