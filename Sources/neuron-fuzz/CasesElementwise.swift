import Foundation
import Neuron

// Element-wise arithmetic with broadcasting, scalar arithmetic and the unary maps and activations,
// forward and backward, against PyTorch's formulas in double.

extension FuzzRandom {
    /// A shape that usually broadcasts with `s` (equal, with 1s, with fewer leading axes), sometimes not.
    mutating func broadcastPartner(_ s: [Int]) -> [Int] {
        switch weighted([35, 20, 30, 15]) {
        case 0: return s
        case 1: return Array(s.dropFirst(int(0...s.count)))
        case 2: return s.map { chance(0.4) ? 1 : $0 }
        default: return shape(rank: rank(0...4))
        }
    }
}

func binaryCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["+", "-", "*", "/"])
    var sa = r.shape(rank: r.rank())
    var sb = r.broadcastPartner(sa)
    if r.chance(0.5) { swap(&sa, &sb) }
    let (ra, rb) = (r.regime(), r.regime())
    let va = r.values(product(sa), ra), vb = r.values(product(sb), rb)
    let (ga, gb) = (r.chance(0.6), r.chance(0.6))
    return FuzzCase(op: "binary \(op)", params: "a \(str(sa)) \(ra) grad \(ga), b \(str(sb)) \(rb) grad \(gb)") { ctx in
        let a = try ctx.tensor(sa, va, grad: ga), b = try ctx.tensor(sb, vb, grad: gb)
        let out = broadcastShape(sa, sb)
        ctx.referenceValid = out != nil
        let y: Tensor
        switch op {
        case "+": y = try a + b
        case "-": y = try a - b
        case "*": y = try a * b
        default: y = try a / b
        }
        guard let out else { return ctx.fail("returned \(str(y.shape)) for \(str(sa)) \(op) \(str(sb)), which do not broadcast") }
        let ia = broadcastSources(sa, to: out), ib = broadcastSources(sb, to: out)
        let x = va.map(Double.init), z = vb.map(Double.init)
        let v: [Double] = (0..<product(out)).map { i in
            let p = x[ia[i]], q = z[ib[i]]
            switch op {
            case "+": return p + q
            case "-": return p - q
            case "*": return p * q
            default: return p / q
            }
        }
        ctx.check(compare("forward", y, Ref(shape: out, rounded: v, ulps: 0)))
        guard ga || gb else { return }
        let g = try ctx.backward(y)
        let n = product(out)
        if ga {
            // PyTorch: add/sub pass g; mul g*b; div g/b. Each term one rounding, then the broadcast sum.
            var terms = [Double](repeating: 0, count: n)
            for i in 0..<n {
                switch op {
                case "*": terms[i] = g[i] * z[ib[i]]
                case "/": terms[i] = g[i] / z[ib[i]]
                default: terms[i] = g[i]
                }
            }
            let red = reduceBroadcast(terms, terms.map(mag), from: out, to: sa)
            var ref = Ref(shape: sa, v: red.v, s: red.s, terms: red.terms)
            let c = (0..<n).map { i in op == "*" ? Chain(g[i], z[ib[i]]) : op == "/" ? Chain(g[i], 1 / z[ib[i]]) : Chain(g[i]) }
            ref.intermediate = reduceBroadcast(c.map(\.intermediate), c.map(\.intermediate), from: out, to: sa).s
            ref.bound = reduceBroadcast(c.map(\.bound), c.map(\.bound), from: out, to: sa).s
            ctx.check(compareGrad("grad a", a.grad, ref))
        }
        if gb {
            // PyTorch: sub -g; mul g*a; div -g * ((a / b) / b).
            var terms = [Double](repeating: 0, count: n)
            for i in 0..<n {
                switch op {
                case "+": terms[i] = g[i]
                case "-": terms[i] = -g[i]
                case "*": terms[i] = g[i] * x[ia[i]]
                default: terms[i] = -g[i] * ((x[ia[i]] / z[ib[i]]) / z[ib[i]])
                }
            }
            let red = reduceBroadcast(terms, terms.map(mag), from: out, to: sb)
            var ref = Ref(shape: sb, v: red.v, s: red.s, terms: red.terms, ulps: 6)
            // For division a / b may overflow or underflow (in PyTorch too) where -g (a / b) / b does not.
            let c = (0..<n).map { i in
                op == "*" ? Chain(g[i], x[ia[i]]) : op == "/" ? Chain(g[i], x[ia[i]], 1 / z[ib[i]], 1 / z[ib[i]]) : Chain(g[i])
            }
            ref.intermediate = reduceBroadcast(c.map(\.intermediate), c.map(\.intermediate), from: out, to: sb).s
            ref.bound = reduceBroadcast(c.map(\.bound), c.map(\.bound), from: out, to: sb).s
            ctx.check(compareGrad("grad b", b.grad, ref))
        }
    }
}

func scalarCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["t+s", "s+t", "t-s", "s-t", "t*s", "s*t", "t/s", "affine"])
    let shape = r.shape(rank: r.rank())
    let regime = r.regime()
    let values = r.values(product(shape), regime)
    let s = r.value(r.chance(0.2) ? .special : .normal), shift = r.value(r.chance(0.2) ? .special : .normal)
    let grad = r.chance(0.6)
    return FuzzCase(op: "scalar \(op)", params: "x \(str(shape)) \(regime) s \(s) shift \(shift) grad \(grad)") { ctx in
        let t = try ctx.tensor(shape, values, grad: grad)
        ctx.referenceValid = true
        let y: Tensor
        switch op {
        case "t+s": y = t + s
        case "s+t": y = s + t
        case "t-s": y = t - s
        case "s-t": y = s - t
        case "t*s": y = t * s
        case "s*t": y = s * t
        case "t/s": y = t / s
        default: y = t.affine(scale: s, shift: shift)
        }
        let x = values.map(Double.init), d = Double(s), b = Double(shift)
        let v: [Double], sc: [Double]
        switch op {
        case "t+s", "s+t": (v, sc) = (x.map { $0 + d }, x.map { mag($0) + mag(d) })
        case "t-s": (v, sc) = (x.map { $0 - d }, x.map { mag($0) + mag(d) })
        case "s-t": (v, sc) = (x.map { d - $0 }, x.map { mag($0) + mag(d) })
        case "t*s", "s*t": (v, sc) = (x.map { $0 * d }, x.map { mag($0 * d) })
        // PyTorch divides each element by the scalar (a reciprocal would overflow for subnormal s).
        case "t/s": (v, sc) = (x.map { $0 / d }, x.map { mag($0 / d) })
        default: (v, sc) = (x.map { d * $0 + b }, x.map { mag(d * $0) + mag(b) })
        }
        ctx.check(compare("forward", y, Ref(shape: shape, v: v, s: sc, terms: 2)))
        guard grad else { return }
        let g = try ctx.backward(y)
        let dv: [Double]
        switch op {
        case "t+s", "s+t", "t-s": dv = g
        case "s-t": dv = g.map { -$0 }
        case "t*s", "s*t", "affine": dv = g.map { $0 * d }
        default: dv = g.map { $0 / d }
        }
        ctx.check(compareGrad("grad", t.grad, Ref(shape: shape, v: dv, s: dv.map(mag), terms: 2)))
    }
}

/// PyTorch's sign: 0 for NaN (`(0 < x) - (x < 0)`).
func torchSign(_ x: Double) -> Double { x > 0 ? 1 : x < 0 ? -1 : 0 }

func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x)) }

func unaryCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["neg", "exp", "log", "sqrt", "squared", "abs", "sign", "pow", "clamped", "relu", "leakyRelu", "sigmoid", "tanh"])
    let shape = r.shape(rank: r.rank())
    let regime = op == "log" || op == "sqrt" ? (r.chance(0.6) ? .positive : r.regime()) : r.regime()
    let values = r.values(product(shape), regime)
    let p: Float = r.pick([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, r.value(.normal)])
    var lo = r.value(r.chance(0.2) ? .special : .normal), hi = r.value(r.chance(0.2) ? .special : .normal)
    if lo.isNaN { lo = -.infinity }
    if hi.isNaN { hi = .infinity }
    if r.chance(0.7) && lo > hi { swap(&lo, &hi) }
    let slope: Float = r.chance(0.3) ? r.value(.special) : r.pick([0.01, 0.2, 0, -0.5, 1])
    let grad = r.chance(0.6)
    let layer = ["relu", "leakyRelu", "sigmoid", "tanh"].contains(op) && r.chance(0.2)
    var extra = layer ? " (layer)" : ""
    if op == "pow" { extra = " p \(p)" }
    if op == "clamped" { extra = " lo \(lo) hi \(hi)" }
    if op == "leakyRelu" { extra = " slope \(slope)" }
    return FuzzCase(op: "unary \(op)", params: "x \(str(shape)) \(regime)\(extra) grad \(grad)") { ctx in
        let t = try ctx.tensor(shape, values, grad: grad)
        ctx.referenceValid = true
        let y: Tensor
        switch op {
        case "neg": y = -t
        case "exp": y = t.exp()
        case "log": y = t.log()
        case "sqrt": y = t.sqrt()
        case "squared": y = t.squared()
        case "abs": y = t.abs()
        case "sign": y = t.sign()
        case "pow": y = t.pow(p)
        case "clamped": y = t.clamped(min: lo, max: hi)
        case "relu": y = try layer ? ReLU()(t) : t.relu()
        case "leakyRelu": y = try layer ? LeakyReLU(negativeSlope: slope)(t) : t.leakyRelu(negativeSlope: slope)
        case "sigmoid": y = try layer ? Sigmoid()(t) : t.sigmoid()
        default: y = try layer ? Tanh()(t) : t.tanh()
        }
        let x = values.map(Double.init)
        let dp = Double(p), dlo = Double(lo), dhi = Double(hi), ds = Double(slope)
        let f: (Double) -> Double
        switch op {
        case "neg": f = { -$0 }
        case "exp": f = { Foundation.exp($0) }
        case "log": f = { Foundation.log($0) }
        case "sqrt": f = { $0.squareRoot() }
        case "squared": f = { $0 * $0 }
        case "abs": f = { Swift.abs($0) }
        case "sign": f = torchSign
        case "pow": f = { Foundation.pow($0, dp) }
        // torch.clamp propagates NaN; with lo > hi every element becomes hi.
        case "clamped": f = { $0.isNaN ? $0 : Swift.min(Swift.max($0, dlo), dhi) }
        // torch.relu propagates NaN (clamp_min).
        case "relu": f = { $0.isNaN ? $0 : Swift.max($0, 0) }
        case "leakyRelu": f = { $0 > 0 ? $0 : $0 * ds }
        case "sigmoid": f = sigmoid
        default: f = { Foundation.tanh($0) }
        }
        let v = x.map(f)
        ctx.check(compare("forward", y, Ref(shape: shape, rounded: v, ulps: op == "pow" ? 8 : 4)))
        // sign() is documented as not differentiable (PyTorch's gradient is zero there).
        guard grad, y.requiresGrad || op != "sign" else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: x.count), sc = [Double](repeating: 0, count: x.count)
        var atBound: [(Int, Double)] = []
        var chains = [Chain](repeating: Chain(), count: x.count)
        for i in 0..<x.count {
            // PyTorch's derivatives read the float32 result of the forward (so exp(100) is Inf there).
            let (xi, gi, yi) = (x[i], g[i], Double(Float(v[i])))
            switch op {
            case "neg": dv[i] = -gi
            case "exp": dv[i] = gi * yi
            case "log": dv[i] = gi / xi
            case "sqrt": dv[i] = gi / (2 * yi)
            case "squared": dv[i] = gi * 2 * xi
            case "abs": dv[i] = gi * torchSign(xi)
            case "sign": dv[i] = 0
            // PyTorch's pow_backward: zero where the exponent is 0, else g * p * x^(p-1).
            case "pow": dv[i] = dp == 0 ? 0 : gi * dp * Foundation.pow(xi, dp - 1)
            // PyTorch's clamp_backward: the gradient passes where lo < x < hi; exactly at a bound,
            // PyTorch 2 gives 0 and earlier versions (and Neuron) pass it, so both are accepted.
            case "clamped":
                dv[i] = xi > dlo && xi < dhi ? gi : 0
                if xi == dlo || xi == dhi, dlo <= dhi { atBound.append((i, gi)) }
            // threshold_backward on the result: zero where y <= 0 (so NaN passes the gradient).
            case "relu": dv[i] = yi <= 0 ? 0 : gi
            case "leakyRelu": dv[i] = xi > 0 ? gi : gi * ds
            case "sigmoid": dv[i] = gi * yi * (1 - yi)
            default: dv[i] = gi * (1 - yi * yi)
            }
            // sigmoid and tanh differentiate through their rounded output: 1 - y loses y's last bits.
            switch op {
            case "sigmoid": sc[i] = mag(gi * yi) * (1 + mag(yi))
            case "tanh": sc[i] = mag(gi) * (1 + mag(yi * yi))
            default: sc[i] = mag(dv[i])
            }
            // The factors multiplied one at a time: 2x or x^(p-1) may overflow float32 (in PyTorch too)
            // where the exact gradient does not, and partial products may underflow.
            switch op {
            case "exp": chains[i] = Chain(gi, yi)
            case "log": chains[i] = Chain(gi, 1 / xi)
            case "sqrt": chains[i] = Chain(gi, 1 / (2 * yi))
            case "squared": chains[i] = Chain(gi, 2, xi)
            case "pow": chains[i] = Chain(gi, dp, Foundation.pow(xi, dp - 1))
            case "sigmoid": chains[i] = Chain(gi, yi, 1 - yi)
            case "tanh": chains[i] = Chain(gi, 1 - yi * yi)
            case "leakyRelu": chains[i] = Chain(gi, ds)
            default: chains[i] = Chain(gi)
            }
        }
        var ref = Ref(shape: shape, v: dv, s: sc, terms: 4, ulps: 8)
        ref.chains(chains)
        if !atBound.isEmpty {
            ref.alternative = dv
            for (i, gi) in atBound { ref.alternative![i] = gi }
        }
        ctx.check(compareGrad("grad", t.grad, ref))
    }
}

