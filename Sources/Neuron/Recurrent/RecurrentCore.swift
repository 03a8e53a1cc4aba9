import CKernels

/// How a bidirectional layer combines its two directions in the output sequence.
public enum BidirectionalMerge: Sendable {
    /// [forward, reverse] on the last axis, 2·hidden wide (PyTorch's only form, Keras's `merge_mode="concat"`).
    case concatenate
    /// forward + reverse, hidden wide (Keras's `merge_mode="sum"`). Only the top layer's output is
    /// summed; inner layers of a stack still pass both directions on, so the weights keep PyTorch's shapes.
    case sum
}

/// The parameters of one layer and direction of a recurrent stack: fused gate matrices
/// `weight_ih` [G·H, D] and `weight_hh` [G·H, H], biases [G·H], and the peephole LSTM's diagonal weights [H].
final class RecurrentWeights {
    let weightIH: Parameter
    let weightHH: Parameter
    let biasIH: Parameter?
    let biasHH: Parameter?
    /// w_ci, w_cf, w_co for the peephole LSTM; empty otherwise.
    let peepholes: [Parameter]

    /// PyTorch's initialisation: every tensor U(−1/√H, 1/√H), drawn in state-dict order.
    init(cell: nn_rnn_cell, input: Int, hidden: Int, bias: Bool) {
        let g = Int(nn_rnn_gate_count(cell)) * hidden
        let bound = 1 / Float(hidden).squareRoot()
        func draw(_ shape: [Int]) -> Parameter { Parameter(Tensor.uniform(shape, low: -bound, high: bound)) }
        weightIH = draw([g, input])
        weightHH = draw([g, hidden])
        biasIH = bias ? draw([g]) : nil
        biasHH = bias ? draw([g]) : nil
        peepholes = cell == NN_CELL_LSTM_PEEPHOLE ? [draw([hidden]), draw([hidden]), draw([hidden])] : []
    }

    /// (local name, parameter) in state-dict order; `tag` marks a variant's keys, `suffix` is "_l0",
    /// "_l0_reverse"...
    func named(tag: String, suffix: String) -> [(name: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = [("weight_ih" + tag + suffix, weightIH), ("weight_hh" + tag + suffix, weightHH)]
        if let biasIH, let biasHH { out += [("bias_ih" + tag + suffix, biasIH), ("bias_hh" + tag + suffix, biasHH)] }
        for (name, p) in zip(["weight_ci", "weight_cf", "weight_co"], peepholes) { out.append((name + suffix, p)) }
        return out
    }

    var all: [Parameter] { [weightIH, weightHH] + [biasIH, biasHH].compactMap { $0 } + peepholes }
}

/// The configuration and parameters shared by `RNN`, `LSTM`, `GRU` and the single-step cells: a stack
/// of `layers` recurrent layers, one or two directions each, run through the C kernels as one autograd node.
final class RecurrentStack {
    let cell: nn_rnn_cell
    let name: String
    let inputSize: Int
    let hiddenSize: Int
    let layerCount: Int
    let bidirectional: Bool
    let merge: BidirectionalMerge
    let batchFirst: Bool
    let dropout: Float
    let hasBias: Bool
    /// weights[layer][direction]
    let weights: [[RecurrentWeights]]
    /// Inserted before "_l0" in every key of a variant PyTorch lacks ("" for PyTorch's cells).
    let keyTag: String

    /// A single-step cell: keys without the layer suffix (weight_ih, not weight_ih_l0).
    let isCell: Bool

