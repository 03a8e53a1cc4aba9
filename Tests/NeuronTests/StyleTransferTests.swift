import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// Style transfer end to end on small images, the extractors, VGG's torchvision names and bad input.
@Suite struct StyleTransferTests {
    func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("neuron-style-test-\(UInt32.random(in: 0 ... .max))-\(name)")
    }

    @Test func styleCostFallsTenfoldAndThePNGHasTheRequestedSize() throws {
        // A 40x26 crop of the cat and the grey brick texture (expanded to RGB), at different sizes.
        let content = try StyleDemo.load(StyleDemo.bundledImage("chelsea.png"), size: 40)
        let style = try StyleDemo.load(StyleDemo.bundledImage("brick.png"), size: 32)
        #expect(content.shape == [1, 3, 27, 40] && style.shape == [1, 1, 32, 32])
        var transfer = StyleTransfer()
        transfer.steps = 40
        let (image, history) = try transfer.run(content: content, style: style, extractor: StyleFeatureExtractor.randomFilters())
        #expect(history.count == 40)
        let fell = history[0].style / history[39].style
        #expect(fell >= 10, "the style cost fell only \(fell)x")
        #expect(image.shape == [1, 3, 27, 40] && image.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })

        // Through the demo: a PNG of the requested size comes out and decodes.
        let url = temporaryURL("out.png")
        defer { try? FileManager.default.removeItem(at: url) }
        var quick = StyleDemo.defaultTransfer
        quick.steps = 30
        let result = try StyleDemo.run(outputURL: url, size: 36, transfer: quick, log: { _ in })
        #expect(result.styleReduction >= 10)
        let written = try PNG.read(contentsOf: url)
        #expect(written.shape == [1, 3, 24, 36] && result.height == 24 && result.width == 36)
    }

    @Test func frozenExtractorGivesGradientsToThePixelsOnly() throws {
        let extractor = try StyleFeatureExtractor.randomFilters()
        #expect(extractor.network.parameters.allSatisfy { !$0.requiresGrad })
        let image = randomTensor([1, 3, 16, 16], seed: 1, low: 0, high: 1).requiringGrad()
        let (content, style) = try extractor.activations(image)
        #expect(content.shape == [1, 64, 8, 8] && style.map(\.shape) == [[1, 32, 16, 16], [1, 64, 8, 8], [1, 128, 4, 4], [1, 256, 2, 2]])
        try (content.sum() + style[3].sum()).backward()
        #expect(image.grad != nil)
        #expect(extractor.network.parameters.allSatisfy { $0.grad == nil })
        // The same seed gives the same filters.
        #expect(try StyleFeatureExtractor.randomFilters().network.parameters[0].withValue { $0 } == extractor.network.parameters[0].withValue { $0 })
        extractor.network.unfreeze()
        #expect(extractor.network.parameters.allSatisfy { $0.requiresGrad })
    }

    @Test func totalVariationAddsSquaredNeighbourDifferences() throws {
        // Rows (1, 2, 4) and (0, 0, 0): horizontal 1 + 4 + 0 + 0, vertical 1 + 4 + 16.
        let x = try Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 4, 0, 0, 0])
        #expect(try totalVariation(x).item() == 26)
        try checkGradients([randomTensor([1, 2, 3, 4], seed: 2)], atol: 1e-3) { try totalVariation($0[0]) }
        #expect(try totalVariation(Tensor.ones([1, 3, 1, 1])).item() == 0)
    }

    @Test func vggBuildersUseTorchvisionNames() throws {
        let vgg16 = try VGG.vgg16(includeClassifier: false)
        let convs16 = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        #expect(vgg16.namedParameters.map(\.name) == convs16.flatMap { ["features.\($0).weight", "features.\($0).bias"] })
        #expect(vgg16.namedParameters.map(\.parameter.shape).prefix(4) == [[64, 3, 3, 3], [64], [64, 64, 3, 3], [64]])
        #expect(vgg16.parameterCount == 14_714_688)  // torchvision's vgg16().features
        let vgg19 = try VGG.vgg19(includeClassifier: false)
        let convs19 = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
        #expect(vgg19.namedParameters.map(\.name) == convs19.flatMap { ["features.\($0).weight", "features.\($0).bias"] })
        #expect(vgg19.parameterCount == 20_024_384)
        let features = try noGrad { try vgg16.features(Tensor.zeros([1, 3, 32, 32])) }
        #expect(features.shape == [1, 512, 1, 1])
        #expect(throws: NeuronError.self) { try vgg16(Tensor.zeros([1, 3, 32, 32])) }
        // The extractors read the layers Gatys et al. used.
        let gatys = try StyleFeatureExtractor.vgg19(vgg19)
        #expect(gatys.styleLayers == [1, 6, 11, 20, 29] && gatys.contentLayer == 22)
        #expect(gatys.styleLayers.allSatisfy { vgg19.features.layers[$0] is ReLU })
        let sixteen = try StyleFeatureExtractor.vgg16(vgg16)
        #expect((sixteen.styleLayers + [sixteen.contentLayer]).allSatisfy { vgg16.features.layers[$0] is ReLU })
    }

    @Test func vggClassifierNames() throws {
        // torchvision's layout on a narrow network (the real classifier has 124M parameters): two blocks,
        // then the 7x7 average pool and the classifier at indices 0, 3 and 6.
        let vgg = try VGGNetwork(configuration: [8, nil, 16, nil], classes: 10, includeClassifier: true, hidden: 12)
        #expect(vgg.namedParameters.map(\.name) == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                                                     "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
                                                     "classifier.6.weight", "classifier.6.bias"])
        #expect(vgg.namedParameters.map(\.parameter.shape).suffix(6) == [[12, 16 * 49], [12], [12, 12], [12], [10, 12], [10]])
        vgg.eval()
        #expect(try noGrad { try vgg(Tensor.zeros([2, 3, 20, 20])) }.shape == [2, 10])
    }

    @Test func badInputThrows() throws {
        let extractor = try StyleFeatureExtractor.randomFilters()
        let rgb = randomTensor([1, 3, 16, 16], seed: 3, low: 0, high: 1)
        var transfer = StyleTransfer()
        transfer.steps = 1
        // Images that are not grey or RGB: a two-channel content image, a batch of two.
        #expect(throws: NeuronError.self) { try transfer.run(content: randomTensor([1, 2, 16, 16], seed: 4), style: rgb, extractor: extractor) }
        #expect(throws: NeuronError.self) { try transfer.run(content: rgb, style: randomTensor([2, 3, 16, 16], seed: 4), extractor: extractor) }
        #expect(throws: NeuronError.self) { try transfer.run(content: rgb, style: randomTensor([4, 16, 16], seed: 4), extractor: extractor) }
        transfer.styleWeight = -1
        #expect(throws: NeuronError.self) { try transfer.run(content: rgb, style: rgb, extractor: extractor) }
        // An unreadable file and a file that is not a PNG name themselves.
        let missing = temporaryURL("missing.png")
        #expect(throws: NeuronError.self) { try StyleDemo.run(contentURL: missing, log: { _ in }) }
        let text = temporaryURL("not.png")
        try Data("not a png".utf8).write(to: text)
        defer { try? FileManager.default.removeItem(at: text) }
        do {
            _ = try StyleDemo.run(styleURL: text, log: { _ in })
            Issue.record("a text file was accepted as a style image")
        } catch let NeuronError.io(message) {
            #expect(message.contains(text.path))
        }
        #expect(throws: NeuronError.self) {
            try StyleFeatureExtractor(network: extractor.network, contentLayer: 99, styleLayers: [1], styleWeights: [1])
        }
        #expect(throws: NeuronError.self) {
            try StyleFeatureExtractor(network: extractor.network, contentLayer: 1, styleLayers: [1, 4], styleWeights: [1])
        }
    }
}
