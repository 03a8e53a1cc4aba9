import Foundation
import Neuron

// Losses. Neuron refuses a NaN or infinite loss with `NeuronError.nonFinite` (PyTorch returns it), so
// where the reference loss is not finite the library must throw; where it is finite, a result must match.

extension Reduction {
    var name: String { self == .mean ? "mean" : self == .sum ? "sum" : "none" }
}

/// Reduces per-element losses (values, scales) as PyTorch does; `terms` is the per-element chain length.
private func reduceLoss(_ v: [Double], _ s: [Double], _ reduction: Reduction, shape: [Int], terms: Int) -> Ref {
    switch reduction {
    case .none: return Ref(shape: shape, v: v, s: s, terms: terms)
    case .sum: return Ref(shape: [], v: [v.reduce(0, +)], s: [s.reduce(0, +)], terms: terms + v.count)
    case .mean:
        let n = Double(v.count)
        return Ref(shape: [], v: [v.reduce(0, +) / n], s: [s.reduce(0, +) / n], terms: terms + v.count + 1)
    }
}

/// Checks a loss forward: a throw where the reference is not finite; a finite match otherwise.
private func checkLoss(_ ctx: Ctx, _ y: Tensor, _ exp: Ref) -> Bool {
    if exp.v.contains(where: { !$0.isFinite }) && exp.s.allSatisfy({ $0 < floatMax / 2 }) {
        ctx.fail("returned \(y.shape.isEmpty ? "\(y.scalars.first ?? 0)" : str(y.shape)) where the loss is not finite (expected NeuronError.nonFinite)")
        return false
    }
    ctx.check(compare("loss", y, exp))
    return true
}

func elementLossCase(_ r: inout FuzzRandom) -> FuzzCase {
    let kind = r.pick(["mse", "bce", "bceWithLogits"])
    let reduction = r.pick([Reduction.mean, .sum, .none])
    let shape = r.shape(rank: r.rank(0...3))
    var targetShape = shape
    if r.chance(0.08) { targetShape = r.broadcastPartner(shape) }
    let pRegime: ValueRegime = kind == "bce" && r.chance(0.8) ? .positive : r.regime()
    let tRegime: ValueRegime = kind != "mse" && r.chance(0.7) ? .positive : r.regime()
    let p = r.values(product(shape), pRegime)
    var t = r.values(product(targetShape), tRegime)
    if kind != "mse" && r.chance(0.5) { t = t.map { $0 < 0.5 ? 0 : 1 } }
    let grad = r.chance(0.6)
    return FuzzCase(op: kind, params: "prediction \(str(shape)) \(pRegime), target \(str(targetShape)) \(tRegime), \(reduction.name), grad \(grad)") { ctx in
        let pt = try ctx.tensor(shape, p, grad: grad), tt = try ctx.tensor(targetShape, t)
        // PyTorch's binary_cross_entropy raises unless every probability is in [0, 1].
        let valid = shape == targetShape && !(kind == "bce" && p.contains { !($0 >= 0 && $0 <= 1) })
        ctx.referenceValid = valid && (reduction != .mean || !p.isEmpty)
        let y: Tensor
        switch kind {
        case "mse": y = try mseLoss(pt, tt, reduction: reduction)
        case "bce": y = try binaryCrossEntropy(pt, tt, reduction: reduction)
        default: y = try binaryCrossEntropyWithLogits(pt, tt, reduction: reduction)
        }
        guard valid else { return ctx.fail("returned \(str(y.shape)) for prediction \(str(shape)) and target \(str(targetShape))" + (kind == "bce" ? " (probabilities outside [0, 1]?)" : "")) }
        let x = p.map(Double.init), z = t.map(Double.init)
        var v = [Double](repeating: 0, count: x.count), s = v
        for i in 0..<x.count {
            switch kind {
            case "mse":
                v[i] = (x[i] - z[i]) * (x[i] - z[i])
                s[i] = (mag(x[i]) + mag(z[i])) * (mag(x[i]) + mag(z[i]))
            case "bce":
                // -(t log p + (1 - t) log(1 - p)), each log clamped at -100.
                let lp = Swift.max(Foundation.log(x[i]), -100), lq = Swift.max(Foundation.log(1 - x[i]), -100)
                v[i] = -(z[i] * lp + (1 - z[i]) * lq)
                s[i] = mag(z[i] * lp) + mag((1 - z[i]) * lq) + mag(z[i]) + 1
            default:
                // PyTorch: (1 - t) z + m + log(exp(-m) + exp(-z - m)), m = max(-z, 0).
                let m = Swift.max(-x[i], 0)
                let l = Foundation.log(Foundation.exp(-m) + Foundation.exp(-x[i] - m))
                v[i] = (1 - z[i]) * x[i] + m + l
                s[i] = mag((1 - z[i]) * x[i]) + mag(x[i] * z[i]) + mag(m) + mag(l) + 1
            }
        }
        let exp = reduceLoss(v, s, reduction, shape: shape, terms: 6)
        guard checkLoss(ctx, y, exp), grad else { return }
        let g = try ctx.backward(y)
        let scale = reduction == .mean ? 1 / Double(x.count) : 1
        var dv = [Double](repeating: 0, count: x.count), ds = dv, bound = dv
        for i in 0..<x.count {
            let gi = reduction == .none ? g[i] : g[0] * scale
            switch kind {
            case "mse":
                dv[i] = 2 * (x[i] - z[i]) * gi
                ds[i] = 2 * (mag(x[i]) + mag(z[i])) * mag(gi)
            case "bce":
                // PyTorch: g (p - t) / max((1 - p) p, 1e-12).
                let den = Swift.max((1 - x[i]) * x[i], 1e-12)
                dv[i] = gi * (x[i] - z[i]) / den
                ds[i] = mag(gi) * (mag(x[i]) + mag(z[i])) / den * (1 + mag(x[i]) / den)
                // A subnormal numerator's absolute rounding is amplified by the division.
                bound[i] = 4 * subnormalStep / den
            default:
                // PyTorch: g (sigmoid(z) - t), the sigmoid in float32 (so it underflows to 0 there).
                dv[i] = gi * (Double(Float(sigmoid(x[i]))) - z[i])
                ds[i] = mag(gi) * (mag(sigmoid(x[i])) + mag(z[i]))
            }
        }
        var ref = Ref(shape: shape, v: dv, s: ds, terms: 6)
        ref.bound = bound
        ctx.check(compareGrad("grad", pt.grad, ref))
    }
}

