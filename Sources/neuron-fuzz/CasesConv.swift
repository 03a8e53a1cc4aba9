import Foundation
import Neuron

// Convolution and pooling over NCHW, with wild strides, paddings, dilations, groups and kernel sizes.

/// Largest output the reference computes; beyond it only the shape of a returned result is checked.
let referenceOutputLimit = 1 << 16
/// Largest number of multiply-adds the reference spends on one case.
let referenceWorkLimit = 1 << 22

/// floor((n + p0 + p1 - d (k - 1) - 1) / s) + 1 in exact arithmetic; nil on Int overflow.
func convOutputSize(_ n: Int, k: Int, s: Int, p0: Int, p1: Int, d: Int) -> Int? {
    let (span, o1) = d.multipliedReportingOverflow(by: k - 1)
    guard !o1, k >= 1 else { return nil }
    let (a, o2) = n.addingReportingOverflow(p0)
    let (b, o3) = a.addingReportingOverflow(p1)
    let (c, o4) = b.subtractingReportingOverflow(span)
    guard !o2, !o3, !o4, c >= 1 else { return c >= 1 ? nil : 0 }
    return (c - 1) / s + 1
}

/// A tensor dimension for a convolution or pooling input: small, or wild when another axis is 0
/// (so the tensor stays empty and can exist).
extension FuzzRandom {
    mutating func spatial(_ typical: ClosedRange<Int>, emptyTensor: Bool) -> Int {
        emptyTensor && chance(0.2) ? pick([1 << 31, 1 << 32, Int(Int32.max), 1 << 40]) : int(typical)
    }

    mutating func size2D(_ typical: ClosedRange<Int>, wildness: Double) -> Size2D {
        chance(0.6) ? { let v = wild(typical, wildness: wildness); return Size2D(v, v) }()
            : Size2D(wild(typical, wildness: wildness), wild(typical, wildness: wildness))
    }
}

/// Everything a convolution needs, generated together so the shapes are usually consistent.
struct ConvSetup {
    var x: [Int], w: [Int], b: [Int]?
    var stride: Size2D, padding: Padding2D, dilation: Size2D, groups: Int

    var description: String {
        "x \(str(x)) weight \(str(w)) bias \(b.map(str) ?? "nil") stride \(stride) padding \(padding) dilation \(dilation) groups \(groups)"
    }

