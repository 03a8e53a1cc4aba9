/// Integer data: class labels, indices, lengths, counters. Stored as I64 in safetensors files.
public struct IntTensor: Equatable, Sendable {
    public var shape: [Int]
    public var scalars: [Int64]

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

    public var count: Int { scalars.count }
    /// The values as `Int`s.
    public var ints: [Int] { scalars.map { Int($0) } }
}

/// A tensor as stored in a file: float data (F32, or F16/BF16/F64 converted) or integer data (I64, U8...).
public enum StoredTensor: Equatable {
    case float(Tensor)
    case int(IntTensor)

    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int(let t): return t.shape
        }
    }
}
