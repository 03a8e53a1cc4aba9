import CKernels
import Foundation
import Neuron

/// Data-parallel training over MPI, in the manner of PyTorch's `DistributedDataParallel`: one replica
/// of the model per process; `Trainer` uses it as its `reducer` (`trainer.reducer = try DataParallel()`).
///
/// - At the start (`synchronize`) the ranks compare a hash of their models' parameter and buffer names
///   and shapes, and every rank stops with `NeuronError.communication` when they differ; then rank 0's
///   parameters and buffers are broadcast, so the replicas start identical whatever their seeds.
/// - After backward the gradients are all-reduced in buckets: each bucket is one contiguous float
///   buffer holding many parameters' gradients (at most `bucketCapacity` floats, PyTorch's 25 MB by
///   default, and one parameter larger than that on its own), so a model costs a few MPI calls, not one
///   per tensor. Each rank scales its gradients by its share of the global batch before the sum, so the
///   result is the global batch's mean gradient, bit-identical on every rank; the optimiser steps that
///   follow are then identical too.
/// - Buffers (batch-norm running statistics) follow rank 0: each rank updates its own from its shard
///   and `broadcastBuffers` copies rank 0's over them after every step (PyTorch's
///   `broadcast_buffers=True`); batch statistics themselves are per shard (no synchronised batch norm).
///
/// Communication does not overlap backward (PyTorch starts a bucket's all-reduce as soon as its
/// gradients are ready); on one machine with shared memory the reduction is a small part of a step.
public final class DataParallel: GradientReducer {
    public let communicator: Communicator
    /// The most floats one bucket holds.
    public let bucketCapacity: Int
    public var rank: Int { communicator.rank }
    public var replicaCount: Int { communicator.size }

    /// The bucket layout for the last parameter list reduced, and its buffers.
    private var plan: BucketPlan?

    /// - Parameters:
    ///   - communicator: the ranks to train on (default: every process of the job).
    ///   - bucketCapacity: floats per bucket (default 6,553,600: PyTorch's `bucket_cap_mb=25`).
    /// - Throws: `NeuronError.invalidArgument` for a capacity below 1; `.communication` when MPI cannot start.
    public init(communicator: Communicator? = nil, bucketCapacity: Int = 25 * 1024 * 1024 / 4) throws {
        guard bucketCapacity >= 1 else {
            throw NeuronError.invalidArgument("DataParallel: bucketCapacity must be at least 1 float, got \(bucketCapacity)")
        }
        self.communicator = try communicator ?? Communicator.world()
        self.bucketCapacity = bucketCapacity
    }

    // MARK: Start

