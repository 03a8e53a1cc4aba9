// Small layers that let recurrent stacks sit in a `Sequential`: the last step of a sequence
// (Keras's `return_sequences=False`) and a layer applied to every step (Keras's `TimeDistributed`).

extension Tensor {
    /// The slice at `index` along `axis`, with that axis removed (PyTorch's `x.select(axis, index)`,
    /// `x[:, index]`); a copy. A negative index counts from the end.
    /// - Throws: `NeuronError.invalidArgument` for an axis or index out of range.
    public func selecting(_ index: Int, alongAxis axis: Int) throws -> Tensor {
        let a = try normalizedAxis(axis, op: "select")
        let n = shape[a]
        let i = index < 0 ? index + n : index
        guard i >= 0 && i < n else {
            throw NeuronError.invalidArgument("select: index \(index) is out of range for axis \(a) of \(shapeString(shape))")
        }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        outShape.remove(at: a)
        let out = Tensor(uninitializedShape: outShape)
        for o in 0..<outer { (out.pointer + o * inner).update(from: pointer + (o * n + i) * inner, count: inner) }
        let fullShape = shape
        return out.recorded("select", inputs: [self]) { g in
            let dx = Tensor.zeros(fullShape)
            for o in 0..<outer { (dx.pointer + (o * n + i) * inner).update(from: g.pointer + o * inner, count: inner) }
            return [dx]
        }
    }
}

/// The last step of a sequence: [N, T, F] → [N, F] (batch-first, the default) or [T, N, F] → [N, F]
/// (time-major). After a unidirectional recurrent layer this is its final hidden state, what Keras's
/// `LSTM(..., return_sequences=False)` returns. No parameters.
public final class LastStep: Module {
    /// Whether the input is [N, T, F] (true) or time-major [T, N, F] (false, PyTorch's RNN default).
    public let batchFirst: Bool
    /// Training mode; selecting a step behaves the same in both modes.
    public var isTraining = true

    /// A last-step selector.
    /// - Parameter batchFirst: true for [N, T, F] input (the default), false for [T, N, F].
    public init(batchFirst: Bool = true) { self.batchFirst = batchFirst }

    /// - Throws: `NeuronError.shapeMismatch` for input that is not rank 3 or has no steps.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 3, x.shape[batchFirst ? 1 : 0] > 0 else {
            throw NeuronError.shapeMismatch("LastStep expects a sequence \(batchFirst ? "[N, T, F]" : "[T, N, F]") with T >= 1, got \(shapeString(x.shape))")
        }
        return traced(try x.selecting(-1, alongAxis: batchFirst ? 1 : 0))
    }
}

/// A module that is its wrapped layer in every respect but the forward pass: the layer's parameters and
/// buffers are its own, under the layer's own names (so a file saved from the wrapper loads into the bare
/// layer), and its mode is the layer's.
public protocol LayerWrapper: Module {
    /// The wrapped layer.
    var wrappedModule: any Module { get }
}

extension LayerWrapper {
    /// The wrapped layer's parameters under its own names (`weight`, not `layer.weight`).
    public var localParameters: [(name: String, parameter: Parameter)] { wrappedModule.namedParameters }
    /// The wrapped layer's buffers under its own names.
    public var localBuffers: [(name: String, buffer: Buffer)] { wrappedModule.namedBuffers }
    /// None: the wrapped layer's parts are this module's own (`inlinedModules`).
    public var children: [(name: String, module: any Module)] { [] }
    /// The wrapped layer, whose parts this module lists as its own.
    public var inlinedModules: [any Module] { [wrappedModule] }
    /// The wrapped layer's mode; setting it sets the layer's (and its children's).
    public var isTraining: Bool {
        get { wrappedModule.isTraining }
        set { wrappedModule.train(newValue) }
    }
    /// The wrapped layer's description.
    public var configurationDescription: String { wrappedModule.description }
}

/// Applies `layer` (one that maps [M, F] → [M, G], e.g. `Linear`) to every step of a sequence:
/// [A, B, F] → [A, B, G], by folding the two leading axes into one (Keras's `TimeDistributed`; in PyTorch
/// `nn.Linear` does this by itself). The wrapped layer's parameters keep their own names (`weight`, `bias`),
/// so a `Sequential` saves it like the bare layer.
public final class TimeDistributed: LayerWrapper {
    /// The layer applied to every step; its parameters are this module's own.
    public let layer: any Module

    /// A wrapper applying `layer` at every step.
    /// - Parameter layer: a layer mapping [M, F] -> [M, G].
    public init(_ layer: any Module) { self.layer = layer }

    /// - Throws: `NeuronError.shapeMismatch` for input below rank 3; what the layer throws.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 3 else {
            throw NeuronError.shapeMismatch("TimeDistributed expects a sequence [A, B, ...], got \(shapeString(x.shape))")
        }
        let leading = Array(x.shape.prefix(2))
        let y = try layer(try x.reshaped([leading[0] * leading[1]] + x.shape.dropFirst(2)))
        return traced(try y.reshaped(leading + y.shape.dropFirst()))
    }

    /// The wrapped layer, whose parts and mode are this module's own.
    public var wrappedModule: any Module { layer }
    /// Keras's class name, `TimeDistributed` (PyTorch has none).
    public var typeName: String { "TimeDistributed" }
}
