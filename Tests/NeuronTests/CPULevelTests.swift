import Foundation
import Testing
@testable import Neuron

/// The kernels' instruction levels (CKernels/README.md): every level this machine has passes the PyTorch
/// goldens, and the levels agree with each other within the goldens' tolerances.
@Suite struct CPULevelTests {
    @Test func levelsAreReported() {
        #expect(Neuron.supportedCPULevels.first == .baseline)
        #expect(Neuron.supportedCPULevels.last == Neuron.bestCPULevel)
        #expect(Neuron.cpuLevel <= Neuron.bestCPULevel)
        #expect(Neuron.buildSummary.contains("CPU level: \(Neuron.cpuLevel)"))
        #expect(!Neuron.blasCoreName.isEmpty)
        if ProcessInfo.processInfo.environment["NEURON_CPU"] == nil {
            #expect(Neuron.cpuLevel == Neuron.bestCPULevel, "no NEURON_CPU, so the best level runs")
        }
    }

    @Test func levelAboveTheCPUIsRefused() throws {
        for level in CPULevel.allCases where level > Neuron.bestCPULevel {
            #expect(throws: NeuronError.self) { try Neuron.withCPULevel(level) {} }
        }
        let outside = Neuron.cpuLevel
        try Neuron.withCPULevel(.baseline) { #expect(Neuron.cpuLevel == .baseline) }
        #expect(Neuron.cpuLevel == outside, "the thread's level comes back after the closure")
    }

    /// The golden suites, run at each level: each level within PyTorch's tolerances.
    @Test(arguments: Neuron.supportedCPULevels)
    func goldensHoldAtEveryLevel(_ level: CPULevel) throws {
        try Neuron.withCPULevel(level) {
            let conv = ConvolutionTests()
            for index in ConvolutionTests.convCases.indices { try conv.convolutionMatchesPyTorch(index) }
            try conv.poolingMatchesPyTorch()
            for kind in ["bn2d", "bn1d"] { try conv.batchNormMatchesPyTorch(kind) }
            try conv.leNetMatchesPyTorch()
            let core = GoldenCoreTests()
            try core.linearMatchesPyTorch()
            for name in ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"] {
                try core.activationMatchesPyTorch(name)
            }
        }
    }

    /// One LeNet-5 training batch at every level against the baseline: logits and loss within the forward
    /// tolerances, every gradient within the gradient tolerances. The batch is large enough for whole tiles
    /// at every vector width, and for the parallel paths.
    @Test func levelsAgreeOnALeNetStep() throws {
        func step() throws -> [String: Tensor] {
            var g = RandomGenerator(seed: 7)
            let model = try Random.withGenerator(seed: 11) { try LeNet5() }
            let x = Tensor.normal([32, 1, 28, 28], using: &g)
            let labels = (0..<32).map { _ in Int(g.next() % 10) }
            let logits = try model(x)
            let loss = try crossEntropy(logits, labels: labels)
            try loss.backward()
            var out = ["logits": logits, "loss": loss]
            for (name, parameter) in model.namedParameters { out[name] = parameter.grad }
            return out
        }
        let reference = try Neuron.withCPULevel(.baseline) { try step() }
        for level in Neuron.supportedCPULevels.dropFirst() {
            let result = try Neuron.withCPULevel(level) { try step() }
            for (key, expected) in reference.sorted(by: { $0.key < $1.key }) {
                let actual = try #require(result[key])
                let forward = key == "logits" || key == "loss"
                expectClose(actual, expected, atol: forward ? 1e-6 : 1e-5, rtol: forward ? 1e-5 : 1e-4, "\(level) \(key)")
            }
        }
    }
}
