import Testing
@testable import Neuron

/// Finite-difference checks for every differentiable op, plus the tape's bookkeeping.
@Suite struct AutogradTests {
    let a = randomTensor([3, 4], seed: 1)
    let b = randomTensor([3, 4], seed: 2)
    let positive = randomTensor([3, 4], seed: 3, low: 0.5, high: 2)

    @Test func arithmeticWithBroadcasting() throws {
        let row = randomTensor([4], seed: 4), col = randomTensor([3, 1], seed: 5, low: 0.5, high: 2)
        try checkGradients([a, row]) { try $0[0] + $0[1] }
        try checkGradients([a, col]) { try $0[0] - $0[1] }
        try checkGradients([a, row]) { try $0[0] * $0[1] }
        try checkGradients([a, col]) { try $0[0] / $0[1] }
        try checkGradients([a]) { -$0[0] * 3 + 1 }
        try checkGradients([a, Tensor(2)]) { try $0[0] * $0[1] }
    }

    @Test func elementwiseFunctions() throws {
        try checkGradients([a]) { $0[0].exp() }
        try checkGradients([positive]) { $0[0].log() }
        try checkGradients([positive]) { $0[0].sqrt() }
        try checkGradients([a]) { $0[0].squared() }
        try checkGradients([positive]) { $0[0].pow(1.5) }
        try checkGradients([a]) { $0[0].abs() }
        try checkGradients([a]) { $0[0].clamped(min: -0.5, max: 0.5) }
    }

    @Test func activations() throws {
        try checkGradients([a]) { $0[0].relu() }
        try checkGradients([a]) { $0[0].leakyRelu(negativeSlope: 0.1) }
        try checkGradients([a]) { $0[0].sigmoid() }
        try checkGradients([a]) { $0[0].tanh() }
        try checkGradients([a]) { try $0[0].softmax(axis: 1) }
        try checkGradients([a]) { try $0[0].logSoftmax(axis: 1) }
        try checkGradients([a]) { try $0[0].softmax(axis: 0) }
    }

    @Test func reductionsAndShapes() throws {
        try checkGradients([a]) { $0[0].sum() }
        try checkGradients([a]) { try $0[0].sum(axis: 1, keepingDims: true) }
        try checkGradients([a]) { try $0[0].mean(axis: 0) }
        try checkGradients([a]) { try $0[0].mean() }
        try checkGradients([a]) { try $0[0].max(axis: 1).values }
        try checkGradients([a]) { try $0[0].reshaped([2, 6]) }
        try checkGradients([a]) { try $0[0].transposed() }
        try checkGradients([randomTensor([2, 3, 4], seed: 6)]) { try $0[0].permuted([2, 0, 1]) }
        try checkGradients([a]) { try $0[0].slice(1..<3) }
        try checkGradients([a]) { try $0[0].rows(at: [2, 0, 2]) }
        try checkGradients([a, b]) { try Tensor.concatenate($0, axis: 1) }
        try checkGradients([a, b]) { try Tensor.stack($0, axis: 0) }
    }

