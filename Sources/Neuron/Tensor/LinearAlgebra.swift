import CKernels

// Matrix products through OpenBLAS (nn_sgemm).

extension Tensor {
    /// C = op(A) op(B) for matrices, through OpenBLAS; no autograd.
    static func gemm(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) throws -> Tensor {
        let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
        let n = transposeB ? b.shape[0] : b.shape[1]
        let op = "matmul"
        let (cm, cn, ck) = (try Sizes.int32(m, "rows", op: op), try Sizes.int32(n, "columns", op: op), try Sizes.int32(k, "inner size", op: op))
        let (lda, ldb) = (try Sizes.int32(a.shape[1], "row length", op: op), try Sizes.int32(b.shape[1], "row length", op: op))
        let out = try Tensor.allocated([m, n], op: op)
        nn_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, cm, cn, ck, 1, a.pointer, lda, b.pointer, ldb, 0, out.pointer, Swift.max(cn, 1))
        return out
    }

    /// The matrix product: [m, k] x [k, n] -> [m, n], or batched [b, m, k] x [b, k, n] -> [b, m, n]
    /// (a matrix on the right is shared by every batch element).
    public func matmul(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        func mismatch() -> NeuronError { .shapeMismatch("matmul \(shapeString(a.shape)) x \(shapeString(b.shape))") }
        if a.rank == 2 && b.rank == 2 {
            guard a.shape[1] == b.shape[0] else { throw mismatch() }
            return try Tensor.gemm(a, b).recorded("matmul", inputs: [a, b]) { g in
                [a.requiresGrad ? try Tensor.gemm(g, b, transposeB: true) : nil,
                 b.requiresGrad ? try Tensor.gemm(a, transposeA: true, g) : nil]
            }
        }
        if a.rank == 3 && b.rank == 2 {
            guard a.shape[2] == b.shape[0] else { throw mismatch() }
            let flat = try a.reshaped([a.shape[0] * a.shape[1], a.shape[2]])  // the product is a's own count / k
            return try flat.matmul(b).reshaped([a.shape[0], a.shape[1], b.shape[1]])
        }
        guard a.rank == 3 && b.rank == 3, a.shape[0] == b.shape[0], a.shape[2] == b.shape[1] else { throw mismatch() }
        return try Tensor.batchedGemm(a, b).recorded("bmm", inputs: [a, b]) { g in
            [a.requiresGrad ? try Tensor.batchedGemm(g, b, transposeB: true) : nil,
             b.requiresGrad ? try Tensor.batchedGemm(a, transposeA: true, g) : nil]
        }
    }

    static func batchedGemm(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) throws -> Tensor {
        let batch = a.shape[0]
        let m = transposeA ? a.shape[2] : a.shape[1], k = transposeA ? a.shape[1] : a.shape[2]
        let n = transposeB ? b.shape[1] : b.shape[2]
        let op = "bmm"
        let (cb, cm) = (try Sizes.int32(batch, "batch", op: op), try Sizes.int32(m, "rows", op: op))
        let (cn, ck) = (try Sizes.int32(n, "columns", op: op), try Sizes.int32(k, "inner size", op: op))
        let (lda, ldb) = (try Sizes.int32(a.shape[2], "row length", op: op), try Sizes.int32(b.shape[2], "row length", op: op))
        let out = try Tensor.allocated([batch, m, n], op: op)
        nn_sgemm_batched(transposeA ? 1 : 0, transposeB ? 1 : 0, cb, cm, cn, ck, 1,
                         a.pointer, lda, a.shape[1] * a.shape[2], b.pointer, ldb,
                         b.shape[1] * b.shape[2], 0, out.pointer, Swift.max(cn, 1), m * n)
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
        let (cn, cin, cout) = (try Sizes.int32(n, "batch", op: "linear"), try Sizes.int32(inF, "input features", op: "linear"),
                               try Sizes.int32(outF, "output features", op: "linear"))
        let out = try Tensor.allocated([n, outF], op: "linear")
        if let bias, out.count > 0 {
            for r in 0..<n { (out.pointer + r * outF).update(from: bias.pointer, count: outF) }
        }
        nn_sgemm(0, 1, cn, cout, cin, 1, x.pointer, Swift.max(cin, 1), weight.pointer, Swift.max(cin, 1),
                 bias == nil ? 0 : 1, out.pointer, Swift.max(cout, 1))
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded("linear", inputs: inputs) { g in
            var grads: [Tensor?] = [x.requiresGrad ? try gemm(g, weight) : nil,
                                    weight.requiresGrad ? try gemm(g, transposeA: true, x) : nil]
            if bias != nil { grads.append(g.sumAxisNoGrad(0, keepingDims: false)) }
            return grads
        }
    }
}