    static func generate(_ r: inout FuzzRandom) -> ConvSetup {
        let groups = r.chance(0.9) ? r.pick([1, 1, 1, 2, 3]) : r.pick([0, -1, 4, 1 << 31, Int.max])
        let g = Swift.max(groups, 1) > 8 ? 1 : Swift.max(groups, 1)
        let cpg = r.int(0...3), opg = r.int(0...3)
        var n = r.int(0...3)
        var cin = g * cpg, cout = g * opg
        if r.chance(0.1) { cin = r.int(0...6) }
        if r.chance(0.1) { cout = r.int(0...6) }
        if r.chance(0.05) { n = 0 }
        let xEmpty = n == 0 || cin == 0
        let h = r.spatial(0...10, emptyTensor: xEmpty), wd = r.spatial(0...10, emptyTensor: xEmpty)
        let wIn = r.chance(0.95) ? cpg : r.int(0...4)
        let wEmpty = cout == 0 || wIn == 0
        let kh = wEmpty && r.chance(0.2) ? r.pick([0, 1 << 31, Int(Int32.max)]) : r.int(1...4)
        let kw = wEmpty && r.chance(0.2) ? r.pick([0, 1 << 31, Int(Int32.max)]) : r.int(1...4)
        var wShape = [cout, wIn, kh, kw]
        if r.chance(0.03) { wShape = r.shape(rank: r.rank(0...5), limit: 64) }
        var xShape = [n, cin, h, wd]
        if r.chance(0.03) { xShape = r.shape(rank: r.rank(0...5), limit: 256) }
        let bias: [Int]? = r.chance(0.3) ? nil : r.chance(0.95) ? [cout] : [cout + 1]
        let stride = r.size2D(1...3, wildness: 0.08)
        let padding: Padding2D
        switch r.int(0...2) {
        case 0: padding = Padding2D(integerLiteral: r.wild(0...2, wildness: 0.08))
        case 1: padding = [r.wild(0...2, wildness: 0.08), r.wild(0...2, wildness: 0.08)]
        default: padding = Padding2D(top: r.wild(0...2, wildness: 0.06), bottom: r.wild(0...2, wildness: 0.06),
                                     left: r.wild(0...2, wildness: 0.06), right: r.wild(0...2, wildness: 0.06))
        }
        let dilation = r.size2D(1...3, wildness: 0.08)
        return ConvSetup(x: xShape, w: wShape, b: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// The output shape PyTorch gives, nil when it raises (or Int arithmetic overflows).
    var outputShape: [Int]? {
        guard x.count == 4, w.count == 4, stride.height >= 1, stride.width >= 1, dilation.height >= 1, dilation.width >= 1,
              [padding.top, padding.bottom, padding.left, padding.right].allSatisfy({ $0 >= 0 }), groups >= 1,
              x[1] % groups == 0, w[0] % groups == 0 else { return nil }
        let (cin, o) = w[1].multipliedReportingOverflow(by: groups)
        guard !o, cin == x[1], b == nil || b! == [w[0]] else { return nil }
        guard let oh = convOutputSize(x[2], k: w[2], s: stride.height, p0: padding.top, p1: padding.bottom, d: dilation.height),
              let ow = convOutputSize(x[3], k: w[3], s: stride.width, p0: padding.left, p1: padding.right, d: dilation.width),
              oh >= 1, ow >= 1 else { return nil }
        let out = [x[0], w[0], oh, ow]
        return checkedProduct(out) == nil ? nil : out
    }
}

/// Forward and backward of a convolution in double, one tap at a time, with PyTorch's definition
/// (taps outside the image read zero). `dense` also multiplies the weight by the zeros of the padding,
/// as im2col does, which only matters where the weight is Inf or NaN.
struct ConvReference {
    let s: ConvSetup
    let oh: Int, ow: Int
    let x: [Double], w: [Double], b: [Double]?

    func forward() -> Ref {
        let (n, cin, h, wd) = (s.x[0], s.x[1], s.x[2], s.x[3])
        let (cout, cpg, kh, kw) = (s.w[0], s.w[1], s.w[2], s.w[3])
        let opg = cout / s.groups
        let count = n * cout * oh * ow
        var v = [Double](repeating: 0, count: count), sc = v, lenient = [Bool](repeating: false, count: count)
        for b0 in 0..<n { for o in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
            let g = o / opg
            var acc = b?[o] ?? 0, mags = mag(b?[o] ?? 0), padded = 0.0
            for c in 0..<cpg { for i in 0..<kh { for j in 0..<kw {
                let wv = w[((o * cpg + c) * kh + i) * kw + j]
                let ih = oy * s.stride.height - s.padding.top + i * s.dilation.height
                let iw = ox * s.stride.width - s.padding.left + j * s.dilation.width
                if ih >= 0 && ih < h && iw >= 0 && iw < wd {
                    let p = x[((b0 * cin + g * cpg + c) * h + ih) * wd + iw] * wv
                    acc += p
                    mags += mag(p)
                } else {
                    padded += 0 * wv
                }
            } } }
            let k = ((b0 * cout + o) * oh + oy) * ow + ox
            v[k] = acc
            sc[k] = mags
            lenient[k] = !(acc + padded).isFinite
        } } } }
        var ref = Ref(shape: [n, cout, oh, ow], v: v, s: sc, terms: cpg * kh * kw + 1)
        ref.lenient = lenient
        return ref
    }

    /// (dx, dw, db) for upstream dy, each with the documented lenience where inputs hold Inf or NaN.
    func backward(_ dy: [Double]) -> (dx: Ref, dw: Ref, db: Ref) {
        let (n, cin, h, wd) = (s.x[0], s.x[1], s.x[2], s.x[3])
        let (cout, cpg, kh, kw) = (s.w[0], s.w[1], s.w[2], s.w[3])
        let opg = cout / s.groups
        var dx = [Double](repeating: 0, count: x.count), dxs = dx, dxk = [Int](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count), dws = dw
        var db = [Double](repeating: 0, count: cout), dbs = db
        for b0 in 0..<n { for o in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
            let g = o / opg
            let d = dy[((b0 * cout + o) * oh + oy) * ow + ox]
            db[o] += d
            dbs[o] += mag(d)
            for c in 0..<cpg { for i in 0..<kh { for j in 0..<kw {
                let ih = oy * s.stride.height - s.padding.top + i * s.dilation.height
                let iw = ox * s.stride.width - s.padding.left + j * s.dilation.width
                guard ih >= 0 && ih < h && iw >= 0 && iw < wd else { continue }
                let wi = ((o * cpg + c) * kh + i) * kw + j, xi = ((b0 * cin + g * cpg + c) * h + ih) * wd + iw
                dx[xi] += w[wi] * d
                dxs[xi] += mag(w[wi] * d)
                dxk[xi] += 1
                dw[wi] += d * x[xi]
                dws[wi] += mag(d * x[xi])
            } } }
        } } } }
        // conv2d.h: kernels working on zero-padded copies may turn Inf/NaN into NaN within the planes they touch.
        func nonFinite(_ a: [Double], _ range: Range<Int>) -> Bool { a[range].contains { !$0.isFinite } }
        let plane = h * wd, wPlane = kh * kw, oPlane = oh * ow
        var dxLenient = [Bool](repeating: false, count: x.count), dwLenient = [Bool](repeating: false, count: w.count)
        for b0 in 0..<n { for c in 0..<cin {
            let g = c / Swift.max(cpg, 1), cl = c % Swift.max(cpg, 1)
            var bad = false
            for o in (g * opg)..<((g + 1) * opg) {
                bad = bad || nonFinite(w, ((o * cpg + cl) * wPlane)..<((o * cpg + cl + 1) * wPlane))
                    || nonFinite(dy, ((b0 * cout + o) * oPlane)..<((b0 * cout + o + 1) * oPlane))
            }
            if bad { for e in 0..<plane { dxLenient[(b0 * cin + c) * plane + e] = true } }
        } }
        for o in 0..<cout { for cl in 0..<cpg {
            let c = (o / opg) * cpg + cl
            var bad = false
            for b0 in 0..<n {
                bad = bad || nonFinite(x, ((b0 * cin + c) * plane)..<((b0 * cin + c + 1) * plane))
                    || nonFinite(dy, ((b0 * cout + o) * oPlane)..<((b0 * cout + o + 1) * oPlane))
            }
            if bad { for e in 0..<wPlane { dwLenient[(o * cpg + cl) * wPlane + e] = true } }
        } }
        var rx = Ref(shape: s.x, v: dx, s: dxs, terms: (dxk.max() ?? 0) + 1)
        rx.lenient = dxLenient
        var rw = Ref(shape: s.w, v: dw, s: dws, terms: n * oh * ow + 1)
        rw.lenient = dwLenient
        return (rx, rw, Ref(shape: [cout], v: db, s: dbs, terms: n * oh * ow + 1))
    }
}