    @Test func matrixProducts() throws {
        let w = randomTensor([5, 4], seed: 7), bias = randomTensor([5], seed: 8)
        try checkGradients([a, randomTensor([4, 2], seed: 9)]) { try $0[0].matmul($0[1]) }
        try checkGradients([randomTensor([2, 3, 4], seed: 10), randomTensor([2, 4, 2], seed: 11)]) { try $0[0].matmul($0[1]) }
        try checkGradients([randomTensor([2, 3, 4], seed: 12), randomTensor([4, 2], seed: 13)]) { try $0[0].matmul($0[1]) }
        try checkGradients([a, w, bias]) { try Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
        try checkGradients([a, w]) { try Tensor.linear($0[0], weight: $0[1], bias: nil) }
    }

    @Test func losses() throws {
        let probabilities = randomTensor([3, 4], seed: 14, low: 0.1, high: 0.9)
        let targets = randomTensor([3, 4], seed: 15, low: 0, high: 1)
        for reduction in [Reduction.mean, .sum, .none] {
            try checkGradients([a]) { try mseLoss($0[0], b, reduction: reduction) }
            try checkGradients([probabilities], step: 1e-3) { try binaryCrossEntropy($0[0], targets, reduction: reduction) }
            try checkGradients([a]) { try binaryCrossEntropyWithLogits($0[0], targets, reduction: reduction) }
            try checkGradients([a]) { try crossEntropy($0[0], labels: [3, 0, 1], reduction: reduction) }
            try checkGradients([a]) { try crossEntropy($0[0], targets: (try targets.softmax(axis: 1)), reduction: reduction) }
        }
    }

    @Test func penaltiesReachParameters() throws {
        let p = Parameter(Tensor([1, -2, 0.5]))
        try (l1Penalty([p], lambda: 0.5) + l2Penalty([p], lambda: 0.1)).backward()
        expectClose(try #require(p.grad), Tensor([0.5 + 0.2, -0.5 - 0.4, 0.5 + 0.1]))
    }

    @Test func gradientsAccumulateUntilZeroed() throws {
        let p = Parameter(Tensor([1, 2, 3]))
        try (p.value * 2).sum().backward()
        try (p.value * 2).sum().backward()
        #expect(p.grad?.scalars == [4, 4, 4])
        p.zeroGrad()
        #expect(p.grad == nil)
        let x = Tensor([1, 2]).requiringGrad()
        let y = try x * x
        try y.sum().backward()
        #expect(x.grad?.scalars == [2, 4])
    }

    @Test func sharedSubexpressionsSumTheirGradients() throws {
        let x = Tensor([3]).requiringGrad()
        let y = try x * x + x  // dy/dx = 2x + 1
        try y.sum().backward()
        #expect(x.grad?.scalars == [7])
    }

    @Test func noGradRecordsNothing() throws {
        let p = Parameter(Tensor([1, 2]))
        let y = try noGrad { try p.value * p.value }
        #expect(!y.requiresGrad)
        #expect(throws: NeuronError.self) { try y.sum().backward() }
        #expect(isGradEnabled)
    }

    @Test func graphIsReleasedAfterBackward() throws {
        let p = Parameter(Tensor([1, 2]))
        let loss = try (p.value * p.value).sum()
        try loss.backward()
        #expect(throws: NeuronError.self) { try loss.backward() }
        let kept = try (p.value * p.value).sum()
        try kept.backward(retainGraph: true)
        try kept.backward()
        #expect(p.grad?.scalars == [2 + 4, 4 + 8])
    }

    @Test func nonScalarBackwardNeedsAGradient() throws {
        let x = Tensor([1, 2]).requiringGrad()
        let y = x * 3
        #expect(throws: NeuronError.self) { try y.backward() }
        #expect(throws: NeuronError.self) { try y.backward(Tensor([1])) }
        try y.backward(Tensor([1, 1]))
        #expect(x.grad?.scalars == [3, 3])
    }

    @Test func deepTapesDoNotOverflowTheStack() throws {
        let x = Tensor([1]).requiringGrad()
        var y = x
        for _ in 0..<20_000 { y = y * 1 }
        try y.sum().backward()
        #expect(x.grad?.scalars == [1])
    }
}

@Suite struct LossTests {
    @Test func badInputThrowsClearErrors() throws {
        #expect(throws: NeuronError.self) { try mseLoss(Tensor.zeros([2, 3]), Tensor.zeros([3, 2])) }
        do {
            _ = try crossEntropy(Tensor.zeros([0, 3]), labels: [])
            Issue.record("expected an empty-batch error")
        } catch NeuronError.emptyInput(let message) {
            #expect(message.contains("empty batch"))
        }
        #expect(throws: NeuronError.self) { try crossEntropy(Tensor.zeros([2, 3]), labels: [0, 3]) }
        #expect(throws: NeuronError.self) { try crossEntropy(Tensor.zeros([2, 3]), labels: [0]) }
        do {
            _ = try mseLoss(Tensor([Float.nan, 1]), Tensor([0, 0]))
            Issue.record("expected a non-finite error")
        } catch NeuronError.nonFinite(let message) {
            #expect(message.contains("mse"))
        }
        #expect(throws: NeuronError.self) { try binaryCrossEntropyWithLogits(Tensor.zeros([0]), Tensor.zeros([0])) }
        #expect(try mseLoss(Tensor.zeros([0]), Tensor.zeros([0]), reduction: .none).shape == [0])
    }

    @Test func crossEntropyStaysFiniteForLargeLogits() throws {
        let logits = Tensor([[1000, -1000], [-1000, 1000]])
        let loss = try crossEntropy(logits, labels: [0, 0])
        #expect(abs((try loss.item()) - 1000) < 1e-3)
        let oneHot = try crossEntropy(logits, targets: Tensor([[1, 0], [1, 0]]))
        #expect(abs((try oneHot.item()) - 1000) < 1e-3)
    }
}
