import Testing
@testable import Neuron

/// Convolutional sliding windows: one pass over a large image equals classifying every crop.
@Suite struct SlidingWindowTests {
    /// Conv(k3) → ReLU → MaxPool(2) → Conv(k3) → ReLU → Flatten → Linear → ReLU → Linear → Softmax on 12 x 12 windows.
    func classifier() throws -> Sequential {
        Random.seed(7)
        return try Sequential {
            try Conv2D(in: 2, out: 4, kernel: 3)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 4, out: 6, kernel: 3)
            ReLU()
            Flatten()
            try Linear(in: 6 * 3 * 3, out: 8)
            ReLU()
            try Linear(in: 8, out: 3)
            Softmax()
        }
    }

    /// The [1, C, h, w] crop of image n at (top, left).
    func crop(_ image: Tensor, _ n: Int, top: Int, left: Int, height: Int, width: Int) throws -> Tensor {
        let c = image.shape[1]
        var values: [Float] = []
        for ch in 0..<c { for y in 0..<height { for x in 0..<width { values.append(image[n, ch, top + y, left + x]) } } }
        return try Tensor(shape: [1, c, height, width], scalars: values)
    }

    @Test func onePassEqualsEveryCrop() throws {
        let model = try classifier()
        let sliding = try SlidingWindowClassifier(model, window: 12, channels: 2)
        #expect(sliding.stride == Size2D(2, 2))
        let images = randomTensor([2, 2, 20, 17], seed: 4)
        let (scores, windows) = try sliding.scores(images)
        // (20 - 12) / 2 + 1 = 5 rows of windows, (17 - 12) / 2 + 1 = 3 columns.
        #expect(scores.shape == [2, 3, 5, 3])
        #expect(windows.count == 15)
        #expect(windows[4] == Box(x1: 2, y1: 2, x2: 14, y2: 14))
        for n in 0..<2 {
            for i in 0..<5 {
                for j in 0..<3 {
                    let window = windows[i * 3 + j]
                    let expected = try model(try crop(images, n, top: Int(window.y1), left: Int(window.x1), height: 12, width: 12))
                    let got = try Tensor(shape: [1, 3], scalars: (0..<3).map { scores[n, $0, i, j] })
                    expectClose(got, expected, atol: 1e-5, rtol: 1e-4, "window (\(i), \(j)) of image \(n)")
                }
            }
        }
        // The converted network shares the classifier's parameters.
        #expect(sliding.network.parameterCount == model.parameterCount)
    }

    @Test func badInputThrows() throws {
        let noFlatten = try Sequential { try Conv2D(in: 1, out: 2, kernel: 3); ReLU() }
        #expect(throws: NeuronError.self) { try SlidingWindowClassifier(noFlatten, window: 8, channels: 1) }
        let unsupported = try Sequential { try Conv2D(in: 1, out: 2, kernel: 3); Flatten(); try Linear(in: 72, out: 4); Flatten() }
        #expect(throws: NeuronError.self) { try SlidingWindowClassifier(unsupported, window: 8, channels: 1) }
        let sliding = try SlidingWindowClassifier(try classifier(), window: 12, channels: 2)
        #expect(throws: NeuronError.self) { try sliding.scores(Tensor.zeros([1, 2, 11, 20])) }
        #expect(throws: NeuronError.self) { try sliding.scores(Tensor.zeros([1, 3, 20, 20])) }
        #expect(throws: NeuronError.self) { try sliding.scores(Tensor.zeros([2, 20, 20])) }
    }
}
