extension Module {
    /// The module's outputs for the samples `x` [N, ...], computed in evaluation mode (dropout off,
    /// batch norm on running statistics) without gradients, `batchSize` samples at a time, and
    /// concatenated along the first axis (Keras's `model.predict(x, batch_size)`; in PyTorch,
    /// `model.eval()` and `torch.no_grad()` around a loop over batches).
    ///
    /// Each module's previous mode is restored afterwards, also when the forward pass throws. The result
    /// has no gradient history. An empty batch runs once (so the output shape is the module's).
    /// - Parameters:
    ///   - x: the samples, batch first.
    ///   - batchSize: samples per forward pass (bounds the memory of the activations), 32 as in Keras.
    /// - Throws: `NeuronError.invalidArgument` for a batch size below 1; `.shapeMismatch` for a rank-0
    ///   input; what `checkParts()` and the forward pass throw.
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor {
        try Hyperparameter.require(batchSize >= 1, "predict: batch size must be at least 1, got \(batchSize)")
        let n = try x.sampleCount()
        try checkParts()
        return try withEvaluationMode {
            try noGrad {
                let input = x.detached()
                guard n > batchSize else { return try self(input) }
                let batches = try stride(from: 0, to: n, by: batchSize).map { start in
                    try self(try input.slice(start..<Swift.min(n, start + batchSize)))
                }
                return try Tensor.concatenate(batches, axis: 0)
            }
        }
    }
}
