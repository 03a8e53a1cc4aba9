import Testing
@testable import Neuron

/// Regression tests for what the shape fuzzer (`neuron-fuzz`) found; each names the case that found it.
@Suite struct FuzzFindingsTests {
    /// seed 1 case 197: flatten of a scalar ignored its axis; PyTorch accepts only 0 and -1 there.
    @Test func flattenOfAScalarChecksTheAxis() throws {
        let s = Tensor(3.5)
        #expect(try s.flattened(startAxis: 0).shape == [1])
        #expect(try s.flattened(startAxis: -1).shape == [1])
        #expect(throws: NeuronError.self) { try s.flattened(startAxis: 1) }
        #expect(throws: NeuronError.self) { try Flatten(startAxis: 4)(s) }
    }

    /// seed 1 case 504: binary cross-entropy of probabilities outside [0, 1] (or NaN) returned a finite loss,
    /// because the clamp of the logs at -100 swallowed the NaN of log(-0.5).
    @Test func binaryCrossEntropyRefusesValuesOutsideZeroOne() throws {
        for bad: Float in [-0.5, 1.5, .nan, .infinity] {
            #expect(throws: NeuronError.self) { try binaryCrossEntropy(Tensor([0.5, bad]), Tensor([1, 0])) }
            #expect(throws: NeuronError.self) { try binaryCrossEntropy(Tensor([0.5, bad]), Tensor([1, 0]), reduction: .none) }
        }
        // The ends of the interval stay valid: the logs are clamped at -100, as in PyTorch.
        #expect(try binaryCrossEntropy(Tensor([0, 1]), Tensor([1, 0]), reduction: .sum).item() == 200)
    }
}

extension FuzzFindingsTests {
    /// seed 1 case 830: conv2d accepted a weight whose kernel has a zero-size axis (PyTorch refuses it).
    @Test func convolutionRefusesAnEmptyKernel() throws {
        #expect(throws: NeuronError.self) {
            try Tensor.conv2d(Tensor.zeros([2, 1, 10, 9]), weight: Tensor.zeros([3, 1, 3, 0]), bias: nil, stride: 2, padding: 2)
        }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(Tensor.zeros([1, 9, 4, 0]), weight: Tensor.zeros([0, 3, 1, 0]), bias: nil, groups: 3) }
    }

    /// The gradient of a / b with respect to b is -g (a / b) / b as in PyTorch: the former -g a / (b b)
    /// underflowed b b to zero for small b and returned -inf where PyTorch gives -5e37.
    @Test func divisionGradientForSmallDivisors() throws {
        let a = Tensor([2e-38, 2]).requiringGrad(), b = Tensor([2e-38, 4]).requiringGrad()
        try (a / b).sum().backward()
        let db = try #require(b.grad).scalars
        #expect(abs(db[0] + 5e37) <= 5e31)
        #expect(db[1] == -0.125)
        let da = try #require(a.grad).scalars
        #expect(abs(da[0] - 5e37) <= 5e31 && da[1] == 0.25)
    }
}

extension FuzzFindingsTests {
    /// seed 2: x.pow(0) had gradient NaN at x = 0 (0 · 0^-1); PyTorch's is zero for exponent 0.
    @Test func powerZeroHasZeroGradient() throws {
        let x = Tensor([0, 2, -1]).requiringGrad()
        try x.pow(0).sum().backward()
        #expect(try #require(x.grad).scalars == [0, 0, 0])
    }
}

extension FuzzFindingsTests {
    /// seed 2 cases 1668, 5909, 6246: with no inputs the weight is empty, but a bias of `out` elements
    /// was allocated unchecked (an overflow trap for 2^62, out of memory for 2^31).
    @Test func layerBiasIsCheckedAgainstTheAllocationCap() throws {
        #expect(throws: NeuronError.self) { try Linear(in: 0, out: 1 << 62) }
        #expect(throws: NeuronError.self) { try Conv2D(in: 0, out: Int.max, kernel: 2) }
        #expect(throws: NeuronError.self) { try Conv2D(in: 0, out: 1 << 40, kernel: 2) }
        #expect(try Linear(in: 0, out: 1 << 40, bias: false).weight.shape == [1 << 40, 0])
    }
}

extension FuzzFindingsTests {
    /// seed 2 cases 3402, 7723, 8192: relu and clamp multiplied the upstream gradient by a 0/1 mask, so a NaN
    /// upstream leaked where PyTorch (threshold_backward, where()) gives exactly 0.
    @Test func reluAndClampSelectTheGradient() throws {
        let x = Tensor([-1, 0.5, 2]).requiringGrad()
        try x.relu().backward(Tensor([.nan, .nan, 1]))
        let dr = try #require(x.grad).scalars
        #expect(dr[0] == 0 && dr[1].isNaN && dr[2] == 1)
        let z = Tensor([-1, 0.5, 2]).requiringGrad()
        try z.clamped(min: 0, max: 1).backward(Tensor([.nan, .nan, .nan]))
        let dc = try #require(z.grad).scalars
        #expect(dc[0] == 0 && dc[1].isNaN && dc[2] == 0)
    }