func conv2dCase(_ r: inout FuzzRandom) -> FuzzCase {
    let setup = ConvSetup.generate(&r)
    let (rx, rw) = (r.regime(), r.regime())
    let xCount = checkedProduct(setup.x) ?? 0, wCount = checkedProduct(setup.w) ?? 0
    let vx = r.values(xCount, rx), vw = r.values(wCount, rw), vb = r.values(setup.b.map(product) ?? 0, r.regime())
    let (gx, gw, gb) = (r.chance(0.5), r.chance(0.5), r.chance(0.4))
    return FuzzCase(op: "conv2d", params: setup.description + " values \(rx)/\(rw) grads \(gx)/\(gw)/\(gb)") { ctx in
        let x = try ctx.tensor(setup.x, vx, grad: gx), w = try ctx.tensor(setup.w, vw, grad: gw)
        let b = try setup.b.map { try ctx.tensor($0, vb, grad: gb) }
        let out = setup.outputShape
        ctx.referenceValid = out != nil
        let y = try Tensor.conv2d(x, weight: w, bias: b, stride: setup.stride, padding: setup.padding,
                                  dilation: setup.dilation, groups: setup.groups)
        guard let out else { return ctx.fail("returned \(str(y.shape)) where PyTorch raises") }
        guard y.shape == out else { return ctx.fail("shape \(str(y.shape)), expected \(str(out))") }
        guard product(out) <= referenceOutputLimit, let work = checkedProduct([product(out), setup.w[1], setup.w[2], setup.w[3]]),
              work <= referenceWorkLimit else { return }
        let ref = ConvReference(s: setup, oh: out[2], ow: out[3], x: vx.map(Double.init), w: vw.map(Double.init),
                                b: setup.b == nil ? nil : vb.map(Double.init))
        ctx.check(compare("forward", y, ref.forward()))
        guard gx || gw || (b != nil && gb) else { return }
        let g = try ctx.backward(y)
        let (dx, dw, db) = ref.backward(g)
        if gx { ctx.check(compareGrad("grad x", x.grad, dx)) }
        if gw { ctx.check(compareGrad("grad weight", w.grad, dw)) }
        if gb, let b { ctx.check(compareGrad("grad bias", b.grad, db)) }
    }
}

