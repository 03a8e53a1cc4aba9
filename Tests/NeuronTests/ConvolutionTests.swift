import CKernels
import Testing
@testable import Neuron

/// Convolution, pooling, batch norm and LeNet-5 against PyTorch, plus finite differences and bad input.
@Suite struct ConvolutionTests {
    static let convCases: [(file: String, stride: Size2D, padding: Padding2D, dilation: Size2D, groups: Int)] = [
        ("conv2d_k3_s1_p1", 1, 1, 1, 1), ("conv2d_k3_s2_p1", 2, 1, 1, 1), ("conv2d_k5_s1_p2", 1, 2, 1, 1),
        ("conv2d_k3_d2_p2", 1, 2, 2, 1), ("conv2d_depthwise_k3_p1", 1, 1, 1, 4), ("conv2d_1x1", 1, 0, 1, 1),
        ("conv2d_k3x1_s2x1", [2, 1], [1, 0], 1, 1),
    ]

    @Test(arguments: convCases.indices)
    func convolutionMatchesPyTorch(_ index: Int) throws {
        let c = Self.convCases[index]
        let g = try Golden(c.file)
        let w = try g.float("param.weight")
        let layer = try Conv2D(in: w.shape[1] * c.groups, out: w.shape[0], kernel: [w.shape[2], w.shape[3]], stride: c.stride,
                           padding: c.padding, dilation: c.dilation, groups: c.groups)
        try layer.loadStateDict(g.tensors, prefix: "param.")
        let x = try g.float("x").requiringGrad()
        let y = try layer(x)
        try g.expectValue(y, "y")
        try (y * g.float("R")).sum().backward()
        try g.expectGradient(x.grad, "grad.x")
        try g.expectGradient(layer.weight.grad, "grad.param.weight")
        try g.expectGradient(layer.bias?.grad, "grad.param.bias")
    }

