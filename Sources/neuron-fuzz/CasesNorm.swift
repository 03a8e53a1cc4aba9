import Foundation
import Neuron

// Batch normalisation (functional and layers) and dropout.

/// Batch norm in double over x seen as (N, C, S), PyTorch's formulas, with a first-order error bound.
///
/// Error analysis (u = 2⁻²⁴, M = N·S values per channel, A = mean|x|, Q = mean (|x| + A)²): the
/// batch mean is off by at most M·u·A and the variance by 3·M·u·Q, so 1/sqrt(var + eps) is off by a
/// relative ½·3·M·u·Q/(var + eps). Both kernels fold the statistics into y = x·scale + shift, whose
/// rounding is relative to |x·scale| + |shift|, not to |y|.
struct BatchNormReference {
    let n: Int, c: Int, s: Int
    let x: [Double], w: [Double]?, b: [Double]?
    var mean: [Double] = [], variance: [Double] = [], istd: [Double] = []
    /// Relative error of istd and absolute error of the mean, per channel.
    var istdError: [Double] = [], meanError: [Double] = []
    /// Whether var + eps is within rounding of zero (the result is then ill-conditioned: anything goes).
    var degenerate: [Bool] = []
    /// mean (|x| + mean|x|)² per channel: the scale of the variance's rounding.
    var spread: [Double] = []

    init(n: Int, c: Int, s: Int, x: [Double], w: [Double]?, b: [Double]?) {
        (self.n, self.c, self.s, self.x, self.w, self.b) = (n, c, s, x, w, b)
    }

    func at(_ i: Int, _ ch: Int, _ t: Int) -> Int { (i * c + ch) * s + t }

    /// Batch statistics (training) or the running ones (evaluation).
    mutating func statistics(training: Bool, running: (mean: [Double], variance: [Double])?, eps: Double) {
        let m = Double(n * s)
        mean = []; variance = []; istd = []; istdError = []; meanError = []; degenerate = []; spread = []
        for ch in 0..<c {
            var sum = 0.0, absSum = 0.0
            for i in 0..<n { for t in 0..<s { sum += x[at(i, ch, t)]; absSum += mag(x[at(i, ch, t)]) } }
            let a = absSum / Swift.max(m, 1)
            var q = 0.0
            for i in 0..<n { for t in 0..<s { q += (mag(x[at(i, ch, t)]) + a) * (mag(x[at(i, ch, t)]) + a) } }
            q /= Swift.max(m, 1)
            spread.append(q)
            if training {
                let mu = sum / m
                var dev = 0.0
                for i in 0..<n { for t in 0..<s { dev += (x[at(i, ch, t)] - mu) * (x[at(i, ch, t)] - mu) } }
                let v = dev / m
                mean.append(mu)
                variance.append(v)
                istd.append(1 / (v + eps).squareRoot())
                meanError.append(m * unitRoundoff * a)
                let rel = 1.5 * m * unitRoundoff * q / Swift.abs(v + eps)
                istdError.append(rel + 2 * unitRoundoff)
                degenerate.append(BatchNormReference.isDegenerate(rel: rel, istd: istd.last!, spread: q))
            } else {
                let (rm, rv) = (running!.mean[ch], running!.variance[ch])
                mean.append(rm)
                variance.append(rv)
                istd.append(1 / (rv + eps).squareRoot())
                meanError.append(0)
                let rel = 2 * unitRoundoff * (mag(rv) + mag(eps)) / Swift.abs(rv + eps)
                istdError.append(rel)
                degenerate.append(BatchNormReference.isDegenerate(rel: rel, istd: istd.last!, spread: q))
            }
        }
    }

    /// Channels the comparison leaves alone (but for NaN, which must stay non-finite): statistics within
    /// rounding of a zero variance, or so far from 1 that float32 kernels (PyTorch's too) work with
    /// subnormal or overflowing intermediates (istd², values squared).
    static func isDegenerate(rel: Double, istd: Double, spread: Double) -> Bool {
        !(rel < 0.01) || !(istd > 1e-15 && istd < 1e15) || !(spread < 1e30)
    }