// MARK: - Pooling

/// PyTorch's pooling_output_shape in exact arithmetic: floor (or ceil, dropping a last window that
/// starts in the right padding) of (n + 2 pad - k) / s, plus 1; nil on Int overflow. (PyTorch adds
/// s - 1 before dividing, which wraps for a stride near Int.max; one window is the exact answer there.)
func poolOutputSize(_ n: Int, k: Int, s: Int, pad: Int, ceil: Bool) -> Int? {
    let (p2, o1) = pad.multipliedReportingOverflow(by: 2)
    let (a, o2) = n.addingReportingOverflow(p2)
    let (span, o3) = a.subtractingReportingOverflow(k)
    guard !o1, !o2, !o3, s >= 1 else { return nil }
    let q = span / s, r = span % s
    let rounded = ceil ? (r != 0 && span > 0 ? q + 1 : q) : (r != 0 && span < 0 ? q - 1 : q)
    var out = rounded + 1
    if ceil {
        let (last, o5) = (out - 1).multipliedReportingOverflow(by: s)
        let (edge, o6) = n.addingReportingOverflow(pad)
        guard !o6 else { return nil }
        if o5 || last >= edge { out -= 1 }
    }
    return out
}

struct PoolSetup {
    var x: [Int], kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool

    var description: String { "x \(str(x)) kernel \(kernel) stride \(stride.map { "\($0)" } ?? "nil") padding \(padding) ceilMode \(ceilMode)" }

    static func generate(_ r: inout FuzzRandom) -> PoolSetup {
        let n = r.int(0...2), c = r.int(0...3)
        let empty = n == 0 || c == 0
        var x = [n, c, r.spatial(0...9, emptyTensor: empty), r.spatial(0...9, emptyTensor: empty)]
        if r.chance(0.03) { x = r.shape(rank: r.rank(0...5), limit: 256) }
        let kernel = r.size2D(1...4, wildness: 0.08)
        let stride: Size2D? = r.chance(0.3) ? nil : r.size2D(1...3, wildness: 0.08)
        let padding = r.size2D(0...2, wildness: 0.08)
        return PoolSetup(x: x, kernel: kernel, stride: stride, padding: padding, ceilMode: r.chance(0.3))
    }

    /// PyTorch's output shape, nil where it raises. A zero-size plane raises; zero batch or channels
    /// give an empty result (PyTorch raises for zero channels too; an empty result is the natural answer).
    var outputShape: [Int]? { shape(allowEmptyPlane: false) }

    /// Also admits a zero-size plane when the result is empty anyway (nothing is pooled).
    var lenientOutputShape: [Int]? {
        guard let s = shape(allowEmptyPlane: true), checkedProduct(s) == 0 else { return outputShape }
        return s
    }

