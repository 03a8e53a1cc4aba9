import CKernels

/// A lookup table of learned vectors: integer indices of shape S give vectors of shape S + [dimension]
/// (PyTorch's `nn.Embedding`, Keras's `Embedding`).
///
/// Parameter `weight` [count, dimension], initialised N(0, 1) as PyTorch does (Keras draws U(±0.05)).
/// The row at `paddingIndex`, when given, starts at zero and receives no gradient, so an optimiser
/// without weight decay never moves it (padded positions of a batch then embed to zero). A negative
/// `paddingIndex` counts from the end, as in PyTorch.
///
/// Indices come as an `IntTensor`, an `[Int]`, or (so the layer can open a `Sequential` fed by a
/// `DataLoader` of float tensors) a `Tensor` of whole numbers. An index outside 0..<count throws.
public final class Embedding: Module {
    /// The vectors, one row per index: [count, dimension] (`weight`, as in `nn.Embedding`).
    public let weight: Parameter
    /// The number of rows (the vocabulary size).
    public let count: Int
    /// The length of each vector.
    public let dimension: Int
    /// The row that embeds padding (normalised to 0..<count), if any.
    public let paddingIndex: Int?
    /// Training or evaluation mode (the lookup is the same in both).
    public var isTraining = true

    /// - Throws: `NeuronError.invalidArgument` for a negative size or a padding index outside
    ///   -count..<count.
    public init(count: Int, dimension: Int, paddingIndex: Int? = nil) throws {
        guard count >= 0, dimension >= 0 else {
            throw NeuronError.invalidArgument("Embedding(count: \(count), dimension: \(dimension)): sizes must not be negative")
        }
        if let p = paddingIndex, p < -count || p >= count {
            throw NeuronError.invalidArgument("Embedding(count: \(count)): padding index \(p) must lie in \(-count)..<\(count)")
        }
        self.count = count
        self.dimension = dimension
        self.paddingIndex = paddingIndex.map { $0 < 0 ? $0 + count : $0 }
        var initial = Tensor.normal([count, dimension])
        if let p = self.paddingIndex {
            initial.withUnsafeMutableBufferPointer { w in
                for c in 0..<dimension { w[p * dimension + c] = 0 }
            }
        }
        weight = Parameter(initial)
    }

    /// indices S -> vectors S + [dimension].
    public func callAsFunction(_ indices: IntTensor) throws -> Tensor {
        traced(try Tensor.embedding(indices, weight: weight.value, paddingIndex: paddingIndex))
    }

    /// PyTorch's repr: `100, 16` (and `padding_idx=0`).
    public var configurationDescription: String { "\(count), \(dimension)" + (paddingIndex.map { ", padding_idx=\($0)" } ?? "") }

    /// indices [n] -> vectors [n, dimension].
    public func callAsFunction(_ indices: [Int]) throws -> Tensor {
        try self(IntTensor(indices))
    }

    /// Whole-number indices S (stored as floats) -> vectors S + [dimension].
    /// - Throws: `NeuronError.invalidArgument` naming the first element that is not a whole number in
    ///   0..<count.
    public func callAsFunction(_ indices: Tensor) throws -> Tensor {
        try self(indices.asIndices(name: "Embedding"))
    }

    /// `weight`.
    public var localParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }
}

extension Tensor {
    /// The rows of `weight` [count, dimension] named by `indices` (any shape S): S + [dimension]
    /// (PyTorch's `F.embedding`). Differentiable in `weight`; the row at `paddingIndex` gets no gradient.
    /// - Throws: `NeuronError.shapeMismatch` when `weight` is not a matrix; `.invalidArgument` for an
    ///   index outside 0..<count or a padding index outside 0..<count.
    public static func embedding(_ indices: IntTensor, weight: Tensor, paddingIndex: Int? = nil) throws -> Tensor {
        guard weight.rank == 2 else {
            throw NeuronError.shapeMismatch("embedding: weight must be [count, dimension], got \(shapeString(weight.shape))")
        }
        let count = weight.shape[0], dimension = weight.shape[1]
        if let p = paddingIndex, p < 0 || p >= count {
            throw NeuronError.invalidArgument("embedding: padding index \(p) is out of range for \(count) rows")
        }
        if let i = indices.scalars.firstIndex(where: { $0 < 0 || $0 >= count }) {
            throw NeuronError.invalidArgument("embedding: index \(indices.scalars[i]) at position \(i) is out of range for \(count) rows (0..<\(count))")
        }
        let n = indices.count
        let out = Tensor(uninitializedShape: indices.shape + [dimension])
        indices.scalars.withUnsafeBufferPointer { idx in
            nn_embedding_forward(out.pointer, weight.pointer, idx.baseAddress, n, count, dimension)
        }
        let saved = indices.scalars
        return out.recorded("embedding", inputs: [weight]) { g in
            let dw = Tensor.zeros([count, dimension])
            saved.withUnsafeBufferPointer { idx in
                nn_embedding_backward(dw.pointer, g.pointer, idx.baseAddress, Int64(paddingIndex ?? -1), n, count, dimension)
            }
            return [dw]
        }
    }

    /// The elements as integer indices, for layers that take token ids in a float tensor.
    /// - Throws: `NeuronError.invalidArgument` naming the first element that is not a whole number
    ///   representable exactly (|x| ≤ 2^24).
    func asIndices(name: String) throws -> IntTensor {
        let values = scalars
        if let i = values.firstIndex(where: { $0 != $0.rounded() || Swift.abs($0) > 16_777_216 }) {
            throw NeuronError.invalidArgument("\(name): element \(values[i]) at position \(i) is not a whole-number index")
        }
        return try IntTensor(shape: shape, scalars: values.map { Int64($0) })
    }
}
