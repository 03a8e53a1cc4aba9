import Testing
@testable import Neuron

/// nn.RNN / nn.LSTM / nn.GRU references (Tests/Fixtures/golden, README sections rnn_*, lstm_*, gru_*):
/// outputs, final states and every gradient of L = Σ output·R_out + Σ h_n·R_h (+ Σ c_n·R_c).
@Suite struct RecurrentGoldenTests {
    struct Case: CustomTestStringConvertible, Sendable {
        enum Kind: Sendable { case rnnTanh, rnnRelu, lstm, gru }
        let file: String
        let kind: Kind
        let layers: Int
        let bidirectional: Bool
        let batchFirst: Bool
        var testDescription: String { file }
    }

    static let cases: [Case] = [
        Case(file: "rnn_tanh_1layer_h0", kind: .rnnTanh, layers: 1, bidirectional: false, batchFirst: false),
        Case(file: "rnn_tanh_2layer_bidir", kind: .rnnTanh, layers: 2, bidirectional: true, batchFirst: false),
        Case(file: "rnn_tanh_2layer_batchfirst", kind: .rnnTanh, layers: 2, bidirectional: false, batchFirst: true),
        Case(file: "rnn_relu_1layer_h0", kind: .rnnRelu, layers: 1, bidirectional: false, batchFirst: false),
        Case(file: "rnn_relu_2layer_bidir", kind: .rnnRelu, layers: 2, bidirectional: true, batchFirst: false),
        Case(file: "rnn_relu_2layer_batchfirst", kind: .rnnRelu, layers: 2, bidirectional: false, batchFirst: true),
        Case(file: "lstm_1layer_h0", kind: .lstm, layers: 1, bidirectional: false, batchFirst: false),
        Case(file: "lstm_2layer_bidir", kind: .lstm, layers: 2, bidirectional: true, batchFirst: false),
        Case(file: "lstm_2layer_batchfirst", kind: .lstm, layers: 2, bidirectional: false, batchFirst: true),
        Case(file: "gru_1layer_h0", kind: .gru, layers: 1, bidirectional: false, batchFirst: false),
        Case(file: "gru_2layer_bidir", kind: .gru, layers: 2, bidirectional: true, batchFirst: false),
        Case(file: "gru_2layer_batchfirst", kind: .gru, layers: 2, bidirectional: false, batchFirst: true),
        Case(file: "lstm_packed", kind: .lstm, layers: 1, bidirectional: false, batchFirst: false),
        Case(file: "lstm_packed_bidir", kind: .lstm, layers: 2, bidirectional: true, batchFirst: false),
    ]

    /// Runs a case's layer on (possibly reordered) inputs; returns the module and the three results.
    static func run(_ c: Case, _ g: Golden, x: Tensor, h0: Tensor?, c0: Tensor?, lengths: [Int]?) throws
        -> (module: any Module, output: Tensor, h: Tensor, c: Tensor?) {
        switch c.kind {
        case .rnnTanh, .rnnRelu:
            let m = try RNN(input: 5, hidden: 4, layers: c.layers, nonlinearity: c.kind == .rnnTanh ? .tanh : .relu,
                            batchFirst: c.batchFirst, bidirectional: c.bidirectional)
            try m.loadStateDict(g.tensors, prefix: "param.")
            let (o, h) = try m(x, state: h0, lengths: lengths)
            return (m, o, h, nil)
        case .lstm:
            let m = try LSTM(input: 5, hidden: 4, layers: c.layers, batchFirst: c.batchFirst, bidirectional: c.bidirectional)
            try m.loadStateDict(g.tensors, prefix: "param.")
            let state = h0.map { LSTMState(h: $0, c: c0!) }
            let (o, s) = try m(x, state: state, lengths: lengths)
            return (m, o, s.h, s.c)
        case .gru:
            let m = try GRU(input: 5, hidden: 4, layers: c.layers, batchFirst: c.batchFirst, bidirectional: c.bidirectional)
            try m.loadStateDict(g.tensors, prefix: "param.")
            let (o, h) = try m(x, state: h0, lengths: lengths)
            return (m, o, h, nil)
        }
    }