    init(name: String, cell: nn_rnn_cell, keyTag: String, input: Int, hidden: Int, layers: Int = 1, bias: Bool,
         batchFirst: Bool = false, dropout: Float = 0, bidirectional: Bool = false, merge: BidirectionalMerge = .concatenate,
         isCell: Bool = false) throws {
        guard input >= 1 else { throw NeuronError.invalidArgument("\(name): input size must be at least 1, got \(input)") }
        guard hidden >= 1 else { throw NeuronError.invalidArgument("\(name): hidden size must be at least 1, got \(hidden)") }
        guard layers >= 1 else { throw NeuronError.invalidArgument("\(name): layers must be at least 1, got \(layers)") }
        guard dropout >= 0, dropout <= 1 else {
            throw NeuronError.invalidArgument("\(name): dropout must be in [0, 1], got \(dropout)")
        }
        // Every size the kernels take as a C int, and every parameter under the allocation cap, before
        // anything is drawn.
        let gates = Int(nn_rnn_gate_count(cell)), directions = bidirectional ? 2 : 1
        let gateRows = try Sizes.multiply(gates, hidden, "\(name): gate rows")
        _ = try Sizes.int32(gateRows, "gate rows (gates x hidden)", op: name)
        _ = try Sizes.int32(try Sizes.multiply(hidden, directions, "\(name): layer width"), "hidden x directions", op: name)
        _ = try Sizes.int32(input, "input size", op: name)
        try Sizes.checkShape([gateRows, max(input, hidden * directions)], "\(name) weight_ih")
        try Sizes.checkShape([gateRows, hidden], "\(name) weight_hh")
        // And the stack as a whole: `layers` copies of them (a trillion layers must throw, not exhaust memory).
        let perDirection = try Sizes.multiply(gateRows, max(input, hidden * directions) + hidden + 2, "\(name): parameters per layer")
        try Sizes.checkAllocation(elements: try Sizes.product([perDirection, directions, layers], "\(name): parameters of \(layers) layers"),
                                  "\(name) parameters of \(layers) layers")
        self.name = name
        self.isCell = isCell
        self.cell = cell
        self.keyTag = keyTag
        inputSize = input
        hiddenSize = hidden
        layerCount = layers
        hasBias = bias
        self.batchFirst = batchFirst
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.merge = merge
        weights = (0..<layers).map { l in
            (0..<directions).map { _ in
                RecurrentWeights(cell: cell, input: l == 0 ? input : hidden * directions, hidden: hidden, bias: bias)
            }
        }
    }

    var directions: Int { bidirectional ? 2 : 1 }
    var isLSTM: Bool { cell == NN_CELL_LSTM || cell == NN_CELL_LSTM_PEEPHOLE || cell == NN_CELL_LSTM_COUPLED }
    /// Width of the output sequence's last axis.
    var outputWidth: Int { bidirectional && merge == .concatenate ? 2 * hiddenSize : hiddenSize }

    /// PyTorch's keys: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then _reverse, then layer 1...
    var namedParameters: [(name: String, parameter: Parameter)] {
        weights.enumerated().flatMap { l, dirs in
            dirs.enumerated().flatMap { d, w in w.named(tag: keyTag, suffix: isCell ? "" : "_l\(l)" + (d == 1 ? "_reverse" : "")) }
        }
    }

    /// Checks the input, initial states and lengths against the configuration; returns (T, N).
    func validate(_ x: Tensor, h0: Tensor?, c0: Tensor?, lengths: [Int]?) throws -> (steps: Int, batch: Int) {
        let layout = batchFirst ? "[N, T, \(inputSize)] (batchFirst)" : "[T, N, \(inputSize)] (time-major)"
        guard x.rank == 3 else {
            throw NeuronError.shapeMismatch("\(name) expects input \(layout), got \(shapeString(x.shape))")
        }
        guard x.shape[2] == inputSize else {
            throw NeuronError.shapeMismatch("\(name) was built for input width \(inputSize), got input \(shapeString(x.shape)); expects \(layout)")
        }
        let (t, n) = batchFirst ? (x.shape[1], x.shape[0]) : (x.shape[0], x.shape[1])
        _ = try Sizes.int32(try Sizes.multiply(t, n, "\(name): steps x batch"), "steps x batch", op: name)
        let stateShape = [layerCount * directions, n, hiddenSize]
        for (label, state) in [("initial hidden state", h0), ("initial cell state", c0)] {
            if let state, state.shape != stateShape {
                throw NeuronError.shapeMismatch("\(name): \(label) \(shapeString(state.shape)) for input \(shapeString(x.shape)); expects [layers·directions, N, hidden] = \(shapeString(stateShape))")
            }
        }
        if let lengths {
            guard lengths.count == n else {
                throw NeuronError.invalidArgument("\(name): \(lengths.count) lengths for a batch of \(n) sequences")
            }
            if let bad = lengths.first(where: { $0 < 1 }) {
                throw NeuronError.invalidArgument("\(name): sequence length \(bad) is not allowed; every length must be at least 1")
            }
            if let bad = lengths.first(where: { $0 > t }) {
                throw NeuronError.invalidArgument("\(name): sequence length \(bad) is longer than the sequence (\(t) steps in input \(shapeString(x.shape)))")
            }
        }
        return (t, n)
    }

