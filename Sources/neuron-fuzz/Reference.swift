import Foundation
import Neuron

/// A double-precision reference result: per element the value computed in `Double` from the same
/// float32 inputs the library reads, and the scale its float32 rounding error is measured against.
///
/// ## Tolerance
///
/// A float32 result that is a K-term sum of products of exact float32 inputs (a dot product, a
/// reduction, a convolution window), computed in any order, blocked or pairwise, with or without FMA,
/// differs from the exact value by at most γ_K · Σ|terms|, γ_K = K·u / (1 − K·u), u = 2⁻²⁴, plus
/// 2⁻¹⁵⁰ per operation whose result is subnormal (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, §2.1 and §3.1). An element passes when
///
///     |a − r| ≤ c · (K + m) · (u · S + 2⁻¹⁵⁰),   c = 2,
///
/// where `r` is the reference value, `S` the sum of the magnitudes of its finite terms (`|r|` for an
/// element-wise op), `K` the number of terms (`terms`) and `m` the op's own roundings plus libm's error
/// (`ulps`, a few units). In the atol/rtol form: atol = c·(K+m)·2⁻¹⁵⁰ and rtol = c·(K+m)·u, relative to
/// `S` rather than to `|r|`, so cancellation is not mistaken for error.
///
/// Why linear in K and not √K: √K is the typical error of random rounding, K the guaranteed bound;
/// over 100,000 cases a typical-case bound would report rounding as wrong results. The linear bound
/// still catches bugs: a missing, extra or misplaced term moves a result by about one term, S/K, which
/// exceeds 2·K·u·S whenever K < 1/√(2u) ≈ 2,900, and the fuzzer's shapes keep K below that.
///
/// Composite ops (softmax, batch norm, losses) set `S` from a first-order error analysis stated
/// where they are built (inputs of an exp or a division are themselves rounded). Backward formulas
/// that multiply several factors one at a time (g·λ·2w, -g·(a/b)/b) add, per `Chain`, the absolute
/// error of a partial product that underflows (`bound`). Recurrent layers carry a running error bound
/// through every step instead (CasesRecurrent.swift).
///
/// ## Non-finite values
///
/// NaN must match NaN and ±Inf must match ±Inf exactly (PyTorch's IEEE propagation, which the
/// reference reproduces by following PyTorch's formulas in double). Exceptions:
/// - `rounded` results are one correctly rounded (or few-ulp) function of exact inputs, so a value
///   beyond the float32 range must come out as the same infinity.
/// - For accumulated results whose finite terms sum to the float32 overflow threshold, float32 may
///   overflow in an intermediate step in an order-dependent way; any result is accepted there, and
///   likewise where a named intermediate (`intermediate`) reaches it.
/// - `bound`, where set, adds a per-element absolute error bound from the op's own first-order analysis
///   (batch norm: the rounding of the batch statistics, amplified by 1/sqrt(var + eps)); an infinite
///   bound (statistics float32 cannot represent) leaves a finite element unchecked.
/// - `alternative` accepts a second value where PyTorch versions differ (clamp's gradient at a bound).
/// - `lenient` marks elements where a documented kernel convention may turn a finite reference value
///   into NaN (convolution's zero-padded copies multiply Inf or NaN by an exact zero): there any
///   non-finite result is accepted, and a finite one must still match.
struct Ref {
    var shape: [Int]
    var v: [Double]
    var s: [Double]
    var terms: Int
    var ulps: Int
    var rounded: Bool
    var lenient: [Bool]?
    var bound: [Double]?
    /// The magnitude of an intermediate float32 value per element (a sum before its division by the
    /// count, a / b before the second division): where it reaches the overflow threshold, float32
    /// overflows there in PyTorch too, so any result is accepted, as for `s`.
    var intermediate: [Double]?
    /// A second acceptable value per element where PyTorch's conventions differ between versions
    /// (the gradient of clamp exactly at a bound).
    var alternative: [Double]?

    /// An element-wise result: each element one rounding (or a few ulps of libm) of `v`.
    init(shape: [Int], rounded v: [Double], ulps: Int = 4) {
        self.shape = shape
        self.v = v
        self.s = v.map { Swift.abs($0) }
        terms = 1
        self.ulps = ulps
        rounded = true
    }

