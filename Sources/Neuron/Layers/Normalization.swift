import CKernels

/// Batch normalisation over the channel axis of [N, C] or [N, C, L] (`BatchNorm1D`) or [N, C, H, W]
/// (`BatchNorm2D`) input, PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`, rounded as PyTorch's CPU
/// kernel rounds (float statistics, then scale = invstd · weight, shift = bias − mean · scale).
///
/// Training mode normalises with the batch mean and biased variance over N (and H, W) and updates
/// the running statistics: running = (1 - momentum) · running + momentum · batch, the variance
/// unbiased (PyTorch's convention; momentum 0.1 weighs the new batch, where Keras's 0.99 weighs the old
/// value). Evaluation mode uses the running statistics. Parameters `weight` (γ, ones) and `bias`
/// (β, zeros); buffers `running_mean` (zeros), `running_var` (ones), `num_batches_tracked` (I64).
public class BatchNorm: Module {
    /// γ [C], ones, scaling each normalised channel; nil when built without `affine`.
    public let weight: Parameter?
    /// β [C], zeros, shifting each normalised channel; nil when built without `affine`.
    public let bias: Parameter?
    /// `running_mean` [C], zeros at first, used in evaluation mode; nil without `trackRunningStats`.
    public let runningMean: Buffer?
    /// `running_var` [C], ones at first, the unbiased batch variance averaged; nil without `trackRunningStats`.
    public let runningVar: Buffer?
    /// `num_batches_tracked`, an I64 scalar counting training batches, kept so PyTorch files round-trip.
    public let batchesTracked: Buffer?
    /// C, the size of the channel axis (axis 1) this layer normalises.
    public let channels: Int
    /// Added to the variance before the square root so constant channels do not divide by 0 (PyTorch's 1e-5).
    public let eps: Float
    /// The weight of the new batch in the running statistics (PyTorch's convention, 0.1; Keras's 0.99 is 1 - this).
    public let momentum: Float
    /// Training mode (batch statistics, running statistics updated) versus evaluation (running statistics).
    public var isTraining = true
    let expectedRank: Int

    init(channels: Int, eps: Float, momentum: Float, affine: Bool, trackRunningStats: Bool, rank: Int) throws {
        try Hyperparameter.require(channels >= 0, "\(rank == 2 ? "BatchNorm1D" : "BatchNorm2D"): channels must not be negative, got \(channels)")
        try Sizes.checkShape([channels], "batch norm parameters")
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        expectedRank = rank
        weight = affine ? Parameter(Tensor.ones([channels])) : nil
        bias = affine ? Parameter(Tensor.zeros([channels])) : nil
        runningMean = trackRunningStats ? Buffer(Tensor.zeros([channels])) : nil
        runningVar = trackRunningStats ? Buffer(Tensor.ones([channels])) : nil
        batchesTracked = trackRunningStats ? Buffer(.int(IntTensor(Int64(0)))) : nil
    }

