/// max(x, 0) (PyTorch's `nn.ReLU`).
public final class ReLU: Module {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.relu()) }
}

/// x for x > 0, else `negativeSlope * x` (PyTorch's `nn.LeakyReLU`, default slope 0.01).
public final class LeakyReLU: Module {
    public var isTraining = true
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.leakyRelu(negativeSlope: negativeSlope)) }
    public var configurationDescription: String { "negative_slope=\(negativeSlope)" }
}

/// 1 / (1 + e^-x) (PyTorch's `nn.Sigmoid`).
public final class Sigmoid: Module {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.sigmoid()) }
}

/// tanh(x) (PyTorch's `nn.Tanh`).
public final class Tanh: Module {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(x.tanh()) }
}

/// Softmax along `axis` (PyTorch's `nn.Softmax(dim)`), subtracting the maximum first.
public final class Softmax: Module {
    public var isTraining = true
    public let axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.softmax(axis: axis)) }
    public var configurationDescription: String { "dim=\(axis)" }
}

/// log(softmax(x)) along `axis` by log-sum-exp (PyTorch's `nn.LogSoftmax(dim)`).
public final class LogSoftmax: Module {
    public var isTraining = true
    public let axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.logSoftmax(axis: axis)) }
    public var configurationDescription: String { "dim=\(axis)" }
}

/// Collapses every axis from `startAxis` on (PyTorch's `nn.Flatten`, default start 1).
public final class Flatten: Module {
    public var isTraining = true
    public let startAxis: Int
    public init(startAxis: Int = 1) { self.startAxis = startAxis }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try x.flattened(startAxis: startAxis)) }
    public var configurationDescription: String { "start_dim=\(startAxis), end_dim=-1" }
}
