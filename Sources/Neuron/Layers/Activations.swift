/// max(x, 0) (PyTorch's `nn.ReLU`).
public final class ReLU: Module {
    /// Training mode; an activation behaves the same in both modes.
    public var isTraining = true
    /// A ReLU layer; it has no parameters.
    public init() {}
    /// x [any shape] -> max(x, 0), the same shape; the gradient at 0 is 0.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.relu()) }
}

/// x for x > 0, else `negativeSlope * x` (PyTorch's `nn.LeakyReLU`, default slope 0.01).
public final class LeakyReLU: Module {
    /// Training mode; the slope is the same in both modes.
    public var isTraining = true
    /// The slope for negative inputs (PyTorch's `negative_slope`).
    public let negativeSlope: Float
    /// A leaky ReLU with the given slope below 0.
    /// - Parameter negativeSlope: the factor applied to negative inputs (PyTorch's default 0.01).
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    /// x [any shape] -> the same shape, negative entries scaled by `negativeSlope`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.leakyRelu(negativeSlope: negativeSlope)) }
    /// PyTorch's `extra_repr()`: `negative_slope=0.01`.
    public var configurationDescription: String { "negative_slope=\(negativeSlope)" }
}

/// 1 / (1 + e^-x) (PyTorch's `nn.Sigmoid`).
public final class Sigmoid: Module {
    /// Training mode; a sigmoid behaves the same in both modes.
    public var isTraining = true
    /// A sigmoid layer; it has no parameters.
    public init() {}
    /// x [any shape] -> 1 / (1 + e^-x), the same shape, in (0, 1), without overflow for large |x|.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.sigmoid()) }
}

/// tanh(x) (PyTorch's `nn.Tanh`).
public final class Tanh: Module {
    /// Training mode; tanh behaves the same in both modes.
    public var isTraining = true
    /// A tanh layer; it has no parameters.
    public init() {}
    /// x [any shape] -> tanh(x), the same shape, in (-1, 1).
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.tanh()) }
}

/// Softmax along `axis` (PyTorch's `nn.Softmax(dim)`), subtracting the maximum first.
public final class Softmax: Module {
    /// Training mode; softmax behaves the same in both modes.
    public var isTraining = true
    /// The axis normalised to sum 1 (PyTorch's `dim`); negative counts from the end.
    public let axis: Int
    /// A softmax over `axis`.
    /// - Parameter axis: the axis to normalise (default the last, PyTorch's `dim=-1`).
    public init(axis: Int = -1) { self.axis = axis }
    /// x [any shape] -> the same shape, each slice along `axis` summing to 1.
    /// - Throws: `NeuronError` when `axis` is out of range for `x`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.softmax(axis: axis)) }
    /// PyTorch's `extra_repr()`: `dim=-1`.
    public var configurationDescription: String { "dim=\(axis)" }
}

/// log(softmax(x)) along `axis` by log-sum-exp (PyTorch's `nn.LogSoftmax(dim)`).
public final class LogSoftmax: Module {
    /// Training mode; log-softmax behaves the same in both modes.
    public var isTraining = true
    /// The axis normalised (PyTorch's `dim`); negative counts from the end.
    public let axis: Int
    /// A log-softmax over `axis`, the input `NLLLoss` expects.
    /// - Parameter axis: the axis to normalise (default the last, PyTorch's `dim=-1`).
    public init(axis: Int = -1) { self.axis = axis }
    /// x [any shape] -> the same shape, log-probabilities along `axis`.
    /// - Throws: `NeuronError` when `axis` is out of range for `x`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.logSoftmax(axis: axis)) }
    /// PyTorch's `extra_repr()`: `dim=-1`.
    public var configurationDescription: String { "dim=\(axis)" }
}

/// Collapses every axis from `startAxis` on (PyTorch's `nn.Flatten`, default start 1).
public final class Flatten: Module {
    /// Training mode; flattening behaves the same in both modes.
    public var isTraining = true
    /// The first axis collapsed (PyTorch's `start_dim`); earlier axes, the batch, are kept.
    public let startAxis: Int
    /// A flatten from `startAxis` to the last axis.
    /// - Parameter startAxis: the first axis to collapse (default 1, keeping the batch axis).
    public init(startAxis: Int = 1) { self.startAxis = startAxis }
    /// x [N, C, H, W] -> [N, C·H·W] (for `startAxis` 1).
    /// - Throws: `NeuronError` when `startAxis` is out of range for `x`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.flattened(startAxis: startAxis)) }
    /// PyTorch's `extra_repr()`: `start_dim=1, end_dim=-1`.
    public var configurationDescription: String { "start_dim=\(startAxis), end_dim=-1" }
}
