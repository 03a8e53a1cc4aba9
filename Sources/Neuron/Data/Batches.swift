/// Data that a `DataLoader` can cut into minibatches: a set of samples indexed along its first axis
/// (tensors, label arrays, integer tensors).
public protocol Batchable {
    /// The number of samples.
    /// - Throws: when the value has no sample axis (a rank-0 tensor).
    func sampleCount() throws -> Int
    /// The samples at `indices`, in that order.
    /// - Throws: `NeuronError.invalidArgument` for an index outside 0..<sampleCount.
    func gathering(_ indices: [Int]) throws -> Self
}

extension Tensor: Batchable {
    /// N, the size of the first axis of [N, ...].
    /// - Throws: `NeuronError.shapeMismatch` for a rank-0 tensor.
    public func sampleCount() throws -> Int {
        guard let n = shape.first else { throw NeuronError.shapeMismatch("a rank-0 tensor has no sample axis") }
        return n
    }

    /// The rows at `indices` [indices.count, ...], as `rows(at:)`.
    /// - Throws: `NeuronError.invalidArgument` for an index outside 0..<N.
    public func gathering(_ indices: [Int]) throws -> Tensor { try rows(at: indices) }
}

/// An array is a batchable set of samples, one element per sample (class labels `[Int]`, token
/// sequences `[[Int]]`).
extension Array: Batchable {
    /// The number of elements.
    public func sampleCount() throws -> Int { count }

    /// The elements at `indices`, in that order.
    /// - Throws: `NeuronError.invalidArgument` for an index outside the array.
    public func gathering(_ indices: [Int]) throws -> [Element] {
        if let bad = indices.first(where: { !self.indices.contains($0) }) {
            throw NeuronError.invalidArgument("index \(bad) out of range for \(count) samples")
        }
        return indices.map { self[$0] }
    }
}

extension IntTensor: Batchable {
    /// N, the size of the first axis of [N, ...].
    /// - Throws: `NeuronError.shapeMismatch` for a rank-0 integer tensor.
    public func sampleCount() throws -> Int {
        guard let n = shape.first else { throw NeuronError.shapeMismatch("a rank-0 integer tensor has no sample axis") }
        return n
    }

    /// The rows at `indices` [indices.count, ...].
    /// - Throws: `NeuronError.invalidArgument` for an index outside 0..<N.
    public func gathering(_ indices: [Int]) throws -> IntTensor {
        let n = try sampleCount()
        if let bad = indices.first(where: { $0 < 0 || $0 >= n }) {
            throw NeuronError.invalidArgument("row index \(bad) out of range for shape \(shapeString(shape))")
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        var gathered = [Int64]()
        gathered.reserveCapacity(indices.count * rowSize)
        for r in indices { gathered += scalars[(r * rowSize)..<((r + 1) * rowSize)] }
        return try IntTensor(shape: [indices.count] + shape.dropFirst(), scalars: gathered)
    }
}

/// Minibatches of samples `x` [N, ...] with their targets `y` (N labels, or a tensor [N, ...]), reshuffled
/// every epoch from a seeded generator (PyTorch's `DataLoader(dataset, batch_size, shuffle, drop_last,
/// generator)`).
///
/// Each call to `epoch()` draws that epoch's order (when shuffling) and returns the epoch's batches as a
/// collection that gathers each batch (`x.rows(at:)`) only when it is read, so the data is never copied
/// whole. The last batch is smaller when `batchSize` does not divide N, unless `dropLast` drops it.
///
/// The same seed gives the same order. For an exact resume, checkpoint `generator` as it was before the
/// current epoch's `epoch()` call together with the number of batches done; to resume, restore it, call
/// `epoch()` and skip those batches (`epoch().dropFirst(done)`, which gathers nothing).
public struct DataLoader<Target: Batchable> {
    /// The samples [N, ...].
    public let x: Tensor
    /// The N targets.
    public let y: Target
    /// The samples per batch.
    public let batchSize: Int
    /// Whether each epoch visits the samples in a new random order.
    public let shuffle: Bool
    /// Whether a last batch smaller than `batchSize` is left out.
    public let dropLast: Bool
    /// Draws each epoch's order; its `state` is what a checkpoint saves.
    public var generator: RandomGenerator
    /// The number of samples N.
    public let sampleCount: Int