    /// seed 2 case 9152: x * 2 added +0 and turned -0 into +0, so the gradient of sqrt at -0 was +Inf
    /// where PyTorch's is -Inf.
    @Test func scalingKeepsTheSignOfZero() throws {
        #expect((Tensor([-0.0]) * 2).scalars[0].sign == .minus)
        let x = Tensor([-0.0, 0]).requiringGrad()
        try x.sqrt().sum().backward()
        #expect(try #require(x.grad).scalars == [-.infinity, .infinity])
    }

    /// Division by a scalar divides, as PyTorch does: x * (1 / s) overflowed for a subnormal s.
    @Test func divisionByASubnormalScalar() throws {
        let x = Tensor([1e-40, 1]).requiringGrad()
        let y = x / Float.leastNonzeroMagnitude
        #expect(abs(y.scalars[0] - 71362) < 1 && y.scalars[1] == .infinity)
        try y.backward(Tensor([Float.leastNonzeroMagnitude, 0]))
        #expect(try #require(x.grad).scalars == [1, 0])
    }
}

extension FuzzFindingsTests {
    /// seed 5 case 29591: [0, 2^62, 5] has no elements, so it was admitted, but the product of its other
    /// sizes overflows (flatten trapped); PyTorch refuses such shapes, and so do the factories and reshape.
    @Test func shapesWhoseSizesOverflowAreRefusedEvenWhenEmpty() throws {
        #expect(throws: NeuronError.self) { try Tensor(shape: [0, 1 << 62, 5], scalars: []) }
        #expect(throws: NeuronError.self) { try Tensor.zeros([0]).reshaped([0, 1 << 62, 5]) }
        #expect(try Tensor(shape: [0, 1 << 62], scalars: []).flattened(startAxis: 0).shape == [0])
    }

    /// seed 5 case 15718: glorotUniform added fanIn + fanOut as Int and trapped on overflow.
    @Test func glorotUniformWithHugeFans() {
        let t = Tensor.glorotUniform([2, 3], fanIn: 17, fanOut: Int.max)
        #expect(t.scalars.allSatisfy { abs($0) < 1e-6 })
    }
}

extension FuzzFindingsTests {
    /// seed 7 case 53535: the error message for a weight that does not fit the groups multiplied
    /// weight.shape[1] by groups, which overflowed for groups = Int.max (zero channels pass the divisibility check).
    @Test func convolutionGroupsErrorDoesNotOverflow() {
        #expect(throws: NeuronError.self) {
            try Tensor.conv2d(Tensor.zeros([2, 0, 3, 5]), weight: Tensor.zeros([0, 2, 2, 1]), bias: nil, padding: 2, groups: Int.max)
        }
    }
}

extension FuzzFindingsTests {
    /// seed 8 cases 80911, 99597: batch norm took eps = 0 in training, where a constant channel divides by
    /// zero; PyTorch refuses eps <= 0 in training and eps < 0 in evaluation.
    @Test func batchNormChecksEps() throws {
        let x = Tensor([[2], [2]])
        var none: (mean: Tensor, variance: Tensor)? = nil
        #expect(throws: NeuronError.self) { try Tensor.batchNorm(x, weight: nil, bias: nil, running: &none, training: true, eps: 0) }
        var running: (mean: Tensor, variance: Tensor)? = (Tensor([0]), Tensor([1]))
        #expect(throws: NeuronError.self) { try Tensor.batchNorm(x, weight: nil, bias: nil, running: &running, training: false, eps: -1) }
        #expect(try Tensor.batchNorm(x, weight: nil, bias: nil, running: &running, training: false, eps: 0).scalars == [2, 2])
    }
}

extension FuzzFindingsTests {
    /// seed 1 (recurrent cases): each layer's weights were checked against the allocation cap, but not the
    /// stack, so layers = 2^40 tried to build a trillion-entry array and died of it.
    @Test func recurrentStacksAreCheckedAsAWhole() {
        #expect(throws: NeuronError.self) { try LSTM(input: 4, hidden: 1, layers: 1 << 40) }
        #expect(throws: NeuronError.self) { try RNN(input: 4, hidden: 2, layers: 1 << 40, bidirectional: true) }
        #expect(throws: NeuronError.self) { try GRU(input: 4, hidden: 1, layers: 1 << 40, batchFirst: true) }
    }
}