    /// x [N, C] / [N, C, L] (1D) or [N, C, H, W] (2D) -> the same shape, each channel normalised.
    /// - Throws: `NeuronError.shapeMismatch` for the wrong rank or a channel count other than `channels`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        // BatchNorm1d takes [N, C] and [N, C, L], as PyTorch's does.
        let layout = expectedRank == 2 ? "[N, C] or [N, C, L]" : "[N, C, H, W]"
        let ranks = expectedRank == 2 ? [2, 3] : [4]
        guard ranks.contains(x.rank), x.shape[1] == channels else {
            throw NeuronError.shapeMismatch("\(typeName)(\(channels)) expects input \(layout) with C = \(channels), got \(shapeString(x.shape))")
        }
        var running: (mean: Tensor, variance: Tensor)?
        if let m = runningMean?.floatValue, let v = runningVar?.floatValue { running = (m, v) }
        let useBatchStatistics = isTraining || running == nil
        let y = try Tensor.batchNorm(x, weight: weight?.value, bias: bias?.value, running: &running,
                                     training: useBatchStatistics, momentum: momentum, eps: eps, name: typeName)
        if isTraining, let running {
            runningMean?.value = .float(running.mean)
            runningVar?.value = .float(running.variance)
            if case .int(let count)? = batchesTracked?.value {
                batchesTracked?.value = .int(IntTensor(count.scalars[0] + 1))
            }
        }
        return traced(y)
    }

    /// PyTorch's repr: `16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True`.
    public var configurationDescription: String {
        "\(channels), eps=\(eps.reprValue), momentum=\(momentum.reprValue), affine=\((weight != nil).reprValue), track_running_stats=\((runningMean != nil).reprValue)"
    }

    /// `weight` and `bias` when affine, else none.
    public var localParameters: [(name: String, parameter: Parameter)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    /// PyTorch's class name, `BatchNorm1d` or `BatchNorm2d`.
    public var typeName: String { expectedRank == 2 ? "BatchNorm1d" : "BatchNorm2d" }

    /// `running_mean`, `running_var` and `num_batches_tracked` (PyTorch's names) when tracked, else none.
    public var localBuffers: [(name: String, buffer: Buffer)] {
        guard let runningMean, let runningVar, let batchesTracked else { return [] }
        return [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", batchesTracked)]
    }
}

/// Batch norm over the features of [N, C] or [N, C, L] (PyTorch's `nn.BatchNorm1d`).
public final class BatchNorm1D: BatchNorm {
    /// Batch norm over C = `features`.
    /// - Parameters:
    ///   - features: C, the size of axis 1 (PyTorch's `num_features`).
    ///   - eps: added to the variance before the square root, 1e-5.
    ///   - momentum: the new batch's weight in the running statistics, 0.1 (PyTorch's convention).
    ///   - affine: learn `weight` and `bias`; false normalises only.
    ///   - trackRunningStats: keep running statistics for evaluation; false uses batch statistics always.
    /// - Throws: `NeuronError.invalidArgument` when `features` is negative.
    public init(_ features: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, trackRunningStats: Bool = true) throws {
        try super.init(channels: features, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, rank: 2)
    }
}

/// Batch norm over the channels of [N, C, H, W] (PyTorch's `nn.BatchNorm2d`).
public final class BatchNorm2D: BatchNorm {
    /// Batch norm over C = `channels`.
    /// - Parameters:
    ///   - channels: C, the size of axis 1 (PyTorch's `num_features`).
    ///   - eps: added to the variance before the square root, 1e-5.
    ///   - momentum: the new batch's weight in the running statistics, 0.1 (PyTorch's convention).
    ///   - affine: learn `weight` and `bias`; false normalises only.
    ///   - trackRunningStats: keep running statistics for evaluation; false uses batch statistics always.
    /// - Throws: `NeuronError.invalidArgument` when `channels` is negative.
    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, trackRunningStats: Bool = true) throws {
        try super.init(channels: channels, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, rank: 4)
    }
}

extension Buffer {
    /// The float tensor this buffer holds, if it holds one.
    var floatValue: Tensor? {
        if case .float(let t) = value { return t }
        return nil
    }
}

