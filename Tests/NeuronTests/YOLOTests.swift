import Foundation
import Testing
@testable import Neuron

/// YOLO grids: assignment to cells and anchors, encode-then-decode, the loss against an independent
/// formula and finite differences, post-processing, k-means anchors and bad input.
@Suite struct YOLOTests {
    /// 64 x 96 image (rows x columns), 4 x 6 grid of 16-pixel cells, two anchors, three classes.
    let grid = try! YOLOGrid(imageSize: Size2D(64, 96), grid: Size2D(4, 6), anchors: [SIMD2(12, 12), SIMD2(30, 20)], classes: 3)

    func object(_ x1: Float, _ y1: Float, _ x2: Float, _ y2: Float, _ label: Int) -> LabeledBox<Corners, Pixels> {
        LabeledBox(Box(x1: x1, y1: y1, x2: x2, y2: y2), label: label)
    }

    @Test func assignsCellAndAnchor() throws {
        // Centre (40, 24): column 2, row 1. 10 x 10 fits the 12 x 12 anchor best.
        let t = try grid.encode([[object(35, 19, 45, 29, 1)]])
        #expect(t.shape == [1, 4, 6, 2, 8])
        #expect(Array(t.scalars.enumerated().filter { $0.element != 0 }.map(\.offset)).allSatisfy { ($0 / 16) == 1 * 6 + 2 })
        let slot = ((1 * 6 + 2) * 2 + 0) * 8
        let v = Array(t.scalars[slot..<(slot + 8)])
        #expect(v[0] == 1 && abs(v[1] - 0.5) < 1e-6 && v[2] == 0.5 && v[6] == 1 && v[5] == 0 && v[7] == 0)
        #expect(abs(v[3] - Foundation.log(Float(10) / 12)) < 1e-6 && abs(v[4] - Foundation.log(Float(10) / 12)) < 1e-6)
        // A second object in the same cell wanting the same anchor takes the other one.
        let two = try grid.encode([[object(35, 19, 45, 29, 1), object(36, 20, 44, 28, 2)]])
        let other = ((1 * 6 + 2) * 2 + 1) * 8
        #expect(two.scalars[other] == 1 && two.scalars[other + 7] == 1)
        // A third has nowhere to go and is dropped.
        let three = try grid.encode([[object(35, 19, 45, 29, 1), object(36, 20, 44, 28, 2), object(37, 20, 43, 28, 0)]])
        #expect(three.scalars.filter { $0 == 1 }.count == two.scalars.filter { $0 == 1 }.count)
    }

    @Test(arguments: [AnchorSizeEncoding.logRatio, .ratio])
    func encodeThenDecodeReproducesBoxes(_ encoding: AnchorSizeEncoding) throws {
        let g = try YOLOGrid(imageSize: Size2D(64, 96), grid: Size2D(4, 6), anchors: grid.anchors, classes: 3, sizeEncoding: encoding)
        var generator = RandomGenerator(seed: 3)
        // One object per cell at most, in random cells, with random sizes and labels; an object centred
        // exactly on the image's far corner goes to the last cell.
        let images: [[LabeledBox<Corners, Pixels>]] = (0..<3).map { _ in
            var used = Set<Int>()
            return (0..<8).compactMap { _ in
                let cell = Int(generator.next() % 24)
                guard used.insert(cell).inserted else { return nil }
                let cx = (Float(cell % 6) + generator.nextUniform()) * 16, cy = (Float(cell / 6) + generator.nextUniform()) * 16
                let w = 2 + 60 * generator.nextUniform(), h = 2 + 40 * generator.nextUniform()
                return object(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, Int(generator.next() % 3))
            }
        } + [[object(90, 60, 102, 68, 2)]]
        let decoded = try g.decode(targets: try g.encode(images))
        for (want, got) in zip(images, decoded) {
            #expect(want.count == got.count)
            // Slot order is row-major over cells; compare as sets matched by label and nearest box.
            for w in want {
                let match = got.first { $0.label == w.label && abs($0.box.x1 - w.box.x1) <= 1e-5 * 96 }
                let m = try #require(match, "no decoded box for \(w)")
                let wantRelative = w.box.relative(to: g.imageSize).values, gotRelative = m.box.relative(to: g.imageSize).values
                #expect((0..<4).allSatisfy { abs(wantRelative[$0] - gotRelative[$0]) <= 1e-5 }, "\(w.box) decoded as \(m.box)")
            }
        }
    }