    public func synchronize(_ model: any Module) throws {
        try checkSameStructure(model)
        let parameters = uniqueParameters(model.parameters)
        try forEachBucket(of: parameters.map(\.count)) { range, buffer in
            var offset = 0
            for p in parameters[range] {
                p.withValue { value in
                    value.withUnsafeBufferPointer { src in
                        _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + src.count)]).initialize(from: src)
                    }
                }
                offset += p.count
            }
            try communicator.broadcast(buffer, root: 0)
            offset = 0
            for p in parameters[range] {
                p.update { dst in _ = dst.update(fromContentsOf: buffer[offset..<(offset + dst.count)]) }
                offset += p.count
            }
        }
        try broadcastBuffers(of: model)
    }

    /// The structure every rank must share: each parameter's and buffer's name, shape and kind.
    static func structureDescription(_ model: any Module) -> String {
        var lines = model.namedParameters.map { "parameter \($0.name) \($0.parameter.shape) trains=\($0.parameter.requiresGrad)" }
        for (name, buffer) in model.namedBuffers {
            switch buffer.value {
            case .float(let t): lines.append("buffer \(name) \(t.shape) float")
            case .int(let t): lines.append("buffer \(name) \(t.shape) int")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Compares a hash of the names and shapes across ranks; throws on every rank when they differ.
    private func checkSameStructure(_ model: any Module) throws {
        let description = Self.structureDescription(model)
        let scalars = model.parameters.reduce(0) { $0 + $1.count }
        let mine: [UInt64] = [fnv1a(description), UInt64(model.namedParameters.count), UInt64(model.namedBuffers.count), UInt64(scalars)]
        let all = try communicator.allGather(mine)
        let ranks = stride(from: 0, to: all.count, by: 4).map { Array(all[$0..<($0 + 4)]) }
        guard ranks.contains(where: { $0[0] != ranks[0][0] }) else { return }
        let lines = ranks.enumerated().map { r, v in
            "rank \(r): \(v[1]) parameters, \(v[2]) buffers, \(v[3]) trainable scalars (structure hash \(String(v[0], radix: 16)))"
        }
        throw NeuronError.communication(
            "the ranks built different models (parameter and buffer names and shapes differ); this is rank \(rank). "
            + lines.joined(separator: "; ") + ". Every rank must build the same model.")
    }

    // MARK: Every step

    public func reduceGradients(_ parameters: [Parameter], weight: Float) throws {
        guard weight.isFinite, weight >= 0 else {
            throw NeuronError.invalidArgument("reduceGradients: weight must be finite and non-negative, got \(weight)")
        }
        let trainable = uniqueParameters(parameters).filter(\.requiresGrad)
        let ids = trainable.map(ObjectIdentifier.init)
        if plan?.ids != ids { plan = BucketPlan(ids: ids, counts: trainable.map(\.count), capacity: bucketCapacity) }
        guard let plan else { return }
        for (b, bucket) in plan.buckets.enumerated() {
            try plan.storage[b].withUnsafeMutableBufferPointer { buffer in
                // Gradients first, then one "has a gradient" count per parameter, summed with them.
                var offset = 0
                let flags = bucket.range.count
                let flagStart = buffer.count - flags
                for (k, p) in trainable[bucket.range].enumerated() {
                    let slice = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + p.count)])
                    if let grad = p.grad {
                        grad.withUnsafeBufferPointer { g in
                            if p.count > 0 { nn_affine(slice.baseAddress!, g.baseAddress!, weight, -0.0, p.count) }
                        }
                        buffer[flagStart + k] = 1
                    } else {
                        slice.update(repeating: 0)
                        buffer[flagStart + k] = 0
                    }
                    offset += p.count
                }
                try communicator.allReduce(buffer, .sum)
                offset = 0
                for (k, p) in trainable[bucket.range].enumerated() {
                    defer { offset += p.count }
                    guard buffer[flagStart + k] > 0 else {
                        p.zeroGrad()
                        continue
                    }
                    let reduced = buffer[offset..<(offset + p.count)]
                    if p.grad == nil { p.grad = Tensor.zeros(p.shape) }
                    p.updateGrad { g in _ = g.update(fromContentsOf: reduced) }
                }
            }
        }
    }

    public func broadcastBuffers(of model: any Module) throws {
        guard replicaCount > 1 else { return }
        let buffers = model.namedBuffers.map(\.buffer)
        guard !buffers.isEmpty else { return }
        var floats: [Float] = []
        var integers: [Int64] = []
        for buffer in buffers {
            switch buffer.value {
            case .float(let t): floats += t.scalars
            case .int(let t): integers += t.scalars
            }
        }
        try communicator.broadcast(&floats, root: 0)
        if !integers.isEmpty { try communicator.broadcast(&integers, root: 0) }
        var f = 0, i = 0
        for buffer in buffers {
            switch buffer.value {
            case .float(let t):
                buffer.value = .float(try Tensor(shape: t.shape, scalars: Array(floats[f..<(f + t.count)])))
                f += t.count
            case .int(let t):
                buffer.value = .int(try IntTensor(shape: t.shape, scalars: Array(integers[i..<(i + t.count)])))
                i += t.count
            }
        }
    }

    public func sum(_ values: [Double]) throws -> [Double] {
        try communicator.allReduce(values, .sum)
    }

    public func gatherRows(_ rows: Tensor) throws -> Tensor {
        guard !rows.shape.isEmpty else { throw NeuronError.shapeMismatch("gatherRows: a rank-0 tensor has no rows") }
        let trailing = Array(rows.shape.dropFirst())
        // The trailing shapes must agree; compare their hash before gathering the values.
        let shapes = try communicator.allGather([fnv1a("\(trailing)")])
        guard shapes.allSatisfy({ $0 == shapes[0] }) else {
            throw NeuronError.shapeMismatch("gatherRows: the ranks' rows have different shapes (this is rank \(rank), rows \(shapeString(rows.shape)))")
        }
        let values = try communicator.allGather(rows.scalars)
        let rowSize = trailing.reduce(1, *)
        let count = rowSize == 0 ? 0 : values.count / rowSize
        return try Tensor(shape: [count] + trailing, scalars: values)
    }

    // MARK: Checks

    /// A CRC-32C of every parameter's and buffer's bytes, in `state_dict` order.
    public static func valueHash(_ model: any Module) -> UInt32 {
        var crc: UInt32 = 0
        for p in model.parameters {
            p.withValue { v in v.withUnsafeBufferPointer { crc = nn_crc32c(crc, $0.baseAddress, $0.count * 4) } }
        }
        for (_, buffer) in model.namedBuffers {
            switch buffer.value {
            case .float(let t): t.withUnsafeBufferPointer { crc = nn_crc32c(crc, $0.baseAddress, $0.count * 4) }
            case .int(let t): t.scalars.withUnsafeBufferPointer { crc = nn_crc32c(crc, $0.baseAddress, $0.count * 8) }
            }
        }
        return crc
    }

    /// Checks that every rank holds bit-identical parameters and buffers (a hash of their bytes,
    /// compared across ranks), e.g. after a step while debugging non-determinism.
    /// - Throws: `NeuronError.communication` on every rank, listing the ranks' hashes, when they differ.
    public func checkReplicasAgree(_ model: any Module) throws {
        let hashes = try communicator.allGather([UInt64(Self.valueHash(model))])
        guard hashes.contains(where: { $0 != hashes[0] }) else { return }
        throw NeuronError.communication("the replicas' parameters or buffers differ (this is rank \(rank)); value hashes by rank: "
                                        + hashes.map { String($0, radix: 16) }.joined(separator: ", "))
    }

    // MARK: Buckets

    /// Calls `body(parameter range, buffer)` for each bucket of a fresh layout of `counts`.
    private func forEachBucket(of counts: [Int], _ body: (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        for bucket in BucketPlan.layout(counts, capacity: bucketCapacity) {
            var storage = [Float](repeating: 0, count: bucket.floats)
            try storage.withUnsafeMutableBufferPointer { try body(bucket.range, $0) }
        }
    }
}