    /// Every golden case with every algorithm that applies to it; the others throw.
    @Test(arguments: convCases.indices, ConvolutionAlgorithm.allCases)
    func convolutionMatchesPyTorchWithEachAlgorithm(_ index: Int, _ algorithm: ConvolutionAlgorithm) throws {
        let c = Self.convCases[index]
        let g = try Golden(c.file)
        let w = try g.float("param.weight"), b = try g.float("param.bias")
        let x = try g.float("x").requiringGrad(), weight = w.requiringGrad(), bias = b.requiringGrad()
        let applies = switch algorithm {
        case .automatic, .im2col: true
        case .direct: w.shape[2] * w.shape[3] <= 256 || c.groups == w.shape[0]
        case .winograd: w.shape[2] == 3 && w.shape[3] == 3 && c.stride == 1 && c.dilation == 1 && c.groups == 1
        }
        func run() throws -> Tensor {
            try Tensor.conv2d(x, weight: weight, bias: bias, stride: c.stride, padding: c.padding, dilation: c.dilation,
                              groups: c.groups, algorithm: algorithm)
        }
        guard applies else {
            #expect(throws: NeuronError.self) { try run() }
            #expect(throws: NeuronError.self) {
                try Conv2D(in: w.shape[1] * c.groups, out: w.shape[0], kernel: [w.shape[2], w.shape[3]], stride: c.stride,
                           padding: c.padding, dilation: c.dilation, groups: c.groups, algorithm: algorithm)
            }
            return
        }
        let y = try run()
        try g.expectValue(y, "y")
        try (y * g.float("R")).sum().backward()
        try g.expectGradient(x.grad, "grad.x")
        try g.expectGradient(weight.grad, "grad.param.weight")
        try g.expectGradient(bias.grad, "grad.param.bias")
    }

    /// Each algorithm forced on the same inputs (a shape where all four apply and `.automatic` takes
    /// Winograd) against the C kernels' double-precision reference loops: output and every gradient.
    @Test(arguments: ConvolutionAlgorithm.allCases)
    func eachAlgorithmMatchesTheReference(_ algorithm: ConvolutionAlgorithm) throws {
        let (n, cin, h, wd, cout) = (2, 32, 9, 11, 33)
        let x = randomTensor([n, cin, h, wd], seed: 31).requiringGrad()
        let w = randomTensor([cout, cin, 3, 3], seed: 32, low: -0.1, high: 0.1).requiringGrad()
        let b = randomTensor([cout], seed: 33).requiringGrad()
        let r = randomTensor([n, cout, h + 1, wd - 1], seed: 34) // padding [1, 2, 0, 1]: 10 x 10 outputs
        let padding: Padding2D = [1, 2, 0, 1]
        let y = try Tensor.conv2d(x, weight: w, bias: b, padding: padding, algorithm: algorithm)
        try (y * r).sum().backward()
        var p = nn_conv2d_params(n: Int32(n), c_in: Int32(cin), h: Int32(h), w: Int32(wd), c_out: Int32(cout), kh: 3, kw: 3,
                                 stride_h: 1, stride_w: 1, pad_top: 1, pad_bottom: 2, pad_left: 0, pad_right: 1,
                                 dil_h: 1, dil_w: 1, groups: 1)
        #expect(y.shape == [n, cout, Int(nn_conv2d_out_h(&p)), Int(nn_conv2d_out_w(&p))])
        let yr = Tensor.zeros(y.shape), dxr = Tensor.zeros(x.shape), dwr = Tensor.zeros(w.shape), dbr = Tensor.zeros(b.shape)
        nn_conv2d_forward_ref(yr.pointer, x.pointer, w.pointer, b.pointer, &p)
        nn_conv2d_backward_ref(dxr.pointer, dwr.pointer, dbr.pointer, r.pointer, x.pointer, w.pointer, &p)
        expectClose(y, yr, atol: 1e-5, rtol: 1e-5, "\(algorithm) forward")
        expectClose(try #require(x.grad), dxr, atol: 1e-5, rtol: 1e-4, "\(algorithm) grad x")
        expectClose(try #require(w.grad), dwr, atol: 1e-4, rtol: 1e-4, "\(algorithm) grad weight")
        expectClose(try #require(b.grad), dbr, atol: 1e-4, rtol: 1e-4, "\(algorithm) grad bias")
    }

    @Test func winogradGradientsPassFiniteDifferences() throws {
        let x = randomTensor([2, 3, 6, 5], seed: 41), w = randomTensor([4, 3, 3, 3], seed: 42), b = randomTensor([4], seed: 43)
        try checkGradients([x, w, b]) {
            try Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], padding: [2, 0, 1, 3], algorithm: .winograd)
        }
    }

    @Test func forcingAnAlgorithmThatDoesNotApplyThrows() throws {
        let x = Tensor.zeros([1, 4, 8, 8])
        #expect(throws: NeuronError.self) { try Tensor.conv2d(x, weight: Tensor.zeros([4, 4, 3, 3]), bias: nil, stride: 2, algorithm: .winograd) }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(x, weight: Tensor.zeros([4, 4, 5, 5]), bias: nil, algorithm: .winograd) }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(x, weight: Tensor.zeros([4, 2, 3, 3]), bias: nil, groups: 2, algorithm: .winograd) }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(x, weight: Tensor.zeros([4, 4, 3, 3]), bias: nil, dilation: 2, algorithm: .winograd) }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(x, weight: Tensor.zeros([4, 4, 17, 17]), bias: nil, padding: 5, algorithm: .direct) }
        #expect(throws: NeuronError.self) { try Conv2D(in: 4, out: 4, kernel: 3, stride: 2, algorithm: .winograd) }
        #expect(throws: NeuronError.self) { try Conv2D(in: 4, out: 4, kernel: 17, padding: 5, algorithm: .direct) }
        let layer = try Conv2D(in: 4, out: 4, kernel: 3, stride: 2)
        layer.algorithm = .winograd
        #expect(throws: NeuronError.self) { try layer(x) }
        layer.algorithm = .direct
        #expect(try layer(x).shape == [1, 4, 3, 3])
        layer.algorithm = .im2col
        #expect(try layer(x).shape == [1, 4, 3, 3])
    }

    @Test func convolutionGradientsPassFiniteDifferences() throws {
        let x = randomTensor([2, 4, 6, 5], seed: 21), w = randomTensor([6, 2, 3, 2], seed: 22), b = randomTensor([6], seed: 23)
        try checkGradients([x, w, b]) {
            try Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 1], padding: [1, 0, 1, 1], dilation: [1, 2], groups: 2)
        }
        try checkGradients([randomTensor([1, 3, 5, 5], seed: 24), randomTensor([2, 3, 1, 1], seed: 25)]) {
            try Tensor.conv2d($0[0], weight: $0[1], bias: nil)
        }
    }

    @Test func poolingMatchesPyTorch() throws {
        let g = try Golden("pool")
        let maxCases: [(String, Size2D, Size2D, Size2D, Bool)] = [
            ("maxpool_k2s2", 2, 2, [0, 0], false), ("maxpool_k3s2p1", 3, 2, [1, 1], false), ("maxpool_k2s2_ceil", 2, 2, [0, 0], true),
            ("maxpool_ties_k2s2", 2, 2, [0, 0], false), ("maxpool_ties_k3s1p1", 3, 1, [1, 1], false),
        ]
        for (name, k, s, p, ceil) in maxCases {
            let x = try g.float(name + ".x").requiringGrad()
            let (y, returned) = try Tensor.maxPool2d(x, kernel: k, stride: s, padding: p, ceilMode: ceil, returningIndices: true)
            let indices = try #require(returned)
            try g.expectValue(y, name + ".y")
            #expect(indices.ints == (try g.ints(name + ".indices")), "\(name) indices")
            try (y * g.float(name + ".R")).sum().backward()
            try g.expectGradient(x.grad, name + ".grad.x")
        }
        for (name, k, s, p) in [("avgpool_k2s2", 2, 2, 0), ("avgpool_k3s1p1", 3, 1, 1)] as [(String, Size2D, Size2D, Int)] {
            let x = try g.float(name + ".x").requiringGrad()
            let y = try AvgPool2D(kernel: k, stride: s, padding: [p, p])(x)
            try g.expectValue(y, name + ".y")
            try (y * g.float(name + ".R")).sum().backward()
            try g.expectGradient(x.grad, name + ".grad.x")
        }
        let x = try g.float("global_avgpool.x").requiringGrad()
        let y = try GlobalAvgPool2D()(x)
        try g.expectValue(y, "global_avgpool.y")
        try (y * g.float("global_avgpool.R")).sum().backward()
        try g.expectGradient(x.grad, "global_avgpool.grad.x")
    }

    @Test func poolingGradientsPassFiniteDifferences() throws {
        let x = randomTensor([2, 2, 5, 6], seed: 31)
        try checkGradients([x]) { try Tensor.maxPool2d($0[0], kernel: 3, stride: 2, padding: [1, 1], ceilMode: true) }
        try checkGradients([x]) { try Tensor.avgPool2d($0[0], kernel: 3, stride: 2, padding: [1, 1], ceilMode: true, countIncludePad: false) }
        try checkGradients([x]) { try Tensor.adaptiveAvgPool2d($0[0], outputSize: [2, 4]) }
    }

    @Test(arguments: ["bn2d", "bn1d"])
    func batchNormMatchesPyTorch(_ kind: String) throws {
        let g = try Golden("batchnorm")
        for mode in ["train", "eval"] {
            let name = kind + "_" + mode
            let x = try g.float(name + ".x").requiringGrad()
            let bn: BatchNorm = kind == "bn2d" ? try BatchNorm2D(x.shape[1]) : try BatchNorm1D(x.shape[1])
            try bn.loadStateDict(g.tensors, prefix: name + ".param.")
            bn.train(mode == "train")
            let y = try bn(x)
            try g.expectValue(y, name + ".y")
            try (y * g.float(name + ".R")).sum().backward()
            try g.expectGradient(x.grad, name + ".grad.x")
            try g.expectGradient(bn.weight?.grad, name + ".grad.param.weight")
            try g.expectGradient(bn.bias?.grad, name + ".grad.param.bias")
            if mode == "train" {
                try g.expectValue(bn.runningMean?.floatValue, name + ".out.running_mean")
                try g.expectValue(bn.runningVar?.floatValue, name + ".out.running_var")
                #expect(bn.batchesTracked?.value == g.tensors[name + ".out.num_batches_tracked"])
            }
        }
    }

    @Test func batchNormGradientsPassFiniteDifferences() throws {
        let x = randomTensor([3, 2, 4, 3], seed: 41)
        let gamma = randomTensor([2], seed: 42, low: 0.5, high: 1.5), beta = randomTensor([2], seed: 43)
        let stats = (mean: randomTensor([2], seed: 44), variance: randomTensor([2], seed: 45, low: 0.5, high: 2))
        for training in [true, false] {
            try checkGradients([x, gamma, beta], atol: 5e-3) { inputs in
                var running: (mean: Tensor, variance: Tensor)? = stats
                return try Tensor.batchNorm(inputs[0], weight: inputs[1], bias: inputs[2], running: &running, training: training)
            }
        }
        try checkGradients([randomTensor([5, 3], seed: 46), gamma.rows(at: [0, 1, 0]), beta.rows(at: [1, 0, 1])], atol: 5e-3) { inputs in
            var running: (mean: Tensor, variance: Tensor)? = nil
            return try Tensor.batchNorm(inputs[0], weight: inputs[1], bias: inputs[2], running: &running, training: true)
        }
    }

    @Test func leNetMatchesPyTorch() throws {
        let g = try Golden("lenet")
        let net = try LeNet5()
        try net.loadStateDict(g.tensors.filter { $0.key.hasPrefix("param.") }, prefix: "param.")
        let x = try g.float("x").requiringGrad()
        let pool2 = try noGrad { try net.features(x) }
        try g.expectValue(pool2, "act.flat")
        let logits = try net(x)
        try g.expectValue(logits, "logits")
        let loss = try crossEntropy(logits, labels: g.ints("labels"))
        try g.expectValue(loss, "loss")
        try loss.backward()
        try g.expectGradient(x.grad, "grad.x")
        for (name, parameter) in net.namedParameters {
            try g.expectGradient(parameter.grad, "grad.param." + name)
        }
        #expect(net.namedParameters.map(\.name) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                                    "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
    }

    @Test func outputSizeArithmetic() {
        #expect(outputSize(input: 28, kernel: 5, padding: 2) == 28)
        #expect(outputSize(input: 7, kernel: 3, stride: 2, padding: 1) == 4)
        #expect(outputSize(input: 7, kernel: 3, padding: 2, dilation: 2) == 7)
        #expect(outputSize(input: 7, kernel: 2, stride: 2) == 3)
        #expect(outputSize(input: 7, kernel: 2, stride: 2, ceilMode: true) == 4)
        #expect(outputSize(input: 5, kernel: 2, stride: 2, padding: 1, ceilMode: true) == 3)
        #expect(outputSize(input: 3, kernel: 5) == 0)
    }

    @Test func badInputThrowsClearErrors() throws {
        let conv = try Conv2D(in: 3, out: 4, kernel: 3)
        do {
            _ = try conv(Tensor.zeros([1, 2, 8, 8]))
            Issue.record("expected a channel mismatch")
        } catch NeuronError.shapeMismatch(let m) {
            #expect(m.contains("2 channels") && m.contains("[4, 3, 3, 3]"))
        }
        do {
            _ = try conv(Tensor.zeros([1, 3, 2, 2]))
            Issue.record("expected a kernel-too-large error")
        } catch NeuronError.shapeMismatch(let m) {
            #expect(m.contains("larger than the padded input"))
        }
        #expect(throws: NeuronError.self) { try Tensor.conv2d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 3, 3, 3]), bias: nil, stride: 0) }
        #expect(throws: NeuronError.self) { try Tensor.maxPool2d(Tensor.zeros([1, 1, 4, 4]), kernel: 2, stride: 0) }
        #expect(throws: NeuronError.self) { try Tensor.maxPool2d(Tensor.zeros([1, 1, 1, 1]), kernel: 2) }
        do {
            _ = try BatchNorm2D(3)(Tensor.zeros([1, 3, 1, 1]))
            Issue.record("expected a single-value batch-norm error")
        } catch NeuronError.invalidArgument(let m) {
            #expect(m.contains("more than one value per channel"))
        }
        let bn = try BatchNorm2D(3)
        bn.eval()
        #expect(try bn(Tensor.ones([1, 3, 1, 1])).shape == [1, 3, 1, 1])
        #expect(throws: NeuronError.self) { try BatchNorm1D(3)(Tensor.zeros([4, 2])) }
    }

    @Test func denseLayersRunAsConvolutionsOverSlidingWindows() throws {
        // A 14x14 window classifier: conv 5x5 → ReLU → max-pool 2 → dense 400 → dense 400 → dense 4.
        let conv = try Conv2D(in: 3, out: 16, kernel: 5)
        let fc1 = try Linear(in: 16 * 5 * 5, out: 400), fc2 = try Linear(in: 400, out: 400), fc3 = try Linear(in: 400, out: 4)
        func classify(_ window: Tensor) throws -> Tensor {
            let features = try Tensor.maxPool2d(try conv(window).relu(), kernel: 2).flattened()
            return try fc3(try fc2(try fc1(features).relu()).relu())
        }
        let convolutional = try Sequential {
            conv
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(converting: fc1, inputChannels: 16, height: 5, width: 5)
            ReLU()
            try Conv2D(converting: fc2)
            ReLU()
            try Conv2D(converting: fc3)
        }
        let image = randomTensor([1, 3, 16, 16], seed: 51)
        let map = try noGrad { try convolutional(image) }
        #expect(map.shape == [1, 4, 2, 2])
        // Each cell is the classifier on the 14x14 crop at (2i, 2j): the pool halves the step.
        for i in 0..<2 {
            for j in 0..<2 {
                var crop = [Float]()
                for c in 0..<3 { for y in 0..<14 { for x in 0..<14 { crop.append(image[0, c, 2 * i + y, 2 * j + x]) } } }
                let scores = try noGrad { try classify(Tensor(shape: [1, 3, 14, 14], scalars: crop)) }
                for k in 0..<4 {
                    #expect(abs(map[0, k, i, j] - scores[0, k]) <= 1e-5 + 1e-4 * abs(scores[0, k]), "cell (\(i), \(j)) class \(k)")
                }
            }
        }
        #expect(throws: NeuronError.self) { try Conv2D(converting: fc1, inputChannels: 16, height: 4, width: 5) }
    }
}
