import Foundation
import Neuron

// Recurrent layers and cells (RNN, LSTM, GRU in PyTorch's forms, stacked, bidirectional, batch-first,
// with initial states and per-sequence lengths) against a double-precision reference.
//
// A recurrence feeds each step's rounding into the next, so the tolerance is a running error analysis
// (Wilkinson): every reference value carries a bound on the error of its float32 computation, each
// operation adding its own rounding (u·|result|; γ_K·Σ|terms| for a K-term product sum, as in
// Reference.swift) to its operands' errors propagated through it (|a|·e_b + |b|·e_a for a product,
// the Lipschitz constants 1 and 1/4 through tanh/relu and the sigmoid). An element passes when it is
// within twice its bound.
//
// Gradients (a whole-sequence backward is one node on the tape) are compared with central differences of
// the double-precision reference: to 1e-3 of the largest gradient of the case, a check for wrong
// formulas, wiring and lengths handling rather than for rounding.

/// A reference value with a bound on the error of computing it in float32.
struct Tracked {
    var v: Double
    var e: Double

    init(_ v: Double, _ e: Double = 0) { self.v = v; self.e = e }

    static func + (a: Tracked, b: Tracked) -> Tracked {
        let v = a.v + b.v
        return Tracked(v, a.e + b.e + unitRoundoff * mag(v))
    }

    static func * (a: Tracked, b: Tracked) -> Tracked {
        let v = a.v * b.v
        return Tracked(v, mag(a.v) * b.e + mag(b.v) * a.e + a.e * b.e + unitRoundoff * mag(v))
    }

    static prefix func - (a: Tracked) -> Tracked { Tracked(-a.v, a.e) }

    func tanh() -> Tracked { let t = Foundation.tanh(v); return Tracked(t, e + 4 * unitRoundoff * mag(t)) }
    func sigmoid() -> Tracked { let s = neuron_fuzz.sigmoid(v); return Tracked(s, e / 4 + 4 * unitRoundoff * mag(s)) }
    func relu() -> Tracked { v.isNaN ? self : Tracked(Swift.max(v, 0), e) }

    /// Σ w_k x_k + bias over exact weights: the propagated input errors plus γ_K Σ|terms|.
    static func affine(_ w: ArraySlice<Double>, _ x: [Tracked], bias: Double) -> Tracked {
        var v = bias, s = mag(bias), e = 0.0
        for (wk, xk) in zip(w, x) {
            v += wk * xk.v
            s += mag(wk * xk.v)
            e += mag(wk) * xk.e
        }
        return Tracked(v, e + Double(x.count + 2) * unitRoundoff * s)
    }
}

enum RecurrentKind: String, CaseIterable {
    case rnnTanh = "RNN tanh", rnnRelu = "RNN relu", lstm = "LSTM", gru = "GRU"
    var gates: Int { self == .lstm ? 4 : self == .gru ? 3 : 1 }
}

/// The parameters of one layer and direction, as doubles, under PyTorch's layout.
struct CellWeights {
    let wih: [Double], whh: [Double], bih: [Double]?, bhh: [Double]?
    let input: Int, hidden: Int

    /// Row j of x W_ihᵀ + b_ih (and of h W_hhᵀ + b_hh) for gate block `gate`.
    func inputPart(_ x: [Tracked], row: Int) -> Tracked {
        Tracked.affine(wih[(row * input)..<((row + 1) * input)], x, bias: bih?[row] ?? 0)
    }
    func hiddenPart(_ h: [Tracked], row: Int) -> Tracked {
        Tracked.affine(whh[(row * hidden)..<((row + 1) * hidden)], h, bias: bhh?[row] ?? 0)
    }