    @Test func lossMatchesTheFormula() throws {
        let targets = try grid.encode([[object(35, 19, 45, 29, 1), object(0, 0, 40, 30, 0)], [object(60, 40, 90, 60, 2)]])
        let output = randomTensor([2, 16, 4, 6], seed: 11, low: -2, high: 2)
        let loss = try grid.loss(output, targets).item()
        // Independent reference over the raw channels: channel a*8 + k of cell (i, j).
        let o = output.scalars, t = targets.scalars
        func value(_ n: Int, _ a: Int, _ k: Int, _ i: Int, _ j: Int) -> Float { o[((n * 16 + a * 8 + k) * 4 + i) * 6 + j] }
        func bce(_ z: Float, _ y: Float) -> Double { Double(max(z, 0) - z * y + Foundation.log(1 + Foundation.exp(-abs(z)))) }
        var sum = 0.0
        for n in 0..<2 { for i in 0..<4 { for j in 0..<6 { for a in 0..<2 {
            let slot = (((n * 4 + i) * 6 + j) * 2 + a) * 8
            let pc = t[slot]
            sum += (pc == 1 ? 1 : 0.5) * bce(value(n, a, 0, i, j), pc)
            guard pc == 1 else { continue }
            let s = { (z: Float) in 1 / (1 + Foundation.exp(-z)) }
            let coords = [s(value(n, a, 1, i, j)), s(value(n, a, 2, i, j)), value(n, a, 3, i, j), value(n, a, 4, i, j)]
            sum += 5 * (0..<4).reduce(0.0) { $0 + Double((coords[$1] - t[slot + 1 + $1]) * (coords[$1] - t[slot + 1 + $1])) }
            let logits = (0..<3).map { Double(value(n, a, 5 + $0, i, j)) }
            let lse = Foundation.log(logits.map { Foundation.exp($0) }.reduce(0, +))
            sum -= (0..<3).reduce(0.0) { $0 + Double(t[slot + 5 + $1]) * (logits[$1] - lse) }
        } } } }
        #expect(abs(Double(loss) - sum / 2) <= 1e-5 * abs(sum / 2))
    }

    @Test func lossGradientPassesFiniteDifferences() throws {
        let targets = try grid.encode([[object(35, 19, 45, 29, 1), object(0, 0, 40, 30, 0)], [object(60, 40, 90, 60, 2)]])
        try checkGradients([randomTensor([2, 16, 4, 6], seed: 12, low: -2, high: 2)]) { try grid.loss($0[0], targets) }
        let weights = YOLOLossWeights(coordinates: 2, object: 3, noObject: 0.25, classes: 0.5)
        try checkGradients([randomTensor([2, 16, 4, 6], seed: 13, low: -2, high: 2)]) { try grid.loss($0[0], targets, weights: weights) }
    }

    /// Raw network output that predicts `targets` with confidence: logits ±10 for pc and the classes,
    /// the inverse sigmoid of the cell offsets, the sizes as they are.
    func confidentOutput(_ targets: Tensor) throws -> Tensor {
        let t = targets.scalars, n = targets.shape[0]
        var out = [Float](repeating: 0, count: n * 16 * 24)
        for img in 0..<n { for i in 0..<4 { for j in 0..<6 { for a in 0..<2 {
            let slot = (((img * 4 + i) * 6 + j) * 2 + a) * 8
            for k in 0..<8 {
                var v = t[slot + k]
                if k == 0 || k >= 5 { v = v == 1 ? 10 : -10 }
                if k == 1 || k == 2 { v = Foundation.log(max(v, 1e-4) / max(1 - v, 1e-4)) }
                out[((img * 16 + a * 8 + k) * 4 + i) * 6 + j] = v
            }
        } } } }
        return try Tensor(shape: [n, 16, 4, 6], scalars: out)
    }