    /// Runs the stack; returns the output sequence in the input's layout, h_n and (LSTM) c_n
    /// [layers·directions, N, H]. One node on the tape covers all of it; the three results are views of
    /// that node's output.
    func run(_ x: Tensor, h0: Tensor?, c0 c0Given: Tensor?, lengths: [Int]?, training: Bool) throws -> (output: Tensor, h: Tensor, c: Tensor?) {
        let (T, N) = try validate(x, h0: h0, c0: c0Given, lengths: lengths)
        let H = hiddenSize, L = layerCount, dirs = directions
        let stateCount = L * dirs * N * H
        let lstm = isLSTM
        let c0 = lstm ? c0Given : nil
        let applyDropout = training && dropout > 0 && L > 1
        // The parameter values as they are now: backward uses these even if an optimiser replaces them.
        let values = weights.map { $0.map { $0.all.map(\.value) } }
        let inputs = [x] + [h0, c0].compactMap { $0 } + values.flatMap { $0.flatMap { $0 } }
        let recording = isGradEnabled && inputs.contains { $0.requiresGrad }

        // Packed results: the output sequence (in the caller's layout), h_n, c_n.
        let outCount = T * N * outputWidth
        let packed = try Tensor.allocated([outCount + stateCount * (lstm ? 2 : 1)], op: name)
        let hN = packed.pointer + outCount, cN = packed.pointer + outCount + stateCount

        var layerInputs: [Tensor] = []       // time-major input of each layer (after dropout)
        var masks: [Tensor?] = []            // dropout mask applied to the output of layer l < L-1
        var saved: [[TensorStorage]] = []    // activations per layer and direction
        let workspace = try Sizes.workspace(maxWorkspace(T: T, N: N), op: name)
        var input = batchFirst ? swapFirstAxes(x) : x
        for l in 0..<L {
            // The top layer writes straight into the result unless its directions are summed or the
            // caller wants batch-first.
            let direct = l == L - 1 && !batchFirst && !(bidirectional && merge == .sum)
            let out = direct ? Tensor(shape: [T, N, dirs * H], storage: packed.storage, offset: packed.offset)
                             : Tensor(uninitializedShape: [T, N, dirs * H])
            var layerSaved: [TensorStorage] = []
            // The kernels get raw pointers: everything they read or write stays alive until they return.
            try withExtendedLifetime((input, out, workspace, packed, values, h0, c0)) {
                for d in 0..<dirs {
                    var p = params(T: T, N: N, D: input.shape[2], reverse: d == 1, ldy: dirs * H)
                    let save = recording ? try Sizes.workspace(nn_rnn_saved_size(&p), op: "\(name) saved activations") : nil
                    let slot = (l * dirs + d) * N * H
                    var w = kernelWeights(values[l][d])
                    withLengths(lengths) { len in
                        p.lengths = len
                        nn_rnn_forward(out.pointer + d * H, hN + slot, lstm ? cN + slot : nil, save?.pointer, input.pointer,
                                       h0.map { $0.pointer + slot }, c0.map { $0.pointer + slot }, &w, workspace.pointer, &p)
                    }
                    if let save { layerSaved.append(save) }
                }
            }
            layerInputs.append(input)
            saved.append(layerSaved)
            if l == L - 1 {
                if !direct { writeOutput(out, into: packed.pointer, T: T, N: N) }
            } else if applyDropout {
                let seed = Random.using { $0.next() }
                let dropped = Tensor(uninitializedShape: out.shape), mask = Tensor(uninitializedShape: out.shape)
                nn_dropout_forward(dropped.pointer, mask.pointer, out.pointer, dropout, seed, out.count)
                masks.append(mask)
                input = dropped
            } else {
                masks.append(nil)
                input = out
            }
        }
        let result = recording ? packed.recorded(name, inputs: inputs) { [self] g in
            try backward(g, T: T, N: N, lengths: lengths, h0: h0, c0: c0, x: x, values: values,
                         layerInputs: layerInputs, masks: masks, saved: saved)
        } : packed
        let outputShape = batchFirst ? [N, T, outputWidth] : [T, N, outputWidth]
        let output = try result.slice(0..<outCount).reshaped(outputShape)
        let h = try result.slice(outCount..<(outCount + stateCount)).reshaped([L * dirs, N, H])
        let c = lstm ? try result.slice((outCount + stateCount)..<(outCount + 2 * stateCount)).reshaped([L * dirs, N, H]) : nil
        return (output, h, c)
    }