    /// - Parameters:
    ///   - x: the samples [N, ...]; a batch is their rows [B, ...].
    ///   - y: the N targets: class labels, an `IntTensor` or a `Tensor` with N rows.
    ///   - batchSize: B, the samples per batch (the last batch may hold fewer).
    ///   - shuffle: draw a new order every epoch (PyTorch's `shuffle=True`); otherwise 0..<N.
    ///   - dropLast: leave out the last batch when it holds fewer than `batchSize` samples.
    ///   - generator: defaults to one seeded from `Random`'s default generator, so
    ///   `Random.seed(_:)` makes the order reproducible.
    /// - Throws: `NeuronError.shapeMismatch` when `x` and `y` hold different numbers of samples (or `x`
    ///   is rank 0); `.emptyInput` when there are none; `.invalidArgument` for `batchSize` < 1, or
    ///   `dropLast` with fewer samples than one batch.
    public init(x: Tensor, y: Target, batchSize: Int, shuffle: Bool = true, dropLast: Bool = false,
                generator: RandomGenerator = RandomGenerator(seed: Random.using { $0.next() })) throws {
        let n = try x.sampleCount()
        let targets = try y.sampleCount()
        guard n == targets else {
            throw NeuronError.shapeMismatch("DataLoader: x \(shapeString(x.shape)) has \(n) samples but y has \(targets)")
        }
        guard n > 0 else { throw NeuronError.emptyInput("DataLoader: x \(shapeString(x.shape)) has no samples") }
        guard batchSize >= 1 else { throw NeuronError.invalidArgument("DataLoader: batchSize must be at least 1, got \(batchSize)") }
        guard !dropLast || batchSize <= n else {
            throw NeuronError.invalidArgument("DataLoader: dropLast with batchSize \(batchSize) and only \(n) samples leaves no batch")
        }
        self.x = x
        self.y = y
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.generator = generator
        self.sampleCount = n
    }

    /// The number of batches in each epoch.
    public var batchCount: Int { dropLast ? sampleCount / batchSize : (sampleCount + batchSize - 1) / batchSize }

    /// The next epoch's batches; draws a new order from `generator` when shuffling.
    public mutating func epoch() -> Epoch {
        Epoch(loader: self, order: shuffle ? shuffledIndices(sampleCount, using: &generator) : Array(0..<sampleCount))
    }

    /// One epoch's batches, gathered when read. Batch i holds the samples `order[i * batchSize ..<
    /// (i + 1) * batchSize]` (clipped to N).
    public struct Epoch: RandomAccessCollection {
        let x: Tensor
        let y: Target
        let batchSize: Int
        /// The order in which this epoch visits the samples.
        public let order: [Int]
        /// The first batch's position, 0.
        public let startIndex = 0
        /// The number of batches (`DataLoader.batchCount`).
        public let endIndex: Int

        init(loader: DataLoader, order: [Int]) {
            x = loader.x
            y = loader.y
            batchSize = loader.batchSize
            self.order = order
            endIndex = loader.batchCount
        }

        /// The sample indices of batch `position`.
        public func sampleIndices(ofBatch position: Int) -> ArraySlice<Int> {
            precondition(position >= startIndex && position < endIndex, "batch \(position) out of range 0..<\(endIndex)")
            return order[(position * batchSize)..<Swift.min((position + 1) * batchSize, order.count)]
        }

        /// Batch `position` as (x [B, …], y [B, …]), B = the batch size (smaller for a partial last batch), gathered in the epoch's sample order.
        public subscript(position: Int) -> (x: Tensor, y: Target) {
            gather(Array(sampleIndices(ofBatch: position)))
        }

        /// The sample indices that replica `rank` of `replicas` trains on in batch `position`, for data
        /// parallel training: the batch (a global batch) is cut into `replicas` contiguous parts whose
        /// sizes differ by at most one, in rank order. Every replica draws the same order from the same
        /// seed, so the parts never overlap and together are exactly the batch. A part may be empty when
        /// the batch has fewer samples than there are replicas.
        public func sampleIndices(ofBatch position: Int, rank: Int, of replicas: Int) -> ArraySlice<Int> {
            precondition(replicas >= 1 && (0..<replicas).contains(rank), "rank \(rank) out of range 0..<\(replicas)")
            let batch = sampleIndices(ofBatch: position)
            let part = shareRange(of: batch.count, part: rank, parts: replicas)
            return batch[(batch.startIndex + part.lowerBound)..<(batch.startIndex + part.upperBound)]
        }

        /// Replica `rank`'s part of batch `position` (`sampleIndices(ofBatch:rank:of:)`), gathered.
        public func shard(_ position: Int, rank: Int, of replicas: Int) -> (x: Tensor, y: Target) {
            gather(Array(sampleIndices(ofBatch: position, rank: rank, of: replicas)))
        }

        private func gather(_ rows: [Int]) -> (x: Tensor, y: Target) {
            // The loader checked that x and y hold `order.count` samples, and `order` is a permutation
            // of 0..<order.count, so gathering cannot fail.
            (try! x.gathering(rows), try! y.gathering(rows))
        }
    }
}
