/// Integer data: class labels, indices, lengths, counters. Stored as I64 in safetensors files.
/// Row-major like `Tensor`, but a plain value with no gradient history (PyTorch's `torch.int64` tensors).
public struct IntTensor: Equatable, Sendable {
    /// The size of each axis; `[]` for a scalar.
    public var shape: [Int]
    /// The elements in row-major order.
    public var scalars: [Int64]

    /// A tensor of `shape` holding `scalars` in row-major order.
    /// - Throws: `NeuronError.shapeMismatch` when the count of `scalars` is not the product of `shape`
    ///   (or a size is negative).
    public init(shape: [Int], scalars: [Int64]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), (try? Sizes.product(shape, "")) == scalars.count else {
            throw NeuronError.shapeMismatch("\(scalars.count) integers cannot fill shape \(shapeString(shape))")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A rank-1 tensor of labels or indices.
    public init(_ values: [Int]) {
        shape = [values.count]
        scalars = values.map(Int64.init)
    }

    /// A rank-0 scalar.
    public init(_ value: Int64) {
        shape = []
        scalars = [value]
    }

    /// The number of elements.
    public var count: Int { scalars.count }
    /// The values as `Int`s.
    public var ints: [Int] { scalars.map { Int($0) } }
}

/// A tensor as stored in a file: float data (F32, or F16/BF16/F64 converted) or integer data (I64, U8...).
/// What `Module.stateDict()` and `Safetensors.read(contentsOf:)` hold; a parameter is always `.float`, a
/// counter such as batch norm's `num_batches_tracked` is `.int`.
public enum StoredTensor: Equatable {
    /// Float data, read as `Float` whatever its width in the file.
    case float(Tensor)
    /// Integer data, read as `Int64` whatever its width in the file.
    case int(IntTensor)

    /// The tensor's shape, whichever kind it is.
    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int(let t): return t.shape
        }
    }
}