    private func params(T: Int, N: Int, D: Int, reverse: Bool, ldy: Int) -> nn_rnn_params {
        nn_rnn_params(cell: cell, steps: Int32(T), batch: Int32(N), input: Int32(D), hidden: Int32(hiddenSize),
                      reverse: reverse ? 1 : 0, lengths: nil, ldy: Int32(ldy), accumulate_dx: 0)
    }

    /// Scratch for any layer of the stack (the size depends on each layer's input width).
    private func maxWorkspace(T: Int, N: Int) -> Int {
        let widths = layerCount > 1 ? [inputSize, directions * hiddenSize] : [inputSize]
        return widths.map { d in
            var p = params(T: T, N: N, D: d, reverse: false, ldy: hiddenSize)
            return nn_rnn_workspace_size(&p)
        }.max()!
    }

    /// The top layer's [T, N, dirs·H] output as the caller sees it: summed across directions if asked,
    /// batch-first if asked.
    private func writeOutput(_ top: Tensor, into dst: UnsafeMutablePointer<Float>, T: Int, N: Int) {
        let H = hiddenSize, W = outputWidth
        let source: Tensor
        if bidirectional && merge == .sum {
            let summed = Tensor(uninitializedShape: [T, N, H])
            let a = top.pointer
            for r in 0..<(T * N) {
                nn_binary_broadcast(NN_BIN_ADD, summed.pointer + r * H, a + r * 2 * H, [1], a + r * 2 * H + H, [1], [H], 1)
            }
            source = summed
        } else {
            source = top
        }
        if batchFirst {
            if T * N * W > 0 { nn_gather_strided(dst, source.pointer, [W, N * W, 1], [N, T, W], 3) }
        } else {
            dst.update(from: source.pointer, count: T * N * W)
        }
    }

