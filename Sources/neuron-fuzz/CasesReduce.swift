import Foundation
import Neuron

// Reductions, softmax, matrix products.

/// Σ over k of A(i, k) B(k, j) for an m x n result: values and the sums of the magnitudes of the terms.
func gemmRef(_ m: Int, _ n: Int, _ k: Int, _ a: (Int, Int) -> Double, _ b: (Int, Int) -> Double) -> (v: [Double], s: [Double]) {
    var v = [Double](repeating: 0, count: m * n), s = v
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0, sc = 0.0
            for t in 0..<k {
                let p = a(i, t) * b(t, j)
                acc += p
                sc += mag(p)
            }
            v[i * n + j] = acc
            s[i * n + j] = sc
        }
    }
    return (v, s)
}

func sumCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["sum()", "sum(axis:)", "mean()", "mean(axis:)"])
    let shape = r.shape(rank: r.rank(0...4))
    let axis = r.wild(-4...3, wildness: 0.08)
    let keep = r.chance(0.5)
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.6)
    let perAxis = op.hasSuffix("(axis:)")
    return FuzzCase(op: op, params: "x \(str(shape))" + (perAxis ? " axis \(axis) keepingDims \(keep)" : "") + " grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let mean = op.hasPrefix("mean")
        // PyTorch reduces a scalar along dim 0 or -1 to itself.
        let rank = Swift.max(shape.count, 1)
        let a = perAxis ? normalizeAxis(axis, rank: rank) : 0
        ctx.referenceValid = a != nil
        let y: Tensor
        switch op {
        case "sum()": y = x.sum()
        case "mean()": y = try x.mean()
        case "sum(axis:)": y = try x.sum(axis: axis, keepingDims: keep)
        default: y = try x.mean(axis: axis, keepingDims: keep)
        }
        guard let a else { return ctx.fail("returned \(str(y.shape)) for axis \(axis) of \(str(shape))") }
        let d = values.map(Double.init)
        let (outer, n, inner) = perAxis && !shape.isEmpty ? splitAxis(shape, a) : (1, values.count, 1)
        var out: [Int] = []
        if perAxis && !shape.isEmpty {
            out = shape
            if keep { out[a] = 1 } else { out.remove(at: a) }
        } else if perAxis && keep {
            out = []
        }
        var v = [Double](repeating: 0, count: outer * inner), s = v
        for o in 0..<outer {
            for i in 0..<inner {
                var acc = 0.0, sc = 0.0
                for j in 0..<n {
                    acc += d[(o * n + j) * inner + i]
                    sc += mag(d[(o * n + j) * inner + i])
                }
                // The mean of nothing is NaN in PyTorch (Neuron throws, which is acceptable).
                v[o * inner + i] = mean ? acc / Double(n) : acc
                s[o * inner + i] = mean ? sc / Double(n) : sc
            }
        }
        var ref = Ref(shape: out, v: v, s: s, terms: n + (mean ? 2 : 0))
        // A mean is the float32 sum divided by the count (PyTorch's too), so the sum may overflow alone.
        if mean { ref.intermediate = s.map { $0 * Double(n) } }
        ctx.check(compare("forward", y, ref))
        guard grad else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: d.count)
        for o in 0..<outer { for j in 0..<n { for i in 0..<inner {
            dv[(o * n + j) * inner + i] = mean ? g[o * inner + i] / Double(n) : g[o * inner + i]
        } } }
        ctx.check(compareGrad("grad", x.grad, Ref(shape: shape, v: dv, s: dv.map(mag), terms: 3)))
    }
}

/// PyTorch's max along an axis: the first maximum, NaN beating everything (the first NaN).
func maxRef(_ d: [Double], outer: Int, n: Int, inner: Int) -> (v: [Double], idx: [Int]) {
    var v = [Double](repeating: 0, count: outer * inner), idx = [Int](repeating: 0, count: outer * inner)
    for o in 0..<outer {
        for i in 0..<inner {
            var best = d[o * n * inner + i], at = 0
            for j in 1..<Swift.max(n, 1) {
                let x = d[(o * n + j) * inner + i]
                if !best.isNaN && (x > best || x.isNaN) { best = x; at = j }
            }
            v[o * inner + i] = best
            idx[o * inner + i] = at
        }
    }
    return (v, idx)
}

func maxCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["max(axis:)", "max()", "argmax(axis:)"])
    let shape = r.shape(rank: r.rank(0...4))
    let axis = r.wild(-4...3, wildness: 0.08)
    let keep = r.chance(0.5)
    let regime: ValueRegime = r.chance(0.3) ? .integers : r.regime()
    let values = r.values(product(shape), regime)
    let grad = op == "max(axis:)" && r.chance(0.6)
    return FuzzCase(op: op, params: "x \(str(shape)) \(regime)" + (op == "max()" ? "" : " axis \(axis) keepingDims \(keep)") + " grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let d = values.map(Double.init)
        if op == "max()" {
            ctx.referenceValid = !values.isEmpty
            let m = try x.max()
            guard !values.isEmpty else { return ctx.fail("max() of an empty tensor returned \(m)") }
            let e = maxRef(d, outer: 1, n: d.count, inner: 1).v[0]
            if !(Double(m) == e || (m.isNaN && e.isNaN)) { ctx.fail("max() = \(m), expected \(e)") }
            return
        }
        let rank = Swift.max(shape.count, 1)
        let a = normalizeAxis(axis, rank: rank)
        // PyTorch: max along an empty axis raises.
        let valid = a != nil && (shape.isEmpty || shape[a!] > 0)
        ctx.referenceValid = valid
        if op == "argmax(axis:)" {
            let got = try x.argmax(axis: axis)
            guard valid, let a else { return ctx.fail("argmax returned \(got.count) indices for axis \(axis) of \(str(shape))") }
            let (outer, n, inner) = shape.isEmpty ? (1, 1, 1) : splitAxis(shape, a)
            ctx.check(compareInts("argmax", got, maxRef(d, outer: outer, n: n, inner: inner).idx))
            return
        }
        let (y, idx) = try x.max(axis: axis, keepingDims: keep)
        guard valid, let a else { return ctx.fail("max returned \(str(y.shape)) for axis \(axis) of \(str(shape))") }
        let (outer, n, inner) = shape.isEmpty ? (1, 1, 1) : splitAxis(shape, a)
        var out = shape
        if !shape.isEmpty { if keep { out[a] = 1 } else { out.remove(at: a) } }
        let ref = maxRef(d, outer: outer, n: n, inner: inner)
        ctx.check(compare("values", y, Ref(shape: out, rounded: ref.v, ulps: 0)))
        ctx.check(compareInts("indices", idx, ref.idx))
        guard grad else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: d.count)
        for o in 0..<outer { for i in 0..<inner { dv[(o * n + ref.idx[o * inner + i]) * inner + i] = g[o * inner + i] } }
        ctx.check(compareGrad("grad", x.grad, Ref(shape: shape, rounded: dv, ulps: 0)))
    }
}

