/// A trainable tensor with its gradient: the unit that layers own, the tape accumulates into, and
/// optimisers update in place. A reference type, so a layer, its optimiser and the tape all see the
/// same parameter (PyTorch's `nn.Parameter`).
public final class Parameter {
    private var data: Tensor
    let node: GradNode

    /// A parameter holding `value` (detached: it starts its own gradient history), with no gradient yet.
    /// - Parameter value: the initial value; its shape is fixed for the parameter's life.
    public init(_ value: Tensor) {
        data = value.detached()
        node = GradNode(leafShape: value.shape, name: "parameter")
    }

    /// Whether gradients flow into this parameter (PyTorch's `requires_grad`). A frozen parameter's
    /// `value` is a constant to the tape, so backward passes skip its gradient entirely (a frozen feature
    /// extractor costs no weight-gradient work).
    public var requiresGrad = true

    /// The current value. Reading it inside a forward pass connects the result to this parameter's
    /// gradient (unless `requiresGrad` is false); assigning replaces the value (the shape must stay the
    /// same) and keeps the gradient.
    public var value: Tensor {
        get {
            var t = data
            if requiresGrad { t.node = node }
            return t
        }
        set {
            precondition(newValue.shape == node.shape, "parameter of shape \(shapeString(node.shape)) assigned a tensor of shape \(shapeString(newValue.shape))")
            data = newValue.detached()
        }
    }

    /// The value's shape, fixed at creation (`value` may be reassigned only with the same shape).
    public var shape: [Int] { node.shape }
    /// The number of elements, e.g. for counting a model's trainable weights.
    public var count: Int { data.count }

    /// The accumulated gradient, `nil` until a backward pass reaches this parameter or after `zeroGrad()`.
    public var grad: Tensor? {
        get { node.grad }
        set {
            if let g = newValue { precondition(g.shape == shape, "gradient of shape \(shapeString(g.shape)) for a parameter of shape \(shapeString(shape))") }
            node.grad = newValue?.detached()
        }
    }

    /// Clears the gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() { node.grad = nil }

    /// Stops gradients from flowing into this parameter (`requiresGrad = false`, PyTorch's
    /// `requires_grad_(False)`); optimisers leave it unchanged, even with weight decay or momentum.
    public func freeze() { requiresGrad = false }

    /// Lets gradients flow into this parameter again, so optimisers update it.
    public func unfreeze() { requiresGrad = true }

    /// In-place update of the value's elements (optimisers). Copies only if the buffer is still shared,
    /// e.g. by a graph that was kept alive.
    public func update(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        try data.withUnsafeMutableBufferPointer(body)
    }

    /// Read access to the value's elements without touching the tape.
    public func withValue<R>(_ body: (Tensor) throws -> R) rethrows -> R { try body(data) }
}