    func forward(shape: [Int]) -> Ref {
        var v = [Double](repeating: 0, count: x.count), sc = v, bound = v
        var lenient = [Bool](repeating: false, count: x.count)
        for i in 0..<n { for ch in 0..<c { for t in 0..<s {
            let k = at(i, ch, t)
            let g = w?[ch] ?? 1, beta = b?[ch] ?? 0
            let centred = x[k] - mean[ch]
            v[k] = centred * istd[ch] * g + beta
            sc[k] = mag(x[k] * istd[ch] * g) + mag(mean[ch] * istd[ch] * g) + mag(beta)
            bound[k] = mag(g) * istd[ch] * (meanError[ch] + mag(centred) * istdError[ch])
            if degenerate[ch] || !bound[k].isFinite { bound[k] = .infinity; lenient[k] = true }
        } } }
        var ref = Ref(shape: shape, v: v, s: sc, terms: 4)
        ref.bound = bound
        ref.lenient = lenient
        return ref
    }

    /// dx, dweight, dbias for upstream g (PyTorch's batch_norm_backward).
    func backward(_ g: [Double], shape: [Int], training: Bool) -> (dx: Ref, dw: Ref, db: Ref) {
        let m = Double(n * s)
        var dx = [Double](repeating: 0, count: x.count), dxs = dx, dxb = dx
        var dxLenient = [Bool](repeating: false, count: x.count)
        var dw = [Double](repeating: 0, count: c), dws = dw, dwb = dw, db = dw, dbs = dw
        var dwLenient = [Bool](repeating: false, count: c)
        for ch in 0..<c {
            let gamma = w?[ch] ?? 1
            var sumG = 0.0, sumGS = 0.0, sumGX = 0.0, sumGXS = 0.0
            for i in 0..<n { for t in 0..<s {
                let k = at(i, ch, t)
                let xh = (x[k] - mean[ch]) * istd[ch]
                sumG += g[k]; sumGS += mag(g[k])
                sumGX += g[k] * xh; sumGXS += mag(g[k] * xh)
            } }
            db[ch] = sumG; dbs[ch] = sumGS
            dw[ch] = sumGX; dws[ch] = sumGXS
            dwb[ch] = sumGXS * (istdError[ch] + meanError[ch] * istd[ch])
            dwLenient[ch] = degenerate[ch]
            for i in 0..<n { for t in 0..<s {
                let k = at(i, ch, t)
                let xh = (x[k] - mean[ch]) * istd[ch]
                if training {
                    dx[k] = gamma * istd[ch] / m * (m * g[k] - sumG - xh * sumGX)
                    dxs[k] = mag(gamma * istd[ch] / m) * (m * mag(g[k]) + sumGS + mag(xh) * sumGXS + mag(x[k] * istd[ch]) * sumGXS)
                } else {
                    dx[k] = g[k] * gamma * istd[ch]
                    dxs[k] = mag(dx[k])
                }
                dxb[k] = dxs[k] * (istdError[ch] + meanError[ch] * istd[ch]) * 3
                dxLenient[k] = degenerate[ch]
            } }
        }
        var rx = Ref(shape: shape, v: dx, s: dxs, terms: n * s + 6)
        rx.bound = dxb.enumerated().map { dxLenient[$0.offset] ? .infinity : $0.element }
        rx.lenient = dxLenient
        var rw = Ref(shape: [c], v: dw, s: dws, terms: n * s + 4)
        rw.bound = dwb.enumerated().map { dwLenient[$0.offset] ? .infinity : $0.element }
        rw.lenient = dwLenient
        return (rx, rw, Ref(shape: [c], v: db, s: dbs, terms: n * s))
    }

