/// Non-trainable state that is saved with a module (batch-norm running statistics, counters),
/// PyTorch's registered buffers.
public final class Buffer {
    public var value: StoredTensor
    public init(_ value: StoredTensor) { self.value = value }
    public convenience init(_ tensor: Tensor) { self.init(.float(tensor)) }
}

/// A layer or a model: something that maps a tensor to a tensor and owns parameters, buffers and
/// sub-modules, all discovered through explicit lists (no reflection) under PyTorch's `state_dict`
/// names, so safetensors files round-trip with PyTorch.
///
/// Conformers declare `isTraining` and override the lists that apply; everything else (dotted
/// names, `train()`/`eval()`, parameter counts, `summary`) comes from the extension.
public protocol Module: AnyObject {
    func callAsFunction(_ input: Tensor) throws -> Tensor
    /// This module's own parameters by local name (`weight`, `bias`), not its children's.
    var localParameters: [(name: String, parameter: Parameter)] { get }
    /// This module's own buffers by local name (`running_mean`).
    var localBuffers: [(name: String, buffer: Buffer)] { get }
    /// Direct sub-modules by attribute name (`conv1`) or position (`0`).
    var children: [(name: String, module: any Module)] { get }
    /// Training mode (dropout active, batch norm using batch statistics) versus evaluation mode.
    var isTraining: Bool { get set }
    /// The name shown by `summary` (PyTorch's class name: `Linear`, `Conv2d`...).
    var typeName: String { get }
}

extension Module {
    public var localParameters: [(name: String, parameter: Parameter)] { [] }
    public var localBuffers: [(name: String, buffer: Buffer)] { [] }
    public var children: [(name: String, module: any Module)] { [] }
    public var typeName: String { String(describing: type(of: self)) }

    /// Every parameter of this module and its descendants under its dotted `state_dict` name
    /// (`fc1.weight`), in registration order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var out = localParameters
        for (childName, child) in children {
            out += child.namedParameters.map { (childName + "." + $0.name, $0.parameter) }
        }
        return out
    }

    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    /// Every buffer under its dotted `state_dict` name.
    public var namedBuffers: [(name: String, buffer: Buffer)] {
        var out = localBuffers
        for (childName, child) in children {
            out += child.namedBuffers.map { (childName + "." + $0.name, $0.buffer) }
        }
        return out
    }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Sets training mode here and in every descendant.
    public func train(_ mode: Bool = true) {
        isTraining = mode
        for (_, child) in children { child.train(mode) }
    }

    /// Evaluation mode: dropout off, batch norm on running statistics.
    public func eval() { train(false) }

    /// Clears every parameter's gradient.
    public func zeroGrad() { parameters.forEach { $0.zeroGrad() } }

    /// Stops gradients from flowing into every parameter here and in the descendants (PyTorch's
    /// `requires_grad_(False)`), e.g. for a fixed feature extractor; inputs still get their gradients.
    public func freeze() { parameters.forEach { $0.requiresGrad = false } }

    /// Lets gradients flow into every parameter again.
    public func unfreeze() { parameters.forEach { $0.requiresGrad = true } }
}