func crossEntropyCase(_ r: inout FuzzRandom) -> FuzzCase {
    let withLabels = r.chance(0.6)
    let reduction = r.pick([Reduction.mean, .sum, .none])
    var shape = [r.dim(), r.dim()]
    if r.chance(0.06) { shape = r.shape(rank: r.rank(0...3)) }
    let (rows, classes) = shape.count == 2 ? (shape[0], shape[1]) : (shape.first ?? 1, 1)
    var labels = (0..<rows).map { _ in classes > 0 ? r.int(0...(classes - 1)) : 0 }
    if r.chance(0.1) && !labels.isEmpty { labels[r.int(0...(labels.count - 1))] = r.pick([-1, classes, Int.max, Int.min]) }
    if r.chance(0.05) { labels.append(0) }
    let regime = r.regime()
    let logits = r.values(product(shape), regime)
    var targetShape = shape
    if r.chance(0.05) { targetShape = r.broadcastPartner(shape) }
    let soft = r.chance(0.5)
    let targets = r.values(product(targetShape), soft ? .positive : .integers).map { soft ? $0 : Float(Swift.max(0, $0) > 1 ? 1 : 0) }
    let grad = r.chance(0.6)
    let detail = withLabels ? "labels \(labels)" : "targets \(str(targetShape)) \(soft ? "soft" : "0/1")"
    return FuzzCase(op: "crossEntropy", params: "logits \(str(shape)) \(regime), \(detail), \(reduction.name), grad \(grad)") { ctx in
        let z = try ctx.tensor(shape, logits, grad: grad)
        var valid = shape.count == 2
        if withLabels {
            valid = valid && labels.count == rows && labels.allSatisfy { $0 >= 0 && $0 < classes }
        } else {
            valid = valid && targetShape == shape
        }
        // PyTorch gives NaN for the mean over no rows; Neuron throws (acceptable).
        ctx.referenceValid = valid && (rows > 0 || reduction == .none)
        let y: Tensor
        if withLabels {
            y = try crossEntropy(z, labels: labels, reduction: reduction)
        } else {
            y = try crossEntropy(z, targets: try ctx.tensor(targetShape, targets), reduction: reduction)
        }
        guard valid else { return ctx.fail("returned \(str(y.shape)) for logits \(str(shape)) and \(detail)") }
        let x = logits.map(Double.init), t = targets.map(Double.init)
        // Per row: log-softmax (see softmaxCase for its error scale), then -logp[label] or -Σ t logp.
        var loss = [Double](repeating: 0, count: rows), ls = loss
        var logp = [Double](repeating: 0, count: x.count), lps = logp, prob = logp
        for i in 0..<rows {
            var m = -Double.infinity
            for j in 0..<classes { let e = x[i * classes + j]; m = e.isNaN || m.isNaN ? .nan : Swift.max(m, e) }
            var sum = 0.0
            for j in 0..<classes { sum += Foundation.exp(x[i * classes + j] - m) }
            for j in 0..<classes {
                let k = i * classes + j
                logp[k] = (x[k] - m) - Foundation.log(sum)
                lps[k] = mag(x[k] - m) + mag(Foundation.log(sum)) + 1
                // The float32 softmax PyTorch's backward reads (it underflows to 0 where double does not).
                prob[k] = Double(Float(Foundation.exp(x[k] - m) / sum))
            }
            if withLabels {
                loss[i] = -logp[i * classes + labels[i]]
                ls[i] = lps[i * classes + labels[i]]
            } else {
                // Neuron's documented convention (loss.c): a zero target weight contributes nothing, so
                // 0 · log 0 counts as 0 as it does with class labels (PyTorch multiplies and gets NaN).
                for j in 0..<classes where t[i * classes + j] != 0 {
                    let k = i * classes + j
                    loss[i] -= t[k] * logp[k]
                    ls[i] += mag(t[k]) * lps[k]
                }
            }
        }
        let exp = reduceLoss(loss, ls, reduction, shape: [rows], terms: classes + 4)
        guard checkLoss(ctx, y, exp), grad else { return }
        let g = try ctx.backward(y)
        let scale = reduction == .mean ? 1 / Double(rows) : 1
        var dv = [Double](repeating: 0, count: x.count), ds = dv
        for i in 0..<rows {
            let gi = reduction == .none ? g[i] : g[0] * scale
            // d/dz of -Σ_j t_j log_softmax(z)_j = softmax(z) Σ_j t_j - t (PyTorch's autograd; Σ t = 1 for labels).
            var tsum = 1.0
            if !withLabels { tsum = (0..<classes).reduce(0.0) { $0 + t[i * classes + $1] } }
            for j in 0..<classes {
                let k = i * classes + j
                let target = withLabels ? (labels[i] == j ? 1.0 : 0.0) : t[k]
                dv[k] = gi * (prob[k] * tsum - target)
                ds[k] = mag(gi) * (mag(prob[k] * tsum) * (1 + lps[k]) + mag(target))
            }
        }
        ctx.check(compareGrad("grad", z.grad, Ref(shape: shape, v: dv, s: ds, terms: classes + 6)))
    }
}

