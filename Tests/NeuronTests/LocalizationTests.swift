import Testing
@testable import Neuron

/// Single-object localisation and landmark targets, both loss variants against hand values and the
/// library's element losses, finite-difference gradients, decoding, and bad input.
@Suite struct LocalizationTests {
    let task = try! ObjectLocalization(classes: 3)
    let objects: [LabeledBox<CenterSize, ImageRelative>?] = [
        LabeledBox(Box(cx: 0.5, cy: 0.25, width: 0.2, height: 0.4), label: 2), nil,
        LabeledBox(Box(cx: 0.1, cy: 0.9, width: 0.1, height: 0.05), label: 0),
    ]

    @Test func targetVectorLayout() throws {
        let y = try task.targets(objects)
        #expect(y.shape == [3, 8])
        // [pc, bx, by, bh, bw, c1, c2, c3]: height before width.
        #expect(Array(y.scalars[0..<8]) == [1, 0.5, 0.25, 0.4, 0.2, 0, 0, 1])
        #expect(Array(y.scalars[8..<16]) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(y.scalars[16..<24]) == [1, 0.1, 0.9, 0.05, 0.1, 1, 0, 0])
    }

    @Test func squaredErrorLoss() throws {
        let y = try task.targets(objects)
        let p = randomTensor([3, 8], seed: 5)
        let v = p.scalars, t = y.scalars
        // Row 0 and 2: every component; row 1: only pc.
        var want: [Float] = [0, 0, 0]
        for r in [0, 2] { want[r] = (0..<8).reduce(0) { $0 + (v[8 * r + $1] - t[8 * r + $1]) * (v[8 * r + $1] - t[8 * r + $1]) } }
        want[1] = v[8] * v[8]
        expectClose(try task.loss(p, y, .squaredError, reduction: .none), Tensor(want))
        expectClose(try task.loss(p, y, .squaredError), Tensor((want[0] + want[1] + want[2]) / 3))
    }

    @Test func logisticLossMatchesElementLosses() throws {
        let y = try task.targets(objects)
        let p = randomTensor([3, 8], seed: 6, low: -2, high: 2)
        let rows = try task.loss(p, y, .logistic, reduction: .none).scalars
        let v = p.scalars
        let pc = try binaryCrossEntropyWithLogits(Tensor([v[0], v[8], v[16]]), Tensor([1, 0, 1]), reduction: .none).scalars
        let logits = Tensor([Array(v[5..<8]), Array(v[21..<24])])
        let ce = try crossEntropy(logits, labels: [2, 0], reduction: .none).scalars
        func boxError(_ r: Int) -> Float {
            let t = y.scalars
            return (1...4).reduce(0) { $0 + (v[8 * r + $1] - t[8 * r + $1]) * (v[8 * r + $1] - t[8 * r + $1]) }
        }
        expectClose(Tensor(rows), Tensor([pc[0] + boxError(0) + ce[0], pc[1], pc[2] + boxError(2) + ce[1]]), atol: 1e-5)
    }

    @Test func gradientsPassFiniteDifferences() throws {
        let y = try task.targets(objects)
        for kind in [LocalizationLoss.squaredError, .logistic] {
            try checkGradients([randomTensor([3, 8], seed: 7)]) { try task.loss($0[0], y, kind, reduction: .none) }
            try checkGradients([randomTensor([3, 8], seed: 8)]) { try task.loss($0[0], y, kind, reduction: .sum) }
        }
        let landmarks = try LandmarkLocalization(points: 3)
        let t = try landmarks.targets([[SIMD2(0.1, 0.2), SIMD2(0.3, 0.4), SIMD2(0.5, 0.6)], nil])
        try checkGradients([randomTensor([2, 7], seed: 9)]) { try landmarks.loss($0[0], t, reduction: .none) }
    }

    @Test func decodingReadsTheLayout() throws {
        // A perfect squared-error prediction is its own target.
        let y = try task.targets(objects)
        let found = try task.objects(in: y, .squaredError)
        #expect(found[0] == Detection(objects[0]!.box, label: 2, score: 1))
        #expect(found[1].score == 0)
        #expect(found[2].box == objects[2]!.box && found[2].label == 0)
        // Logits: sigmoid(0) = 0.5 presence and a uniform softmax over 3 classes.
        let logits = try Tensor(shape: [1, 8], scalars: [0, 0.5, 0.5, 0.2, 0.1, 0, 0, 0])
        let object = try task.objects(in: logits)[0]
        #expect(abs(object.score - 0.5 / 3) < 1e-6 && object.label == 0)
        #expect(object.box == Box(cx: 0.5, cy: 0.5, width: 0.1, height: 0.2))

        let landmarks = try LandmarkLocalization(points: 2)
        let t = try landmarks.targets([[SIMD2(0.1, 0.2), SIMD2(0.3, 0.4)]])
        #expect(t.scalars == [1, 0.1, 0.2, 0.3, 0.4])
        let decoded = try landmarks.landmarks(in: t, .squaredError)[0]
        #expect(decoded.presence == 1 && decoded.points == [SIMD2(0.1, 0.2), SIMD2(0.3, 0.4)])
        // pc = 0: only the presence term; the points cost nothing.
        let absent = try landmarks.targets([nil])
        #expect(try landmarks.loss(t, absent, .squaredError).item() == 1)
    }

    @Test func badInputThrows() throws {
        #expect(throws: NeuronError.self) { try ObjectLocalization(classes: 0) }
        #expect(throws: NeuronError.self) { try LandmarkLocalization(points: 0) }
        #expect(throws: NeuronError.self) { try task.targets([LabeledBox(Box(cx: 0.5, cy: 0.5, width: 0.1, height: 0.1), label: 3)]) }
        #expect(throws: NeuronError.self) { try task.targets([LabeledBox(Box(cx: .nan, cy: 0.5, width: 0.1, height: 0.1), label: 0)]) }
        let y = try task.targets(objects)
        #expect(throws: NeuronError.self) { try task.loss(Tensor.zeros([3, 7]), y) }
        #expect(throws: NeuronError.self) { try task.loss(Tensor.zeros([2, 8]), y) }
        var half = y
        half[1, 0] = 0.5
        #expect(throws: NeuronError.self) { try task.loss(Tensor.zeros([3, 8]), half) }
        #expect(throws: NeuronError.self) { try task.objects(in: Tensor.zeros([3, 9])) }
        #expect(throws: NeuronError.self) { try LandmarkLocalization(points: 2).targets([[SIMD2(0, 0)]]) }
    }
}
