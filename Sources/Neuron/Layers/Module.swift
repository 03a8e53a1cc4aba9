/// Non-trainable state that is saved with a module (batch-norm running statistics, counters),
/// PyTorch's registered buffers.
public final class Buffer {
    /// The saved value (float or integer, e.g. `num_batches_tracked`).
    public var value: StoredTensor
    /// A buffer holding `value`.
    public init(_ value: StoredTensor) { self.value = value }
    /// A buffer holding a float tensor.
    public convenience init(_ tensor: Tensor) { self.init(.float(tensor)) }
}

/// A layer or a model: something that maps a tensor to a tensor and owns parameters, buffers and
/// sub-modules under PyTorch's `state_dict` names, so safetensors files round-trip with PyTorch.
///
/// Parts are found automatically: the stored properties of type `Parameter`, `Buffer` or a module
/// (also optional, in arrays as `name.0`, `name.1`…, PyTorch's `nn.ModuleList`, and in `[String: …]`
/// dictionaries as `name.key`, `nn.ModuleDict`) are the module's parameters, buffers and children
/// under their property names, found by reflection (`Mirror`, the layout cached per type, as
/// MLX-Swift does). A custom module therefore only stores its layers and sets `isTraining`:
///
///     final class MLP: Module {
///         let fc1: Linear, fc2: Linear
///         var isTraining = true
///         init() throws { fc1 = try Linear(in: 4, out: 8); fc2 = try Linear(in: 8, out: 2) }
///         func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(try fc1(x).relu()) }
///     }                                  // parameters: fc1.weight, fc1.bias, fc2.weight, fc2.bias
///
/// Types whose keys are not property names declare them by overriding `localParameters`,
/// `localBuffers` or `children` (`Sequential` names its layers `0`, `1`…; recurrent layers compute
/// `weight_ih_l1_reverse`; batch norm stores `runningMean` as `running_mean`). Whatever is declared by
/// hand is checked against what reflection finds (`checkParts()`, run by the optimisers' module
/// initialisers, `save`, `load`, `loadStateDict`, `predict` and `summary`): a `Parameter`, `Buffer`
/// or module property reachable through neither is a thrown `NeuronError` naming the type and the
/// property, never weights that silently stop training and saving.
///
/// Modules are reference types with mutable state and are not `Sendable`: use one from one task at a
/// time (send its `stateDict()` tensors as `SendableTensor`s instead).
public protocol Module: AnyObject, CustomStringConvertible, ParameterSource {
    /// The forward pass: the module's output for `input` (layout per layer, batch first).
    func callAsFunction(_ input: Tensor) throws -> Tensor
    /// This module's own parameters by local name (`weight`, `bias`), not its children's. Default:
    /// the stored `Parameter` properties, under their property names.
    var localParameters: [(name: String, parameter: Parameter)] { get }
    /// This module's own buffers by local name (`running_mean`). Default: the stored `Buffer`
    /// properties, under their property names.
    var localBuffers: [(name: String, buffer: Buffer)] { get }
    /// Direct sub-modules by attribute name (`conv1`) or position (`0`). Default: the stored module
    /// properties, under their property names (`features.0` for an array `features`).
    var children: [(name: String, module: any Module)] { get }
    /// Modules stored here whose parameters and buffers this module lists as its own, without a prefix
    /// (wrappers such as `TimeDistributed` and `Stateful`, which save like the bare layer); the part
    /// check counts them as reached. Default: none.
    var inlinedModules: [any Module] { get }
    /// Training mode (dropout active, batch norm using batch statistics) versus evaluation mode.
    var isTraining: Bool { get set }
    /// The name shown by `summary` and `description` (PyTorch's class name: `Linear`, `Conv2d`...).
    var typeName: String { get }
    /// The hyperparameters shown between the parentheses of `description`, PyTorch's `extra_repr()`
    /// (`in_features=400, out_features=120, bias=True`). Default: empty.
    var configurationDescription: String { get }
}

extension Module {
    /// The stored `Parameter` properties under their property names, found by reflection.
    public var localParameters: [(name: String, parameter: Parameter)] { ModuleReflection.parts(of: self).parameters }
    /// The stored `Buffer` properties under their property names, found by reflection.
    public var localBuffers: [(name: String, buffer: Buffer)] { ModuleReflection.parts(of: self).buffers }
    /// The stored module properties under their property names (`features.0` for arrays), found by reflection.
    public var children: [(name: String, module: any Module)] { ModuleReflection.parts(of: self).modules }
    /// None: a module lists only its own parts and its children's.
    public var inlinedModules: [any Module] { [] }
    /// The Swift type name; layers override it with PyTorch's class name.
    public var typeName: String { String(describing: type(of: self)) }
    /// Empty: no hyperparameters shown.
    public var configurationDescription: String { "" }

    /// The nested structure with each layer's hyperparameters, in the format of PyTorch's module repr:
    ///
    ///     LeNet5(
    ///       (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
    ///       ...
    ///     )
    public var description: String {
        var lines = configurationDescription.isEmpty ? [] : configurationDescription.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let kids = children
        if kids.isEmpty && lines.count <= 1 { return typeName + "(" + (lines.first ?? "") + ")" }
        for (name, child) in kids {
            let nested = child.description.split(separator: "\n", omittingEmptySubsequences: false)
            lines.append("(\(name)): " + nested.joined(separator: "\n  "))
        }
        return typeName + "(\n" + lines.map { "  " + $0 }.joined(separator: "\n") + "\n)"
    }

    /// Every parameter of this module and its descendants under its dotted `state_dict` name
    /// (`fc1.weight`), in registration order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var out = localParameters
        for (childName, child) in children {
            out += child.namedParameters.map { (childName + "." + $0.name, $0.parameter) }
        }
        return out
    }

    /// Every parameter of this module and its descendants, in the order of `namedParameters`.
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    /// The parameters that optimisers update: those not frozen, under their `state_dict` names.
    public var trainableParameters: [(name: String, parameter: Parameter)] { namedParameters.filter { $0.parameter.requiresGrad } }

    /// Every buffer under its dotted `state_dict` name.
    public var namedBuffers: [(name: String, buffer: Buffer)] {
        var out = localBuffers
        for (childName, child) in children {
            out += child.namedBuffers.map { (childName + "." + $0.name, $0.buffer) }
        }
        return out
    }

    /// This module (under `""`) and every descendant under its dotted name (`features.0`), parents
    /// before their children (PyTorch's `named_modules()`).
    public var namedModules: [(name: String, module: any Module)] {
        var out: [(name: String, module: any Module)] = [("", self)]
        for (childName, child) in children {
            out += child.namedModules.map { ($0.name.isEmpty ? childName : childName + "." + $0.name, $0.module) }
        }
        return out
    }

    /// The number of scalars in the parameters (frozen ones included, as Keras's "Total params").
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
    /// `requires_grad_(False)`), e.g. for a fixed feature extractor; inputs still get their gradients,
    /// and optimisers leave frozen parameters unchanged (`Parameter.freeze()` freezes one).
    public func freeze() { parameters.forEach { $0.freeze() } }

    /// Lets gradients flow into every parameter again.
    public func unfreeze() { parameters.forEach { $0.unfreeze() } }

    /// Checks that every `Parameter`, `Buffer` and module stored in this module and its descendants is
    /// reached by `namedParameters`, `namedBuffers` or `children` (what reflection finds against what
    /// a type declares by hand), and that no two different parameters share a name.
    /// - Throws: `NeuronError.invalidArgument` naming the type and the property that would be lost.
    public func checkParts() throws {
        try ModuleReflection.check(self)
    }
}