    @Test(arguments: cases)
    func matchesPyTorch(_ c: Case) throws {
        let g = try Golden(c.file)
        let x = try g.float("x").requiringGrad()
        let h0 = g.tensors["h0"] == nil ? nil : try g.float("h0").requiringGrad()
        let c0 = g.tensors["c0"] == nil ? nil : try g.float("c0").requiringGrad()
        let lengths = g.tensors["lengths"] == nil ? nil : try g.ints("lengths")
        let (module, output, h, cn) = try Self.run(c, g, x: x, h0: h0, c0: c0, lengths: lengths)

        try g.expectValue(output, "output")
        try g.expectValue(h, "h_n")
        if let cn { try g.expectValue(cn, "c_n") }
        var loss = try (output * g.float("R_out")).sum() + (h * g.float("R_h")).sum()
        if let cn { loss = try loss + (cn * g.float("R_c")).sum() }
        try loss.backward()

        try g.expectGradient(x.grad, "grad.x")
        if let h0 { try g.expectGradient(h0.grad, "grad.h0") }
        if let c0 { try g.expectGradient(c0.grad, "grad.c0") }
        let names = module.namedParameters
        #expect(Set(names.map { "param." + $0.name }) == Set(g.tensors.keys.filter { $0.hasPrefix("param.") }))
        for (name, parameter) in names { try g.expectGradient(parameter.grad, "grad.param." + name) }
        if lengths != nil {
            // Padded steps: output exactly 0, input gradient exactly 0.
            let lengths = try g.ints("lengths")
            let gx = try #require(x.grad)
            for (n, len) in lengths.enumerated() {
                for t in len..<output.shape[0] {
                    #expect((0..<output.shape[2]).allSatisfy { output[t, n, $0] == 0 })
                    #expect((0..<x.shape[2]).allSatisfy { gx[t, n, $0] == 0 })
                }
            }
        }
    }

    /// Unsorted lengths (PyTorch's enforce_sorted=False): the batch reordered gives the same results reordered.
    @Test func unsortedLengthsGiveTheSortedResultsReordered() throws {
        let c = Self.cases.first { $0.file == "lstm_packed_bidir" }!
        let g = try Golden(c.file)
        let order = [2, 0, 1]
        let x = try reorderBatch(g.float("x"), order).requiringGrad()
        let lengths = try order.map { try g.ints("lengths")[$0] }
        let (module, output, h, cn) = try Self.run(c, g, x: x, h0: nil, c0: nil, lengths: lengths)
        try g.expectValue(try reorderBatch(output, inverse(order)), "output")
        try g.expectValue(try reorderBatch(h, inverse(order)), "h_n")
        try g.expectValue(try reorderBatch(try #require(cn), inverse(order)), "c_n")
        let loss = try (output * reorderBatch(g.float("R_out"), order)).sum() + (h * reorderBatch(g.float("R_h"), order)).sum()
            + (try #require(cn) * reorderBatch(g.float("R_c"), order)).sum()
        try loss.backward()
        try g.expectGradient(try reorderBatch(try #require(x.grad), inverse(order)), "grad.x")
        for (name, parameter) in module.namedParameters { try g.expectGradient(parameter.grad, "grad.param." + name) }
    }
}

/// Axis 1 (the batch of [T or layers, N, ...]) reordered: result[:, i] = t[:, order[i]].
func reorderBatch(_ t: Tensor, _ order: [Int]) throws -> Tensor {
    try t.permuted([1, 0, 2]).rows(at: order).permuted([1, 0, 2])
}

func inverse(_ order: [Int]) -> [Int] {
    var inv = order
    for (i, o) in order.enumerated() { inv[o] = i }
    return inv
}