    private func shape(allowEmptyPlane: Bool) -> [Int]? {
        let s = stride ?? kernel
        guard x.count == 4, kernel.height >= 1, kernel.width >= 1, s.height >= 1, s.width >= 1,
              padding.height >= 0, padding.width >= 0, padding.height <= kernel.height / 2, padding.width <= kernel.width / 2,
              allowEmptyPlane || (x[2] > 0 && x[3] > 0),
              let oh = poolOutputSize(x[2], k: kernel.height, s: s.height, pad: padding.height, ceil: ceilMode),
              let ow = poolOutputSize(x[3], k: kernel.width, s: s.width, pad: padding.width, ceil: ceilMode),
              oh >= 1, ow >= 1 else { return nil }
        let out = [x[0], x[1], oh, ow]
        return checkedProduct(out) == nil ? nil : out
    }
}

func maxPoolCase(_ r: inout FuzzRandom) -> FuzzCase {
    let setup = PoolSetup.generate(&r)
    let regime: ValueRegime = r.chance(0.3) ? .integers : r.regime()
    let values = r.values(checkedProduct(setup.x) ?? 0, regime)
    let grad = r.chance(0.6)
    let layer = r.chance(0.15)
    return FuzzCase(op: layer ? "MaxPool2D" : "maxPool2d", params: setup.description + " \(regime) grad \(grad)") { ctx in
        let x = try ctx.tensor(setup.x, values, grad: grad)
        let out = setup.outputShape
        ctx.referenceValid = out != nil && setup.x[1] > 0  // PyTorch also refuses C = 0
        let y: Tensor, indices: IntTensor?
        if layer {
            y = try MaxPool2D(kernel: setup.kernel, stride: setup.stride, padding: setup.padding, ceilMode: setup.ceilMode)(x)
            indices = nil
        } else {
            (y, indices) = try Tensor.maxPool2d(x, kernel: setup.kernel, stride: setup.stride, padding: setup.padding, ceilMode: setup.ceilMode, returningIndices: true)
        }
        guard let out = out ?? setup.lenientOutputShape else { return ctx.fail("returned \(str(y.shape)) where PyTorch raises") }
        guard y.shape == out, indices == nil || indices!.shape == out else { return ctx.fail("shape \(str(y.shape)), expected \(str(out))") }
        guard product(out) <= referenceOutputLimit else { return }
        let s = setup.stride ?? setup.kernel
        let (h, w) = (setup.x[2], setup.x[3])
        let d = values.map(Double.init)
        var v = [Double](repeating: 0, count: product(out)), idx = [Int](repeating: 0, count: v.count)
        // PyTorch's cpu_max_pool: the clipped window, starting from -inf at its first element; a value
        // replaces the maximum if greater or NaN (so the last NaN wins).
        for plane in 0..<(out[0] * out[1]) { for oy in 0..<out[2] { for ox in 0..<out[3] {
            var h0 = oy * s.height - setup.padding.height, w0 = ox * s.width - setup.padding.width
            let h1 = Swift.min(h0 + setup.kernel.height, h), w1 = Swift.min(w0 + setup.kernel.width, w)
            h0 = Swift.max(h0, 0)
            w0 = Swift.max(w0, 0)
            var best = -Double.infinity, at = h0 * w + w0
            for ih in h0..<Swift.max(h0, h1) { for iw in w0..<Swift.max(w0, w1) {
                let e = d[plane * h * w + ih * w + iw]
                if e > best || e.isNaN { best = e; at = ih * w + iw }
            } }
            let k = (plane * out[2] + oy) * out[3] + ox
            v[k] = best
            idx[k] = at
        } } }
        ctx.check(compare("values", y, Ref(shape: out, rounded: v, ulps: 0)))
        if let indices { ctx.check(compareInts("indices", indices.ints, idx)) }
        guard grad else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: d.count), ds = dv, dk = [Int](repeating: 0, count: d.count)
        for (k, at) in idx.enumerated() {
            let plane = k / (out[2] * out[3])
            dv[plane * h * w + at] += g[k]
            ds[plane * h * w + at] += mag(g[k])
            dk[plane * h * w + at] += 1
        }
        ctx.check(compareGrad("grad", x.grad, Ref(shape: setup.x, v: dv, s: ds, terms: dk.max() ?? 0)))
    }
}

