import CKernels

/// How a loss combines its per-element values (PyTorch's `reduction`).
public enum Reduction: Sendable {
    /// `mean` over all elements (PyTorch's default), their `sum`, or `none`: the per-element losses unreduced.
    case mean, sum, none
}

// Losses as differentiable functions of the prediction. Each checks shapes, refuses the mean of an
// empty batch (NaN in PyTorch; its sum is 0, as there), and throws `NeuronError.nonFinite` when the
// loss comes out NaN or infinite, so a diverging run stops with a message instead of training on garbage.

/// Per-element loss kernel plus its backward, reduced as asked. `backward(dx, g, scale)` writes the
/// prediction's gradient given an optional per-element upstream gradient `g` (nil: all ones).
private func elementLoss(_ name: String, prediction: Tensor, target: Tensor, reduction: Reduction,
                         forward: (UnsafeMutablePointer<Float>, Int) -> Void,
                         backward: @escaping (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, Float, Int) -> Void) throws -> Tensor {
    guard prediction.shape == target.shape else {
        throw NeuronError.shapeMismatch("\(name): prediction \(shapeString(prediction.shape)) and target \(shapeString(target.shape))")
    }
    let n = prediction.count
    if reduction == .mean, n == 0 { throw NeuronError.emptyInput("\(name): mean over an empty batch, shape \(shapeString(prediction.shape))") }
    let elements = Tensor(uninitializedShape: prediction.shape)
    forward(elements.pointer, n)
    let (out, scale) = try reduced(elements, reduction, name)
    return out.recorded(name, inputs: [prediction]) { g in
        let dx = Tensor(uninitializedShape: prediction.shape)
        if reduction == .none {
            backward(dx.pointer, UnsafePointer(g.pointer), 1, n)
        } else {
            backward(dx.pointer, nil, scale * g.pointer[0], n)
        }
        return [dx]
    }
}

/// Reduces per-element losses as asked and refuses a non-finite result; `scale` is what each
/// element's gradient is multiplied by (1/count for a mean).
func reduced(_ elements: Tensor, _ reduction: Reduction, _ name: String) throws -> (loss: Tensor, scale: Float) {
    let n = elements.count
    let loss: Tensor
    switch reduction {
    case .none: loss = elements
    case .sum: loss = Tensor(Float(nn_sum_all(elements.pointer, n)))
    case .mean: loss = Tensor(Float(nn_sum_all(elements.pointer, n) / Double(n)))
    }
    try checkFinite(loss, name)
    return (loss, reduction == .mean ? 1 / Float(n) : 1)
}

func checkFinite(_ loss: Tensor, _ name: String) throws {
    guard nn_all_finite(loss.pointer, loss.count) != 0 else {
        throw NeuronError.nonFinite("\(name) loss is NaN or infinite (check the inputs, the learning rate, and for NaN in the data)")
    }
}

/// Mean squared error, (p - t)² (PyTorch's `F.mse_loss`).
public func mseLoss(_ prediction: Tensor, _ target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
    let t = target.detached()
    return try elementLoss("mse", prediction: prediction, target: t, reduction: reduction,
                           forward: { nn_mse_forward($0, prediction.pointer, t.pointer, $1) },
                           backward: { nn_mse_backward($0, $1, prediction.pointer, t.pointer, $2, $3) })
}

/// Binary cross-entropy on probabilities p in [0, 1], -(t log p + (1 - t) log(1 - p)), each log
/// clamped at -100 as PyTorch's `F.binary_cross_entropy` does. Prefer the logits form for training.
public func binaryCrossEntropy(_ probabilities: Tensor, _ target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
    let t = target.detached(), p = probabilities
    // The clamped logs would turn a value outside [0, 1] (or NaN) into a finite loss; PyTorch refuses it.
    if let bad = p.withUnsafeBufferPointer({ $0.first { !($0 >= 0 && $0 <= 1) } }) {
        throw NeuronError.invalidArgument("binary_cross_entropy: probabilities must be in [0, 1], got \(bad)")
    }
    return try elementLoss("binary_cross_entropy", prediction: p, target: t, reduction: reduction,
                           forward: { nn_bce_forward($0, p.pointer, t.pointer, $1) },
                           backward: { nn_bce_backward($0, $1, p.pointer, t.pointer, $2, $3) })
}

/// Binary cross-entropy on logits z, max(z, 0) - z t + log(1 + e^-|z|): stable for any z
/// (PyTorch's `F.binary_cross_entropy_with_logits`).
public func binaryCrossEntropyWithLogits(_ logits: Tensor, _ target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
    let t = target.detached(), z = logits
    return try elementLoss("binary_cross_entropy_with_logits", prediction: z, target: t, reduction: reduction,
                           forward: { nn_bce_logits_forward($0, z.pointer, t.pointer, $1) },
                           backward: { nn_bce_logits_backward($0, $1, z.pointer, t.pointer, $2, $3) })
}