    /// PyTorch's running update: (1 - momentum) running + momentum · batch (unbiased variance).
    func updatedRunning(_ running: (mean: [Double], variance: [Double]), momentum: Double) -> (mean: Ref, variance: Ref) {
        let m = Double(n * s)
        var rm = [Double](), rv = [Double](), sm = [Double](), sv = [Double](), bm = [Double](), bv = [Double]()
        var lenient = [Bool]()
        for ch in 0..<c {
            let unbiased = variance[ch] * m / (m - 1)
            rm.append((1 - momentum) * running.mean[ch] + momentum * mean[ch])
            rv.append((1 - momentum) * running.variance[ch] + momentum * unbiased)
            sm.append(mag((1 - momentum) * running.mean[ch]) + mag(momentum * mean[ch]) + mag(momentum))
            sv.append(mag((1 - momentum) * running.variance[ch]) + mag(momentum * unbiased) + mag(momentum))
            bm.append(mag(momentum) * meanError[ch])
            let varError = 3 * m * unitRoundoff * spread[ch]
            bv.append(mag(momentum) * varError * m / Swift.max(m - 1, 1))
            lenient.append(degenerate[ch])
        }
        var a = Ref(shape: [c], v: rm, s: sm, terms: 4), b = Ref(shape: [c], v: rv, s: sv, terms: 4)
        a.bound = bm
        b.bound = bv
        b.lenient = lenient
        return (a, b)
    }
}

extension FuzzRandom {
    mutating func batchNormShape() -> [Int] {
        switch weighted([35, 20, 35, 10]) {
        case 0: return [int(0...6), int(0...4)]
        case 1: return [int(0...4), int(0...4), int(0...5)]
        case 2: return [int(0...3), int(0...3), int(0...4), int(0...4)]
        default: return shape(rank: rank(0...5), limit: 256)
        }
    }
}

func batchNormCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = r.batchNormShape()
    let channels = shape.count >= 2 ? shape[1] : 1
    let paramShape = r.chance(0.93) ? [channels] : [channels + 1]
    let (hasW, hasB, hasRunning) = (r.chance(0.7), r.chance(0.7), r.chance(0.7))
    let training = r.chance(0.6)
    let momentum: Float = r.pick([0.1, 0.1, 0, 1, 0.5, r.value(.positive)])
    let eps: Float = r.pick([1e-5, 1e-5, 1e-3, 0, 1, -1e-3])
    let regime = r.regime()
    let x = r.values(checkedProduct(shape) ?? 0, regime)
    let w = r.values(product(paramShape), .normal), b = r.values(product(paramShape), .normal)
    let rm = r.values(product(paramShape), .normal), rv = r.values(product(paramShape), r.chance(0.9) ? .positive : .special)
    let (gx, gw, gb) = (r.chance(0.6), r.chance(0.5), r.chance(0.5))
    let params = "x \(str(shape)) \(regime) weight \(hasW) bias \(hasB) running \(hasRunning) params \(str(paramShape)) training \(training) momentum \(momentum) eps \(eps) grads \(gx)/\(gw)/\(gb)"
    return FuzzCase(op: "batchNorm", params: params) { ctx in
        let xt = try ctx.tensor(shape, x, grad: gx)
        let wt = hasW ? try ctx.tensor(paramShape, w, grad: gw) : nil, bt = hasB ? try ctx.tensor(paramShape, b, grad: gb) : nil
        var running: (mean: Tensor, variance: Tensor)? = hasRunning ? (try ctx.tensor(paramShape, rm), try ctx.tensor(paramShape, rv)) : nil
        let s = shape.count >= 2 ? product(Array(shape.dropFirst(2))) : 0
        let m = shape.count >= 2 ? shape[0] * s : 0
        let shapesValid = shape.count >= 2 && ((!hasW && !hasB && !hasRunning) || paramShape == [channels])
        // PyTorch raises for exactly one value per channel in training, without running statistics in
        // evaluation, and for eps <= 0 in training or eps < 0 in evaluation.
        let valid = shapesValid && (training ? m != 1 && eps > 0 : hasRunning && eps >= 0)
        ctx.referenceValid = valid && (!training || m > 1)
        let y = try Tensor.batchNorm(xt, weight: wt, bias: bt, running: &running, training: training,
                                     momentum: momentum, eps: eps)
        guard valid else { return ctx.fail("returned \(str(y.shape)) where PyTorch raises") }
        guard !training || m > 1 else { return }
        var ref = BatchNormReference(n: shape[0], c: channels, s: s, x: x.map(Double.init),
                                     w: hasW ? w.map(Double.init) : nil, b: hasB ? b.map(Double.init) : nil)
        let runningD = hasRunning ? (rm.map(Double.init), rv.map(Double.init)) : nil
        ref.statistics(training: training, running: runningD, eps: Double(eps))
        ctx.check(compare("forward", y, ref.forward(shape: shape)))
        if training, let runningD, let running {
            let (em, ev) = ref.updatedRunning(runningD, momentum: Double(momentum))
            ctx.check(compare("running mean", running.mean, em))
            ctx.check(compare("running var", running.variance, ev))
        }
        guard y.requiresGrad else { return }
        let g = try ctx.backward(y)
        let (dx, dw, db) = ref.backward(g, shape: shape, training: training)
        if gx { ctx.check(compareGrad("grad x", xt.grad, dx)) }
        if gw, let wt { ctx.check(compareGrad("grad weight", wt.grad, dw)) }
        if gb, let bt { ctx.check(compareGrad("grad bias", bt.grad, db)) }
    }
}