    /// An accumulated result: `s` is the sum of the magnitudes of each element's finite terms.
    init(shape: [Int], v: [Double], s: [Double], terms: Int, ulps: Int = 4) {
        self.shape = shape
        self.v = v
        self.s = s
        self.terms = terms
        self.ulps = ulps
        rounded = false
    }

    /// All zeros (e.g. the gradient of an input that nothing reads).
    static func zeros(_ shape: [Int]) -> Ref {
        let n = product(shape)
        return Ref(shape: shape, rounded: Array(repeating: 0, count: n))
    }

    var count: Int { v.count }
}

let unitRoundoff = 0x1p-24
let subnormalStep = 0x1p-150
let toleranceFactor = 2.0
let floatMax = Double(Float.greatestFiniteMagnitude)

/// A product of several float32 factors computed one multiplication (or division) at a time, as
/// backward formulas are (g · λ · 2w, -g · (a / b) / b): any partial product is at most
/// P = Π max(1, |f|), so it may overflow only where P does (`intermediate`), and a partial product that
/// underflows costs at most 2⁻¹⁵⁰ · P of absolute error (`bound`). Non-finite factors are left out:
/// what they do is IEEE's, reproduced by the reference itself.
struct Chain {
    var largest = 1.0

    init(_ factors: Double...) {
        for f in factors { largest *= Swift.max(1, mag(f)) }
    }

    var intermediate: Double { largest }
    var bound: Double { 4 * subnormalStep * largest }
}

extension Ref {
    /// Per-element chains of products: sets `intermediate` and `bound` (see `Chain`).
    mutating func chains(_ c: [Chain]) {
        intermediate = c.map(\.intermediate)
        bound = c.map(\.bound)
    }
}

/// Product of a shape that the reference has already checked fits (small).
func product(_ shape: [Int]) -> Int { shape.reduce(1, *) }

/// Product with overflow detection: nil when it does not fit in Int.
func checkedProduct(_ shape: [Int]) -> Int? {
    var p = 1
    if shape.contains(0) { return shape.allSatisfy({ $0 >= 0 }) ? 0 : nil }
    for d in shape {
        guard d >= 0 else { return nil }
        let (q, o) = p.multipliedReportingOverflow(by: d)
        if o { return nil }
        p = q
    }
    return p
}

/// PyTorch's rule for sizes: they must multiply within Int with zeros counted as 1 (its strides and
/// storage size are computed so), even when a zero makes the tensor empty.
func sizesFit(_ shape: [Int]) -> Bool { shape.allSatisfy { $0 >= 0 } && checkedProduct(shape.map { Swift.max($0, 1) }) != nil }

/// The magnitude of a term if finite, else 0 (non-finite terms decide the result through IEEE rules).
@inline(__always) func mag(_ x: Double) -> Double { x.isFinite ? Swift.abs(x) : 0 }

/// Whether float32 `x` matches the reference value `r` of element `i` of `exp` (rules above).
func matches(_ x: Double, _ r: Double, _ i: Int, _ exp: Ref, tol: Double) -> Bool {
    let k = Double(exp.terms + exp.ulps)
    var ok: Bool
    if exp.rounded {
        let e = Double(Float(r))
        if r.isNaN { ok = x.isNaN } else if e.isInfinite { ok = x == e } else { ok = x.isFinite && Swift.abs(x - r) <= tol }
    } else if Swift.max(exp.s[i], exp.intermediate?[i] ?? 0) * (1 + toleranceFactor * k * unitRoundoff) >= floatMax {
        ok = true
    } else if r.isNaN {
        ok = x.isNaN
    } else if r.isInfinite {
        ok = x == r
    } else {
        ok = x.isFinite && Swift.abs(x - r) <= tol
    }
    if !ok, let lenient = exp.lenient, lenient[i] {
        ok = !x.isFinite || (r.isFinite && Swift.abs(x - r) <= tol)
    }
    return ok
}

