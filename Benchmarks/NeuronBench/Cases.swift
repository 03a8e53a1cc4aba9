import ArgumentParser
import Foundation
import Neuron

// The cases of ../shared/bench/README.md, with the shapes torch_anchor.py uses.

extension BenchmarkCase {
    static var all: [BenchmarkCase] {
        [convForward("conv_fwd_small", n: 32, cin: 3, cout: 16, size: 32, kernel: 3, padding: 1),
         convForward("conv_fwd_mid", n: 32, cin: 64, cout: 64, size: 28, kernel: 3, padding: 1),
         convForward("conv_fwd_1x1", n: 32, cin: 128, cout: 64, size: 14, kernel: 1, padding: 0),
         convForward("conv_fwd_s2", n: 32, cin: 64, cout: 128, size: 28, kernel: 3, stride: 2, padding: 1),
         convForward("conv_fwd_stem7x7", n: 8, cin: 3, cout: 64, size: 112, kernel: 7, stride: 2, padding: 3),
         convForwardBackward, leNetTrainStep, charLMTrainStep, sgemmPeak,
         recurrent("lstm_fwd", gates: 4, backward: false), recurrent("lstm_fwdbwd", gates: 4, backward: true),
         recurrent("gru_fwd", gates: 3, backward: false), recurrent("gru_fwdbwd", gates: 3, backward: true),
         gram("gram_256x4096", channels: 256, positions: 4096), gram("gram_64x50176", channels: 64, positions: 224 * 224),
         iouCase("box_iou_1000x1000", n: 1000), iouCase("box_iou_5000x5000", n: 5000),
         nmsCase("nms_2000", n: 2000, batched: false), nmsCase("nms_10000", n: 10000, batched: false),
         nmsCase("nms_batched_10000", n: 10000, batched: true), csvNumeric]
    }

    /// nn.LSTM / nn.GRU (input 128, hidden 256, one layer, time-major) on x [64, 32, 128] from a zero
    /// state. Forward without autograd; forward and backward from a fixed gradient on the output sequence
    /// into the input and every parameter. FLOPs 2·T·N·G·H·(D + H) per forward, 3x with backward.
    static func recurrent(_ name: String, gates: Int, backward: Bool) -> BenchmarkCase {
        let (t, n, d, h) = (64, 32, 128, 256)
        let flops = 2.0 * Double(t * n * gates * h * (d + h)) * (backward ? 3 : 1)
        return BenchmarkCase(name: name, flops: flops) {
            Random.seed(4)
            let layer: any RecurrentLayer = gates == 4 ? try LSTM(input: d, hidden: h) : try GRU(input: d, hidden: h)
            var g = RandomGenerator(seed: 5)
            let x = Tensor.normal([t, n, d], using: &g)
            guard backward else { return { _ = try noGrad { try layer(x) } } }
            let gy = Tensor.normal([t, n, h], using: &g)
            return {
                layer.zeroGrad()
                try layer(x.requiringGrad()).backward(gy)
            }
        }
    }

    /// Multiply-adds of a direct convolution, counted twice (the flops of every algorithm are quoted so).
    static func convFlops(n: Int, cin: Int, cout: Int, size: Int, kernel: Int, stride: Int = 1, padding: Int) -> Double {
        let out = (size + 2 * padding - kernel) / stride + 1
        return 2 * Double(n * cout * out * out * cin * kernel * kernel)
    }

    /// Inference convolution (no autograd), weights N(0, 0.1²) as in torch_anchor.py.
    static func convForward(_ name: String, n: Int, cin: Int, cout: Int, size: Int, kernel: Int, stride: Int = 1,
                            padding: Int) -> BenchmarkCase {
        BenchmarkCase(name: name, flops: convFlops(n: n, cin: cin, cout: cout, size: size, kernel: kernel, stride: stride,
                                                   padding: padding)) {
            var g = RandomGenerator(seed: 1)
            let x = Tensor.normal([n, cin, size, size], using: &g)
            let w = Tensor.normal([cout, cin, kernel, kernel], std: 0.1, using: &g)
            let b = Tensor.normal([cout], using: &g)
            return {
                _ = try noGrad {
                    try Tensor.conv2d(x, weight: w, bias: b, stride: Size2D(integerLiteral: stride),
                                      padding: Padding2D(integerLiteral: padding))
                }
            }
        }
    }