    /// One step for one sequence: PyTorch's cell equations. Returns (h', c').
    func step(_ kind: RecurrentKind, x: [Tracked], h: [Tracked], c: [Tracked]) -> ([Tracked], [Tracked]) {
        let n = hidden
        switch kind {
        case .rnnTanh, .rnnRelu:
            let out = (0..<n).map { j -> Tracked in
                let pre = inputPart(x, row: j) + hiddenPart(h, row: j)
                return kind == .rnnTanh ? pre.tanh() : pre.relu()
            }
            return (out, c)
        case .lstm:
            // Gates i, f, g, o in blocks of `hidden` rows; c' = f c + i g, h' = o tanh(c').
            var hn: [Tracked] = [], cn: [Tracked] = []
            for j in 0..<n {
                let pre = (0..<4).map { k in inputPart(x, row: k * n + j) + hiddenPart(h, row: k * n + j) }
                let (i, f, g, o) = (pre[0].sigmoid(), pre[1].sigmoid(), pre[2].tanh(), pre[3].sigmoid())
                let cj = f * c[j] + i * g
                cn.append(cj)
                hn.append(o * cj.tanh())
            }
            return (hn, cn)
        case .gru:
            // Gates r, z, n; n = tanh(x W_in + b_in + r (h W_hn + b_hn)), h' = (1 - z) n + z h.
            let out = (0..<n).map { j -> Tracked in
                let r = (inputPart(x, row: j) + hiddenPart(h, row: j)).sigmoid()
                let z = (inputPart(x, row: n + j) + hiddenPart(h, row: n + j)).sigmoid()
                let cand = (inputPart(x, row: 2 * n + j) + r * hiddenPart(h, row: 2 * n + j)).tanh()
                return (Tracked(1) + -z) * cand + z * h[j]
            }
            return (out, c)
        }
    }
}

/// A whole-sequence reference: output [T, N, W] (time-major here) and final h, c [layers·dirs, N, H].
struct RecurrentReference {
    let kind: RecurrentKind
    let layers: [[CellWeights]]   // [layer][direction]
    let hidden: Int
    let sum: Bool

    func run(x: [[[Double]]], h0: [[[Double]]]?, c0: [[[Double]]]?, lengths: [Int]) -> (out: [[[Tracked]]], h: [[[Tracked]]], c: [[[Tracked]]]) {
        let t = x.count, n = lengths.count, dirs = layers[0].count
        var input: [[[Tracked]]] = x.map { $0.map { $0.map { Tracked($0) } } }   // [T][N][width]
        var hs: [[[Tracked]]] = [], cs: [[[Tracked]]] = []
        var top: [[[[Tracked]]]] = []
        for (l, directions) in layers.enumerated() {
            var outs: [[[[Tracked]]]] = []   // [dir][T][N][H]
            for (d, w) in directions.enumerated() {
                let slot = l * dirs + d
                var out = Array(repeating: Array(repeating: Array(repeating: Tracked(0), count: hidden), count: n), count: t)
                var hFinal: [[Tracked]] = [], cFinal: [[Tracked]] = []
                for b in 0..<n {
                    var h = (0..<hidden).map { Tracked(h0?[slot][b][$0] ?? 0) }
                    var c = (0..<hidden).map { Tracked(c0?[slot][b][$0] ?? 0) }
                    let steps = d == 0 ? Array(0..<lengths[b]) : Array((0..<lengths[b]).reversed())
                    for s in steps {
                        (h, c) = w.step(kind, x: input[s][b], h: h, c: c)
                        out[s][b] = h
                    }
                    hFinal.append(h)
                    cFinal.append(c)
                }
                hs.append(hFinal)
                cs.append(cFinal)
                outs.append(out)
            }
            top = outs
            // The next layer reads both directions side by side.
            input = (0..<t).map { s in (0..<n).map { b in outs.flatMap { $0[s][b] } } }
        }
        if sum && dirs == 2 {
            var merged = top[0]
            for s in 0..<t {
                for b in 0..<n {
                    for j in 0..<hidden { merged[s][b][j] = top[0][s][b][j] + top[1][s][b][j] }
                }
            }
            return (merged, hs, cs)
        }
        return (input, hs, cs)
    }
}