/// Softmax cross-entropy from logits [N, C] and class indices [N] (PyTorch's `F.cross_entropy`),
/// computed through log-softmax so large logits stay finite.
///
/// Rows whose label equals `ignoreIndex` (padded targets; PyTorch's `ignore_index`, whose default is
/// -100) add nothing to the loss or the gradient: `.mean` divides by the number of rows not ignored,
/// `.none` gives them a loss of 0.
/// - Throws: `NeuronError.invalidArgument` for a label out of range that is not `ignoreIndex`;
///   `.emptyInput` for a mean over a batch whose every row is ignored (PyTorch returns NaN).
public func crossEntropy(_ logits: Tensor, labels: some IntegerLabels, ignoreIndex: Int? = nil, reduction: Reduction = .mean) throws -> Tensor {
    let labels = try labels.labelValues(op: "cross_entropy")
    guard logits.rank == 2, labels.count == logits.shape[0] else {
        throw NeuronError.shapeMismatch("cross_entropy: logits \(shapeString(logits.shape)) and \(labels.count) labels (expects [N, C] and N labels)")
    }
    let classes = logits.shape[1]
    if let bad = labels.first(where: { ($0 < 0 || $0 >= classes) && $0 != ignoreIndex }) {
        throw NeuronError.invalidArgument("cross_entropy: label \(bad) is out of range for \(classes) classes")
    }
    guard let ignoreIndex, labels.contains(ignoreIndex) else {
        return try softmaxCrossEntropy(logits, labels: labels.map(Int64.init), probabilities: nil, reduction: reduction)
    }
    // Ignored rows go through the kernels with label 0 and a weight of 0.
    let kept = labels.map { $0 == ignoreIndex ? Float(0) : 1 }
    let count = kept.reduce(0, +)
    if reduction == .mean && count == 0 {
        throw NeuronError.emptyInput("cross_entropy: every one of the \(labels.count) labels is the ignored index \(ignoreIndex)")
    }
    let ids = labels.map { $0 == ignoreIndex ? Int64(0) : Int64($0) }
    let perRow = try softmaxCrossEntropy(logits, labels: ids, probabilities: nil, reduction: .none) * Tensor(kept)
    switch reduction {
    case .none: return perRow
    case .sum: return perRow.sum()
    case .mean: return perRow.sum() * (1 / count)
    }
}

/// The negative log-likelihood of class indices [N] under log-probabilities [N, C] (PyTorch's
/// `F.nll_loss`): −logProbabilities[i, labels[i]], reduced as asked; after `logSoftmax(axis: 1)` it
/// equals `crossEntropy` of the logits.
/// - Throws: `NeuronError.shapeMismatch` unless the input is [N, C] with N labels;
///   `.invalidArgument` for a label outside 0..<C; `.emptyInput` for a mean over no rows.
public func nllLoss(_ logProbabilities: Tensor, labels: some IntegerLabels, reduction: Reduction = .mean) throws -> Tensor {
    let labels = try labels.labelValues(op: "nll_loss")
    guard logProbabilities.rank == 2, labels.count == logProbabilities.shape[0] else {
        throw NeuronError.shapeMismatch("nll_loss: input \(shapeString(logProbabilities.shape)) and \(labels.count) labels (expects [N, C] and N labels)")
    }
    let classes = logProbabilities.shape[1]
    if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
        throw NeuronError.invalidArgument("nll_loss: label \(bad) is out of range for \(classes) classes")
    }
    if reduction == .mean && labels.isEmpty { throw NeuronError.emptyInput("nll_loss: mean over an empty batch") }
    let picked = try (logProbabilities * oneHot(labels, classes: classes)).sum(axis: 1)
    switch reduction {
    case .none: return picked * -1
    case .sum: return picked.sum() * -1
    case .mean: return picked.sum() * (-1 / Float(labels.count))
    }
}

/// Softmax cross-entropy from logits [N, C] and target distributions [N, C] (one-hot or soft labels).
public func crossEntropy(_ logits: Tensor, targets: Tensor, reduction: Reduction = .mean) throws -> Tensor {
    guard logits.rank == 2, targets.shape == logits.shape else {
        throw NeuronError.shapeMismatch("cross_entropy: logits \(shapeString(logits.shape)) and targets \(shapeString(targets.shape)) (expects both [N, C])")
    }
    return try softmaxCrossEntropy(logits, labels: nil, probabilities: targets.detached(), reduction: reduction)
}

private func softmaxCrossEntropy(_ logits: Tensor, labels: [Int64]?, probabilities: Tensor?, reduction: Reduction) throws -> Tensor {
    let rows = logits.shape[0], classes = logits.shape[1]
    guard rows > 0 || reduction != .mean else { throw NeuronError.emptyInput("cross_entropy: mean over an empty batch, logits \(shapeString(logits.shape))") }
    guard classes > 0 || rows == 0 else { throw NeuronError.emptyInput("cross_entropy needs at least one class, logits \(shapeString(logits.shape))") }
    let perRow = Tensor(uninitializedShape: [rows])
    let logp = Tensor(uninitializedShape: logits.shape)
    nn_cross_entropy_forward(perRow.pointer, logp.pointer, logits.pointer, labels, probabilities?.pointer, rows, classes)
    let (out, scale) = try reduced(perRow, reduction, "cross_entropy")
    return out.recorded("cross_entropy", inputs: [logits]) { g in
        let dz = Tensor(uninitializedShape: logits.shape)
        let perRowGrad = reduction == .none ? UnsafePointer(g.pointer) : nil
        let s = reduction == .none ? 1 : scale * g.pointer[0]
        nn_cross_entropy_backward(dz.pointer, perRowGrad, logp.pointer, labels, probabilities?.pointer, s, rows, classes)
        return [dz]
    }
}

/// λ Σ|w| over the given parameters (L1 regularisation), differentiable; add it to the loss.
public func l1Penalty(_ parameters: [Parameter], lambda: Float) throws -> Tensor {
    try parameters.reduce(Tensor(0)) { try $0 + $1.value.abs().sum() } * lambda
}

/// λ Σw² over the given parameters (L2 regularisation; PyTorch users often write it by hand or use
/// weight decay, which equals the gradient of (λ/2)Σw²).
public func l2Penalty(_ parameters: [Parameter], lambda: Float) throws -> Tensor {
    try parameters.reduce(Tensor(0)) { try $0 + $1.value.squared().sum() } * lambda
}
