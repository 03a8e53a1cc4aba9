import CKernels

// Reductions: sum, mean, max and argmax over all elements or along one axis. Sums accumulate in
// double in a fixed order (deterministic for any thread count).

extension Tensor {
    /// Sum along one axis without autograd; the building block of the differentiable reductions.
    func sumAxisNoGrad(_ axis: Int, keepingDims: Bool) -> Tensor {
        let (outer, n, inner) = split(at: axis)
        var outShape = shape
        if keepingDims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let out = Tensor(uninitializedShape: outShape)
        if out.count > 0 { nn_reduce_sum(out.pointer, pointer, outer, n, inner) }
        return out
    }

    /// The sum of all elements, a rank-0 tensor (0 for an empty tensor, as in PyTorch).
    public func sum() -> Tensor {
        let out = Tensor(Float(nn_sum_all(pointer, count)))
        let inputShape = shape
        return out.recorded("sum", inputs: [self]) { g in [g.broadcast(to: inputShape)] }
    }

    /// The sum along `axis`; `keepingDims` keeps it with size 1.
    public func sum(axis: Int, keepingDims: Bool = false) throws -> Tensor {
        if let r = try alongScalarAxis(axis, { try $0.sum(axis: 0) }) { return r }
        let a = try normalizedAxis(axis, op: "sum")
        let out = sumAxisNoGrad(a, keepingDims: keepingDims)
        let (outer, n, inner) = split(at: a)
        let inputShape = shape
        return out.recorded("sum", inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: inputShape)
            if dx.count > 0 { nn_broadcast_axis(dx.pointer, g.pointer, 1, outer, n, inner) }
            return [dx]
        }
    }

    /// The mean of all elements: NaN for an empty tensor, as in PyTorch (0 / 0).
    public func mean() throws -> Tensor {
        sum() / Float(count)
    }

    /// The mean along `axis`: NaN where the axis has size 0, as in PyTorch.
    public func mean(axis: Int, keepingDims: Bool = false) throws -> Tensor {
        if let r = try alongScalarAxis(axis, { try $0.mean(axis: 0) }) { return r }
        let a = try normalizedAxis(axis, op: "mean")
        return try sum(axis: a, keepingDims: keepingDims) / Float(shape[a])
    }

    /// The maximum along `axis` and the index of its first occurrence; the gradient flows to that index.
    public func max(axis: Int, keepingDims: Bool = false) throws -> (values: Tensor, indices: [Int]) {
        if rank == 0, axis == 0 || axis == -1 { return (self, [0]) }
        let a = try normalizedAxis(axis, op: "max")
        let (outer, n, inner) = split(at: a)
        guard n > 0 else { throw NeuronError.emptyInput("max along axis \(a) of size 0, shape \(shapeString(shape))") }
        var outShape = shape
        if keepingDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let out = Tensor(uninitializedShape: outShape)
        var arg = [Int64](repeating: 0, count: outer * inner)
        nn_reduce_max(out.pointer, &arg, pointer, outer, n, inner)
        let inputShape = shape
        let values = out.recorded("max", inputs: [self]) { g in
            let dx = Tensor.zeros(inputShape)
            for t in 0..<(outer * inner) {
                let o = t / inner, i = t % inner
                dx.pointer[(o * n + Int(arg[t])) * inner + i] = g.pointer[t]
            }
            return [dx]
        }
        return (values, arg.map { Int($0) })
    }

    /// The largest element.
    public func max() throws -> Float {
        guard count > 0 else { throw NeuronError.emptyInput("max of an empty tensor of shape \(shapeString(shape))") }
        return try reshaped([count]).max(axis: 0).values.item()
    }

    /// Indices of the first maximum along `axis` (e.g. predicted classes of logits along axis 1).
    public func argmax(axis: Int) throws -> [Int] { try noGrad { try max(axis: axis).indices } }

    /// PyTorch lets axis 0 and -1 name the one implicit axis of a 0-d tensor: `body` runs on it as a
    /// one-element vector and the result is 0-d again. Nil for any other tensor or axis.
    func alongScalarAxis(_ axis: Int, _ body: (Tensor) throws -> Tensor) throws -> Tensor? {
        guard rank == 0, axis == 0 || axis == -1 else { return nil }
        return try body(reshaped([1])).reshaped([])
    }
}
