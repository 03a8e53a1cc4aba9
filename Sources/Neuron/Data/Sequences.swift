import CKernels

// Variable-length sequences for recurrent layers: padding a batch (PyTorch's pad_sequence), the lengths
// the layers take, per-step labels padded with an index the loss ignores, masks, and a loader that pads
// each minibatch.
//
//     var loader = try SequenceLoader(sequences: sentences, targets: tags, batchSize: 32)
//     for batch in loader.epoch() {
//         let (out, _) = try gru(batch.x, lengths: batch.lengths)                 // [T, N, H], 0 at padding
//         let logits = try head(out.reshaped([-1, hidden]))                       // [T·N, classes]
//         let labels = try padLabels(batch.y, steps: batch.x.shape[0])            // -100 at padding
//         let loss = try crossEntropy(logits, labels: labels, ignoreIndex: -100)  // mean over real steps
//     }

/// Pads sequences [T_i, ...] (equal trailing shapes) with `paddingValue` into one tensor [T_max, N, ...]
/// (time-major, the recurrent layers' default) or [N, T_max, ...] with `batchFirst`, and returns each
/// sequence's length (PyTorch's `pad_sequence` plus the lengths `pack_padded_sequence` wants).
/// Differentiable: each sequence gets the gradient of its own steps.
/// - Throws: `NeuronError.emptyInput` for no sequences; `.shapeMismatch` for a rank-0 tensor or
///   differing trailing shapes.
public func padSequences(_ sequences: [Tensor], batchFirst: Bool = false, paddingValue: Float = 0) throws -> (padded: Tensor, lengths: [Int]) {
    guard let first = sequences.first else { throw NeuronError.emptyInput("padSequences needs at least one sequence") }
    guard first.rank >= 1 else { throw NeuronError.shapeMismatch("padSequences: a sequence must have a time axis, got shape []") }
    let trailing = Array(first.shape.dropFirst())
    for s in sequences where s.rank != first.rank || Array(s.shape.dropFirst()) != trailing {
        throw NeuronError.shapeMismatch("padSequences: sequences \(shapeString(first.shape)) and \(shapeString(s.shape)) differ after the time axis")
    }
    let lengths = sequences.map { $0.shape[0] }
    let steps = lengths.max()!, n = sequences.count, row = trailing.reduce(1, *)
    let out = Tensor(repeating: paddingValue, shape: (batchFirst ? [n, steps] : [steps, n]) + trailing)
    // Row (t, i) of the padded tensor starts at `offset(t, i)`.
    func offset(_ t: Int, _ i: Int) -> Int { (batchFirst ? i * steps + t : t * n + i) * row }
    for (i, s) in sequences.enumerated() {
        for t in 0..<lengths[i] { (out.pointer + offset(t, i)).update(from: s.pointer + t * row, count: row) }
    }
    let padded = out.recorded("pad_sequences", inputs: sequences) { g in
        sequences.indices.map { i in
            let d = Tensor(uninitializedShape: sequences[i].shape)
            for t in 0..<lengths[i] { (d.pointer + t * row).update(from: g.pointer + offset(t, i), count: row) }
            return d
        }
    }
    return (padded, lengths)
}

/// Per-step labels of sequences of different lengths, padded with `padding` and flattened in the row
/// order of a padded recurrent output reshaped to [T·N, ...] (time-major: row t·N + n; batch-first:
/// n·T + t), ready for `crossEntropy(_:labels:ignoreIndex:)` with `ignoreIndex: padding`.
/// - Parameters:
///   - sequences: N label sequences, each as long as its input sequence.
///   - steps: T, at least the longest sequence (defaults to it).
///   - batchFirst: rows in batch-first order (n·T + t) instead of time-major (t·N + n).
///   - padding: the label of padded steps; -100 is PyTorch's default `ignore_index`.
/// - Returns: T·N labels.
/// - Throws: `NeuronError.invalidArgument` when `steps` is shorter than a sequence.
public func padLabels(_ sequences: [[Int]], steps: Int? = nil, batchFirst: Bool = false, padding: Int = -100) throws -> [Int] {
    let longest = sequences.map(\.count).max() ?? 0
    let t = steps ?? longest
    guard t >= longest else {
        throw NeuronError.invalidArgument("padLabels: \(t) steps is shorter than the longest sequence (\(longest))")
    }
    let n = sequences.count
    var out = [Int](repeating: padding, count: t * n)
    for (i, s) in sequences.enumerated() {
        for (step, label) in s.enumerated() { out[batchFirst ? i * t + step : step * n + i] = label }
    }
    return out
}

/// 1 at the valid steps and 0 at the padded ones: [T, N] (time-major) or [N, T] (`batchFirst`), for
/// masking per-step losses or outputs.
/// - Parameters:
///   - lengths: the N sequences' lengths.
///   - steps: T, at least the longest length (defaults to it).
///   - batchFirst: a mask [N, T] instead of [T, N].
/// - Throws: `NeuronError.invalidArgument` for a negative length or a `steps` shorter than a length.
public func sequenceMask(lengths: [Int], steps: Int? = nil, batchFirst: Bool = false) throws -> Tensor {
    if let bad = lengths.first(where: { $0 < 0 }) { throw NeuronError.invalidArgument("sequenceMask: negative length \(bad)") }
    let longest = lengths.max() ?? 0
    let t = steps ?? longest
    guard t >= longest else {
        throw NeuronError.invalidArgument("sequenceMask: \(t) steps is shorter than the longest length (\(longest))")
    }
    let n = lengths.count
    let mask = Tensor.zeros(batchFirst ? [n, t] : [t, n])
    for (i, len) in lengths.enumerated() {
        for step in 0..<len { mask.pointer[batchFirst ? i * t + step : step * n + i] = 1 }
    }
    return mask
}