func penaltyCase(_ r: inout FuzzRandom) -> FuzzCase {
    let l1 = r.chance(0.5)
    let shapes = (0..<r.int(0...3)).map { _ in r.shape(rank: r.rank(0...3), limit: 128) }
    let values = shapes.map { r.values(product($0), r.regime()) }
    let lambda = r.value(r.chance(0.2) ? .special : .positive)
    return FuzzCase(op: l1 ? "l1Penalty" : "l2Penalty", params: "parameters \(shapes.map(str)) lambda \(lambda)") { ctx in
        let params = try zip(shapes, values).map { Parameter(try ctx.tensor($0, $1)) }
        ctx.referenceValid = true
        let y = try l1 ? l1Penalty(params, lambda: lambda) : l2Penalty(params, lambda: lambda)
        let lam = Double(lambda)
        var sum = 0.0, sc = 0.0
        for vs in values { for e in vs {
            let d = Double(e)
            sum += l1 ? Swift.abs(d) : d * d
            sc += l1 ? mag(d) : mag(d * d)
        } }
        let total = values.reduce(0) { $0 + $1.count }
        // The sum is rounded to float32 before the multiplication by lambda, so it may overflow on its own.
        var ref = Ref(shape: [], v: [sum * lam], s: [sc * mag(lam)], terms: total + shapes.count + 3)
        ref.intermediate = [sc * Swift.max(1, mag(lam))]
        ctx.check(compare("forward", y, ref))
        guard y.requiresGrad else { return }
        let g = try ctx.backward(y)
        for (k, p) in params.enumerated() {
            let dv = values[k].map { e -> Double in
                let d = Double(e)
                return l1 ? g[0] * lam * torchSign(d) : g[0] * lam * 2 * d
            }
            // 2w may overflow before the multiplication by the upstream gradient (PyTorch's order too).
            var ref = Ref(shape: shapes[k], v: dv, s: dv.map(mag), terms: 4)
            ref.chains(values[k].map { Chain(g[0], lam, 2, Double($0)) })
            ctx.check(compareGrad("grad \(k)", p.grad, ref))
        }
    }
}
