import Foundation
import Testing
@testable import Neuron

/// A custom module that declares nothing: reflection finds its parts under their property names.
private final class Block: Module {
    let fc1: Linear, fc2: Linear
    let heads: [Linear]
    let extra: Linear?
    let scale = Parameter(Tensor([2]))
    let counter = Buffer(Tensor([0]))
    let named: [String: any Module]
    let width = 3
    var isTraining = true

    init(extra: Bool) throws {
        fc1 = try Linear(in: 2, out: 3)
        fc2 = try Linear(in: 3, out: 2)
        heads = [try Linear(in: 2, out: 1), try Linear(in: 2, out: 1)]
        self.extra = extra ? try Linear(in: 2, out: 2) : nil
        named = ["b": ReLU(), "a": try Linear(in: 1, out: 1)]
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(try fc1(x).relu()) * scale.value }
}

/// A module whose hand-written list forgets `fc2`: the bug the reflection check exists for.
private final class ForgetfulNet: Module {
    let fc1 = try! Linear(in: 2, out: 3)
    let fc2 = try! Linear(in: 3, out: 2)
    var isTraining = true
    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(try fc1(x)) }
    var children: [(name: String, module: any Module)] { [("fc1", fc1)] }
}

/// A leaf that declares `weight` but forgets its `bias` parameter.
private final class ForgetfulLayer: Module {
    let weight = Parameter(Tensor([1, 2]))
    let bias = Parameter(Tensor([0]))
    var isTraining = true
    func callAsFunction(_ x: Tensor) throws -> Tensor { x }
    var localParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }
}

/// Throws on batches of more than `limit` rows, to test that `predict` restores modes after an error.
private final class Fussy: Module {
    let dropout = try! Dropout(p: 0.5)
    let limit: Int
    var isTraining = true
    init(limit: Int) { self.limit = limit }
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.shape[0] <= limit else { throw NeuronError.invalidArgument("too many rows") }
        return try dropout(x)
    }
}

@Suite struct ModuleAPITests {
    // MARK: parts found by reflection

