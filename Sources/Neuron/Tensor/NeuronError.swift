/// The one error type Neuron throws. Every case carries a message that names the problem (and, for
/// shape errors, both shapes), so `print(error)` tells the user what to fix.
public enum NeuronError: Error, CustomStringConvertible, Equatable {
    /// Shapes that do not fit together, e.g. `matmul [2, 3] x [4, 5]`.
    case shapeMismatch(String)
    /// An argument out of its domain: a zero stride, a negative size, a class index out of range.
    case invalidArgument(String)
    /// An op that needs elements was given none (an empty batch to a loss, max of an empty axis).
    case emptyInput(String)
    /// A loss or gradient that became NaN or infinite.
    case nonFinite(String)
    /// A file that cannot be read, is truncated or is malformed.
    case io(String)
    /// A collective operation across processes failed, or the processes disagree (different models on
    /// different ranks, a rank that failed); thrown by NeuronDistributed and by a distributed `Trainer`.
    case communication(String)

    /// The kind, then the message: `shape mismatch: ...`, `invalid argument: ...`.
    public var description: String {
        switch self {
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .emptyInput(let m): return "empty input: \(m)"
        case .nonFinite(let m): return "non-finite value: \(m)"
        case .io(let m): return "I/O error: \(m)"
        case .communication(let m): return "communication error: \(m)"
        }
    }
}

/// Formats a shape the way messages print it: `[2, 3]`.
func shapeString(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