/// One minibatch of a `SequenceLoader`: the padded sequences, their lengths, their targets, and which
/// samples they are.
public struct SequenceBatch<Target: Batchable> {
    /// [T_max, N, ...] (or [N, T_max, ...] when the loader is batch-first), T_max this batch's longest.
    public let x: Tensor
    /// Each sequence's length, in the batch's order; steps past it are `paddingValue`.
    public let lengths: [Int]
    /// The batch's targets, in the same order.
    public let y: Target
    /// The samples' indices in the loader's `sequences`.
    public let indices: [Int]
}

/// Minibatches of variable-length sequences [T_i, ...] with their targets (one label each, per-step
/// labels `[[Int]]`, or a tensor [N, ...]), each batch padded to its own longest sequence and returned
/// with the lengths the recurrent layers take. Shuffling, `dropLast`, the seeded generator and exact
/// resumes work as in `DataLoader`, whose order this loader uses.
public struct SequenceLoader<Target: Batchable> {
    /// The N sequences [T_i, ...], differing only in length.
    public let sequences: [Tensor]
    /// The N targets.
    public let targets: Target
    /// Whether batches are [N, T_max, ...] instead of time-major [T_max, N, ...].
    public let batchFirst: Bool
    /// The value of padded steps.
    public let paddingValue: Float
    /// Draws the sample order: a `DataLoader` over the sample indices.
    var order: DataLoader<[Int]>

    /// - Parameters:
    ///   - sequences: N sequences [T_i, ...] whose trailing shapes agree, each at least one step long.
    ///   - targets: N targets: labels, per-step labels `[[Int]]`, or a tensor [N, ...].
    ///   - batchSize: the sequences per batch.
    ///   - shuffle: draw a new order every epoch.
    ///   - dropLast: leave out a last batch smaller than `batchSize`.
    ///   - batchFirst: batches [N, T_max, ...] instead of [T_max, N, ...].
    ///   - paddingValue: the value of the padded steps.
    ///   - generator: draws the orders; defaults to one seeded from `Random`'s default generator.
    /// - Throws: `NeuronError.emptyInput` for no sequences; `.shapeMismatch` when the sequences' trailing
    ///   shapes differ or the targets' count differs; `.invalidArgument` for an empty sequence (the
    ///   recurrent layers need at least one step) and for the batch options `DataLoader` rejects.
    public init(sequences: [Tensor], targets: Target, batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
                batchFirst: Bool = false, paddingValue: Float = 0,
                generator: RandomGenerator = RandomGenerator(seed: Random.using { $0.next() })) throws {
        guard let first = sequences.first else { throw NeuronError.emptyInput("SequenceLoader: no sequences") }
        for (i, s) in sequences.enumerated() {
            guard s.rank >= 1, s.rank == first.rank, s.shape.dropFirst() == first.shape.dropFirst() else {
                throw NeuronError.shapeMismatch("SequenceLoader: sequence \(i) has shape \(shapeString(s.shape)), sequence 0 \(shapeString(first.shape)); they must differ only in the time axis")
            }
            guard s.shape[0] >= 1 else { throw NeuronError.invalidArgument("SequenceLoader: sequence \(i) is empty") }
        }
        let count = try targets.sampleCount()
        guard count == sequences.count else {
            throw NeuronError.shapeMismatch("SequenceLoader: \(sequences.count) sequences but \(count) targets")
        }
        self.sequences = sequences
        self.targets = targets
        self.batchFirst = batchFirst
        self.paddingValue = paddingValue
        order = try DataLoader(x: Tensor.zeros([sequences.count, 0]), y: Array(sequences.indices), batchSize: batchSize,
                               shuffle: shuffle, dropLast: dropLast, generator: generator)
    }

    /// Draws each epoch's order; its `state` is what a checkpoint saves.
    public var generator: RandomGenerator {
        get { order.generator }
        set { order.generator = newValue }
    }

    /// The number of batches in each epoch.
    public var batchCount: Int { order.batchCount }

    /// The next epoch's batches, padded when read.
    public mutating func epoch() -> Epoch { Epoch(loader: self, indices: order.epoch()) }

    /// One epoch's batches, each padded when it is read.
    public struct Epoch: RandomAccessCollection {
        let loader: SequenceLoader
        let indices: DataLoader<[Int]>.Epoch
        /// The first batch's position, 0.
        public var startIndex: Int { indices.startIndex }
        /// The number of batches.
        public var endIndex: Int { indices.endIndex }

        /// Batch `position`, its sequences padded to the batch's longest.
        public subscript(position: Int) -> SequenceBatch<Target> {
            let rows = indices[position].y
            // Validated at init: equal trailing shapes and counts, so neither call can fail.
            let (x, lengths) = try! padSequences(rows.map { loader.sequences[$0] }, batchFirst: loader.batchFirst,
                                                 paddingValue: loader.paddingValue)
            return SequenceBatch(x: x, lengths: lengths, y: try! loader.targets.gathering(rows), indices: rows)
        }
    }
}