func batchNormLayerCase(_ r: inout FuzzRandom) -> FuzzCase {
    let twoD = r.chance(0.5)
    var shape = twoD ? [r.int(0...3), r.int(1...3), r.int(0...4), r.int(0...4)] : r.chance(0.7) ? [r.int(0...6), r.int(1...4)] : [r.int(0...4), r.int(1...4), r.int(0...5)]
    if r.chance(0.08) { shape = r.shape(rank: r.rank(0...5), limit: 256) }
    let channels = r.chance(0.85) ? (shape.count >= 2 ? shape[1] : 1) : r.wild(0...4, wildness: 0.5)
    let (affine, track) = (r.chance(0.8), r.chance(0.8))
    let momentum: Float = r.pick([0.1, 0.1, 0.5, 1, 0])
    let regime = r.regime()
    let x = r.values(checkedProduct(shape) ?? 0, regime), x2 = r.values(checkedProduct(shape) ?? 0, .normal)
    let name = twoD ? "BatchNorm2D" : "BatchNorm1D"
    return FuzzCase(op: name, params: "\(name)(\(channels), momentum \(momentum), affine \(affine), trackRunningStats \(track)) on x \(str(shape)) \(regime)") { ctx in
        // PyTorch accepts zero features (an empty layer) and raises for negative ones.
        ctx.referenceValid = channels >= 0 && channels <= 1 << 20
        let layer: BatchNorm = try twoD
            ? BatchNorm2D(channels, momentum: momentum, affine: affine, trackRunningStats: track)
            : BatchNorm1D(channels, momentum: momentum, affine: affine, trackRunningStats: track)
        guard channels >= 0 else { return ctx.fail("\(name)(\(channels)) was created") }
        let names = layer.namedParameters.map(\.name) + layer.namedBuffers.map(\.name)
        let expectedNames = (affine ? ["weight", "bias"] : []) + (track ? ["running_mean", "running_var", "num_batches_tracked"] : [])
        if names != expectedNames { ctx.fail("state_dict names \(names), expected \(expectedNames)") }
        let xt = try ctx.tensor(shape, x)
        let rankOK = twoD ? shape.count == 4 : shape.count == 2 || shape.count == 3
        let valid = rankOK && shape[1] == channels
        let s = shape.count >= 2 ? product(Array(shape.dropFirst(2))) : 0
        let m = shape.count >= 2 ? shape[0] * s : 0
        ctx.referenceValid = valid && m > 1
        let y = try layer(xt)
        guard valid else { return ctx.fail("returned \(str(y.shape)) for input \(str(shape)) where PyTorch raises") }
        guard m > 1 else { return }
        var ref = BatchNormReference(n: shape[0], c: channels, s: s, x: x.map(Double.init), w: nil, b: nil)
        ref.statistics(training: true, running: nil, eps: 1e-5)
        ctx.check(compare("train forward", y, ref.forward(shape: shape)))
        guard track, let rm = layer.runningMean, let rv = layer.runningVar, let nb = layer.batchesTracked else { return }
        guard case .float(let meanT) = rm.value, case .float(let varT) = rv.value else { return ctx.fail("running statistics are not float tensors") }
        let start = (Array(repeating: 0.0, count: channels), Array(repeating: 1.0, count: channels))
        let (em, ev) = ref.updatedRunning(start, momentum: Double(momentum))
        ctx.check(compare("running mean", meanT, em))
        ctx.check(compare("running var", varT, ev))
        if case .int(let t) = nb.value, t.scalars != [1] { ctx.fail("num_batches_tracked \(t.scalars), expected [1]") }
        // Evaluation uses the running statistics just updated.
        layer.eval()
        let x2t = try ctx.tensor(shape, x2)
        let y2 = try layer(x2t)
        var evalRef = BatchNormReference(n: shape[0], c: channels, s: s, x: x2.map(Double.init), w: nil, b: nil)
        evalRef.statistics(training: false, running: (meanT.scalars.map(Double.init), varT.scalars.map(Double.init)), eps: 1e-5)
        ctx.check(compare("eval forward", y2, evalRef.forward(shape: shape)))
    }
}