    /// conv_fwd_mid forward, then backward from a fixed upstream gradient: grads of input, weight, bias.
    static var convForwardBackward: BenchmarkCase {
        BenchmarkCase(name: "conv_fwdbwd_mid", flops: 3 * convFlops(n: 32, cin: 64, cout: 64, size: 28, kernel: 3, padding: 1)) {
            var g = RandomGenerator(seed: 2)
            let x = Tensor.normal([32, 64, 28, 28], using: &g).requiringGrad()
            let w = Parameter(Tensor.normal([64, 64, 3, 3], std: 0.1, using: &g))
            let b = Parameter(Tensor.normal([64], using: &g))
            let gy = Tensor.normal([32, 64, 28, 28], using: &g)
            return {
                w.zeroGrad()
                b.zeroGrad()
                let y = try Tensor.conv2d(x, weight: w.value, bias: b.value, padding: 1)
                try y.backward(gy)
            }
        }
    }

    /// LeNet-5 on N64 1x28x28: forward, softmax cross-entropy, backward, SGD(lr 0.01) step.
    static var leNetTrainStep: BenchmarkCase {
        BenchmarkCase(name: "lenet_train_step") {
            var g = RandomGenerator(seed: 3)
            let model = try LeNet5()
            let optimizer = try SGD(model.namedParameters, lr: 0.01)
            let x = Tensor.normal([64, 1, 28, 28], using: &g)
            let labels = (0..<64).map { _ in Int(g.next() % 10) }
            return {
                optimizer.zeroGrad()
                let loss = try crossEntropy(try model(x), labels: labels)
                try loss.backward()
                try optimizer.step()
            }
        }
    }

    /// Embedding(65, 64) -> 2-layer LSTM(256) -> Linear(256, 65) on tokens [T 100, N 32] (time-major):
    /// forward, mean softmax cross-entropy over all 3200 positions, backward, Adam(lr 2e-3) step. FLOPs as
    /// torch_anchor.py counts them: 3 x (both LSTM layers + the output layer) forward multiply-adds x 2.
    static var charLMTrainStep: BenchmarkCase {
        let (vocabulary, width, hidden, steps, batch) = (65, 64, 256, 100, 32)
        let lstmFlops = { (input: Int) in 2.0 * Double(steps * batch * 4 * hidden * (input + hidden)) }
        let forward = lstmFlops(width) + lstmFlops(hidden) + 2.0 * Double(steps * batch * hidden * vocabulary)
        return BenchmarkCase(name: "charlm_train_step", flops: 3 * forward) {
            var g = RandomGenerator(seed: 4)
            let model = try Random.withGenerator(seed: 4) {
                try LanguageModel(vocabularySize: vocabulary, embedding: width, rnn: try LSTM(input: width, hidden: hidden, layers: 2))
            }
            let optimizer = try Adam(model.namedParameters, lr: 2e-3)
            let tokens = try IntTensor(shape: [steps, batch], scalars: (0..<steps * batch).map { _ in Int64(g.next() % UInt64(vocabulary)) })
            let targets = (0..<steps * batch).map { _ in Int(g.next() % UInt64(vocabulary)) }
            return {
                optimizer.zeroGrad()
                let logits = try model(tokens, state: nil).logits
                let loss = try crossEntropy(try logits.reshaped([steps * batch, vocabulary]), labels: targets)
                try loss.backward()
                try optimizer.step()
            }
        }
    }

    /// `CSVTable` parsing 200,000 rows of 20 numeric columns with a header (about 34 MB of text, cells
    /// like `-1.234567`, as pandas writes float32 data), from bytes in memory to the [200000, 20] tensor.
    static var csvNumeric: BenchmarkCase {
        BenchmarkCase(name: "csv_200kx20") {
            var g = RandomGenerator(seed: 6)
            let values = Tensor.normal([200_000, 20], using: &g).scalars
            var text = (0..<20).map { "c\($0)" }.joined(separator: ",") + "\n"
            text.reserveCapacity(values.count * 10)
            for row in 0..<200_000 {
                text += (0..<20).map { String(format: "%.6f", values[row * 20 + $0]) }.joined(separator: ",") + "\n"
            }
            return {
                let table = try CSVTable(parsing: text, hasHeader: true)
                guard table.rowCount == 200_000 else { throw ValidationError("csv_200kx20 read \(table.rowCount) rows") }
            }
        }
    }

