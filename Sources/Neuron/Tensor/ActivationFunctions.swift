import CKernels

// Activation functions as differentiable tensor methods. The layer types in Layers/ wrap these.

extension Tensor {
    func activation(_ act: nn_activation, _ name: String, slope: Float = 0, forward: (UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        forward(out.pointer)
        // ReLU-type derivatives read the input; sigmoid and tanh read the output.
        let saved = (act == NN_ACT_RELU || act == NN_ACT_LEAKY_RELU) ? self : out
        return out.recorded(name, inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            nn_activation_backward(act, dx.pointer, g.pointer, saved.pointer, slope, g.count)
            return [dx]
        }
    }

    /// max(x, 0); the gradient at 0 is 0.
    public func relu() -> Tensor {
        activation(NN_ACT_RELU, "relu") { nn_unary(NN_UNARY_RELU, $0, pointer, count) }
    }

    /// x for x > 0, else `negativeSlope * x` (PyTorch default 0.01); the gradient at 0 is the slope.
    public func leakyRelu(negativeSlope: Float = 0.01) -> Tensor {
        activation(NN_ACT_LEAKY_RELU, "leaky_relu", slope: negativeSlope) { nn_leaky_relu_forward($0, pointer, negativeSlope, count) }
    }

    /// 1 / (1 + e^-x), computed without overflow for large |x|.
    public func sigmoid() -> Tensor {
        activation(NN_ACT_SIGMOID, "sigmoid") { nn_unary(NN_UNARY_SIGMOID, $0, pointer, count) }
    }

    /// The hyperbolic tangent element-wise, the same shape (`torch.tanh`), in (-1, 1).
    public func tanh() -> Tensor {
        activation(NN_ACT_TANH, "tanh") { nn_unary(NN_UNARY_TANH, $0, pointer, count) }
    }

    /// Softmax along `axis` (default the last), subtracting the maximum first so large logits stay finite.
    public func softmax(axis: Int = -1) throws -> Tensor { try softmaxKernel(axis: axis, log: false) }

    /// log(softmax(x)) along `axis`, as (x - max) - log(sum(exp(x - max))) (log-sum-exp).
    public func logSoftmax(axis: Int = -1) throws -> Tensor { try softmaxKernel(axis: axis, log: true) }

    private func softmaxKernel(axis: Int, log: Bool) throws -> Tensor {
        let name = log ? "log_softmax" : "softmax"
        if let r = try alongScalarAxis(axis, { try $0.softmaxKernel(axis: 0, log: log) }) { return r }
        let a = try normalizedAxis(axis, op: name)
        let (outer, n, inner) = split(at: a)
        let out = Tensor(uninitializedShape: shape)
        if count > 0 { nn_softmax_forward(out.pointer, pointer, outer, n, inner, log ? 1 : 0) }
        return out.recorded(name, inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            if g.count > 0 { nn_softmax_backward(dx.pointer, g.pointer, out.pointer, outer, n, inner, log ? 1 : 0) }
            return [dx]
        }
    }
}