func dropoutCase(_ r: inout FuzzRandom) -> FuzzCase {
    let p: Float = r.pick([0, 0.5, 0.1, 0.9, 1, 0.25, -0.1, 1.5, .nan, 0.999999])
    let training = r.chance(0.75)
    let shape = r.shape(rank: r.rank(0...4))
    let regime = r.regime()
    let values = r.values(product(shape), regime)
    let grad = r.chance(0.6)
    return FuzzCase(op: "Dropout", params: "p \(p) training \(training) x \(str(shape)) \(regime) grad \(grad)") { ctx in
        let valid = p >= 0 && p <= 1
        ctx.referenceValid = valid
        let layer = try Dropout(p: p)
        guard valid else { return ctx.fail("Dropout(p: \(p)) was created; PyTorch raises") }
        layer.isTraining = training
        let x = try ctx.tensor(shape, values, grad: grad)
        let y = try layer(x)
        guard y.shape == shape else { return ctx.fail("shape \(str(y.shape)), expected \(str(shape))") }
        let out = y.scalars
        let keep = 1 / (1 - Double(p))
        // PyTorch: identity in evaluation or for p = 0; else x * mask with mask in {0, 1/(1-p)} (x * 0 for
        // p = 1), so a dropped Inf or NaN becomes NaN.
        var kept = [Bool?](repeating: nil, count: values.count)
        var dropped = 0, decided = 0
        for i in 0..<values.count {
            let xv = Double(values[i]), o = Double(out[i])
            if !training || p == 0 {
                if !(o == xv || (o.isNaN && xv.isNaN)) { return ctx.fail("element \(i) = \(out[i]), expected the input \(values[i])") }
                continue
            }
            let zero = xv * 0
            let isDropped = o == zero || (o.isNaN && zero.isNaN)
            let scaled = xv * keep
            let isKept = p < 1 && (Double(Float(scaled)) == o || (scaled.isNaN && o.isNaN)
                                   || Swift.abs(o - scaled) <= 4 * unitRoundoff * Swift.abs(scaled))
            if !isDropped && !isKept { return ctx.fail("element \(i) = \(out[i]) is neither \(values[i]) * 0 nor \(values[i]) / (1 - \(p))") }
            if isDropped != isKept {
                kept[i] = isKept
                decided += 1
                if isDropped { dropped += 1 }
            }
        }
        // The share dropped among elements whose fate shows: within 6 standard deviations of p.
        if training && p > 0 && p < 1 && decided >= 20 {
            let mean = Double(decided) * Double(p), sd = (mean * (1 - Double(p))).squareRoot()
            if Swift.abs(Double(dropped) - mean) > 6 * sd + 2 { ctx.fail("dropped \(dropped) of \(decided), expected about \(Int(mean))") }
        }
        guard grad, y.requiresGrad else { return }
        let g = try ctx.backward(y)
        guard let dx = x.grad?.scalars else { return ctx.fail("no gradient") }
        for i in 0..<values.count {
            let d = Double(dx[i])
            let pass = !training || p == 0 ? g[i] : g[i] * keep, stop = g[i] * 0
            let okPass = d == Double(Float(pass)) || (d.isNaN && pass.isNaN) || Swift.abs(d - pass) <= 4 * unitRoundoff * Swift.abs(pass)
            let okStop = d == stop || (d.isNaN && stop.isNaN)
            let ok = !training || p == 0 ? okPass : kept[i] == true ? okPass : kept[i] == false ? okStop : okPass || okStop
            if !ok { return ctx.fail("grad element \(i) = \(dx[i]) for upstream \(g[i]) (kept \(kept[i].map { "\($0)" } ?? "unknown"))") }
        }
    }
}