/// A short differentiable chain, sum(f(x * a)), through the tape: the scalar seed of `backward()`,
/// accumulation over two passes with `retainGraph`, a second pass over a released graph, a seed of the
/// wrong shape, and `noGrad`.
func autogradCase(_ r: inout FuzzRandom) -> FuzzCase {
    let f = r.pick(["tanh", "exp", "sigmoid", "relu", "squared"])
    let sx = r.shape(rank: r.rank(0...3), limit: 256)
    let sa = r.chance(0.7) ? Array(sx.suffix(r.int(0...sx.count))).map { r.chance(0.3) ? 1 : $0 } : sx
    let regime: ValueRegime = r.chance(0.8) ? .normal : r.regime()
    let vx = r.values(product(sx), regime), va = r.values(product(sa), .normal)
    let mode = r.pick(["once", "twice retained", "twice released", "bad seed", "noGrad"])
    return FuzzCase(op: "autograd", params: "sum(\(f)(x * a)) x \(str(sx)) \(regime) a \(str(sa)) \(mode)") { ctx in
        let x = try ctx.tensor(sx, vx, grad: true), a = try ctx.tensor(sa, va)
        ctx.referenceValid = true
        func forward() throws -> Tensor {
            let t = try x * a
            switch f {
            case "tanh": return t.tanh().sum()
            case "exp": return t.exp().sum()
            case "sigmoid": return t.sigmoid().sum()
            case "relu": return t.relu().sum()
            default: return t.squared().sum()
            }
        }
        if mode == "noGrad" {
            let y = try noGrad { try forward() }
            if y.requiresGrad { ctx.fail("a result computed under noGrad requires gradients") }
            ctx.referenceValid = false
            try y.backward()
            return ctx.fail("backward() of a tensor computed under noGrad did not throw")
        }
        let y = try forward()
        guard let out = broadcastShape(sx, sa), out == sx else { return }
        if mode == "bad seed" {
            ctx.referenceValid = false
            try y.backward(Tensor.zeros([2]))
            return ctx.fail("backward with a seed of shape [2] for a scalar did not throw")
        }
        try y.backward(retainGraph: mode == "twice retained")
        if mode != "once" {
            if mode == "twice released" { ctx.referenceValid = false }
            try y.backward()
            if mode == "twice released" { return ctx.fail("a second backward through a released graph did not throw") }
        }
        // dx = a f'(x a), with f' read from the float32 forward value as PyTorch does, summed over the
        // broadcast of a (none here: a broadcasts to x's shape) and doubled for two passes.
        let src = broadcastSources(sa, to: sx)
        let passes = mode == "once" ? 1.0 : 2.0
        var dv = [Double](repeating: 0, count: vx.count), sc = dv
        for i in 0..<vx.count {
            let ad = Double(va[src[i]])
            let t = Double(Float(Double(vx[i]) * ad))
            let d: Double
            switch f {
            case "tanh": let y = Double(Float(Foundation.tanh(t))); d = 1 - y * y
            case "exp": d = Double(Float(Foundation.exp(t)))
            case "sigmoid": let y = Double(Float(sigmoid(t))); d = y * (1 - y)
            case "relu": d = t > 0 || t.isNaN ? 1 : 0
            default: d = 2 * t
            }
            dv[i] = passes * ad * d
            sc[i] = passes * mag(ad) * (mag(d) + 1) * (1 + mag(t))
        }
        ctx.check(compareGrad("grad x", x.grad, Ref(shape: sx, v: dv, s: sc, terms: 8)))
    }
}
