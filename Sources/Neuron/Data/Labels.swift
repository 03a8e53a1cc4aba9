/// Class labels or indices as losses, metrics and `oneHot` take them: an `[Int]` or a rank-1
/// `IntTensor` (what `Safetensors`, `CSVTable` and `DataLoader` give), so integer data read from a
/// file needs no conversion: `crossEntropy(logits, labels: file.intTensor("y"))`.
public protocol IntegerLabels {
    /// The labels as `Int`s.
    /// - Throws: `NeuronError.shapeMismatch` for an `IntTensor` that is not rank 1, naming `op`.
    func labelValues(op: String) throws -> [Int]
}

/// An `[Int]` is labels as it is, so `crossEntropy(logits, labels: [2, 0, 1])` works.
extension Array: IntegerLabels where Element == Int {
    /// The array itself: an `[Int]` is already labels.
    /// - Parameter op: unused; the array needs no check.
    public func labelValues(op: String) throws -> [Int] { self }
}

extension IntTensor: IntegerLabels {
    /// The scalars of a rank-1 tensor [N] as `Int`s.
    /// - Parameter op: the operation named in the error.
    /// - Throws: `NeuronError.shapeMismatch` for a tensor that is not rank 1.
    public func labelValues(op: String) throws -> [Int] {
        guard shape.count == 1 else {
            throw NeuronError.shapeMismatch("\(op): labels must be a rank-1 integer tensor [N], got shape \(shapeString(shape))")
        }
        return ints
    }
}
