/// What `Trainer` needs to train one model as several data-parallel replicas, one per process, in the
/// manner of PyTorch's `DistributedDataParallel`: every replica holds the whole model, takes its shard of
/// each global batch, and the replicas combine their gradients so that every one takes the same
/// optimiser step. Neuron defines the protocol and names no transport; `NeuronDistributed` implements it
/// over MPI (`DataParallel`).
///
/// Every method is collective: each replica calls it in the same order with matching arguments, and it
/// returns the same result on every replica (or throws on every replica).
public protocol GradientReducer: AnyObject {
    /// This replica's index, 0..<replicaCount. Replica 0 reports progress and writes checkpoints.
    var rank: Int { get }
    /// The number of replicas.
    var replicaCount: Int { get }

    /// Checks that every replica built the same model (parameter and buffer names, shapes and which
    /// parameters train) and copies replica 0's parameters and buffers to the others.
    /// - Throws: `NeuronError.communication` on every replica when the models differ.
    func synchronize(_ model: any Module) throws

    /// Replaces the gradient of each parameter that trains (`requiresGrad`) with the sum over replicas
    /// of `weight` times that replica's gradient; a replica without a gradient for it contributes
    /// zeros, and the parameter keeps no gradient only when no replica has one. With
    /// `weight` = local samples / global batch samples the result is the gradient of the global
    /// batch's mean loss. Tied parameters (one object under two names) are reduced once.
    func reduceGradients(_ parameters: [Parameter], weight: Float) throws

    /// Copies replica 0's buffers (batch-norm running statistics) to every replica.
    func broadcastBuffers(of model: any Module) throws

    /// The element-wise sums of `values` over replicas.
    func sum(_ values: [Double]) throws -> [Double]

    /// Every replica's `rows` (any number of rows each, the same trailing shape) concatenated along
    /// axis 0 in rank order.
    func gatherRows(_ rows: Tensor) throws -> Tensor
}

extension GradientReducer {
    /// Rows `range` of `count` rows that this replica handles when they are split into `replicaCount`
    /// contiguous parts whose sizes differ by at most one (the first parts are the smaller).
    public func share(of count: Int) -> Range<Int> {
        shareRange(of: count, part: rank, parts: replicaCount)
    }
}

/// Part `part` of `0..<count` split into `parts` contiguous ranges whose sizes differ by at most one.
func shareRange(of count: Int, part: Int, parts: Int) -> Range<Int> {
    (count * part / parts)..<(count * (part + 1) / parts)
}
