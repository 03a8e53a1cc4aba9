import Foundation
import Testing
@testable import Neuron

@Suite struct RecurrentTests {
    // MARK: configuration and keys

    @Test func keysFollowPyTorchAndVariantsAreTagged() throws {
        let lstm = try LSTM(input: 5, hidden: 4, layers: 2, bidirectional: true)
        #expect(lstm.namedParameters.map(\.name) == [
            "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
            "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
            "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
            "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"])
        #expect(lstm.namedParameters.map(\.parameter.shape)[8] == [16, 8])
        #expect(try LSTM(input: 3, hidden: 2, variant: .peephole).namedParameters.map(\.name) == [
            "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ci_l0", "weight_cf_l0", "weight_co_l0"])
        #expect(try LSTM(input: 3, hidden: 2, variant: .coupled).namedParameters.map { "\($0.name)\($0.parameter.shape)" } == [
            "weight_ih_coupled_l0[6, 3]", "weight_hh_coupled_l0[6, 2]", "bias_ih_coupled_l0[6]", "bias_hh_coupled_l0[6]"])
        #expect(try GRU(input: 3, hidden: 2, bias: false, variant: .resetBefore).namedParameters.map(\.name) == [
            "weight_ih_resetbefore_l0", "weight_hh_resetbefore_l0"])
        #expect(try GRU(input: 3, hidden: 2, variant: .simplified).namedParameters.map { "\($0.name)\($0.parameter.shape)" }.first
            == "weight_ih_simplified_l0[4, 3]")
        #expect(try GRUCell(input: 3, hidden: 2).namedParameters.map(\.name) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        #expect(try LSTMCell(input: 3, hidden: 2, variant: .peephole).namedParameters.map(\.name).suffix(3) == ["weight_ci", "weight_cf", "weight_co"])
        #expect(try GRU(input: 3, hidden: 2).typeName == "GRU")
        // PyTorch's init: every parameter within ±1/√hidden.
        let bound = 1 / Float(4).squareRoot()
        #expect(lstm.parameters.allSatisfy { p in p.withValue { $0.scalars.allSatisfy { abs($0) <= bound } } })
        let model = Sequential([lstm])
        #expect(model.namedParameters.first?.name == "0.weight_ih_l0")
    }

    /// A PyTorch nn.GRU file has the same shapes as a reset-before GRU but other maths: it must not load.
    @Test func pyTorchGRUFileNeverLoadsIntoOtherVariants() throws {
        let g = try Golden("gru_2layer_bidir")
        let resetBefore = try GRU(input: 5, hidden: 4, layers: 2, bidirectional: true, variant: .resetBefore)
        #expect(throws: NeuronError.self) { try resetBefore.loadStateDict(g.tensors, prefix: "param.") }
        let report = try resetBefore.loadStateDict(g.tensors, prefix: "param.", strict: false)
        #expect(report.missingKeys.count == 16 && report.unexpectedKeys.count == 16)
        let simplified = try GRU(input: 5, hidden: 4, layers: 2, bidirectional: true, variant: .simplified)
        #expect(throws: NeuronError.self) { try simplified.loadStateDict(g.tensors, prefix: "param.") }
        let coupled = try LSTM(input: 5, hidden: 4, layers: 2, bidirectional: true, variant: .coupled)
        #expect(throws: NeuronError.self) { try coupled.loadStateDict(try Golden("lstm_2layer_bidir").tensors, prefix: "param.") }
        // Its own file round-trips.
        let copy = try GRU(input: 5, hidden: 4, layers: 2, bidirectional: true, variant: .resetBefore)
        try copy.loadStateDict(resetBefore.stateDict())
        let x = randomTensor([3, 2, 5], seed: 1)
        #expect(try resetBefore(x) == copy(x))
    }

    @Test func badConfigurationAndInputThrowClearly() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        #expect(message { _ = try LSTM(input: 5, hidden: 0) }.contains("hidden size must be at least 1"))
        #expect(message { _ = try GRU(input: 0, hidden: 3) }.contains("input size"))
        #expect(message { _ = try RNN(input: 2, hidden: 3, layers: 0) }.contains("layers"))
        #expect(message { _ = try LSTM(input: 2, hidden: 3, dropout: 1.5) }.contains("dropout"))
        #expect(message { _ = try GRUCell(input: 2, hidden: -1) }.contains("hidden size"))

        let lstm = try LSTM(input: 5, hidden: 4, layers: 2)
        let x = randomTensor([6, 3, 5], seed: 2)
        #expect(message { _ = try lstm(randomTensor([6, 3, 7], seed: 3)) }.contains("built for input width 5"))
        #expect(message { _ = try lstm(randomTensor([6, 5], seed: 3)) }.contains("expects input [T, N, 5]"))
        let good = Tensor.zeros([2, 3, 4]), bad = Tensor.zeros([1, 3, 4])
        #expect(message { _ = try lstm(x, state: LSTMState(h: bad, c: good)) }.contains("initial hidden state [1, 3, 4]"))
        #expect(message { _ = try lstm(x, state: LSTMState(h: good, c: Tensor.zeros([2, 2, 4]))) }.contains("initial cell state [2, 2, 4]"))
        #expect(message { _ = try lstm(x, lengths: [6, 7, 1]) }.contains("sequence length 7 is longer than the sequence (6 steps"))
        #expect(message { _ = try lstm(x, lengths: [6, 0, 1]) }.contains("sequence length 0 is not allowed"))
        #expect(message { _ = try lstm(x, lengths: [6, 1]) }.contains("2 lengths for a batch of 3"))
        let gru = try GRU(input: 5, hidden: 4, batchFirst: true)
        #expect(message { _ = try gru(randomTensor([3, 5], seed: 3)) }.contains("expects input [N, T, 5] (batchFirst)"))
        #expect(message { _ = try gru(randomTensor([3, 6, 5], seed: 4), state: Tensor.zeros([1, 6, 4])) }.contains("expects [layers·directions, N, hidden] = [1, 3, 4]"))
        let cell = try LSTMCell(input: 5, hidden: 4)
        #expect(message { _ = try cell(randomTensor([3, 4], seed: 5)) }.contains("built for input [N, 5], got [3, 4]"))
        #expect(message { _ = try cell(randomTensor([3, 5], seed: 5), state: LSTMState(h: Tensor.zeros([3, 4]), c: Tensor.zeros([3, 3]))) }
            .contains("cell state [3, 3]"))
    }

    // MARK: semantics

    @Test func emptySequenceAndEmptyBatch() throws {
        let lstm = try LSTM(input: 3, hidden: 2, layers: 2, bidirectional: true)
        let h0 = randomTensor([4, 2, 2], seed: 6), c0 = randomTensor([4, 2, 2], seed: 7)
        let (out, state) = try lstm(Tensor.zeros([0, 2, 3]), state: LSTMState(h: h0, c: c0))
        #expect(out.shape == [0, 2, 4])
        #expect(state.h == h0 && state.c == c0)
        let (none, s2) = try lstm(Tensor.zeros([5, 0, 3]))
        #expect(none.shape == [5, 0, 4] && s2.h.shape == [4, 0, 2])
    }

    /// Variants PyTorch lacks, through the whole layer (two layers, both directions, lengths): central
    /// differences in float32 of x and the initial states (the C tests check every parameter in double).
    @Test(arguments: ["rnn_relu", "lstm_peephole", "lstm_coupled", "gru_reset_before", "gru_simplified", "gru"])
    func variantsPassFiniteDifferences(_ kind: String) throws {
        Random.seed(11)
        let lengths = [5, 2, 4]
        let x = randomTensor([5, 3, 3], seed: 8), h0 = randomTensor([4, 3, 2], seed: 9), c0 = randomTensor([4, 3, 2], seed: 10)
        switch kind {
        case "rnn_relu":
            let m = try RNN(input: 3, hidden: 2, layers: 2, nonlinearity: .relu, bidirectional: true)
            try checkGradients([x, h0]) { v in try m(v[0], state: v[1], lengths: lengths).output }
        case "lstm_peephole", "lstm_coupled":
            let m = try LSTM(input: 3, hidden: 2, layers: 2, bidirectional: true, variant: kind == "lstm_peephole" ? .peephole : .coupled)
            try checkGradients([x, h0, c0]) { v in
                let (o, s) = try m(v[0], state: LSTMState(h: v[1], c: v[2]), lengths: lengths)
                return try Tensor.concatenate([o.flattened(startAxis: 0), s.h.flattened(startAxis: 0), s.c.flattened(startAxis: 0)])
            }
        default:
            let variant: GRUVariant = kind == "gru" ? .resetAfter : kind == "gru_simplified" ? .simplified : .resetBefore
            let m = try GRU(input: 3, hidden: 2, layers: 2, bidirectional: true, variant: variant)
            try checkGradients([x, h0]) { v in
                let (o, h) = try m(v[0], state: v[1], lengths: lengths)
                return try Tensor.concatenate([o.flattened(startAxis: 0), h.flattened(startAxis: 0)])
            }
        }
    }

    @Test func dropoutActsBetweenLayersInTrainingOnly() throws {
        Random.seed(3)
        let x = randomTensor([6, 4, 3], seed: 11)
        let gru = try GRU(input: 3, hidden: 8, layers: 2, dropout: 0.5)
        let plain = try GRU(input: 3, hidden: 8, layers: 2)
        try plain.loadStateDict(gru.stateDict())
        let trained = try gru(x)
        #expect(trained != (try plain(x)))
        gru.eval()
        #expect(try gru(x) == plain(x))
        // One layer: nothing to drop between.
        let single = try LSTM(input: 3, hidden: 4, dropout: 0.5)
        let a = try single(x)
        single.eval()
        #expect(try single(x) == a)
        // Gradients through the dropout masks, the same masks for every evaluation.
        gru.train()
        try checkGradients([x]) { v in try Random.withGenerator(seed: 5) { try gru(v[0]) } }
    }

    @Test func summedDirectionsAreTheConcatenatedHalvesAdded() throws {
        let cat = try LSTM(input: 3, hidden: 4, layers: 2, bidirectional: true)
        let sum = try LSTM(input: 3, hidden: 4, layers: 2, bidirectional: true, merge: .sum)
        try sum.loadStateDict(cat.stateDict())
        let x = randomTensor([5, 2, 3], seed: 12)
        let c = try cat(x), s = try sum(x)
        #expect(s.shape == [5, 2, 4])
        let halves = try c.reshaped([10, 8]).transposed()
        let added = try (halves.slice(0..<4) + halves.slice(4..<8)).transposed().reshaped([5, 2, 4])
        expectClose(s, added, atol: 1e-6, rtol: 1e-6)
        try checkGradients([x]) { v in try sum(v[0]) }
    }

    /// A cell unrolled by hand computes what the one-layer sequence layer computes, with the same gradients.
    @Test func cellsUnrolledMatchTheSequenceLayer() throws {
        let g = try Golden("lstm_1layer_h0")
        let layer = try LSTM(input: 5, hidden: 4)
        try layer.loadStateDict(g.tensors, prefix: "param.")
        let cell = try LSTMCell(input: 5, hidden: 4)
        try cell.loadStateDict(Dictionary(uniqueKeysWithValues: layer.stateDict().map { ($0.key.replacingOccurrences(of: "_l0", with: ""), $0.value) }))
        let x = try g.float("x"), h0 = try g.float("h0"), c0 = try g.float("c0")
        var state = LSTMState(h: try h0.squeezed(axis: 0), c: try c0.squeezed(axis: 0))
        var steps: [Tensor] = []
        for t in 0..<6 {
            state = try cell(try x.slice(t..<(t + 1)).squeezed(axis: 0), state: state)
            steps.append(state.h)
        }
        let unrolled = try Tensor.stack(steps)
        let (out, last) = try layer(x, state: LSTMState(h: h0, c: c0))
        expectClose(unrolled, out, atol: 1e-6, rtol: 1e-5)
        expectClose(state.c, try last.c.squeezed(axis: 0), atol: 1e-6, rtol: 1e-5)
        try (unrolled * g.float("R_out")).sum().backward()
        try (out * g.float("R_out")).sum().backward()
        for ((_, p), (_, q)) in zip(cell.namedParameters, layer.namedParameters) {
            expectClose(try #require(p.grad), try #require(q.grad), atol: 1e-5, rtol: 1e-4)
        }
        let gruCell = try GRUCell(input: 5, hidden: 4, variant: .resetBefore)
        try checkGradients([x.slice(0..<1).squeezed(axis: 0), h0.squeezed(axis: 0)]) { v in try gruCell(v[0], state: v[1]) }
    }

    /// Truncated BPTT: windows run with the carried state give the long run's outputs; gradients stop at
    /// each window's start.
    @Test func statefulWindowsContinueTheStream() throws {
        let gru = try GRU(input: 3, hidden: 5, layers: 2)
        let stream = randomTensor([12, 2, 3], seed: 13)
        let whole = try noGrad { try gru(stream) }
        let stateful = Stateful(gru)
        #expect(stateful.namedParameters.map(\.name) == gru.namedParameters.map(\.name))
        let first = try stateful(stream.slice(0..<5))
        let x2 = try stream.slice(5..<12).requiringGrad()
        let second = try stateful(x2)
        expectClose(try Tensor.concatenate([first, second]), whole, atol: 1e-6, rtol: 1e-5)
        #expect(stateful.state?.requiresGrad == false)
        try second.sum().backward()
        #expect(x2.grad != nil)
        stateful.resetState()
        #expect(try stateful(stream.slice(0..<5)) == first)
        stateful.eval()
        #expect(!gru.isTraining)
        // A different batch size with a carried state is a shape error, not a silent reset.
        #expect(throws: NeuronError.self) { try stateful(randomTensor([3, 4, 3], seed: 14)) }
    }

    /// A vanilla RNN with recurrent weights 1.5·I, at rest in its linear range (zero input, tanh'(0) = 1),
    /// over 80 steps: the gradient of the loss at the last step grows like 1.5^80 ≈ 1e14 on the way back.
    /// Without clipping one SGD step throws the weights out by ~1e13; with clipGradNorm every step is at
    /// most lr·maxNorm and training goes on (the loss falls).
    @Test func gradientClippingStopsTheExplosion() throws {
        var g = RandomGenerator(seed: 15)
        let x = Tensor.zeros([80, 4, 1])
        let target = Tensor.normal([4, 1], mean: 0.3, std: 0.1, using: &g)
        for clip in [false, true] {
            Random.seed(16)
            let rnn = try RNN(input: 1, hidden: 6), head = try Linear(in: 6, out: 1)
            var eye = [Float](repeating: 0, count: 36)
            for i in 0..<6 { eye[i * 7] = 1.5 }
            try rnn.loadStateDict(["weight_ih_l0": .float(Tensor.zeros([6, 1])), "weight_hh_l0": .float(Tensor(shape: [6, 6], scalars: eye)),
                                   "bias_ih_l0": .float(Tensor.zeros([6])), "bias_hh_l0": .float(Tensor.zeros([6]))])
            let params = rnn.parameters + head.parameters
            let sgd = try SGD(rnn.namedParameters + head.namedParameters, lr: 0.1)
            func loss() throws -> Tensor { try mseLoss(try head(try rnn(x, state: nil).state.squeezed(axis: 0)), target) }
            func snapshot() -> [Float] { params.flatMap { p in p.withValue { $0.scalars } } }
            let before = try loss().item()
            var norms: [Float] = [], largestStep: Float = 0, losses: [Float] = []
            for _ in 0..<30 {
                sgd.zeroGrad()
                let l = try loss()
                losses.append(try l.item())
                try l.backward()
                norms.append(try clipGradNorm(params, maxNorm: clip ? 1 : .greatestFiniteMagnitude))
                let old = snapshot()
                try sgd.step()
                largestStep = max(largestStep, sqrt(zip(snapshot(), old).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }))
                if !clip { break }
            }
            #expect(norms[0] > 1e10, "the first gradient norm is \(norms[0]): the test must explode")
            let largest = snapshot().map(abs).max() ?? 0
            if clip {
                #expect(largestStep <= 0.1 * 1.0001, "each clipped step is at most lr · maxNorm, got \(largestStep)")
                #expect(largest < 5 && losses.allSatisfy(\.isFinite))
                #expect(try loss().item() < before / 2, "losses \(losses)")
            } else {
                #expect(largest > 1e6, "the unclipped step blew a weight up to \(largest)")
            }
        }
    }

    // MARK: variable-length batches

    @Test func paddingLabelsMasksAndTheSequenceLoader() throws {
        let a = try Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]), b = try Tensor(shape: [1, 2], scalars: [7, 8])
        let (padded, lengths) = try padSequences([a, b])
        #expect(lengths == [3, 1])
        #expect(padded.shape == [3, 2, 2])
        #expect(padded.scalars == [1, 2, 7, 8, 3, 4, 0, 0, 5, 6, 0, 0])
        let (bf, _) = try padSequences([a, b], batchFirst: true, paddingValue: -1)
        #expect(bf.scalars == [1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, -1])
        let la = a.requiringGrad()
        try (padSequences([la, b]).padded * 2).sum().backward()
        #expect(la.grad?.scalars == [2, 2, 2, 2, 2, 2])
        #expect(try padLabels([[1, 2, 3], [4]]) == [1, 4, 2, -100, 3, -100])
        #expect(try padLabels([[1, 2], [4]], steps: 3, batchFirst: true, padding: -1) == [1, 2, -1, 4, -1, -1])
        #expect(try sequenceMask(lengths: [2, 1], steps: 3).scalars == [1, 1, 1, 0, 0, 0])
        #expect(throws: NeuronError.self) { try padSequences([a, Tensor.zeros([2, 3])]) }
        #expect(throws: NeuronError.self) { try padLabels([[1, 2, 3]], steps: 2) }

        let sequences = (1...7).map { n in Tensor(repeating: Float(n), shape: [n, 2]) }
        var loader = try SequenceLoader(sequences: sequences, targets: Array(0..<7), batchSize: 3, generator: RandomGenerator(seed: 1))
        var seen: [Int] = []
        for batch in loader.epoch() {
            #expect(batch.y == batch.indices)
            #expect(batch.lengths == batch.indices.map { $0 + 1 })
            #expect(batch.x.shape == [batch.lengths.max()!, batch.indices.count, 2])
            seen += batch.indices
        }
        #expect(seen.sorted() == Array(0..<7) && loader.batchCount == 3)
        #expect(throws: NeuronError.self) { try SequenceLoader(sequences: [a, Tensor.zeros([0, 2])], targets: [0, 1], batchSize: 1) }
    }

    /// A padded batch of per-step labels, end to end: padded outputs are zero and the loss ignores them.
    @Test func ignoredTargetsCountForNothing() throws {
        let logits = randomTensor([5, 3], seed: 16).requiringGrad()
        let labels = [2, -100, 0, -100, 1]
        let loss = try crossEntropy(logits, labels: labels, ignoreIndex: -100)
        let kept = try crossEntropy(try logits.rows(at: [0, 2, 4]), labels: [2, 0, 1])
        #expect(abs(try loss.item() - kept.item()) < 1e-6)
        try loss.backward()
        let grad = try #require(logits.grad)
        #expect((0..<3).allSatisfy { grad[1, $0] == 0 && grad[3, $0] == 0 })
        let none = try crossEntropy(logits, labels: labels, ignoreIndex: -100, reduction: .none)
        #expect(none[1] == 0 && none[3] == 0)
        #expect(throws: NeuronError.self) { try crossEntropy(logits, labels: [-100, -100, -100, -100, -100], ignoreIndex: -100) }
        #expect(throws: NeuronError.self) { try crossEntropy(logits, labels: [2, -1, 0, 0, 1], ignoreIndex: -100) }

        let gru = try GRU(input: 2, hidden: 3, batchFirst: true)
        let (x, lengths) = try padSequences([randomTensor([4, 2], seed: 17), randomTensor([2, 2], seed: 18)], batchFirst: true)
        let (out, _) = try gru(x, lengths: lengths)
        let flat = try out.reshaped([-1, 3])
        let tagged = try crossEntropy(flat, labels: padLabels([[0, 1, 2, 0], [1, 1]], steps: 4, batchFirst: true), ignoreIndex: -100)
        #expect(try tagged.item().isFinite)
        #expect((0..<3).allSatisfy { out[1, 2, $0] == 0 && out[1, 3, $0] == 0 })
    }
}