    @Test func postProcessingRecoversObjects() throws {
        let objects = [[object(35, 19, 45, 29, 1), object(2, 2, 40, 30, 0)], []]
        let output = try confidentOutput(try grid.encode(objects))
        let found = try grid.detections(in: output, scoreThreshold: 0.5, iouThreshold: 0.5)
        #expect(found.count == 2 && found[1].isEmpty)
        #expect(found[0].count == 2)
        for w in objects[0] {
            let d = try #require(found[0].first { $0.label == w.label })
            #expect(d.score > 0.99)
            #expect((0..<4).allSatisfy { abs(d.box.values[$0] - w.box.values[$0]) < 0.02 }, "\(d.box) vs \(w.box)")
        }
        // The same object predicted by a second slot (the other anchor) is suppressed by NMS, but kept
        // with an IoU threshold of 1; the cap keeps the best.
        var t = try grid.encode([[object(35, 19, 45, 29, 1)]]).scalars
        let first = ((1 * 6 + 2) * 2 + 0) * 8, second = ((1 * 6 + 2) * 2 + 1) * 8
        for k in 0..<8 { t[second + k] = t[first + k] }
        t[second + 3] -= Foundation.log(Float(20) / 12) - 0.01
        t[second + 4] -= Foundation.log(Float(30) / 12)
        let twice = try confidentOutput(try Tensor(shape: [1, 4, 6, 2, 8], scalars: t))
        #expect(try grid.detections(in: twice, iouThreshold: 0.5)[0].count == 1)
        #expect(try grid.detections(in: twice, iouThreshold: 1)[0].count == 2)
        #expect(try grid.detections(in: twice, iouThreshold: 1, maxDetections: 1)[0].count == 1)
    }

    @Test func kMeansAnchors() throws {
        var generator = RandomGenerator(seed: 5)
        let small = (0..<40).map { _ in SIMD2<Float>(10 + generator.nextUniform(), 10 + generator.nextUniform()) }
        let wide = (0..<40).map { _ in SIMD2<Float>(60 + generator.nextUniform(), 20 + generator.nextUniform()) }
        let tall = (0..<40).map { _ in SIMD2<Float>(15 + generator.nextUniform(), 50 + generator.nextUniform()) }
        let anchors = try YOLOGrid.anchors(clustering: small + wide + tall, count: 3, seed: 1)
        #expect(anchors.count == 3)
        for (got, want) in zip(anchors, [SIMD2<Float>(10.5, 10.5), SIMD2(15.5, 50.5), SIMD2(60.5, 20.5)]) {
            #expect(abs(got.x - want.x) < 0.2 && abs(got.y - want.y) < 0.2, "\(anchors)")
        }
        #expect(try YOLOGrid.anchors(clustering: small + wide + tall, count: 3, seed: 1) == anchors)
        #expect(throws: NeuronError.self) { try YOLOGrid.anchors(clustering: small, count: 0) }
        #expect(throws: NeuronError.self) { try YOLOGrid.anchors(clustering: Array(small.prefix(2)), count: 3) }
        #expect(throws: NeuronError.self) { try YOLOGrid.anchors(clustering: small + [SIMD2(0, 4)], count: 2) }
    }

    @Test func badInputThrows() throws {
        #expect(throws: NeuronError.self) { try YOLOGrid(imageSize: Size2D(64, 64), grid: Size2D(7, 7), anchors: [SIMD2(8, 8)], classes: 2) }
        #expect(throws: NeuronError.self) { try YOLOGrid(imageSize: Size2D(64, 64), grid: Size2D(8, 6), anchors: [SIMD2(8, 8)], classes: 2) }
        #expect(throws: NeuronError.self) { try YOLOGrid(imageSize: Size2D(64, 64), grid: 8, anchors: [], classes: 2) }
        #expect(throws: NeuronError.self) { try YOLOGrid(imageSize: Size2D(64, 64), grid: 8, anchors: [SIMD2(-1, 8)], classes: 2) }
        #expect(throws: NeuronError.self) { try YOLOGrid(imageSize: Size2D(64, 64), grid: 8, anchors: [SIMD2(8, 8)], classes: 0) }
        #expect(throws: NeuronError.self) { try grid.encode([[object(0, 0, 10, 10, 3)]]) }
        #expect(throws: NeuronError.self) { try grid.encode([[object(100, 0, 110, 10, 0)]]) }
        #expect(throws: NeuronError.self) { try grid.encode([[object(5, 5, 5, 10, 0)]]) }
        let output = Tensor.zeros([1, 16, 4, 6])
        #expect(throws: NeuronError.self) { try grid.detections(in: output, scoreThreshold: 1.5) }
        #expect(throws: NeuronError.self) { try grid.detections(in: output, scoreThreshold: -0.1) }
        #expect(throws: NeuronError.self) { try grid.detections(in: output, iouThreshold: 2) }
        #expect(throws: NeuronError.self) { try grid.detections(in: output, maxDetections: -1) }
        #expect(throws: NeuronError.self) { try grid.detections(in: Tensor.zeros([1, 15, 4, 6])) }
        #expect(throws: NeuronError.self) { try grid.loss(output, Tensor.zeros([1, 4, 6, 2, 7])) }
        #expect(throws: NeuronError.self) { try grid.decode(targets: Tensor.zeros([1, 4, 6, 8])) }
    }
}
