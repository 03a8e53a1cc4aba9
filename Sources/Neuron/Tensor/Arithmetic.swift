import CKernels

// Element-wise arithmetic with NumPy broadcasting, differentiable. Operators on two tensors throw
// `NeuronError.shapeMismatch` naming both shapes when they do not broadcast.

extension Tensor {
    /// `a op b` with broadcasting, computed by one C kernel call; no autograd.
    static func broadcastKernel(_ op: nn_binary_op, _ a: Tensor, _ b: Tensor, name: String) throws -> Tensor {
        let outShape = try Broadcast.shape(a.shape, b.shape, op: name)
        let out = try Tensor.allocated(outShape, op: name)
        if out.count == 0 { return out }
        let cShape = outShape.isEmpty ? [1] : outShape
        let sa = outShape.isEmpty ? [0] : Broadcast.strides(of: a.shape, to: outShape)
        let sb = outShape.isEmpty ? [0] : Broadcast.strides(of: b.shape, to: outShape)
        nn_binary_broadcast(op, out.pointer, a.pointer, sa, b.pointer, sb, cShape, Int32(cShape.count))
        return out
    }

    /// The element-wise sum, the shape the two broadcast to (NumPy's rules; PyTorch's `a + b`).
    /// - Throws: `NeuronError.shapeMismatch` naming both shapes when they do not broadcast.
    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        try broadcastKernel(NN_BIN_ADD, a, b, name: "add").recorded("add", inputs: [a, b]) { g in
            [g.summed(toShape: a.shape), g.summed(toShape: b.shape)]
        }
    }

    /// The element-wise difference, the shape the two broadcast to (PyTorch's `a - b`).
    /// - Throws: `NeuronError.shapeMismatch` naming both shapes when they do not broadcast.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        try broadcastKernel(NN_BIN_SUB, a, b, name: "subtract").recorded("subtract", inputs: [a, b]) { g in
            [g.summed(toShape: a.shape), b.requiresGrad ? (-g).summed(toShape: b.shape) : nil]
        }
    }

    /// The element-wise (Hadamard) product, the shape the two broadcast to (PyTorch's `a * b`); the
    /// matrix product is `matmul(_:)`.
    /// - Throws: `NeuronError.shapeMismatch` naming both shapes when they do not broadcast.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        try broadcastKernel(NN_BIN_MUL, a, b, name: "multiply").recorded("multiply", inputs: [a, b]) { g in
            [a.requiresGrad ? try (g * b).summed(toShape: a.shape) : nil,
             b.requiresGrad ? try (g * a).summed(toShape: b.shape) : nil]
        }
    }

    /// The element-wise quotient, the shape the two broadcast to (PyTorch's `a / b`); division by 0
    /// gives ±Inf or NaN as IEEE 754 says.
    /// - Throws: `NeuronError.shapeMismatch` naming both shapes when they do not broadcast.
    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        try broadcastKernel(NN_BIN_DIV, a, b, name: "divide").recorded("divide", inputs: [a, b]) { g in
            [a.requiresGrad ? try (g / b).summed(toShape: a.shape) : nil,
             // PyTorch's order, -g (a / b) / b: b * b would underflow to 0 for |b| < 1e-19 (and overflow for large b).
             b.requiresGrad ? try ((-g) * ((a / b) / b)).summed(toShape: b.shape) : nil]
        }
    }

    /// Each element negated, the same shape.
    public static prefix func - (x: Tensor) -> Tensor { x.unary(NN_UNARY_NEG, "negate") { g, _ in -g } }

    // Scalars broadcast without a possible shape error, so these do not throw.
    /// `s` added to each element, the same shape.
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    /// `s` added to each element, the same shape.
    public static func + (s: Float, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
    /// `s` subtracted from each element, the same shape.
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    /// Each element subtracted from `s`, the same shape.
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
    // A shift of -0 leaves every product alone, -0 included (+0 would turn -0 into +0, so that for
    // example the gradient of sqrt at -0 came out +Inf where PyTorch's is -Inf).
    /// Each element times `s`, the same shape.
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: -0.0) }
    /// Each element times `s`, the same shape.
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: -0.0) }

    /// Each element divided by `s`, as PyTorch does: a multiplication by 1/s would overflow to Inf for
    /// a subnormal `s` (1e-40 / 1e-45 is 71362, not Inf).
    public static func / (a: Tensor, s: Float) -> Tensor {
        // A scalar broadcasts to any shape, so the kernel call cannot fail.
        let out = try! broadcastKernel(NN_BIN_DIV, a, Tensor(s), name: "divide")
        return out.recorded("divide", inputs: [a]) { g in [g / s] }
    }

    /// `scale * x + shift`, differentiable.
    public func affine(scale: Float, shift: Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        nn_affine(out.pointer, pointer, scale, shift, count)
        return out.recorded("affine", inputs: [self]) { g in [g.affine(scale: scale, shift: -0.0)] }
    }

    /// Applies a C unary map; `derivative(g, y)` gives the input gradient from the output's gradient
    /// and the output itself (callers capture the input when they need it).
    func unary(_ op: nn_unary_op, _ name: String, derivative: @escaping (Tensor, Tensor) throws -> Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        nn_unary(op, out.pointer, pointer, count)
        return out.recorded(name, inputs: [self]) { g in [try derivative(g, out)] }
    }

    /// eˣ element-wise, the same shape (`torch.exp`).
    public func exp() -> Tensor { unary(NN_UNARY_EXP, "exp") { g, y in try g * y } }

    /// The natural logarithm element-wise, the same shape (`torch.log`): -Inf at 0, NaN below.
    public func log() -> Tensor {
        let x = self
        return unary(NN_UNARY_LOG, "log") { g, _ in try g / x }
    }

    /// √x element-wise, the same shape (`torch.sqrt`): NaN below 0.
    public func sqrt() -> Tensor { unary(NN_UNARY_SQRT, "sqrt") { g, y in try g / (y * 2) } }

    /// x² element-wise, the same shape (`torch.square`).
    public func squared() -> Tensor {
        let x = self
        return unary(NN_UNARY_SQUARE, "square") { g, _ in try g * (x * 2) }
    }

    /// |x|; the gradient at 0 is 0 (sign(0) = 0), as in PyTorch.
    public func abs() -> Tensor {
        let x = self
        return unary(NN_UNARY_ABS, "abs") { g, _ in try g * x.sign() }
    }

    /// -1, 0 or 1 per element; not differentiable (zero gradient).
    public func sign() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        nn_unary(NN_UNARY_SIGN, out.pointer, pointer, count)
        return out
    }

    /// x^p for a scalar exponent. For p = 0 the gradient is zero (PyTorch's rule), even at x = 0
    /// where p x^(p-1) would be 0 · Inf.
    public func pow(_ p: Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        nn_pow_scalar(out.pointer, pointer, p, count)
        let x = self
        return out.recorded("pow", inputs: [self]) { g in
            if p == 0 { return [Tensor.zeros(x.shape)] }
            let d = Tensor(uninitializedShape: x.shape)
            nn_pow_scalar(d.pointer, x.pointer, p - 1, x.count)
            return [try g * (d * p)]
        }
    }

    /// Limits every element to [lo, hi]; the gradient passes where the value was inside.
    public func clamped(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        nn_clamp(out.pointer, pointer, lo, hi, count)
        let x = self
        return out.recorded("clamp", inputs: [self]) { g in
            // A selection, not a product with a 0/1 mask: outside [lo, hi] the gradient is 0 even where
            // the upstream one is NaN or Inf (PyTorch's where()).
            let dx = Tensor(uninitializedShape: x.shape)
            x.withUnsafeBufferPointer { xs in
                g.withUnsafeBufferPointer { gs in
                    for i in 0..<xs.count { dx.pointer[i] = xs[i] >= lo && xs[i] <= hi ? gs[i] : 0 }
                }
            }
            return [dx]
        }
    }

    /// Applies `f` to every element; not differentiable. For tests, masks and small data preparation.
    public func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { src in
            for i in 0..<count { out.pointer[i] = f(src[i]) }
        }
        return out
    }

    /// `self += other` element-wise without autograd (gradient accumulation, optimisers).
    mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "in-place add of \(shapeString(other.shape)) to \(shapeString(shape))")
        makeUnique()
        let cShape = shape.isEmpty ? [1] : [count]
        if count > 0 {
            nn_binary_broadcast(NN_BIN_ADD, pointer, pointer, [1], other.pointer, [1], cShape, 1)
        }
    }
}