func softmaxCase(_ r: inout FuzzRandom) -> FuzzCase {
    let log = r.chance(0.5)
    let shape = r.shape(rank: r.rank(0...4))
    let axis = r.wild(-4...3, wildness: 0.08)
    let regime = r.regime()
    let values = r.values(product(shape), regime)
    let grad = r.chance(0.6)
    let useLayer = r.chance(0.2)
    return FuzzCase(op: log ? "logSoftmax" : "softmax", params: "x \(str(shape)) \(regime) axis \(axis) layer \(useLayer) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let a = normalizeAxis(axis, rank: Swift.max(shape.count, 1))
        ctx.referenceValid = a != nil
        let y: Tensor
        switch (useLayer, log) {
        case (true, true): y = try LogSoftmax(axis: axis)(x)
        case (true, false): y = try Softmax(axis: axis)(x)
        case (false, true): y = try x.logSoftmax(axis: axis)
        case (false, false): y = try x.softmax(axis: axis)
        }
        guard let a else { return ctx.fail("returned \(str(y.shape)) for axis \(axis) of \(str(shape))") }
        let (outer, n, inner) = shape.isEmpty ? (1, 1, 1) : splitAxis(shape, a)
        let d = values.map(Double.init)
        var v = [Double](repeating: 0, count: d.count), s = v
        var shift = v, logSum = [Double](repeating: 0, count: outer * inner)
        // PyTorch: m = max (NaN if any NaN), e = exp(x - m), y = e / sum(e), log y = (x - m) - log(sum(e)).
        // Error: x - m is rounded (relative u|x - m|, which exp turns into a relative error), the sum
        // adds n relative roundings; the scale below is |y| (1 + |x - m|), log: |x - m| + |log sum| + 1.
        for o in 0..<outer {
            for i in 0..<inner {
                let at = { (j: Int) in (o * n + j) * inner + i }
                var m = -Double.infinity
                for j in 0..<n { let t = d[at(j)]; if t.isNaN || m.isNaN { m = .nan } else { m = Swift.max(m, t) } }
                var sum = 0.0
                for j in 0..<n { sum += Foundation.exp(d[at(j)] - m) }
                logSum[o * inner + i] = Foundation.log(sum)
                for j in 0..<n {
                    let k = at(j)
                    shift[k] = d[k] - m
                    if log {
                        v[k] = shift[k] - Foundation.log(sum)
                        s[k] = mag(shift[k]) + mag(Foundation.log(sum)) + 1
                    } else {
                        v[k] = Foundation.exp(shift[k]) / sum
                        s[k] = mag(v[k]) * (1 + mag(shift[k]))
                    }
                }
            }
        }
        ctx.check(compare("forward", y, Ref(shape: shape, v: v, s: s, terms: n + 4)))
        guard grad else { return }
        let g = try ctx.backward(y)
        // PyTorch's backward reads the float32 forward result.
        let vf = v.map { Double(Float($0)) }
        var dv = [Double](repeating: 0, count: d.count), ds = dv, mid = dv
        for o in 0..<outer {
            for i in 0..<inner {
                let at = { (j: Int) in (o * n + j) * inner + i }
                var dot = 0.0, dotScale = 0.0, gsum = 0.0, gScale = 0.0
                for j in 0..<n {
                    let k = at(j)
                    if log {
                        gsum += g[k]
                        gScale += mag(g[k])
                    } else {
                        dot += g[k] * vf[k]
                        dotScale += mag(g[k] * vf[k]) * (1 + mag(shift[k]))
                    }
                }
                for j in 0..<n {
                    let k = at(j)
                    if log {
                        // PyTorch: dx = g - exp(y) * sum(g), exp in float32 (so exp(-180) is 0, and
                        // 0 times an infinite sum is NaN there); the sum may overflow on its own.
                        let p = Double(Float(Foundation.exp(vf[k])))
                        dv[k] = g[k] - p * gsum
                        ds[k] = mag(g[k]) + mag(p) * gScale * (1 + mag(shift[k]) + mag(logSum[o * inner + i]))
                        mid[k] = gScale
                    } else {
                        // PyTorch: dx = y * (g - sum(g * y)); g - sum(g * y) may overflow on its own.
                        dv[k] = vf[k] * (g[k] - dot)
                        ds[k] = mag(vf[k]) * (mag(g[k]) + dotScale) * (1 + mag(shift[k]))
                        mid[k] = mag(g[k]) + dotScale
                    }
                }
            }
        }
        var ref = Ref(shape: shape, v: dv, s: ds, terms: n + 6)
        ref.intermediate = mid
        ctx.check(compareGrad("grad", x.grad, ref))
    }
}