    /// The gradient of the packed output → gradients of x, h0, c0 and every parameter, in `inputs` order.
    private func backward(_ g: Tensor, T: Int, N: Int, lengths: [Int]?, h0: Tensor?, c0: Tensor?, x: Tensor,
                          values: [[[Tensor]]], layerInputs: [Tensor], masks: [Tensor?],
                          saved: [[TensorStorage]]) throws -> [Tensor?] {
        let H = hiddenSize, L = layerCount, dirs = directions, W = outputWidth
        let outCount = T * N * W, stateCount = L * dirs * N * H
        let lstm = isLSTM
        let dhN = g.pointer + outCount, dcN = g.pointer + outCount + stateCount
        // dy of the top layer, time-major [T, N, dirs·H].
        var dTop = Tensor(uninitializedShape: [T, N, dirs * H])
        var timeMajor = Tensor(uninitializedShape: [T, N, W])
        if batchFirst {
            if T * N * W > 0 { nn_gather_strided(timeMajor.pointer, g.pointer, [W, T * W, 1], [T, N, W], 3) }
        } else {
            timeMajor = Tensor(shape: [T, N, W], storage: g.storage, offset: g.offset)
        }
        if bidirectional && merge == .sum {
            for r in 0..<(T * N) {
                (dTop.pointer + r * 2 * H).update(from: timeMajor.pointer + r * H, count: H)
                (dTop.pointer + r * 2 * H + H).update(from: timeMajor.pointer + r * H, count: H)
            }
        } else {
            dTop = timeMajor
        }
        let dh0 = h0?.requiresGrad == true ? Tensor(uninitializedShape: [L * dirs, N, H]) : nil
        let dc0 = c0?.requiresGrad == true ? Tensor(uninitializedShape: [L * dirs, N, H]) : nil
        let paramGrads: [[[Tensor]]] = values.map { $0.map { $0.map { Tensor.zeros($0.shape) } } }
        let workspace = try Sizes.workspace(maxWorkspace(T: T, N: N), op: "\(name) backward")
        var dx: Tensor? = nil
        for l in stride(from: L - 1, through: 0, by: -1) {
            let width = l == 0 ? inputSize : dirs * H
            let needInput = l > 0 || x.requiresGrad
            let dIn = needInput ? Tensor(uninitializedShape: [T, N, width]) : nil
            withExtendedLifetime((dTop, dIn, dh0, dc0, g, workspace, paramGrads, values, layerInputs, saved)) {
                for d in 0..<dirs {
                    var p = params(T: T, N: N, D: width, reverse: d == 1, ldy: dirs * H)
                    p.accumulate_dx = d == 1 ? 1 : 0
                    let slot = (l * dirs + d) * N * H
                    let gp = paramGrads[l][d].map(\.pointer)
                    var gk = nn_rnn_grads(w_ih: gp[0], w_hh: gp[1], b_ih: nil, b_hh: nil, w_ci: nil, w_cf: nil, w_co: nil)
                    if hasBias { (gk.b_ih, gk.b_hh) = (gp[2], gp[3]) }
                    if cell == NN_CELL_LSTM_PEEPHOLE { (gk.w_ci, gk.w_cf, gk.w_co) = (gp[gp.count - 3], gp[gp.count - 2], gp[gp.count - 1]) }
                    var w = kernelWeights(values[l][d])
                    withLengths(lengths) { len in
                        p.lengths = len
                        nn_rnn_backward(dIn?.pointer, dh0.map { $0.pointer + slot }, dc0.map { $0.pointer + slot }, &gk,
                                        dTop.pointer + d * H, dhN + slot, lstm ? dcN + slot : nil, layerInputs[l].pointer,
                                        &w, saved[l][d].pointer, workspace.pointer, &p)
                    }
                }
            }
            if l > 0, let dIn {
                if let mask = masks[l - 1] {
                    let dropped = Tensor(uninitializedShape: dIn.shape)
                    nn_dropout_backward(dropped.pointer, dIn.pointer, mask.pointer, dIn.count)
                    dTop = dropped
                } else {
                    dTop = dIn
                }
            } else {
                dx = dIn
            }
        }
        if batchFirst, let d = dx { dx = swapFirstAxes(d) }
        let stateGrads: [Tensor?] = [h0.map { _ in dh0 }, c0.map { _ in dc0 }].compactMap { $0 }
        return [dx] + stateGrads + paramGrads.flatMap { $0.flatMap { $0 } }
    }

    /// The kernel's view of one layer and direction's parameter values (in `RecurrentWeights.all` order);
    /// the tensors must outlive its use.
    private func kernelWeights(_ v: [Tensor]) -> nn_rnn_weights {
        let p = v.map { UnsafePointer($0.pointer) }
        let peep = cell == NN_CELL_LSTM_PEEPHOLE
        return nn_rnn_weights(w_ih: p[0], w_hh: p[1], b_ih: hasBias ? p[2] : nil, b_hh: hasBias ? p[3] : nil,
                              w_ci: peep ? p[p.count - 3] : nil, w_cf: peep ? p[p.count - 2] : nil, w_co: peep ? p[p.count - 1] : nil)
    }
}

/// Passes the lengths to C as `long`s, or null.
private func withLengths<R>(_ lengths: [Int]?, _ body: (UnsafePointer<Int>?) throws -> R) rethrows -> R {
    guard let lengths else { return try body(nil) }
    return try lengths.withUnsafeBufferPointer { try body($0.baseAddress) }
}

/// [A, B, C] → [B, A, C], a copy.
func swapFirstAxes(_ t: Tensor) -> Tensor {
    let (a, b, c) = (t.shape[0], t.shape[1], t.shape[2])
    let out = Tensor(uninitializedShape: [b, a, c])
    if out.count > 0 { nn_gather_strided(out.pointer, t.pointer, [c, b * c, 1], [b, a, c], 3) }
    return out
}
