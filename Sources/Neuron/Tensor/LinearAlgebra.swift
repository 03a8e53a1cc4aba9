import CKernels

// Matrix products through OpenBLAS (nn_sgemm).

extension Tensor {
    /// C = op(A) op(B) for matrices, through OpenBLAS; no autograd.
    static func gemm(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) -> Tensor {
        let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
        let n = transposeB ? b.shape[0] : b.shape[1]
        let out = Tensor(uninitializedShape: [m, n])
        nn_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(a.shape[1]),
                 b.pointer, Int32(b.shape[1]), 0, out.pointer, Int32(Swift.max(n, 1)))
        return out
    }

    /// The matrix product: [m, k] x [k, n] -> [m, n], or batched [b, m, k] x [b, k, n] -> [b, m, n]
    /// (a matrix on the right is shared by every batch element).
    public func matmul(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        func mismatch() -> NeuronError { .shapeMismatch("matmul \(shapeString(a.shape)) x \(shapeString(b.shape))") }
        if a.rank == 2 && b.rank == 2 {
            guard a.shape[1] == b.shape[0] else { throw mismatch() }
            return Tensor.gemm(a, b).recorded("matmul", inputs: [a, b]) { g in
                [a.requiresGrad ? Tensor.gemm(g, b, transposeB: true) : nil,
                 b.requiresGrad ? Tensor.gemm(a, transposeA: true, g) : nil]
            }
        }
        if a.rank == 3 && b.rank == 2 {
            guard a.shape[2] == b.shape[0] else { throw mismatch() }
            let flat = try a.reshaped([a.shape[0] * a.shape[1], a.shape[2]])
            return try flat.matmul(b).reshaped([a.shape[0], a.shape[1], b.shape[1]])
        }
        guard a.rank == 3 && b.rank == 3, a.shape[0] == b.shape[0], a.shape[2] == b.shape[1] else { throw mismatch() }
        return Tensor.batchedGemm(a, b).recorded("bmm", inputs: [a, b]) { g in
            [a.requiresGrad ? Tensor.batchedGemm(g, b, transposeB: true) : nil,
             b.requiresGrad ? Tensor.batchedGemm(a, transposeA: true, g) : nil]
        }
    }

    static func batchedGemm(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) -> Tensor {
        let batch = a.shape[0]
        let m = transposeA ? a.shape[2] : a.shape[1], k = transposeA ? a.shape[1] : a.shape[2]
        let n = transposeB ? b.shape[1] : b.shape[2]
        let out = Tensor(uninitializedShape: [batch, m, n])
        nn_sgemm_batched(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(batch), Int32(m), Int32(n), Int32(k), 1,
                         a.pointer, Int32(a.shape[2]), a.shape[1] * a.shape[2], b.pointer, Int32(b.shape[2]),
                         b.shape[1] * b.shape[2], 0, out.pointer, Int32(Swift.max(n, 1)), m * n)
        return out
    }

    /// y = x Wᵀ + b for x [N, in], W [out, in], b [out] (PyTorch's `F.linear`), as one GEMM with the
    /// bias preloaded into the output.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        guard x.rank == 2, weight.rank == 2, x.shape[1] == weight.shape[1] else {
            throw NeuronError.shapeMismatch("linear: input \(shapeString(x.shape)) with weight \(shapeString(weight.shape)) (expects [N, \(weight.rank == 2 ? weight.shape[1] : -1)])")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw NeuronError.shapeMismatch("linear: bias \(shapeString(bias.shape)) for weight \(shapeString(weight.shape))")
        }
        let n = x.shape[0], inF = x.shape[1], outF = weight.shape[0]
        let out = Tensor(uninitializedShape: [n, outF])
        if let bias, out.count > 0 {
            for r in 0..<n { (out.pointer + r * outF).update(from: bias.pointer, count: outF) }
        }
        nn_sgemm(0, 1, Int32(n), Int32(outF), Int32(inF), 1, x.pointer, Int32(Swift.max(inF, 1)), weight.pointer, Int32(Swift.max(inF, 1)),
                 bias == nil ? 0 : 1, out.pointer, Int32(Swift.max(outF, 1)))
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded("linear", inputs: inputs) { g in
            var grads: [Tensor?] = [x.requiresGrad ? gemm(g, weight) : nil,
                                    weight.requiresGrad ? gemm(g, transposeA: true, x) : nil]
            if bias != nil { grads.append(g.sumAxisNoGrad(0, keepingDims: false)) }
            return grads
        }
    }
}
