import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

@Suite struct ShapesDataTests {
    @Test func sameSeedSameImagesDifferentSeedDifferentImages() throws {
        var a = RandomGenerator(seed: 7), b = RandomGenerator(seed: 7), c = RandomGenerator(seed: 8)
        let first = try SyntheticData.shapes(count: 40, using: &a)
        let second = try SyntheticData.shapes(count: 40, using: &b)
        let other = try SyntheticData.shapes(count: 40, using: &c)
        #expect(first.images.scalars == second.images.scalars)
        #expect(first.labels == second.labels)
        #expect(a == b)
        #expect(first.images.scalars != other.images.scalars)
        // The generator moves on, so the next draw differs from the first.
        let next = try SyntheticData.shapes(count: 40, using: &a)
        #expect(next.images.scalars != first.images.scalars)
    }

    @Test func shapeRangeAndBalancedClasses() throws {
        var generator = RandomGenerator(seed: 1)
        let (images, labels) = try SyntheticData.shapes(count: 402, noise: 0.3, using: &generator)
        #expect(images.shape == [402, 1, 28, 28])
        #expect(labels.count == 402)
        let values = images.scalars
        #expect(values.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Noise 0.3 pushes some pixels past both ends, so the clamp is exercised.
        #expect(values.contains(0) && values.contains(1))
        let counts = (0..<4).map { c in labels.count(where: { $0 == c }) }
        #expect(counts == [101, 101, 100, 100])
        #expect(SyntheticData.shapeClassNames == ["circle", "square", "triangle", "cross"])

        var small = RandomGenerator(seed: 2)
        let (sixteen, _) = try SyntheticData.shapes(count: 8, size: 16, noise: 0, using: &small)
        #expect(sixteen.shape == [8, 1, 16, 16])
    }

    /// Without noise each image is its shape on a flat background: the background is the darkest value
    /// and the ink covers a plausible share of the image, more for filled shapes than for outlines.
    @Test func noiselessImagesHoldOneVisibleShape() throws {
        var generator = RandomGenerator(seed: 3)
        let (images, labels) = try SyntheticData.shapes(count: 200, noise: 0, using: &generator)
        let pixels = 28 * 28
        let values = images.scalars
        for i in 0..<200 {
            let image = Array(values[(i * pixels)..<((i + 1) * pixels)])
            let low = image.min()!, high = image.max()!
            #expect(high - low >= 0.4, "image \(i) (\(SyntheticData.shapeClassNames[labels[i]])) has too little contrast")
            let inked = image.count(where: { $0 > low + 0.5 * (high - low) })
            #expect(inked >= 20 && inked <= pixels / 2, "image \(i) has \(inked) inked pixels")
            // The shape stays inside: the border rows and columns are all background.
            var border: [Float] = []
            for k in 0..<28 { border += [image[k], image[27 * 28 + k], image[k * 28], image[k * 28 + 27]] }
            #expect(border.allSatisfy { $0 == low }, "image \(i) touches the border")
        }
    }

    @Test func badArgumentsThrow() throws {
        var generator = RandomGenerator(seed: 5)
        #expect(throws: NeuronError.invalidArgument("shapes needs at least 1 image, got 0")) {
            try SyntheticData.shapes(count: 0, using: &generator)
        }
        #expect(throws: NeuronError.invalidArgument("shapes needs images of at least 12 x 12 pixels to tell the shapes apart, got 8")) {
            try SyntheticData.shapes(count: 4, size: 8, using: &generator)
        }
        #expect(throws: NeuronError.invalidArgument("shapes: noise must be a finite standard deviation >= 0, got -0.1")) {
            try SyntheticData.shapes(count: 4, noise: -0.1, using: &generator)
        }
        #expect(throws: NeuronError.self) { try SyntheticData.shapes(count: 4, noise: .nan, using: &generator) }
    }
}

@Suite(.serialized) struct ShapesDemoTests {
    /// A quick setting (2000 images, 5 epochs, a few seconds in a release build): seeds 7-10 reached
    /// 73-80 % held-out accuracy (chance is 25 %); the full setting's >= 97 % is checked by `make demo`.
    @Test func quickRunLearnsAndRoundTripsThroughSafetensors() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-shapes-test-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        var lines: [String] = []
        let result = try ShapesDemo.run(trainCount: 2000, testCount: 400, epochs: 5, seed: 7, modelURL: url,
                                        progress: .silent) { lines.append($0) }
        #expect(result.testAccuracy >= 0.6)
        #expect(result.epochs == 5)
        #expect(result.history.epochs.count == 5)
        #expect(result.modelURL == url)
        #expect(result.confusionMatrix.total == 400)
        #expect(result.confusionMatrix.accuracy == result.testAccuracy)
        #expect(lines.contains { $0.contains(url.path) })

        // Independently of the demo's own check: a fresh model loaded strictly from the file predicts
        // the test images exactly as the trained model scored them.
        var generator = RandomGenerator(seed: 7)
        _ = try SyntheticData.shapes(count: 2000, noise: 0.1, using: &generator)
        let (testX, testY) = try SyntheticData.shapes(count: 400, noise: 0.1, using: &generator)
        let reloaded = try ShapesDemo.makeModel()
        let report = try reloaded.load(from: url)
        #expect(report.isComplete)
        let predictions = try ShapesDemo.predict(reloaded, testX, batchSize: 64)
        let matrix = try ConfusionMatrix(predictions: predictions, labels: testY, classes: 4)
        #expect(matrix == result.confusionMatrix)
        #expect(try accuracy(predictions: predictions, labels: testY) == result.testAccuracy)
    }

    @Test func badArgumentsThrow() throws {
        #expect(throws: NeuronError.invalidArgument("ShapesDemo needs at least 4 training and 4 test images (one per class), got 3 and 100")) {
            try ShapesDemo.run(trainCount: 3, testCount: 100, progress: .silent) { _ in }
        }
        #expect(throws: NeuronError.invalidArgument("ShapesDemo needs at least 1 epoch, got 0")) {
            try ShapesDemo.run(trainCount: 100, testCount: 100, epochs: 0, progress: .silent) { _ in }
        }
        let missingDirectory = URL(fileURLWithPath: "/nonexistent-neuron-dir/model.safetensors")
        #expect(throws: NeuronError.self) {
            try ShapesDemo.run(trainCount: 8, testCount: 8, epochs: 1, modelURL: missingDirectory, progress: .silent) { _ in }
        }
    }
}