/// Parameters in order of first appearance, each object once (tied weights).
private func uniqueParameters(_ parameters: [Parameter]) -> [Parameter] {
    var seen = Set<ObjectIdentifier>()
    return parameters.filter { seen.insert(ObjectIdentifier($0)).inserted }
}

/// Consecutive parameters grouped into buckets of at most `capacity` floats, with the buffers reused
/// every step. Each bucket's buffer holds its gradients, then one float per parameter (the number of
/// ranks that had a gradient for it).
final class BucketPlan {
    struct Bucket {
        var range: Range<Int>
        var floats: Int
    }

    let ids: [ObjectIdentifier]
    let buckets: [Bucket]
    var storage: [[Float]]

    init(ids: [ObjectIdentifier], counts: [Int], capacity: Int) {
        self.ids = ids
        buckets = Self.layout(counts, capacity: capacity).map { Bucket(range: $0.range, floats: $0.floats + $0.range.count) }
        storage = buckets.map { [Float](repeating: 0, count: $0.floats) }
    }

    /// Greedy: a bucket takes parameters in order until the next would overflow it.
    static func layout(_ counts: [Int], capacity: Int) -> [Bucket] {
        var out: [Bucket] = []
        var start = 0, floats = 0
        for (i, n) in counts.enumerated() {
            if i > start && floats + n > capacity {
                out.append(Bucket(range: start..<i, floats: floats))
                start = i
                floats = 0
            }
            floats += n
        }
        if start < counts.count { out.append(Bucket(range: start..<counts.count, floats: floats)) }
        return out
    }
}

/// FNV-1a, 64-bit, over the UTF-8 bytes of `text`.
func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
}

/// A shape as messages print it: `[2, 3]`.
func shapeString(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
