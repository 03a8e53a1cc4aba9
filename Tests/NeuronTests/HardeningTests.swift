import Foundation
import Testing
@testable import Neuron

/// One regression test per finding of the hardening review (issue 6): every input that trapped,
/// overflowed or answered wrongly now throws a `NeuronError` naming the value, or gives PyTorch's answer.
@Suite struct HardeningTests {
    /// Runs `body` and returns the message of the `NeuronError` it throws (a test failure if it does not).
    func message(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            try body()
            Issue.record("expected a NeuronError", sourceLocation: sourceLocation)
        } catch let error as NeuronError {
            return error.description
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
        return ""
    }

    // MARK: layer initialisers validate and throw

    @Test func layerInitialisersThrowOnBadConfiguration() {
        #expect(message { _ = try Conv2D(in: 3, out: 4, kernel: 3, groups: 2) }.contains("groups 2"))
        #expect(message { _ = try Conv2D(in: -1, out: 4, kernel: 3) }.contains("-1"))
        #expect(message { _ = try Conv2D(in: 3, out: 4, kernel: [0, 3]) }.contains("kernel"))
        #expect(message { _ = try Conv2D(in: 3, out: 4, kernel: 3, stride: 0) }.contains("stride"))
        #expect(message { _ = try Conv2D(in: 3, out: 4, kernel: 3, dilation: [1, 0]) }.contains("dilation"))
        #expect(message { _ = try Conv2D(in: 3, out: 4, kernel: 3, padding: -1) }.contains("padding"))
        #expect(message { _ = try Conv2D(in: 1 << 40, out: 1 << 40, kernel: 3) }.contains("Conv2D weight"))
        #expect(message { _ = try Linear(in: -2, out: 3) }.contains("-2"))
        #expect(message { _ = try Linear(in: 1 << 40, out: 1 << 40) }.contains("Linear weight"))
        #expect(message { _ = try BatchNorm1D(-1) }.contains("-1"))
        #expect(message { _ = try BatchNorm2D(-3) }.contains("-3"))
        #expect(message { _ = try Dropout(p: 1.5) }.contains("1.5"))
        #expect(message { _ = try Dropout(p: .nan) }.contains("nan"))
        #expect(message { _ = try MaxPool2D(kernel: 0) }.contains("kernel"))
        #expect(message { _ = try MaxPool2D(kernel: 2, padding: [2, 0]) }.contains("padding"))
        #expect(message { _ = try AvgPool2D(kernel: 2, stride: [1, 0]) }.contains("stride"))
        #expect(message { _ = try LeNet5(classes: -1) }.contains("-1"))
        #expect(message { _ = try VGG.small(inChannels: 1, widths: [4], convsPerBlock: 0, classes: 2) }.contains("convsPerBlock"))
        #expect(message { _ = try Conv2D(converting: try Linear(in: 4, out: 2), inputChannels: 1 << 40, height: 1 << 40, width: 4) }
            .contains("cannot read"))
        #expect(message { _ = try Tensor(shape: [-1], scalars: []) }.contains("negative dimension"))
        #expect(message { _ = try Tensor(shape: [1 << 40, 1 << 40], scalars: []) }.contains("multiply beyond a 64-bit size"))
        // Zero-size layers are valid, as in PyTorch.
        #expect((try? BatchNorm1D(0)) != nil && (try? Linear(in: 0, out: 3)) != nil)
    }

    @Test func sequentialBuilderAcceptsTry() throws {
        let withDropout = true
        let model = try Sequential {
            try Linear(in: 3, out: 4)
            ReLU()
            if withDropout { try Dropout(p: 0) } else { Tanh() }
            try Linear(in: 4, out: 2)
        }
        #expect(try model(Tensor.zeros([5, 3])).shape == [5, 2])
        #expect(throws: NeuronError.self) { _ = try Sequential { try Linear(in: 3, out: -4) } }
    }

    // MARK: no traps in throwing ops: 32-bit narrowing, overflow, allocation

    @Test func convolutionStrideBeyondThePaddedInputGivesOneWindow() throws {
        // Stride 2^31 used to trap converting to Int32; PyTorch answers with one window per axis.
        let x = randomTensor([1, 2, 5, 5], seed: 1), w = randomTensor([3, 2, 3, 3], seed: 2)
        let huge = try Tensor.conv2d(x, weight: w, bias: nil, stride: Size2D(1 << 31, 1))
        let plain = try Tensor.conv2d(x, weight: w, bias: nil, stride: Size2D(5, 1))
        #expect(huge.shape == [1, 3, 1, 3])
        #expect(huge == plain)
        // A 1-wide kernel ignores its dilation, however large.
        let column = randomTensor([3, 2, 3, 1], seed: 4)
        let dilated = try Tensor.conv2d(x, weight: column, bias: nil, padding: [1, 0], dilation: Size2D(1, 1 << 40))
        #expect(dilated == (try Tensor.conv2d(x, weight: column, bias: nil, padding: [1, 0])))
    }

    @Test func convolutionSizesThatOverflowIntThrow() {
        let x = Tensor.zeros([1, 1, 4, 4]), w = Tensor.zeros([1, 1, 3, 3])
        let big = (1 << 31) - 1
        // 32-bit overflow in C used to return a wrong shape for these two.
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, dilation: Size2D(big, 1)) }.contains("larger than the padded input"))
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, padding: Padding2D(top: big, bottom: big, left: 0, right: 0)) }
            .contains("32-bit"))
        // A workspace that wrapped negative, and an allocation that hit fatalError.
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, padding: Padding2D(integerLiteral: 1 << 30)) }.contains("32-bit"))
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, padding: Padding2D(integerLiteral: 1 << 20)) }.contains("padded plane"))
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, padding: Padding2D(top: Int.max, bottom: Int.max, left: 0, right: 0)) }
            .contains("overflows"))
        #expect(message { _ = try Tensor.conv2d(x, weight: w, bias: nil, dilation: Size2D(Int.max, 1)) }.contains("overflows"))
    }

    @Test func poolingParametersThatDoNotFitThrow() throws {
        let x = Tensor.zeros([1, 1, 4, 4])
        #expect(message { _ = try Tensor.maxPool2d(x, kernel: Size2D(2, 1 << 32)) }.contains("larger than the padded input"))
        #expect(message { _ = try Tensor.maxPool2d(x, kernel: Size2D(2, 1 << 32), padding: [0, 1 << 31]) }.contains("32-bit"))
        #expect(message { _ = try Tensor.adaptiveAvgPool2d(x, outputSize: Size2D(1 << 31, 1)) }.contains("2147483648"))
        #expect(message { _ = try Tensor.avgPool2d(x, kernel: 2, stride: Size2D(0, 1)) }.contains("stride"))
        // A stride past the padded input gives one window, as in PyTorch.
        #expect(try Tensor.maxPool2d(x, kernel: 2, stride: Size2D(1 << 40, 2)).shape == [1, 1, 1, 2])
    }

    @Test func shapeProductsThatOverflowThrow() throws {
        #expect(message { _ = try Tensor.zeros([0]).reshaped([1 << 62, 4]) }.contains("cannot reshape"))
        #expect(message { _ = try Tensor.zeros([0]).reshaped([1 << 62, 4, -1]) }.contains("cannot reshape"))
        #expect(message { _ = try Tensor.zeros([0, 4]).reshaped([-1, 0]) }.contains("cannot reshape"))
        #expect(try Tensor.zeros([0]).reshaped([1 << 40, 0]).shape == [1 << 40, 0])
    }

    @Test func allocationsOverTheCapThrowNamingTheSize() throws {
        // 2^20 x 2^20 floats (4 TiB) is far over the default cap (half of physical memory).
        let a = try Tensor.zeros([1 << 20]).reshaped([1 << 20, 1]), b = Tensor.zeros([1 << 20])
        let m = message { _ = try a * b }
        #expect(m.contains("1099511627776 floats") && m.contains("maximumAllocationBytes"))
        #expect(message { _ = try Tensor.zeros([1, 0]).matmul(Tensor.zeros([0, 1 << 40])) }.contains("32-bit"))
        #expect(message { _ = try oneHot([0], classes: 1 << 50) }.contains("floats"))
        #expect(message { _ = try Tensor.zeros([1, 1, 2, 2]).resized(height: 1 << 30, width: 1 << 30) }.contains("floats"))
        #expect(message { _ = try Tensor.concatenate(Array(repeating: Tensor.zeros([1 << 20]), count: 1 << 20)) }.contains("floats"))
        #expect(Neuron.maximumAllocationBytes > 0)
        // Sizes of data routines and summaries, which allocate before any op runs.
        var g = RandomGenerator(seed: 1)
        #expect(message { _ = try SyntheticData.shapes(count: 1 << 40, size: 1 << 20, using: &g) }.contains("shapes images"))
        #expect(message { _ = try SyntheticData.twoSpirals(count: Int.max, using: &g) }.contains("multiply beyond a 64-bit size"))
        #expect(message { _ = try holdoutSplit(count: 1 << 60, generator: &g) }.contains("sample indices"))
        #expect(message { _ = try ConfusionMatrix(predictions: [0], labels: [0], classes: 1 << 40) }.contains("ConfusionMatrix"))
        #expect(message { _ = try Linear(in: 2, out: 2).summary(inputShape: [-1, 2]) }.contains("negative dimension"))
    }

    @Test func theAllocationCapIsSettable() throws {
        let original = Neuron.maximumAllocationBytes
        defer { Neuron.maximumAllocationBytes = original }
        // 1 GiB: far above what other tests running alongside allocate at once.
        Neuron.maximumAllocationBytes = 1 << 30
        #expect(message { _ = try Tensor.zeros([1 << 15, 1]) + Tensor.zeros([1 << 15]) }.contains("4294967296 bytes"))
        #expect(Neuron.maximumAllocationBytes == 1 << 30)
    }

    // MARK: empty tensors

    @Test func convolutionOfEmptyInputsIsTheBias() throws {
        // C_in = 0 or an empty plane: every output is an empty sum, i.e. the bias (debug builds used to abort).
        let bias = Tensor([1, 2, 3])
        let noChannels = try Tensor.conv2d(Tensor.zeros([2, 0, 5, 5]), weight: Tensor.zeros([3, 0, 3, 3]), bias: bias)
        #expect(noChannels.shape == [2, 3, 3, 3])
        #expect(noChannels.scalars == (0..<2).flatMap { _ in [1, 2, 3].flatMap { Array(repeating: Float($0), count: 9) } })
        let x = Tensor.zeros([1, 2, 0, 4]).requiringGrad(), w = randomTensor([3, 2, 2, 2], seed: 3).requiringGrad()
        let b = bias.requiringGrad()
        let noRows = try Tensor.conv2d(x, weight: w, bias: b, padding: 1)
        #expect(noRows.shape == [1, 3, 1, 5])
        #expect(noRows.scalars == [1, 2, 3].flatMap { Array(repeating: Float($0), count: 5) })
        try noRows.sum().backward()
        #expect(x.grad?.shape == [1, 2, 0, 4])
        #expect(w.grad == Tensor.zeros([3, 2, 2, 2]))
        #expect(b.grad == Tensor([5, 5, 5]))
        // An empty batch and zero output channels give empty results.
        #expect(try Tensor.conv2d(Tensor.zeros([0, 2, 5, 5]), weight: Tensor.zeros([3, 2, 3, 3]), bias: nil).shape == [0, 3, 3, 3])
        #expect(try Tensor.conv2d(Tensor.zeros([1, 2, 5, 5]), weight: Tensor.zeros([0, 2, 3, 3]), bias: nil).shape == [1, 0, 3, 3])
    }

    @Test func maxPoolOnAnEmptyPlaneThrowsAsInPyTorch() throws {
        // H = 0 with 2·padding = kernel used to return -inf with indices outside the plane, and backward
        // wrote out of bounds. PyTorch refuses empty C, H or W ("only the batch may be empty").
        let x = Tensor.zeros([1, 1, 0, 4]).requiringGrad()
        #expect(message { _ = try Tensor.maxPool2d(x, kernel: 2, padding: [1, 0]) }.contains("[1, 1, 0, 4]"))
        #expect(message { _ = try Tensor.avgPool2d(x, kernel: 2, padding: [1, 0]) }.contains("[1, 1, 0, 4]"))
        #expect(throws: NeuronError.self) { try Tensor.maxPool2d(Tensor.zeros([1, 0, 4, 4]), kernel: 2) }
        #expect(throws: NeuronError.self) { try Tensor.adaptiveAvgPool2d(Tensor.zeros([1, 2, 0, 4]), outputSize: 2) }
        let emptyBatch = try Tensor.maxPool2d(Tensor.zeros([0, 2, 4, 4]), kernel: 2)
        #expect(emptyBatch.shape == [0, 2, 2, 2])
        let noChannels = try Tensor.adaptiveAvgPool2d(Tensor.zeros([1, 0, 4, 4]), outputSize: 2)
        #expect(noChannels.shape == [1, 0, 2, 2])
        // One row with the same padding: every window holds a real element and backward stays in the plane.
        let row = try Tensor(shape: [1, 1, 1, 4], scalars: [1, 5, 2, 7]).requiringGrad()
        let (values, indices) = try Tensor.maxPool2d(row, kernel: 2, padding: [1, 0], returningIndices: true)
        #expect(values.scalars == [5, 7] && indices?.scalars == [1, 3])
        try values.sum().backward()
        #expect(row.grad?.scalars == [0, 1, 0, 1])
    }

    @Test func batchNormOfAnEmptyBatchIsEmpty() throws {
        let bn = try BatchNorm1D(3)
        let before = bn.runningMean?.floatValue
        #expect(try bn(Tensor.zeros([0, 3])).shape == [0, 3])
        #expect(try bn(Tensor.zeros([4, 3, 0])).shape == [4, 3, 0])
        #expect(bn.runningMean?.floatValue == before)
        #expect(throws: NeuronError.self) { try bn(Tensor.zeros([1, 3])) }
    }

    @Test func permutingAScalarCopiesIt() throws {
        let s = try Tensor(3.5).permuted([])
        let value = try s.item()
        #expect(s.shape == [] && value == 3.5)
        let x = Tensor(2).requiringGrad()
        try (try x.permuted([]) * Tensor(4)).backward()
        #expect(x.grad?.scalars == [4])
    }

    @Test func reductionsAlongTheImplicitAxisOfAScalarAreItsValue() throws {
        // PyTorch: torch.tensor(2.5).sum(0) == 2.5, .mean(-1) == 2.5, .softmax(0) == 1, .argmax(0) == 0.
        let x = Tensor(2.5).requiringGrad()
        for axis in [0, -1] {
            let s = try x.sum(axis: axis, keepingDims: true), m = try x.mean(axis: axis)
            #expect(s.shape == [] && m.shape == [] && s.scalars == [2.5] && m.scalars == [2.5])
            #expect(try x.softmax(axis: axis).scalars == [1])
            #expect(try x.logSoftmax(axis: axis).scalars == [0])
            #expect(try x.argmax(axis: axis) == [0])
            #expect(try x.max(axis: axis).values.scalars == [2.5])
        }
        try (try x.sum(axis: 0) * Tensor(3) + (try x.mean(axis: -1))).backward()
        #expect(x.grad?.scalars == [4])
        #expect(message { _ = try x.sum(axis: 1) }.contains("axis 1"))
        #expect(message { _ = try x.softmax(axis: -2) }.contains("axis -2"))
    }

    @Test func theMeanOfNothingIsNaNAndASumOverAnEmptyBatchIsZero() throws {
        // PyTorch: torch.zeros(0, 3).mean() is nan, .mean(0) is [nan, nan, nan], .mean(1) is empty.
        let e = Tensor.zeros([0, 3]).requiringGrad()
        #expect(try e.mean().item().isNaN)
        #expect(try e.mean(axis: 0).scalars.allSatisfy(\.isNaN))
        #expect(try e.mean(axis: 1).shape == [0])
        try e.mean().backward()
        #expect(e.grad?.shape == [0, 3])
        // F.cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=long), reduction="sum") == 0; the mean
        // is nan, which Neuron refuses as it refuses every non-finite loss.
        let logits = Tensor.zeros([0, 3]).requiringGrad()
        let sum = try crossEntropy(logits, labels: [Int](), reduction: .sum)
        #expect(try sum.item() == 0)
        try sum.backward()
        #expect(logits.grad?.shape == [0, 3])
        #expect(try mseLoss(Tensor.zeros([0]), Tensor.zeros([0]), reduction: .sum).item() == 0)
        #expect(try nllLoss(Tensor.zeros([0, 3]), labels: [Int](), reduction: .sum).item() == 0)
        let none = Tensor.zeros([0, 4])
        #expect(try tripletMarginLoss(anchor: none, positive: none, negative: none, reduction: .sum).item() == 0)
        #expect(message { _ = try mseLoss(Tensor.zeros([0]), Tensor.zeros([0])) }.contains("mean over an empty batch"))
        #expect(message { _ = try crossEntropy(Tensor.zeros([0, 3]), labels: [Int]()) }.contains("mean over an empty batch"))
    }

    // MARK: NaN propagates as IEEE and PyTorch

    @Test func nanPropagatesThroughReluClampPoolingAndMax() throws {
        // PyTorch: relu([1, nan, -2]) = [1, nan, 0], gradient [1, 1, 0]; clamp keeps NaN.
        let x = Tensor([1, .nan, -2]).requiringGrad()
        let y = x.relu()
        #expect(y.scalars[0] == 1 && y.scalars[1].isNaN && y.scalars[2] == 0)
        try y.sum().backward()
        #expect(x.grad?.scalars == [1, 1, 0])
        let c = Tensor([.nan, 5, -5]).clamped(min: -1, max: 1).scalars
        #expect(c[0].isNaN && c[1] == 1 && c[2] == -1)
        // max_pool2d: a NaN in the window wins (the last one, as PyTorch's CPU kernel reports).
        let p = try Tensor(shape: [1, 1, 2, 4], scalars: [1, .nan, 3, 4, .nan, 0, 7, 8])
        let (values, indices) = try Tensor.maxPool2d(p, kernel: 2, returningIndices: true)
        #expect(values.scalars[0].isNaN && values.scalars[1] == 8 && indices?.scalars == [4, 7])
        // max(dim): NaN, at its first index (PyTorch: values [nan], indices [1]).
        let m = try Tensor([[1, .nan, 3, .nan]]).max(axis: 1)
        #expect(m.values.scalars[0].isNaN && m.indices == [1])
        #expect(try Tensor([2, .nan, 1]).max().isNaN)
    }

    // MARK: batch norm parity with PyTorch

    /// Reference values printed by PyTorch 2.15 on the CPU (AVX-512): nn.BatchNorm1d(2) with weight
    /// [1.5, 0.5], bias [0.25, -1] on x [2, 2, 3] whose channel 0 is near-constant around 1000, so that
    /// invstd is about 316 and y is a difference of large, nearly equal terms.
    static let nearConstantX: [Float] = [1000, 1000.00006, 999.999939, 0.803276062, 0.174833387, 0.0889780968,
                                         1000.00012, 1000, 999.999939, -0.613718033, 0.0461824499, -1.36825919]

    @Test func batchNorm1DTakesNCLAndRoundsAsPyTorch() throws {
        let bn = try BatchNorm1D(2)
        bn.weight!.value = Tensor([1.5, 0.5])
        bn.bias!.value = Tensor([0.25, -1])
        let x = try Tensor(shape: [2, 2, 3], scalars: Self.nearConstantX)
        let train = try bn(x)
        let expected: [Float] = [0.242675781, 0.271621019, 0.213730559, -0.307195425, -0.7664361, -0.829175651,
                                 0.300566226, 0.242675781, 0.213730559, -1.34267771, -0.860449016, -1.8940661]
        // Rounding invstd in double, as before, was off by 5e-3 here.
        expectClose(train, try Tensor(shape: [2, 2, 3], scalars: expected), "BatchNorm1d train [N, C, L]")
        expectClose(try #require(bn.runningMean?.floatValue), Tensor([100, -0.0144784544]), "running_mean")
        expectClose(try #require(bn.runningVar?.floatValue), Tensor([0.899999976, 0.956177533]), "running_var")

        bn.eval()
        bn.runningMean?.value = .float(Tensor([1000, 0.1]))
        bn.runningVar?.value = .float(Tensor([1e-9, 2]))
        let eval: [Float] = [0.243896484, 0.27284655, 0.214946419, -0.751354933, -0.973542452, -1.00389683,
                             0.301796615, 0.243896484, 0.214946419, -1.25233674, -1.01902723, -1.51910663]
        expectClose(try bn(x), try Tensor(shape: [2, 2, 3], scalars: eval), "BatchNorm1d eval [N, C, L]")
        #expect(throws: NeuronError.self) { try bn(Tensor.zeros([2, 2, 3, 1])) }
    }

    @Test func batchNorm1DOnNCLMatchesBatchNorm2DOnNCL1() throws {
        let x = randomTensor([4, 3, 5], seed: 8)
        let a = try BatchNorm1D(3), b = try BatchNorm2D(3)
        let ya = try a(x), yb = try b(try x.reshaped([4, 3, 5, 1]))
        #expect(ya == (try yb.reshaped([4, 3, 5])))
        try checkGradients([x]) { inputs in try BatchNorm1D(3)(inputs[0]) }
    }
}