    @Test func reflectionFindsPartsUnderPropertyNames() throws {
        let block = try Block(extra: false)
        #expect(block.namedParameters.map(\.name) == [
            "scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "heads.0.weight", "heads.0.bias",
            "heads.1.weight", "heads.1.bias", "named.a.weight", "named.a.bias",
        ])
        #expect(block.namedBuffers.map(\.name) == ["counter"])
        #expect(block.children.map(\.name) == ["fc1", "fc2", "heads.0", "heads.1", "named.a", "named.b"])
        #expect(try Block(extra: true).namedParameters.map(\.name).contains("extra.weight"))
        try block.checkParts()
        // The cached layout gives the same answer for a second instance.
        #expect(try Block(extra: false).namedParameters.map(\.name) == block.namedParameters.map(\.name))
        // State dicts round-trip between two instances.
        let other = try Block(extra: false)
        try other.loadStateDict(block.stateDict())
        #expect(other.fc1.weight.value == block.fc1.weight.value)
    }

    @Test func aForgottenChildFailsLoudly() throws {
        let net = ForgetfulNet()
        let message = String(describing: try #require(throws: NeuronError.self) { try net.checkParts() })
        #expect(message.contains("ForgetfulNet.fc2") && message.contains("Linear"))
        #expect(throws: NeuronError.self) { try Adam(net, lr: 1e-3) }
        #expect(throws: NeuronError.self) { try SGD(net, lr: 0.1) }
        #expect(throws: NeuronError.self) { try net.save(to: FileManager.default.temporaryDirectory.appendingPathComponent("forgetful.safetensors")) }
        #expect(throws: NeuronError.self) { try net.loadStateDict([:], strict: false) }
        #expect(throws: NeuronError.self) { try net.predict(Tensor.zeros([1, 2])) }
        #expect(throws: NeuronError.self) { try net.summary(inputShape: [1, 2]) }
        // Inside a container too.
        let wrapped = Sequential([try Linear(in: 2, out: 2), ForgetfulLayer()])
        let leaf = String(describing: try #require(throws: NeuronError.self) { try wrapped.checkParts() })
        #expect(leaf.contains("ForgetfulLayer.bias") && leaf.contains("Sequential.1"))
    }

    @Test func libraryModelsKeepTheirStateDictNames() throws {
        let lenet = try LeNet5()
        #expect(lenet.namedParameters.map(\.name) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                                      "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
        let vgg = try VGG.small(inChannels: 1, widths: [4], classes: 2)
        #expect(Set(vgg.stateDict().keys) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                             "1.num_batches_tracked", "6.weight", "6.bias"])
        let torchvision = try VGGNetwork(configuration: [4, nil, 4], classes: 3, includeClassifier: true, hidden: 8)
        #expect(torchvision.namedParameters.map(\.name) == ["features.0.weight", "features.0.bias", "features.3.weight",
                                                            "features.3.bias", "classifier.0.weight", "classifier.0.bias",
                                                            "classifier.3.weight", "classifier.3.bias", "classifier.6.weight",
                                                            "classifier.6.bias"])
        let tagger = try SequenceModels.tagger(vocabularySize: 5, embedding: 3, hidden: 2, tags: 4)
        #expect(tagger.namedParameters.map(\.name) == ["0.weight", "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0", "1.bias_hh_l0",
                                                       "1.weight_ih_l0_reverse", "1.weight_hh_l0_reverse", "1.bias_ih_l0_reverse",
                                                       "1.bias_hh_l0_reverse", "2.weight", "2.bias"])
        let stateful = Sequential([Stateful(try LSTM(input: 2, hidden: 3, layers: 2))])
        #expect(stateful.namedParameters.map(\.name).prefix(2) == ["0.weight_ih_l0", "0.weight_hh_l0"])
        let siamese = Siamese(encoder: try Sequential { try Linear(in: 2, out: 2) })
        #expect(siamese.namedParameters.map(\.name) == ["encoder.0.weight", "encoder.0.bias"])
        let modules: [any Module] = [
            lenet, vgg, torchvision, tagger, stateful, siamese,
            try VectorToSequence(vectorSize: 2, vocabularySize: 4, embedding: 3, hidden: 2, startToken: 0),
            try LanguageModel(vocabularySize: 5, embedding: 3, rnn: try GRU(input: 3, hidden: 4)),
            try SimilarityHead(embeddingSize: 3), try BatchNorm2D(3), try GRUCell(input: 2, hidden: 2),
            try SequenceModels.stackedForecaster(first: 3, second: 2),
        ]
        for module in modules { try module.checkParts() }
    }

    // MARK: freezing

    @Test(arguments: ["SGD", "Adam", "AdamW", "RMSProp", "Adagrad"])
    func frozenParametersDoNotChange(_ kind: String) throws {
        let model = try Sequential { try Linear(in: 3, out: 4); ReLU(); try Linear(in: 4, out: 2) }
        let first = model.layers[0] as! Linear, last = model.layers[2] as! Linear
        first.freeze()
        last.bias!.freeze()
        let optimizer: any Optimizer = switch kind {
        case "SGD": try SGD(model, lr: 0.1, momentum: 0.9, weightDecay: 0.1)
        case "Adam": try Adam(model, lr: 0.1, weightDecay: 0.1)
        case "AdamW": try AdamW(model, lr: 0.1)
        case "RMSProp": try RMSProp(model, lr: 0.1, weightDecay: 0.1, momentum: 0.5)
        default: try Adagrad(model, lr: 0.1, weightDecay: 0.1)
        }
        let before = model.namedParameters.map { ($0.name, $0.parameter.withValue { $0 }) }
        let x = Tensor.normal([5, 3])
        for _ in 0..<3 {
            optimizer.zeroGrad()
            try model(x).squared().sum().backward()
            // A gradient left on a frozen parameter (set before it was frozen) must not move it either.
            last.bias!.grad = Tensor.ones([2])
            try optimizer.step()
        }
        for ((name, old), (_, parameter)) in zip(before, model.namedParameters) {
            let frozen = name.hasPrefix("0.") || name == "2.bias"
            #expect((parameter.withValue { $0 } == old) == frozen, "\(kind): \(name) frozen \(frozen)")
        }
        model.unfreeze()
        #expect(model.parameters.allSatisfy { $0.requiresGrad })
        #expect(model.trainableParameters.count == 4)
    }

    // MARK: optimisers from modules and parameter arrays

    @Test func optimizersTakeModulesAndParameterArrays() throws {
        let model = try Sequential { try Linear(in: 2, out: 1) }
        let byModule = try Adam(model, lr: 1e-3)
        let byArray = try Adam(model.parameters, lr: 1e-3)
        #expect(byModule.parameters.map(\.name) == ["0.weight", "0.bias"])
        #expect(byArray.parameters.map(\.name) == ["0", "1"])
        try model(Tensor([[1, 2]])).sum().backward()
        try byModule.step()
        #expect(byModule.stateDict().keys.contains("exp_avg.0.weight"))
        _ = try SGD(model.parameters, lr: 0.1)
        _ = try RMSProp(model)
        _ = try Adagrad(model.parameters)
        _ = try AdamW(model)
    }

    // MARK: integer labels

    @Test func integerTensorLabelsWorkEverywhere() throws {
        let logits = try Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0 % 5) - 2 }).requiringGrad()
        let labels = [3, 0, 2], tensorLabels = IntTensor(labels)
        #expect(try crossEntropy(logits, labels: tensorLabels).item() == crossEntropy(logits, labels: labels).item())
        // NLL of log-softmax is cross-entropy (PyTorch's identity), with the same gradient.
        let nll = try nllLoss(try logits.logSoftmax(axis: 1), labels: tensorLabels)
        #expect(abs(try nll.item() - crossEntropy(logits, labels: labels).item()) < 1e-6)
        try checkGradients([logits.detached()]) { try nllLoss(try $0[0].logSoftmax(axis: 1), labels: tensorLabels, reduction: .none) }
        #expect(try nllLoss(Tensor([[-1, -2], [-3, -4]]), labels: IntTensor([1, 0]), reduction: .sum).item() == 5)
        #expect(try accuracy(predictions: IntTensor([1, 2, 2]), labels: tensorLabels) == 1.0 / 3)
        #expect(try accuracy(predictions: [3, 0, 1], labels: tensorLabels) == 2.0 / 3)
        #expect(try oneHot(tensorLabels, classes: 4) == oneHot(labels, classes: 4))
        #expect(try ConfusionMatrix(predictions: tensorLabels, labels: tensorLabels, classes: 4).counts[3][3] == 1)
        #expect(throws: NeuronError.self) { try crossEntropy(logits, labels: try IntTensor(shape: [3, 1], scalars: [0, 1, 2])) }
        var loader = try DataLoader(x: Tensor.zeros([5, 2]), y: IntTensor([0, 1, 2, 3, 4]), batchSize: 2, shuffle: false)
        let batches = Array(loader.epoch())
        #expect(batches.map { $0.y.ints } == [[0, 1], [2, 3], [4]])
        #expect(try crossEntropy(Tensor.zeros([2, 5]), labels: batches[0].y).item() > 0)
    }

    // MARK: typed safetensors access

    @Test func loadedFilesHaveTypedAccessors() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("typed-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Safetensors.write(["w": .float(Tensor([1, 2])), "y": .int(IntTensor([3, 4]))], to: url)
        let file = try Safetensors.read(contentsOf: url)
        #expect(try file.tensor("w").scalars == [1, 2])
        #expect(try file.intTensor("y").ints == [3, 4])
        let missing = String(describing: try #require(throws: NeuronError.self) { try file.tensor("v") })
        #expect(missing.contains("'v'") && missing.contains("'w'"))
        #expect(String(describing: try #require(throws: NeuronError.self) { try file.tensor("y") }).contains("intTensor"))
        #expect(throws: NeuronError.self) { try file.intTensor("w") }
        #expect(file["w"]?.floatTensor != nil && file["w"]?.intTensor == nil)
    }

    // MARK: pooling

    @Test func maxPoolReturnsIndicesOnlyWhenAsked() throws {
        let x = try Tensor(shape: [1, 1, 2, 4], scalars: [1, 5, 2, 0, 3, 4, 7, 6])
        let values: Tensor = try Tensor.maxPool2d(x, kernel: 2)
        #expect(values.scalars == [5, 7])
        #expect(try Tensor.maxPool2d(x, kernel: 2, returningIndices: false).indices == nil)
        #expect(try Tensor.maxPool2d(x, kernel: 2, returningIndices: true).indices?.ints == [1, 6])
    }

    @Test func adaptiveMaxPoolMatchesKnownValuesAndPyTorch() throws {
        // 5 -> 3 rows: windows [0, 2), [1, 4), [3, 5).
        let column = try Tensor(shape: [1, 1, 5, 1], scalars: [1, 7, 3, 2, 5])
        let (y, indices) = try Tensor.adaptiveMaxPool2d(column, outputSize: [3, 1], returningIndices: true)
        #expect(y.scalars == [7, 7, 5] && indices?.ints == [1, 1, 4])
        #expect(try AdaptiveMaxPool2D(outputSize: 1)(Tensor(shape: [1, 2, 1, 2], scalars: [1, 3, .nan, 0])).scalars[1].isNaN)
        // Where the size divides, adaptive max pooling is 2x2 max pooling: PyTorch's values, indices, gradient.
        let g = try Golden("pool")
        let x = try g.float("maxpool_k2s2.x").requiringGrad()
        let out = try Tensor.adaptiveMaxPool2d(x, outputSize: Size2D(x.shape[2] / 2, x.shape[3] / 2), returningIndices: true)
        try g.expectValue(out.values, "maxpool_k2s2.y")
        #expect(out.indices?.ints == (try g.ints("maxpool_k2s2.indices")))
        try (out.values * g.float("maxpool_k2s2.R")).sum().backward()
        try g.expectGradient(x.grad, "maxpool_k2s2.grad.x")
        // Layers: shapes, bad configuration, empty planes.
        let layerInput = randomTensor([2, 3, 7, 5], seed: 4)
        #expect(try AdaptiveMaxPool2D(outputSize: [3, 2])(layerInput).shape == [2, 3, 3, 2])
        #expect(try AdaptiveAvgPool2D(outputSize: [3, 2])(layerInput).shape == [2, 3, 3, 2])
        #expect(throws: NeuronError.self) { try AdaptiveMaxPool2D(outputSize: 0) }
        #expect(throws: NeuronError.self) { try AdaptiveMaxPool2D(outputSize: 2)(Tensor.zeros([1, 1, 0, 3])) }
        #expect(try AdaptiveMaxPool2D(outputSize: 2)(Tensor.zeros([0, 1, 3, 3])).shape == [0, 1, 2, 2])
    }

    @Test func adaptivePoolingGradientsPassFiniteDifferences() throws {
        // A shuffled ramp keeps every maximum clear of ties, so the max is differentiable.
        let x = try Tensor(shape: [2, 2, 5, 7], scalars: (0..<140).map { Float(($0 * 37) % 140) * 0.05 })
        try checkGradients([x]) { try Tensor.adaptiveMaxPool2d($0[0], outputSize: [3, 4]) }
        try checkGradients([x]) { try AdaptiveMaxPool2D(outputSize: [2, 9])($0[0]) }
        try checkGradients([x]) { try AdaptiveAvgPool2D(outputSize: [3, 4])($0[0]) }
    }

    // MARK: predict

    @Test func predictRunsBatchedInEvaluationModeAndRestoresTheMode() throws {
        Random.seed(7)
        let model = try Sequential { try Linear(in: 3, out: 4); try BatchNorm1D(4); try Dropout(p: 0.5); try Linear(in: 4, out: 2) }
        _ = try model(Tensor.normal([8, 3]))  // moves the running statistics off their start
        let x = Tensor.normal([7, 3]).requiringGrad()
        let y = try model.predict(x, batchSize: 3)
        model.eval()
        let expected = try noGrad { try model(x) }
        model.train()
        #expect(y.isClose(to: expected) && !y.requiresGrad && y.shape == [7, 2])
        #expect(model.namedModules.allSatisfy { $0.module.isTraining })
        // A mixed start is restored module by module, also when the forward pass throws.
        let fussy = Fussy(limit: 2)
        fussy.dropout.isTraining = false
        #expect(try fussy.predict(Tensor.ones([5, 1]), batchSize: 2).scalars == [1, 1, 1, 1, 1])
        #expect(throws: NeuronError.self) { try fussy.predict(Tensor.ones([5, 1]), batchSize: 3) }
        #expect(fussy.isTraining && !fussy.dropout.isTraining)
        #expect(throws: NeuronError.self) { try model.predict(x, batchSize: 0) }
        #expect(try Linear(in: 3, out: 2).predict(Tensor.zeros([0, 3])).shape == [0, 2])
    }

    // MARK: description and summary

    @Test func lenetPrintsLikePyTorch() throws {
        #expect(String(describing: try LeNet5()) == """
            LeNet5(
              (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
              (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
              (fc1): Linear(in_features=400, out_features=120, bias=True)
              (fc2): Linear(in_features=120, out_features=84, bias=True)
              (fc3): Linear(in_features=84, out_features=10, bias=True)
            )
            """)
        let small = try VGG.small(inChannels: 1, widths: [4], classes: 2, dropout: 0.25)
        #expect(small.description == """
            Sequential(
              (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
              (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
              (2): ReLU()
              (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
              (4): AdaptiveAvgPool2d(output_size=1)
              (5): Flatten(start_dim=1, end_dim=-1)
              (6): Dropout(p=0.25, inplace=False)
              (7): Linear(in_features=4, out_features=2, bias=True)
            )
            """)
        #expect(try LSTM(input: 10, hidden: 20, layers: 2, batchFirst: true, bidirectional: true).description
                == "LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)")
        #expect(TimeDistributed(try Linear(in: 2, out: 3)).description == "TimeDistributed(Linear(in_features=2, out_features=3, bias=True))")
    }

    @Test func summaryTracesCustomModules() throws {
        let lenet = try LeNet5()
        lenet.fc3.freeze()
        let text = try lenet.summary(inputShape: [1, 1, 28, 28])
        let rows = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(rows.contains("conv1 (Conv2d) [1, 6, 28, 28] 156"))
        #expect(rows.contains("conv2 (Conv2d) [1, 16, 10, 10] 2416"))
        #expect(rows.contains("fc1 (Linear) [1, 120] 48120"))
        #expect(rows.contains("fc3 (Linear) [1, 10] 850"))
        #expect(rows.contains("output [1, 10]"))
        #expect(rows.contains("Total parameters: 61706") && rows.contains("Trainable parameters: 60856"))
        #expect(lenet.isTraining)
        // Inside a Sequential, a custom module gets its own row after its layers.
        let nested = Sequential([try Block(extra: false), ReLU()])
        let nestedRows = try nested.summary(inputShape: [2, 2]).split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(nestedRows.contains("0.fc1 (Linear) [2, 3] 9") && nestedRows.contains("0 (Block) [2, 2] 26") && nestedRows.contains("1 (ReLU) [2, 2] 0"))
    }

    // MARK: tensors across tasks

    @Test func tensorsCrossTasks() async throws {
        let x = Tensor([1, 2, 3])
        let sent = try x.sendable()
        let doubled = try await Task.detached { try (sent.tensor * 2).sendable() }.value
        #expect(Tensor(doubled).scalars == [2, 4, 6] && x.scalars == [1, 2, 3])
        // Both sides may write their copies: copy-on-write keeps them apart.
        var mine = sent.tensor
        mine[0] = 10
        #expect(sent.scalars == [1, 2, 3])
        let history = x.requiringGrad() * 2
        #expect(throws: NeuronError.self) { try history.sendable() }
        #expect(try history.detached().sendable().scalars == [2, 4, 6])
    }
}