    /// 2048 x 2048 x 2048 matrix product.
    static var sgemmPeak: BenchmarkCase {
        BenchmarkCase(name: "sgemm_peak", flops: 2 * pow(2048.0, 3)) {
            var g = RandomGenerator(seed: 1)
            let a = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
            let b = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
            return { _ = try a.matmul(b) }
        }
    }

    /// G = F·Fᵀ for F [C, K] (torch.mm(f, f.t()) in torch_anchor.py); FLOPs counted for the full product.
    static func gram(_ name: String, channels: Int, positions: Int) -> BenchmarkCase {
        BenchmarkCase(name: name, flops: 2 * Double(channels * channels * positions)) {
            var g = RandomGenerator(seed: 4)
            let f = Tensor.normal([channels, positions], using: &g)
            return { _ = try noGrad { try f.gramMatrix() } }
        }
    }
}

// The box cases read ../shared/bench/data/boxes.safetensors (copied to Benchmarks/data/; override the path
// with NEURON_BENCH_BOXES) and check the result against torchvision's once before timing.
extension BenchmarkCase {
    nonisolated(unsafe) static var boxData: [String: StoredTensor]?

    static func boxTensors() throws -> [String: StoredTensor] {
        if let boxData { return boxData }
        let environment = ProcessInfo.processInfo.environment["NEURON_BENCH_BOXES"]
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("../../Benchmarks/data/boxes.safetensors").standardized.path
        let candidates = [environment, "Benchmarks/data/boxes.safetensors", beside].compactMap { $0 }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ValidationError("no box data at \(candidates.joined(separator: " or ")) (set NEURON_BENCH_BOXES)")
        }
        let data = try Safetensors.read(contentsOf: URL(fileURLWithPath: path))
        boxData = data
        return data
    }

    static func floats(_ key: String) throws -> Tensor {
        guard case .float(let t)? = try boxTensors()[key] else { throw ValidationError("box data has no float tensor \(key)") }
        return t
    }

    static func ints(_ key: String) throws -> [Int] {
        guard case .int(let t)? = try boxTensors()[key] else { throw ValidationError("box data has no integer tensor \(key)") }
        return t.ints
    }

    /// Pairwise IoU of two sets of n uniform boxes (corners, pixels).
    static func iouCase(_ name: String, n: Int) -> BenchmarkCase {
        BenchmarkCase(name: name) {
            let a = try Boxes<Corners, Pixels>(try floats("iou\(n)_a")), b = try Boxes<Corners, Pixels>(try floats("iou\(n)_b"))
            let iou = boxIoU(a, b).scalars
            let sum = iou.reduce(0.0) { $0 + Double($1) }, nonzero = iou.filter { $0 > 0 }.count
            // The F64 reference sum arrives as a Float (7 digits): ample for a 1e-6 relative check.
            let expected = Double(try floats("iou\(n)_sum").scalars[0])
            guard abs(sum - expected) <= 1e-6 * expected, nonzero == (try ints("iou\(n)_nonzero")).first else {
                throw ValidationError("\(name): IoU sum \(sum), \(nonzero) nonzero differ from torchvision's")
            }
            return { _ = boxIoU(a, b) }
        }
    }

    /// Greedy NMS at IoU 0.5 on n clustered boxes, per class over 20 labels when batched.
    static func nmsCase(_ name: String, n: Int, batched: Bool) -> BenchmarkCase {
        BenchmarkCase(name: name) {
            let boxes = try Boxes<Corners, Pixels>(try floats("nms\(n)_boxes")), scores = try floats("nms\(n)_scores")
            let labels = try ints("nms\(n)_labels")
            let run = {
                batched ? try batchedNonMaxSuppression(boxes, scores: scores, labels: labels, iouThreshold: 0.5)
                        : try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5)
            }
            let expected = try ints(batched ? "nms_batched\(n)_keep" : "nms\(n)_keep")
            guard try run() == expected else { throw ValidationError("\(name): kept indices differ from torchvision's") }
            return { _ = try run() }
        }
    }
}