/// Why a result does not match, or nil when it does.
func compare(_ what: String, _ got: Tensor, _ exp: Ref) -> String? {
    guard got.shape == exp.shape else {
        return "\(what): shape \(str(got.shape)), expected \(str(exp.shape))"
    }
    let a = got.scalars
    var bad = 0, first: String?
    var worst = 0.0
    for i in 0..<exp.count {
        let r = exp.v[i], x = Double(a[i])
        let k = Double(exp.terms + exp.ulps)
        let tol = toleranceFactor * (k * (unitRoundoff * exp.s[i] + subnormalStep) + (exp.bound?[i] ?? 0))
        if matches(x, r, i, exp, tol: tol) || exp.alternative.map({ matches(x, $0[i], i, exp, tol: tol) }) == true { continue }
        bad += 1
        if x.isFinite && r.isFinite { worst = Swift.max(worst, Swift.abs(x - r) / Swift.max(tol, .leastNonzeroMagnitude)) }
        if first == nil {
            first = "element \(i) \(str(coordinates(i, exp.shape))) = \(a[i]), expected \(r) (scale \(exp.s[i]), tol \(tol))"
        }
    }
    guard let first else { return nil }
    return "\(what): \(bad) of \(exp.count) elements differ; first \(first)" + (worst > 0 ? "; worst error \(String(format: "%.3g", worst)) x tol" : "")
}

/// Exact comparison of integer results (indices).
func compareInts(_ what: String, _ got: [Int], _ exp: [Int]) -> String? {
    guard got.count == exp.count else { return "\(what): \(got.count) values, expected \(exp.count)" }
    guard let i = got.indices.first(where: { got[$0] != exp[$0] }) else { return nil }
    return "\(what): element \(i) = \(got[i]), expected \(exp[i])"
}

/// A gradient check: a missing gradient counts as zeros (PyTorch fills unused inputs with zeros).
func compareGrad(_ what: String, _ got: Tensor?, _ exp: Ref) -> String? {
    guard let got else {
        return exp.v.allSatisfy({ $0 == 0 }) ? nil : "\(what): no gradient, expected \(str(exp.shape)) with non-zero entries"
    }
    return compare(what, got, exp)
}

func coordinates(_ flat: Int, _ shape: [Int]) -> [Int] {
    var c = Array(repeating: 0, count: shape.count)
    var f = flat
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        c[d] = f % shape[d]
        f /= shape[d]
    }
    return c
}

func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = Array(repeating: 1, count: shape.count)
    var acc = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        s[d] = acc
        acc *= shape[d]
    }
    return s
}

// MARK: - Shape helpers (PyTorch's rules, overflow-safe)

/// NumPy/PyTorch broadcasting, or nil when the shapes do not broadcast.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    let pa = Array(repeating: 1, count: rank - a.count) + a, pb = Array(repeating: 1, count: rank - b.count) + b
    var out: [Int] = []
    for (x, y) in zip(pa, pb) {
        if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else { return nil }
    }
    return out
}

/// For each element of `out` (row-major), the flat index of the element of a `shape` tensor broadcast to it.
func broadcastSources(_ shape: [Int], to out: [Int]) -> [Int] {
    let padded = Array(repeating: 1, count: out.count - shape.count) + shape
    let inStrides = contiguousStrides(padded)
    let n = product(out)
    var result = [Int](repeating: 0, count: n)
    for i in 0..<n {
        let c = coordinates(i, out)
        var f = 0
        for d in 0..<out.count where padded[d] != 1 { f += c[d] * inStrides[d] }
        result[i] = f
    }
    return result
}

/// Sums a gradient of the broadcast shape back to `shape`: value, scale and the largest term count.
func reduceBroadcast(_ values: [Double], _ scales: [Double], from out: [Int], to shape: [Int]) -> (v: [Double], s: [Double], terms: Int) {
    let src = broadcastSources(shape, to: out)
    let n = product(shape)
    var v = [Double](repeating: 0, count: n), s = [Double](repeating: 0, count: n), k = [Int](repeating: 0, count: n)
    for (i, j) in src.enumerated() {
        v[j] += values[i]
        s[j] += scales[i]
        k[j] += 1
    }
    return (v, s, k.max() ?? 0)
}

/// A tensor seen as (outer, n, inner) around `axis`.
func splitAxis(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
    (product(Array(shape[..<axis])), shape[axis], product(Array(shape[(axis + 1)...])))
}

/// PyTorch's axis normalisation (`-1` is the last) for a tensor of `rank`; nil when out of range.
/// PyTorch treats a scalar as rank 1 here (dim 0 or -1 of a 0-d tensor); callers decide.
func normalizeAxis(_ axis: Int, rank: Int) -> Int? {
    guard axis >= -rank, axis < rank else { return nil }
    return axis < 0 ? axis + rank : axis
}
