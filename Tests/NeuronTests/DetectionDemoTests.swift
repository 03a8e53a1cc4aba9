import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// The generated detection scenes, box drawing, and a short run of the detection demo.
@Suite struct DetectionDemoTests {
    @Test func scenesAreDeterministicAndTheirBoxesFit() throws {
        var a = RandomGenerator(seed: 3), b = RandomGenerator(seed: 3), c = RandomGenerator(seed: 4)
        let first = try SyntheticData.detectionScenes(count: 30, using: &a)
        let second = try SyntheticData.detectionScenes(count: 30, using: &b)
        let other = try SyntheticData.detectionScenes(count: 30, using: &c)
        #expect(first.images == second.images && first.objects == second.objects)
        #expect(first.images != other.images)
        #expect(first.images.shape == [30, 1, 64, 64])
        #expect(first.images.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        let all = first.objects.flatMap { $0 }
        #expect(first.objects.allSatisfy { (1...4).contains($0.count) })  // the first object always fits
        #expect(Set(all.map(\.label)) == [0, 1, 2])
        for object in all {
            let b = object.box
            #expect(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= 64 && b.y2 <= 64)
            let width = b.x2 - b.x1, height = b.y2 - b.y1
            #expect(width >= 10 && width <= 24)
            #expect(abs(height - (object.label == 2 ? 0.9 * width : width)) < 1e-4)
        }
        // No two boxes of a scene overlap by more than the limit.
        for scene in first.objects where scene.count > 1 {
            let boxes = Boxes(scene.map(\.box)), iou = boxIoU(boxes, boxes).scalars
            for i in 0..<scene.count { for j in 0..<scene.count where i != j { #expect(iou[i * scene.count + j] <= 0.3) } }
        }
    }

    /// Without noise on a black background, a lone square's pixels are lit exactly inside its box.
    @Test func shapesFillTheirBoxes() throws {
        var g = RandomGenerator(seed: 9)
        let (images, objects) = try SyntheticData.detectionScenes(count: 40, objects: 1...1, noise: 0, using: &g)
        for (i, scene) in objects.enumerated() where scene[0].label == 1 {
            let box = scene[0].box
            let inner = images[i, 0, Int(box.y1) + 1, Int(box.x1) + 1], outer = images[i, 0, 0, 0]
            let outsideX = Int(box.x2) + 1 < 64 ? images[i, 0, Int(box.y1) + 1, Int(box.x2) + 1] : outer
            #expect(inner >= 0.55 && outsideX == outer && outer <= 0.3)
        }
    }

    @Test func badSceneArgumentsThrow() throws {
        var g = RandomGenerator(seed: 1)
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 0, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 1, size: 8, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 1, objectSize: 2...10, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 1, objectSize: 10...80, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 1, maxOverlap: 1.5, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.detectionScenes(count: 1, noise: .nan, using: &g) }
    }

    @Test func drawsOutlines() throws {
        let image = Tensor.zeros([1, 1, 4, 5])
        let drawn = try drawingBoxes([(Box(x1: 1, y1: 1, x2: 4, y2: 3), SIMD3(1, 0.5, 0))], on: image, scale: 2)
        #expect(drawn.shape == [1, 3, 8, 10])
        // Output rows 2...5, columns 2...7: the border is red-orange, the inside and outside stay black.
        #expect(drawn[0, 0, 2, 2] == 1 && drawn[0, 1, 2, 2] == 0.5 && drawn[0, 2, 2, 2] == 0)
        #expect(drawn[0, 0, 5, 7] == 1 && drawn[0, 0, 3, 4] == 0 && drawn[0, 0, 1, 2] == 0 && drawn[0, 0, 6, 2] == 0)
        #expect(throws: NeuronError.self) { try drawingBoxes([], on: Tensor.zeros([1, 2, 4, 4])) }
        #expect(throws: NeuronError.self) { try drawingBoxes([], on: image, scale: 0) }
    }

    /// A few seconds of training: the whole pipeline runs, scores are in range and the PNG is written.
    @Test func shortRunWritesThePNG() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-detect-test-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: url) }
        let result = try DetectionDemo.run(trainCount: 96, testCount: 8, epochs: 1, imageURL: url, progress: .silent, log: { _ in })
        #expect((0...1).contains(result.meanAveragePrecision50) && (0...1).contains(result.meanAveragePrecision))
        #expect(result.epochs == 1 && result.anchors.count == 2)
        let png = try PNG.read(contentsOf: url)
        #expect(png.shape == [1, 3, 512, 1024])
        #expect(throws: NeuronError.self) { try DetectionDemo.run(trainCount: 0, log: { _ in }) }
        #expect(throws: NeuronError.self) { try DetectionDemo.run(epochs: 0, log: { _ in }) }
    }
}