func matmulCase(_ r: inout FuzzRandom) -> FuzzCase {
    let kind = r.weighted([40, 20, 30, 10])
    let (b, m, k, n) = (r.dim(), r.dim(), r.int(0...12), r.dim())
    var sa: [Int], sb: [Int]
    switch kind {
    case 0: (sa, sb) = ([m, k], [k, n])
    case 1: (sa, sb) = ([b, m, k], [k, n])
    case 2: (sa, sb) = ([b, m, k], [b, k, n])
    default: (sa, sb) = (r.shape(rank: r.rank(1...4), limit: 256), r.shape(rank: r.rank(1...4), limit: 256))
    }
    if r.chance(0.08) { sb[sb.count >= 2 ? sb.count - 2 : 0] += 1 }
    if r.chance(0.04) && sa.count == 3 && sb.count == 3 { sb[0] += 1 }
    let (ra, rb) = (r.regime(), r.regime())
    let va = r.values(product(sa), ra), vb = r.values(product(sb), rb)
    let (ga, gb) = (r.chance(0.5), r.chance(0.5))
    return FuzzCase(op: "matmul", params: "a \(str(sa)) \(ra) grad \(ga), b \(str(sb)) \(rb) grad \(gb)") { ctx in
        let a = try ctx.tensor(sa, va, grad: ga), bt = try ctx.tensor(sb, vb, grad: gb)
        // The cases Neuron supports; PyTorch's matmul answers more (1-D, broadcast batches), and a throw is acceptable there.
        var out: [Int]?
        if sa.count == 2 && sb.count == 2 && sa[1] == sb[0] { out = [sa[0], sb[1]] }
        if sa.count == 3 && sb.count == 2 && sa[2] == sb[0] { out = [sa[0], sa[1], sb[1]] }
        if sa.count == 3 && sb.count == 3 && sa[2] == sb[1] && (sa[0] == sb[0]) { out = [sa[0], sa[1], sb[2]] }
        ctx.referenceValid = out != nil
        let y = try a.matmul(bt)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for \(str(sa)) x \(str(sb))") }
        let x = va.map(Double.init), z = vb.map(Double.init)
        let batch = sa.count == 3 ? sa[0] : 1
        let (mm, kk) = (sa[sa.count - 2], sa[sa.count - 1]), nn = sb[sb.count - 1]
        let shared = sb.count == 2
        let bOff = { (t: Int) in shared ? 0 : t * kk * nn }
        var v: [Double] = [], s: [Double] = []
        for t in 0..<batch {
            let p = gemmRef(mm, nn, kk, { x[t * mm * kk + $0 * kk + $1] }, { z[bOff(t) + $0 * nn + $1] })
            v += p.v
            s += p.s
        }
        ctx.check(compare("forward", y, Ref(shape: out, v: v, s: s, terms: kk)))
        guard ga || gb else { return }
        let g = try ctx.backward(y)
        if ga {
            var dv: [Double] = [], ds: [Double] = []
            for t in 0..<batch {
                let p = gemmRef(mm, kk, nn, { g[t * mm * nn + $0 * nn + $1] }, { z[bOff(t) + $1 * nn + $0] })
                dv += p.v
                ds += p.s
            }
            ctx.check(compareGrad("grad a", a.grad, Ref(shape: sa, v: dv, s: ds, terms: nn)))
        }
        if gb {
            var dv = [Double](repeating: 0, count: z.count), ds = dv
            for t in 0..<batch {
                let p = gemmRef(kk, nn, mm, { x[t * mm * kk + $1 * kk + $0] }, { g[t * mm * nn + $0 * nn + $1] })
                for e in 0..<(kk * nn) {
                    dv[bOff(t) + e] += p.v[e]
                    ds[bOff(t) + e] += p.s[e]
                }
            }
            ctx.check(compareGrad("grad b", bt.grad, Ref(shape: sb, v: dv, s: ds, terms: shared ? batch * mm : mm)))
        }
    }
}

