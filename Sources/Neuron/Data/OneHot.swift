/// One-hot encoding: `labels` [N] (`[Int]` or a rank-1 `IntTensor`) -> [N, classes], row i all zeros except a 1 at column `labels[i]`
/// (PyTorch's `F.one_hot(labels, classes).float()`, Keras's `to_categorical`).
/// - Throws: `NeuronError.invalidArgument` when `classes` < 1 or a label is outside 0..<classes
///   (naming its position).
public func oneHot(_ labels: some IntegerLabels, classes: Int) throws -> Tensor {
    let labels = try labels.labelValues(op: "oneHot")
    guard classes >= 1 else { throw NeuronError.invalidArgument("oneHot: classes must be at least 1, got \(classes)") }
    if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
        throw NeuronError.invalidArgument("oneHot: label \(labels[i]) at index \(i) is outside 0..<\(classes)")
    }
    try Sizes.checkShape([labels.count, classes], "oneHot result")
    var out = Tensor.zeros([labels.count, classes])
    out.withUnsafeMutableBufferPointer { p in
        for (i, label) in labels.enumerated() { p[i * classes + label] = 1 }
    }
    return out
}
