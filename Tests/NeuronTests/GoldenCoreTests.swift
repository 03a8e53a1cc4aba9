import Testing
@testable import Neuron

/// Linear, activations, softmax and losses against PyTorch's values and gradients.
@Suite struct GoldenCoreTests {
    @Test func linearMatchesPyTorch() throws {
        let g = try Golden("linear_activations")
        let layer = try Linear(in: 7, out: 5)
        try layer.loadStateDict(g.tensors, prefix: "linear.param.")
        let x = try g.float("linear.x").requiringGrad()
        let y = try layer(x)
        try g.expectValue(y, "linear.y")
        try (y * g.float("linear.R")).sum().backward()
        try g.expectGradient(x.grad, "linear.grad.x")
        try g.expectGradient(layer.weight.grad, "linear.grad.param.weight")
        try g.expectGradient(layer.bias?.grad, "linear.grad.param.bias")
    }

    @Test(arguments: ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"])
    func activationMatchesPyTorch(_ name: String) throws {
        let g = try Golden("linear_activations")
        let x = try g.float(name + ".x").requiringGrad()
        let y: Tensor
        switch name {
        case "relu": y = x.relu()
        case "leaky_relu": y = x.leakyRelu()
        case "sigmoid": y = x.sigmoid()
        case "tanh": y = x.tanh()
        case "softmax": y = try x.softmax(axis: 1)
        default: y = try x.logSoftmax(axis: 1)
        }
        #expect(y.scalars.allSatisfy { $0.isFinite })
        try g.expectValue(y, name + ".y")
        try (y * g.float(name + ".R")).sum().backward()
        try g.expectGradient(x.grad, name + ".grad.x")
    }

    @Test(arguments: ["mse", "bce", "bce_logits", "ce"])
    func lossMatchesPyTorch(_ name: String) throws {
        let g = try Golden("losses")
        let input = try g.float(name + ".input").requiringGrad()
        func loss(_ reduction: Reduction) throws -> Tensor {
            switch name {
            case "mse": return try mseLoss(input, g.float(name + ".target"), reduction: reduction)
            case "bce": return try binaryCrossEntropy(input, g.float(name + ".target"), reduction: reduction)
            case "bce_logits": return try binaryCrossEntropyWithLogits(input, g.float(name + ".target"), reduction: reduction)
            default: return try crossEntropy(input, labels: g.ints(name + ".target"), reduction: reduction)
            }
        }
        let value = try loss(.mean)
        #expect(value.shape == [])
        try g.expectValue(value, name + ".loss")
        try g.expectValue(try noGrad { try loss(.none) }, name + ".loss_elements")
        try value.backward()
        try g.expectGradient(input.grad, name + ".grad.input")
    }

    @Test func crossEntropyWithOneHotTargetsMatchesIndices() throws {
        let g = try Golden("losses")
        let logits = try g.float("ce.input")
        let labels = try g.ints("ce.target")
        let oneHotTargets = try oneHot(labels, classes: logits.shape[1])
        try g.expectValue(try crossEntropy(logits, targets: oneHotTargets), "ce.loss")
    }

    @Test func sequentialStateDictRunsLikePyTorch() throws {
        let model = try Sequential {
            try Linear(in: 4, out: 3)
            ReLU()
            try Linear(in: 3, out: 2)
        }
        let state = try Golden("sequential_state_dict")
        try model.loadStateDict(state.tensors)
        let io = try Golden("sequential_io")
        try io.expectValue(try model(io.float("x")), "y")
        #expect(model.namedParameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
    }
}