func avgPoolCase(_ r: inout FuzzRandom) -> FuzzCase {
    let setup = PoolSetup.generate(&r)
    let includePad = r.chance(0.6)
    let regime = r.regime()
    let values = r.values(checkedProduct(setup.x) ?? 0, regime)
    let grad = r.chance(0.6)
    let layer = r.chance(0.15)
    return FuzzCase(op: layer ? "AvgPool2D" : "avgPool2d", params: setup.description + " countIncludePad \(includePad) \(regime) grad \(grad)") { ctx in
        let x = try ctx.tensor(setup.x, values, grad: grad)
        let out = setup.outputShape
        ctx.referenceValid = out != nil && setup.x[1] > 0  // PyTorch also refuses C = 0
        let y = try layer
            ? AvgPool2D(kernel: setup.kernel, stride: setup.stride, padding: setup.padding, ceilMode: setup.ceilMode, countIncludePad: includePad)(x)
            : Tensor.avgPool2d(x, kernel: setup.kernel, stride: setup.stride, padding: setup.padding,
                               ceilMode: setup.ceilMode, countIncludePad: includePad)
        guard let out = out ?? setup.lenientOutputShape else { return ctx.fail("returned \(str(y.shape)) where PyTorch raises") }
        guard y.shape == out else { return ctx.fail("shape \(str(y.shape)), expected \(str(out))") }
        // The window table below has one row per output position of a plane, even with no planes.
        guard product(out) <= referenceOutputLimit, (checkedProduct([out[2], out[3]]) ?? Int.max) <= referenceOutputLimit else { return }
        let s = setup.stride ?? setup.kernel
        let (h, w, ph, pw) = (setup.x[2], setup.x[3], setup.padding.height, setup.padding.width)
        let d = values.map(Double.init)
        let count = product(out)
        var v = [Double](repeating: 0, count: count), sc = v
        var windows: [(h0: Int, h1: Int, w0: Int, w1: Int, divisor: Double)] = []
        // PyTorch's cpu_avg_pool: the divisor counts the padding (not what a ceil-mode window adds
        // beyond it) when count_include_pad, else the real elements.
        for oy in 0..<out[2] { for ox in 0..<out[3] {
            var h0 = oy * s.height - ph, w0 = ox * s.width - pw
            var h1 = Swift.min(h0 + setup.kernel.height, h + ph), w1 = Swift.min(w0 + setup.kernel.width, w + pw)
            let poolSize = (h1 - h0) * (w1 - w0)
            h0 = Swift.max(h0, 0); w0 = Swift.max(w0, 0)
            h1 = Swift.min(h1, h); w1 = Swift.min(w1, w)
            windows.append((h0, h1, w0, w1, Double(includePad ? poolSize : (h1 - h0) * (w1 - w0))))
        } }
        let area = setup.kernel.height * setup.kernel.width
        for plane in 0..<(out[0] * out[1]) {
            for (wi, win) in windows.enumerated() {
                var acc = 0.0, m = 0.0
                for ih in win.h0..<Swift.max(win.h0, win.h1) { for iw in win.w0..<Swift.max(win.w0, win.w1) {
                    acc += d[plane * h * w + ih * w + iw]
                    m += mag(d[plane * h * w + ih * w + iw])
                } }
                v[plane * windows.count + wi] = win.h0 >= win.h1 || win.w0 >= win.w1 ? 0 : acc / win.divisor
                sc[plane * windows.count + wi] = m / win.divisor
            }
        }
        ctx.check(compare("forward", y, Ref(shape: out, v: v, s: sc, terms: area + 2)))
        guard grad else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: d.count), ds = dv, dk = [Int](repeating: 0, count: d.count)
        for plane in 0..<(out[0] * out[1]) {
            for (wi, win) in windows.enumerated() where win.h0 < win.h1 && win.w0 < win.w1 {
                let gv = g[plane * windows.count + wi] / win.divisor
                for ih in win.h0..<win.h1 { for iw in win.w0..<win.w1 {
                    dv[plane * h * w + ih * w + iw] += gv
                    ds[plane * h * w + ih * w + iw] += mag(gv)
                    dk[plane * h * w + ih * w + iw] += 1
                } }
            }
        }
        ctx.check(compareGrad("grad", x.grad, Ref(shape: setup.x, v: dv, s: ds, terms: (dk.max() ?? 0) + 2)))
    }
}