extension Tensor {
    /// Batch normalisation of x [N, C, ...] per channel (PyTorch's `F.batch_norm`). With `training`,
    /// normalises with the batch statistics and, when `running` is given, updates it in place
    /// (momentum, unbiased variance); otherwise normalises with `running`, which must then be given.
    public static func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, running: inout (mean: Tensor, variance: Tensor)?,
                                 training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, name: String = "batch_norm") throws -> Tensor {
        guard x.rank >= 2 else { throw NeuronError.shapeMismatch("\(name) expects input [N, C, ...], got \(shapeString(x.shape))") }
        let channels = x.shape[1]
        for (label, t) in [("weight", weight), ("bias", bias), ("running mean", running?.mean), ("running var", running?.variance)] {
            if let t, t.shape != [channels] {
                throw NeuronError.shapeMismatch("\(name): \(label) \(shapeString(t.shape)) for input \(shapeString(x.shape)) with \(channels) channels")
            }
        }
        let n = x.shape[0], s = x.shape.dropFirst(2).reduce(1, *)
        if training && n * s == 1 {
            throw NeuronError.invalidArgument("\(name) in training mode needs more than one value per channel, got input \(shapeString(x.shape))")
        }
        guard training || running != nil else { throw NeuronError.invalidArgument("\(name) in evaluation mode needs running statistics") }
        // PyTorch's checks: eps = 0 divides a constant channel by zero in training, a negative eps can
        // make var + eps negative (a NaN passes, as there, and gives NaN).
        if training ? eps <= 0 : eps < 0 {
            throw NeuronError.invalidArgument("\(name): eps must be \(training ? "positive in training" : "non-negative"), got \(eps)")
        }
        let inputs = [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
        if x.count == 0 {
            // PyTorch's answer for an empty batch: an empty result, zero gradients, statistics unchanged.
            return Tensor(uninitializedShape: x.shape).recorded(name, inputs: inputs) { _ in
                [Tensor.zeros(x.shape)] + (weight != nil ? [Tensor.zeros([channels])] : []) + (bias != nil ? [Tensor.zeros([channels])] : [])
            }
        }
        let out = Tensor(uninitializedShape: x.shape)
        let mean = Tensor(uninitializedShape: [channels]), invstd = Tensor(uninitializedShape: [channels])
        let (cn, cc, cs) = (try Sizes.int32(n, "batch", op: name), try Sizes.int32(channels, "channels", op: name),
                            try Sizes.int32(s, "positions per channel", op: name))
        if training {
            var rm = running?.mean, rv = running?.variance
            // PyTorch's eps is a Python float: the double nearest the decimal the user wrote, which the
            // shortest decimal form of the Float recovers (1e-5, not 1e-5 rounded to float).
            let eps64 = Double(eps.description) ?? Double(eps)
            nn_batchnorm_forward_train(out.pointer, mean.pointer, invstd.pointer, rm?.mutablePointer, rv?.mutablePointer,
                                       x.pointer, weight?.pointer, bias?.pointer, cn, cc, cs, momentum, eps64)
            if let rm, let rv { running = (rm, rv) }
        } else if let running {
            nn_batchnorm_forward_eval(out.pointer, mean.pointer, invstd.pointer, x.pointer, weight?.pointer, bias?.pointer,
                                      running.mean.pointer, running.variance.pointer, cn, cc, cs, eps)
        }
        return out.recorded(name, inputs: inputs) { g in
            let dx = x.requiresGrad ? Tensor(uninitializedShape: x.shape) : nil
            let dweight = weight != nil ? Tensor.zeros([channels]) : nil
            let dbias = bias != nil ? Tensor.zeros([channels]) : nil
            nn_batchnorm_backward(dx?.pointer, dweight?.pointer, dbias?.pointer, g.pointer, x.pointer, weight?.pointer,
                                  mean.pointer, invstd.pointer, cn, cc, cs, training ? 1 : 0)
            return [dx] + (weight != nil ? [dweight] : []) + (bias != nil ? [dbias] : [])
        }
    }

    /// A pointer for in-place kernels: gives the tensor storage of its own first.
    var mutablePointer: UnsafeMutablePointer<Float> {
        mutating get {
            makeUnique()
            return pointer
        }
    }
}

/// Inverted dropout (PyTorch's `nn.Dropout`): in training mode each element is zeroed with
/// probability `p` and the kept ones are scaled by 1/(1 - p), so evaluation (which passes input
/// through unchanged) needs no rescaling. The mask is drawn from `Random`'s default generator, so
/// `Random.seed` makes it reproducible, and it does not depend on the thread count.
public final class Dropout: Module {
    /// The probability of zeroing each element in training mode (PyTorch's `p`).
    public let p: Float
    /// Training mode (elements dropped) versus evaluation mode (input passed through).
    public var isTraining = true

    /// Dropout with probability `p`.
    /// - Parameter p: the probability of zeroing each element in training mode, 0.5 by default.
    /// - Throws: `NeuronError.invalidArgument` unless 0 <= p <= 1.
    public init(p: Float = 0.5) throws {
        try Hyperparameter.require(p >= 0 && p <= 1, "Dropout probability must be in [0, 1], got \(p)")
        self.p = p
    }

    /// x [any shape] -> the same shape; in training, kept elements scaled by 1/(1 - p).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard isTraining, p > 0 else { return traced(x) }
        let seed = Random.using { $0.next() }
        let out = Tensor(uninitializedShape: x.shape), mask = Tensor(uninitializedShape: x.shape)
        nn_dropout_forward(out.pointer, mask.pointer, x.pointer, p, seed, x.count)
        return traced(out.recorded("dropout", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            nn_dropout_backward(dx.pointer, g.pointer, mask.pointer, g.count)
            return [dx]
        })
    }

    /// PyTorch's repr: `p=0.5, inplace=False`.
    public var configurationDescription: String { "p=\(p.reprValue), inplace=False" }
}
