import Foundation
import Neuron

// The cases of ../shared/bench/README.md, with the shapes torch_anchor.py uses.

extension BenchmarkCase {
    static var all: [BenchmarkCase] {
        [convForward("conv_fwd_small", n: 32, cin: 3, cout: 16, size: 32, kernel: 3, padding: 1),
         convForward("conv_fwd_mid", n: 32, cin: 64, cout: 64, size: 28, kernel: 3, padding: 1),
         convForward("conv_fwd_1x1", n: 32, cin: 128, cout: 64, size: 14, kernel: 1, padding: 0),
         convForwardBackward, leNetTrainStep, charLMTrainStep, sgemmPeak]
    }

    static func convFlops(n: Int, cin: Int, cout: Int, size: Int, kernel: Int, padding: Int) -> Double {
        let out = size + 2 * padding - kernel + 1
        return 2 * Double(n * cout * out * out * cin * kernel * kernel)
    }

    /// Inference convolution (no autograd), weights N(0, 0.1²) as in torch_anchor.py.
    static func convForward(_ name: String, n: Int, cin: Int, cout: Int, size: Int, kernel: Int, padding: Int) -> BenchmarkCase {
        BenchmarkCase(name: name, flops: convFlops(n: n, cin: cin, cout: cout, size: size, kernel: kernel, padding: padding)) {
            var g = RandomGenerator(seed: 1)
            let x = Tensor.normal([n, cin, size, size], using: &g)
            let w = Tensor.normal([cout, cin, kernel, kernel], std: 0.1, using: &g)
            let b = Tensor.normal([cout], using: &g)
            return { _ = try noGrad { try Tensor.conv2d(x, weight: w, bias: b, padding: Padding2D(integerLiteral: padding)) } }
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
            let model = LeNet5()
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

    /// 2048 x 2048 x 2048 matrix product.
    static var sgemmPeak: BenchmarkCase {
        BenchmarkCase(name: "sgemm_peak", flops: 2 * pow(2048.0, 3)) {
            var g = RandomGenerator(seed: 1)
            let a = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
            let b = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
            return { _ = try a.matmul(b) }
        }
    }
}
