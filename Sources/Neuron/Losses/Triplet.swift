// Triplet losses for learning embeddings (FaceNet, Schroff, Kalenichenko and Philbin 2015): an anchor
// should lie closer to a positive (same identity) than to a negative (another identity) by a margin.

/// Checks the three embedding batches of a triplet loss and the margin.
private func checkTriplets(_ name: String, _ a: Tensor, _ p: Tensor, _ n: Tensor, margin: Float, reduction: Reduction) throws {
    guard a.rank == 2, p.shape == a.shape, n.shape == a.shape else {
        throw NeuronError.shapeMismatch("\(name): anchor \(shapeString(a.shape)), positive \(shapeString(p.shape)) and negative \(shapeString(n.shape)) must all be [N, D]")
    }
    try checkMargin(name, margin)
    if reduction == .mean, a.shape[0] == 0 { throw NeuronError.emptyInput("\(name): mean over an empty batch, anchor \(shapeString(a.shape))") }
}

private func checkMargin(_ name: String, _ margin: Float) throws {
    guard margin >= 0 else { throw NeuronError.invalidArgument("\(name): margin must be >= 0, got \(margin)") }
}

/// Reduces per-triplet hinge values [N] and refuses a non-finite result.
private func reduceHinges(_ hinges: Tensor, _ reduction: Reduction, _ name: String) throws -> Tensor {
    let loss: Tensor
    switch reduction {
    case .none: loss = hinges
    case .sum: loss = hinges.sum()
    case .mean: loss = try hinges.mean()
    }
    try checkFinite(loss, name)
    return loss
}

/// The triplet margin loss of PyTorch's `nn.TripletMarginLoss(margin, p=2, eps, swap=False)`:
/// max(d(a, p) − d(a, n) + margin, 0) per row, with d(x, y) = ‖x − y + eps‖₂ (PyTorch adds eps to the
/// difference, so d(x, x) = eps·√D and the gradient stays finite).
/// - Parameters: `anchor`, `positive`, `negative` are `[N, D]` embeddings; `margin` >= 0.
/// - Returns: the mean (default), the sum, or the `[N]` per-row values.
/// - Throws: `NeuronError.shapeMismatch` when the batches are not three `[N, D]` of one shape;
///   `NeuronError.invalidArgument` for a negative margin; `NeuronError.emptyInput` for the mean over N = 0 (the sum is 0).
public func tripletMarginLoss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: Float = 1, eps: Float = 1e-6,
                              reduction: Reduction = .mean) throws -> Tensor {
    try checkTriplets("triplet_margin_loss", anchor, positive, negative, margin: margin, reduction: reduction)
    func distance(_ x: Tensor, _ y: Tensor) throws -> Tensor { try ((x - y) + eps).squared().sum(axis: 1).sqrt() }
    let hinges = try (distance(anchor, positive) - distance(anchor, negative) + margin).relu()
    return try reduceHinges(hinges, reduction, "triplet_margin_loss")
}

/// The triplet loss on squared distances, max(‖a − p‖² − ‖a − n‖² + margin, 0) per row (FaceNet's form;
/// deeplearning.ai's `triplet_loss` with α = 0.2 sums it, here the default reduction is the mean).
/// - Parameters: `anchor`, `positive`, `negative` are `[N, D]` embeddings; `margin` (α) >= 0.
/// - Throws: as `tripletMarginLoss`.
public func tripletLoss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: Float = 0.2,
                        reduction: Reduction = .mean) throws -> Tensor {
    try checkTriplets("triplet_loss", anchor, positive, negative, margin: margin, reduction: reduction)
    let ap = try (anchor - positive).squared().sum(axis: 1), an = try (anchor - negative).squared().sum(axis: 1)
    return try reduceHinges(try (ap - an + margin).relu(), reduction, "triplet_loss")
}

/// Squared Euclidean distances between the rows of x `[N, D]`: `[N, N]`, ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j
/// clamped at 0 (PyTorch: `torch.cdist(x, x) ** 2`). Differentiable.
public func pairwiseSquaredDistances(_ x: Tensor) throws -> Tensor {
    guard x.rank == 2 else { throw NeuronError.shapeMismatch("pairwiseSquaredDistances expects [N, D], got \(shapeString(x.shape))") }
    let norms = try x.squared().sum(axis: 1, keepingDims: true)
    return try (norms + norms.transposed() - 2 * x.matmul(x.transposed())).clamped(min: 0)
}