/// Reads a layer's parameters under PyTorch's keys (weight_ih_l0, ..._reverse; weight_ih for cells).
func cellWeights(_ module: RecurrentModule, layer: Int, reverse: Bool, cell: Bool, input: Int, hidden: Int) -> CellWeights? {
    let params = Dictionary(module.localParameters.map { ($0.name, $0.parameter.withValue { $0.scalars.map(Double.init) }) },
                            uniquingKeysWith: { a, _ in a })
    let suffix = cell ? "" : "_l\(layer)" + (reverse ? "_reverse" : "")
    guard let wih = params["weight_ih" + suffix], let whh = params["weight_hh" + suffix] else { return nil }
    return CellWeights(wih: wih, whh: whh, bih: params["bias_ih" + suffix], bhh: params["bias_hh" + suffix], input: input, hidden: hidden)
}

func recurrentCase(_ r: inout FuzzRandom) -> FuzzCase {
    let kind = r.pick(RecurrentKind.allCases)
    let cell = r.chance(0.2)
    let inputSize = r.wild(1...4, wildness: 0.06), hidden = r.wild(1...4, wildness: 0.06)
    let layerCount = cell ? 1 : r.chance(0.93) ? r.int(1...2) : r.pick([0, -1, 1 << 40])
    let bidirectional = !cell && r.chance(0.4), batchFirst = !cell && r.chance(0.4), sum = r.chance(0.3)
    let bias = r.chance(0.8)
    let dropout: Float = r.chance(0.9) ? r.pick([0, 0.5]) : r.pick([-0.5, 1.5, .nan])
    let training = r.chance(0.3)
    let (t, n) = (cell ? 1 : r.int(0...4), r.int(0...3))
    let width = Swift.max(0, Swift.min(inputSize, 8))
    var xShape = cell ? [n, width] : batchFirst ? [n, t, width] : [t, n, width]
    if r.chance(0.05) { xShape = r.shape(rank: r.rank(0...4), limit: 64) }
    let dirs = bidirectional ? 2 : 1
    let stateRows = cell ? n : Swift.max(0, Swift.min(layerCount, 3)) * dirs
    var stateShape = cell ? [n, Swift.max(0, Swift.min(hidden, 8))] : [stateRows, n, Swift.max(0, Swift.min(hidden, 8))]
    if r.chance(0.05) { stateShape[0] += 1 }
    let withState = r.chance(0.5)
    var lengths: [Int]? = !cell && r.chance(0.4) ? (0..<n).map { _ in r.int(1...Swift.max(1, t)) } : nil
    if r.chance(0.05), lengths != nil, !lengths!.isEmpty { lengths![0] = r.pick([0, t + 1, -1]) }
    let regime: ValueRegime = r.chance(0.85) ? .normal : r.regime()
    let xValues = r.values(checkedProduct(xShape) ?? 0, regime)
    let h0 = r.values(product(stateShape), .normal), c0 = r.values(product(stateShape), .normal)
    let grad = r.chance(0.5)
    let desc = "\(cell ? "cell" : "layers \(layerCount)") input \(inputSize) hidden \(hidden) bidirectional \(bidirectional) batchFirst \(batchFirst) "
        + "merge \(sum ? "sum" : "concatenate") bias \(bias) dropout \(dropout) training \(training) x \(str(xShape)) \(regime) "
        + "state \(withState ? str(stateShape) : "nil") lengths \(lengths.map { "\($0)" } ?? "nil") grad \(grad)"
    return FuzzCase(op: "\(kind.rawValue)\(cell ? " cell" : "")", params: desc) { ctx in
        // Cells have no layers and no dropout.
        let sizesValid = inputSize >= 1 && hidden >= 1 && (cell || (layerCount >= 1 && dropout >= 0 && dropout <= 1))
        let (width, o) = inputSize.addingReportingOverflow(hidden)
        let params = o ? nil : checkedProduct([kind.gates, hidden, width]).flatMap { $0 <= 1 << 20 ? $0 : nil }
        ctx.referenceValid = sizesValid && params != nil && layerCount <= 8
        let merge: BidirectionalMerge = sum ? .sum : .concatenate
        let module: RecurrentModule
        switch (kind, cell) {
        case (.rnnTanh, false), (.rnnRelu, false):
            module = try RNN(input: inputSize, hidden: hidden, layers: layerCount, nonlinearity: kind == .rnnTanh ? .tanh : .relu, bias: bias,
                             batchFirst: batchFirst, dropout: dropout, bidirectional: bidirectional, merge: merge)
        case (.lstm, false):
            module = try LSTM(input: inputSize, hidden: hidden, layers: layerCount, bias: bias, batchFirst: batchFirst, dropout: dropout,
                              bidirectional: bidirectional, merge: merge)
        case (.gru, false):
            module = try GRU(input: inputSize, hidden: hidden, layers: layerCount, bias: bias, batchFirst: batchFirst, dropout: dropout,
                             bidirectional: bidirectional, merge: merge)
        case (.lstm, true): module = try LSTMCell(input: inputSize, hidden: hidden, bias: bias)
        case (.gru, true): module = try GRUCell(input: inputSize, hidden: hidden, bias: bias)
        default: module = try RNNCell(input: inputSize, hidden: hidden, bias: bias, nonlinearity: kind == .rnnTanh ? .tanh : .relu)
        }
        guard sizesValid else { return ctx.fail("\(kind.rawValue) was created with input \(inputSize), hidden \(hidden), layers \(layerCount), dropout \(dropout)") }
        module.isTraining = training
        let x = try ctx.tensor(xShape, xValues, grad: grad)
        let h0t = withState ? try ctx.tensor(stateShape, h0) : nil, c0t = withState ? try ctx.tensor(stateShape, c0) : nil
        // PyTorch: rank 3 (or [N, input] for a cell) of the configured width; states [layers·dirs, N, hidden];
        // lengths in 1...T, one per sequence. An empty sequence (T = 0) PyTorch refuses; the natural answer
        // (an empty output, the initial state) is accepted too.
        let shapeOK = xShape.count == (cell ? 2 : 3) && xShape.last == inputSize
        // The sizes of the input actually passed (a random shape may have replaced the planned one).
        let t = shapeOK ? (cell ? 1 : batchFirst ? xShape[1] : xShape[0]) : t
        let n = shapeOK ? (cell || batchFirst ? xShape[0] : xShape[1]) : n
        let stateOK = !withState || stateShape == (cell ? [n, hidden] : [layerCount * dirs, n, hidden])
        let lengthsOK = lengths.map { $0.count == n && $0.allSatisfy { $0 >= 1 && $0 <= t } } ?? true
        let valid = shapeOK && stateOK && lengthsOK
        ctx.referenceValid = valid && t > 0 && n > 0
        var output: Tensor, hOut: Tensor, cOut: Tensor?
        switch module {
        case let m as RNN: (output, hOut) = try m(x, state: h0t, lengths: lengths); cOut = nil
        case let m as GRU: (output, hOut) = try m(x, state: h0t, lengths: lengths); cOut = nil
        case let m as LSTM:
            let s = withState ? LSTMState(h: h0t!, c: c0t!) : nil
            let o = try m(x, state: s, lengths: lengths)
            (output, hOut, cOut) = (o.output, o.state.h, o.state.c)
        case let m as LSTMCell:
            let s = try m(x, state: withState ? LSTMState(h: h0t!, c: c0t!) : nil)
            (output, hOut, cOut) = (s.h, s.h, s.c)
        case let m as GRUCell: output = try m(x, state: h0t); (hOut, cOut) = (output, nil)
        case let m as RNNCell: output = try m(x, state: h0t); (hOut, cOut) = (output, nil)
        default: return
        }
        guard valid else { return ctx.fail("returned \(str(output.shape)) for input \(str(xShape)), state \(str(stateShape)), lengths \(lengths ?? [])") }
        // Dropout between layers draws its own mask: the reference covers evaluation or no dropout.
        guard !(training && dropout > 0 && layerCount > 1) else { return }
        var weights: [[CellWeights]] = []
        for l in 0..<layerCount {
            let width = l == 0 ? inputSize : hidden * dirs
            var pair: [CellWeights] = []
            for d in 0..<dirs {
                guard let w = cellWeights(module, layer: l, reverse: d == 1, cell: cell, input: width, hidden: hidden) else {
                    return ctx.fail("no parameters under PyTorch's keys for layer \(l)\(d == 1 ? " (reverse)" : "")")
                }
                pair.append(w)
            }
            weights.append(pair)
        }
        let reference = RecurrentReference(kind: kind, layers: weights, hidden: hidden, sum: sum && dirs == 2)
        // Time-major inputs and states for the reference.
        let (tt, nn) = (cell ? 1 : t, n)
        let xd = xValues.map(Double.init)
        let at = { (s: Int, b: Int, i: Int) -> Int in cell ? b * inputSize + i : batchFirst ? (b * t + s) * inputSize + i : (s * n + b) * inputSize + i }
        func forward(_ xs: [Double]) -> (out: [[[Tracked]]], h: [[[Tracked]]], c: [[[Tracked]]]) {
            let seq = (0..<tt).map { s in (0..<nn).map { b in (0..<inputSize).map { xs[at(s, b, $0)] } } }
            let rows = cell ? 1 : layerCount * dirs
            let state = { (v: [Float]) in (0..<rows).map { l in (0..<nn).map { b in (0..<hidden).map { Double(v[(l * nn + b) * hidden + $0]) } } } }
            return reference.run(x: seq, h0: withState ? state(h0) : nil, c0: withState ? state(c0) : nil, lengths: lengths ?? Array(repeating: tt, count: nn))
        }
        let ref = forward(xd)
        let outWidth = sum && dirs == 2 ? hidden : hidden * dirs
        let outShape = cell ? [n, hidden] : batchFirst ? [n, t, outWidth] : [t, n, outWidth]
        func flatten(_ a: [[[Tracked]]], batchMajor: Bool) -> [Tracked] {
            batchMajor ? (0..<nn).flatMap { b in (0..<a.count).flatMap { s in a[s][b] } } : a.flatMap { $0.flatMap { $0 } }
        }
        func refOf(_ flat: [Tracked], _ shape: [Int]) -> Ref {
            var r = Ref(shape: shape, v: flat.map(\.v), s: flat.map { mag($0.v) }, terms: 1, ulps: 1)
            r.bound = flat.map { $0.e.isFinite && $0.e < floatMax ? $0.e : .infinity }
            r.lenient = flat.map { !($0.e.isFinite && $0.e < floatMax) }
            return r
        }
        ctx.check(compare("output", output, refOf(flatten(ref.out, batchMajor: batchFirst && !cell), outShape)))
        let stateShapeOut = cell ? [n, hidden] : [layerCount * dirs, n, hidden]
        ctx.check(compare("final h", hOut, refOf(ref.h.flatMap { $0.flatMap { $0 } }, stateShapeOut)))
        if let cOut { ctx.check(compare("final c", cOut, refOf(ref.c.flatMap { $0.flatMap { $0 } }, stateShapeOut))) }
        guard grad, output.count > 0, ctx.failures.isEmpty else { return }
        let g = try ctx.backward(output)
        guard let dx = x.grad?.scalars else { return ctx.fail("no gradient for the input") }
        guard dx.count == xd.count else { return ctx.fail("input gradient of \(dx.count) elements for \(xd.count) inputs") }
        // Central differences of the double reference's sum(g · output), checked where everything is finite.
        guard xd.allSatisfy({ $0.isFinite && Swift.abs($0) < 10 }), g.allSatisfy({ $0.isFinite && Swift.abs($0) < 10 }) else { return }
        let gFlat = g
        func objective(_ xs: [Double]) -> Double {
            zip(flatten(forward(xs).out, batchMajor: batchFirst && !cell).map(\.v), gFlat).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var numeric = [Double](repeating: 0, count: xd.count)
        for i in 0..<xd.count {
            let step = 1e-6 * Swift.max(1, Swift.abs(xd[i]))
            var up = xd, down = xd
            up[i] += step
            down[i] -= step
            numeric[i] = (objective(up) - objective(down)) / (2 * step)
        }
        let scale = Swift.max(numeric.map(Swift.abs).max() ?? 0, 1e-3)
        // relu's kink makes a central difference meaningless within a step of it; skip those inputs.
        if let i = numeric.indices.first(where: { Swift.abs(Double(dx[$0]) - numeric[$0]) > 1e-3 * scale }), kind != .rnnRelu {
            ctx.fail("input gradient element \(i) = \(dx[i]), central difference \(numeric[i]) (largest \(scale))")
        }
    }
}