func adaptivePoolCase(_ r: inout FuzzRandom) -> FuzzCase {
    let n = r.int(0...2), c = r.int(0...3)
    let empty = n == 0 || c == 0
    var shape = [n, c, r.spatial(0...9, emptyTensor: empty), r.spatial(0...9, emptyTensor: empty)]
    if r.chance(0.03) { shape = r.shape(rank: r.rank(0...5), limit: 256) }
    let size = r.chance(0.15) ? Size2D(1, 1) : r.size2D(1...5, wildness: 0.1)
    let regime = r.regime()
    let values = r.values(checkedProduct(shape) ?? 0, regime)
    let grad = r.chance(0.6)
    let layer = r.chance(0.15)
    let outSize = layer ? Size2D(1, 1) : size
    return FuzzCase(op: layer ? "GlobalAvgPool2D" : "adaptiveAvgPool2d", params: "x \(str(shape)) outputSize \(outSize) \(regime) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        // PyTorch raises for a zero-size plane; an output size of 0 gives an empty result there
        // (Neuron throws, acceptable).
        var out: [Int]?
        if shape.count == 4, shape[2] > 0, shape[3] > 0, outSize.height >= 0, outSize.width >= 0 {
            out = checkedProduct([shape[0], shape[1], outSize.height, outSize.width]) == nil ? nil : [shape[0], shape[1], outSize.height, outSize.width]
        }
        ctx.referenceValid = out != nil
        let y = try layer ? GlobalAvgPool2D()(x) : Tensor.adaptiveAvgPool2d(x, outputSize: outSize)
        guard let out else { return ctx.fail("returned \(str(y.shape)) where PyTorch raises") }
        guard y.shape == out else { return ctx.fail("shape \(str(y.shape)), expected \(str(out))") }
        guard product(out) <= referenceOutputLimit else { return }
        let (h, w, oh, ow) = (shape[2], shape[3], out[2], out[3])
        let d = values.map(Double.init)
        var v = [Double](repeating: 0, count: product(out)), sc = v
        let win = { (i: Int, o: Int, len: Int) -> Range<Int> in (i * len / o)..<(((i + 1) * len + o - 1) / o) }
        for plane in 0..<(out[0] * out[1]) { for oy in 0..<oh { for ox in 0..<ow {
            let rows = win(oy, oh, h), cols = win(ox, ow, w)
            var acc = 0.0, m = 0.0
            for ih in rows { for iw in cols {
                acc += d[plane * h * w + ih * w + iw]
                m += mag(d[plane * h * w + ih * w + iw])
            } }
            let area = Double(rows.count * cols.count)
            v[(plane * oh + oy) * ow + ox] = acc / area
            sc[(plane * oh + oy) * ow + ox] = m / area
        } } }
        let maxArea = ((h + oh - 1) / oh + 1) * ((w + ow - 1) / ow + 1)
        ctx.check(compare("forward", y, Ref(shape: out, v: v, s: sc, terms: maxArea + 2)))
        guard grad else { return }
        let g = try ctx.backward(y)
        var dv = [Double](repeating: 0, count: d.count), ds = dv
        for plane in 0..<(out[0] * out[1]) { for oy in 0..<oh { for ox in 0..<ow {
            let rows = win(oy, oh, h), cols = win(ox, ow, w)
            let gv = g[(plane * oh + oy) * ow + ox] / Double(rows.count * cols.count)
            for ih in rows { for iw in cols {
                dv[plane * h * w + ih * w + iw] += gv
                ds[plane * h * w + ih * w + iw] += mag(gv)
            } }
        } } }
        ctx.check(compareGrad("grad", x.grad, Ref(shape: shape, v: dv, s: ds, terms: oh * ow + 2)))
    }
}