/// How a batch of labelled embeddings is turned into triplets: random triplets are mostly too easy to
/// teach anything, so the informative ones are chosen from the batch's own distances.
public enum TripletMining: String, Sendable, CaseIterable {
    /// Every valid triplet (a ≠ p with a's label, n with another), averaged over those whose hinge is still
    /// positive (Hermans, Beyer and Leibe 2017, "batch all").
    case all
    /// For each anchor, its farthest positive and nearest negative, averaged over the anchors that have
    /// both ("batch hard", ibid.).
    case batchHard
    /// For each anchor-positive pair, the nearest negative farther than the positive, which lies within the
    /// margin when any does (FaceNet's semi-hard negatives); when no negative is farther, the farthest
    /// negative, as TensorFlow Addons' `TripletSemiHardLoss` does. Averaged over all anchor-positive pairs.
    case semiHard
}

/// One triplet as row indices into a batch.
public struct Triplet: Equatable, Hashable, Sendable {
    /// Rows of the batch: the anchor, a sample with the anchor's label, and one with another label.
    public var anchor: Int, positive: Int, negative: Int
    /// A triplet of the rows `anchor`, `positive` (same label) and `negative` (another label).
    public init(anchor: Int, positive: Int, negative: Int) {
        self.anchor = anchor
        self.positive = positive
        self.negative = negative
    }
}

/// The triplets `mining` picks from a batch with squared distances `distances` `[N, N]` and `labels` [N]
/// (for `.all`, only those with max(d_ap − d_an + margin, 0) > 0). Ties go to the lowest index.
/// - Throws: `NeuronError.shapeMismatch` when the distances are not `[N, N]` for N labels;
///   `NeuronError.invalidArgument` for a negative margin.
public func mineTriplets(distances: Tensor, labels: some IntegerLabels, margin: Float, mining: TripletMining) throws -> [Triplet] {
    let labels = try labels.labelValues(op: "mineTriplets")
    let n = labels.count
    guard distances.shape == [n, n] else {
        throw NeuronError.shapeMismatch("mineTriplets: distances \(shapeString(distances.shape)) for \(n) labels (expects [\(n), \(n)])")
    }
    try checkMargin("mineTriplets", margin)
    let d = distances.scalars
    func dist(_ i: Int, _ j: Int) -> Float { d[i * n + j] }
    var triplets: [Triplet] = []
    for a in 0..<n {
        let positives = (0..<n).filter { $0 != a && labels[$0] == labels[a] }
        let negatives = (0..<n).filter { labels[$0] != labels[a] }
        guard !positives.isEmpty, !negatives.isEmpty else { continue }
        switch mining {
        case .all:
            for p in positives {
                for q in negatives where dist(a, p) - dist(a, q) + margin > 0 {
                    triplets.append(Triplet(anchor: a, positive: p, negative: q))
                }
            }
        case .batchHard:
            let p = positives.max { dist(a, $0) < dist(a, $1) }!
            let q = negatives.min { dist(a, $0) < dist(a, $1) }!
            triplets.append(Triplet(anchor: a, positive: p, negative: q))
        case .semiHard:
            for p in positives {
                let farther = negatives.filter { dist(a, $0) > dist(a, p) }
                let q = farther.min { dist(a, $0) < dist(a, $1) } ?? negatives.max { dist(a, $0) < dist(a, $1) }!
                triplets.append(Triplet(anchor: a, positive: p, negative: q))
            }
        }
    }
    return triplets
}

/// The squared-distance triplet loss over the triplets `mining` picks from a batch of embeddings `[N, D]`
/// with identity `labels` [N]: the mean of max(d_ap − d_an + margin, 0) over the mined triplets, computed
/// from the differentiable pairwise distances. A batch without any (one identity, or `.all` with every
/// triplet satisfied) gives 0, still connected to the embeddings so `backward()` works.
/// - Throws: `NeuronError.shapeMismatch` when embeddings are not `[N, D]` with N labels;
///   `NeuronError.invalidArgument` for a negative margin.
public func tripletLoss(embeddings: Tensor, labels: some IntegerLabels, margin: Float = 0.2, mining: TripletMining) throws -> Tensor {
    let labels = try labels.labelValues(op: "triplet_loss")
    guard embeddings.rank == 2, embeddings.shape[0] == labels.count else {
        throw NeuronError.shapeMismatch("triplet_loss: embeddings \(shapeString(embeddings.shape)) with \(labels.count) labels (expects [N, D] and N labels)")
    }
    try checkMargin("triplet_loss", margin)
    let n = labels.count
    let distances = try pairwiseSquaredDistances(embeddings)
    let triplets = try mineTriplets(distances: distances.detached(), labels: labels, margin: margin, mining: mining)
    guard !triplets.isEmpty else { return embeddings.sum() * 0 }
    let flat = try distances.reshaped([n * n])
    let ap = try flat.rows(at: triplets.map { $0.anchor * n + $0.positive })
    let an = try flat.rows(at: triplets.map { $0.anchor * n + $0.negative })
    return try reduceHinges(try (ap - an + margin).relu(), .mean, "triplet_loss")
}