/// y = x Wᵀ + b for x [N, in], W [out, in]: values and scales (`gemmRef` plus the bias term).
func linearRef(_ x: [Double], _ w: [Double], _ b: [Double]?, n: Int, inF: Int, outF: Int) -> (v: [Double], s: [Double]) {
    var p = gemmRef(n, outF, inF, { x[$0 * inF + $1] }, { w[$1 * inF + $0] })
    if let b {
        for i in 0..<n { for j in 0..<outF {
            p.v[i * outF + j] += b[j]
            p.s[i * outF + j] += mag(b[j])
        } }
    }
    return p
}

/// Checks the gradients of y = x Wᵀ + b given upstream g.
func checkLinearGrads(_ ctx: Ctx, _ g: [Double], x: [Double], w: [Double], n: Int, inF: Int, outF: Int,
                      dx: (Tensor?, Bool), dw: (Tensor?, Bool), db: (Tensor?, Bool)) {
    if dx.1 {
        let p = gemmRef(n, inF, outF, { g[$0 * outF + $1] }, { w[$0 * inF + $1] })
        ctx.check(compareGrad("grad x", dx.0, Ref(shape: [n, inF], v: p.v, s: p.s, terms: outF)))
    }
    if dw.1 {
        let p = gemmRef(outF, inF, n, { g[$1 * outF + $0] }, { x[$0 * inF + $1] })
        ctx.check(compareGrad("grad weight", dw.0, Ref(shape: [outF, inF], v: p.v, s: p.s, terms: n)))
    }
    if db.1 {
        let p = gemmRef(1, outF, n, { _, _ in 1 }, { g[$0 * outF + $1] })
        ctx.check(compareGrad("grad bias", db.0, Ref(shape: [outF], v: p.v, s: p.s, terms: n)))
    }
}

func linearCase(_ r: inout FuzzRandom) -> FuzzCase {
    let (n, inF, outF) = (r.dim(), r.int(0...12), r.dim())
    var sx = [n, inF], sw = [outF, inF]
    let hasBias = r.chance(0.7)
    var sb = [outF]
    switch r.weighted([85, 5, 5, 5]) {
    case 1: sx = r.shape(rank: r.rank(0...3))
    case 2: sw[1] += 1
    case 3: sb = [outF + 1]
    default: break
    }
    let (rx, rw) = (r.regime(), r.regime())
    let vx = r.values(product(sx), rx), vw = r.values(product(sw), rw), vb = r.values(product(sb), r.regime())
    let (gx, gw, gbias) = (r.chance(0.5), r.chance(0.5), r.chance(0.5))
    return FuzzCase(op: "linear", params: "x \(str(sx)) \(rx) grad \(gx), weight \(str(sw)) \(rw) grad \(gw), bias \(hasBias ? str(sb) : "nil") grad \(gbias)") { ctx in
        let x = try ctx.tensor(sx, vx, grad: gx), w = try ctx.tensor(sw, vw, grad: gw)
        let b = hasBias ? try ctx.tensor(sb, vb, grad: gbias) : nil
        let valid = sx.count == 2 && sw.count == 2 && sx[1] == sw[1] && (!hasBias || sb == [sw[0]])
        ctx.referenceValid = valid
        let y = try Tensor.linear(x, weight: w, bias: b)
        guard valid else { return ctx.fail("returned \(str(y.shape)) for x \(str(sx)), weight \(str(sw)), bias \(str(sb))") }
        let (n, inF, outF) = (sx[0], sx[1], sw[0])
        let xd = vx.map(Double.init), wd = vw.map(Double.init), bd = hasBias ? vb.map(Double.init) : nil
        let p = linearRef(xd, wd, bd, n: n, inF: inF, outF: outF)
        ctx.check(compare("forward", y, Ref(shape: [n, outF], v: p.v, s: p.s, terms: inF + 1)))
        guard gx || gw || (hasBias && gbias) else { return }
        let g = try ctx.backward(y)
        checkLinearGrads(ctx, g, x: xd, w: wd, n: n, inF: inF, outF: outF,
                         dx: (x.grad, gx), dw: (w.grad, gw), db: (b?.grad, hasBias && gbias))
    }
}
