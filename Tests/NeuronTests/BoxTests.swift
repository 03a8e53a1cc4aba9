import Testing
@testable import Neuron

/// Box types, IoU and NMS against torchvision's golden values, conversions, and bad input.
@Suite struct BoxTests {
    @Test func iouMatchesTorchvision() throws {
        let g = try Golden("boxes")
        let a = try Boxes<Corners, Pixels>(try g.float("pairs.boxes1")), b = try Boxes<Corners, Pixels>(try g.float("pairs.boxes2"))
        try g.expectValue(boxIoU(a, b), "pairs.iou")
        try g.expectValue(generalizedBoxIoU(a, b), "pairs.giou")
        // The same pairs in centre-size form give the same matrix.
        try g.expectValue(boxIoU(a.converted(to: CenterSize.self), b.converted(to: CenterSize.self)), "pairs.iou")
    }

    @Test(arguments: ["nms", "nms_ties", "batched_nms"])
    func nmsKeepsTorchvisionsIndices(_ name: String) throws {
        let g = try Golden("boxes")
        let boxes = try Boxes<Corners, Pixels>(try g.float(name + ".boxes"))
        let scores = try g.float(name + ".scores")
        let threshold = Double(try g.float(name + ".iou_threshold").item())
        let keep = name == "batched_nms"
            ? try batchedNonMaxSuppression(boxes, scores: scores, labels: try g.ints(name + ".idxs"), iouThreshold: threshold)
            : try nonMaxSuppression(boxes, scores: scores, iouThreshold: threshold)
        #expect(keep == (try g.ints(name + ".keep")))
        // Centre-size input decides the same; a cap keeps the first of the uncapped list.
        let centre = boxes.converted(to: CenterSize.self)
        let capped = name == "batched_nms"
            ? try batchedNonMaxSuppression(centre, scores: scores, labels: try g.ints(name + ".idxs"), iouThreshold: threshold, maxKeep: 5)
            : try nonMaxSuppression(centre, scores: scores, iouThreshold: threshold, maxKeep: 5)
        #expect(capped == Array(keep.prefix(5)))
    }

    /// The kernels are built per instruction level: each one keeps torchvision's values and indices.
    @Test(arguments: Neuron.supportedCPULevels)
    func goldensHoldAtEveryLevel(_ level: CPULevel) throws {
        try Neuron.withCPULevel(level) {
            try iouMatchesTorchvision()
            for name in ["nms", "nms_ties", "batched_nms"] { try nmsKeepsTorchvisionsIndices(name) }
        }
    }

    @Test func conversionsMatchTorchvision() throws {
        let g = try Golden("boxes")
        let centre = try Boxes<CenterSize, Pixels>(try g.float("convert.cxcywh"))
        try g.expectValue(centre.converted(to: Corners.self).tensor, "convert.cxcywh_to_xyxy")
        let corners = try Boxes<Corners, Pixels>(try g.float("convert.xyxy"))
        try g.expectValue(corners.converted(to: CenterSize.self).tensor, "convert.xyxy_to_cxcywh")
        try g.expectValue(corners.converted(to: TopLeftSize.self).tensor, "convert.xyxy_to_xywh")
        let topLeft = try Boxes<TopLeftSize, Pixels>(try g.float("convert.xywh"))
        try g.expectValue(topLeft.converted(to: Corners.self).tensor, "convert.xywh_to_xyxy")
        // One box at a time agrees with the tensor conversion bit for bit.
        for i in 0..<centre.count {
            #expect(centre[i].converted(to: Corners.self) == centre.converted(to: Corners.self)[i])
            #expect(corners[i].converted(to: CenterSize.self) == corners.converted(to: CenterSize.self)[i])
        }
    }

    @Test func unitsConvertBothWays() throws {
        let image = Size2D(50, 200)  // 50 rows, 200 columns
        let box = Box<Corners, Pixels>(x1: 20, y1: 5, x2: 100, y2: 45)
        let relative = box.relative(to: image)
        #expect(relative == Box<Corners, ImageRelative>([0.1, 0.1, 0.5, 0.9]))
        #expect(relative.pixels(in: image) == box)
        let many = Boxes([box, Box(x1: 0, y1: 0, x2: 200, y2: 50)])
        #expect(many.relative(to: image)[0] == relative)
        #expect(many.relative(to: image)[1] == Box([0, 0, 1, 1]))
        #expect(many.relative(to: image).pixels(in: image) == many)
        let centre = Box<CenterSize, ImageRelative>(cx: 0.5, cy: 0.5, width: 0.5, height: 0.25)
        #expect(centre.pixels(in: image).converted(to: Corners.self) == Box(x1: 50, y1: 18.75, x2: 150, y2: 31.25))
        #expect(box.description == "Box(x1: 20.0, y1: 5.0, x2: 100.0, y2: 45.0)")
    }

    @Test func degenerateBoxesHaveDefinedIoU() throws {
        let a = Boxes<Corners, Pixels>([Box(x1: 0, y1: 0, x2: 2, y2: 2)])
        let odd = Boxes<Corners, Pixels>([Box(x1: 1, y1: 1, x2: 1, y2: 1), Box(x1: 1, y1: 0, x2: -5, y2: 2),
                                          Box(x1: 0, y1: .nan, x2: 2, y2: 2)])
        let iou = boxIoU(a, odd).scalars
        #expect(iou[0] == 0 && iou[1] == 0 && iou[2].isNaN)
        let points = Boxes<Corners, Pixels>([Box(x1: 1, y1: 1, x2: 1, y2: 1)])
        #expect(boxIoU(points, points).scalars == [0])
        #expect(generalizedBoxIoU(points, points).scalars == [0])
        // Empty sets are valid.
        let none = try Boxes<Corners, Pixels>(Tensor.zeros([0, 4]))
        #expect(boxIoU(none, a).shape == [0, 1] && boxIoU(a, none).shape == [1, 0])
        #expect(try nonMaxSuppression(none, scores: Tensor.zeros([0]), iouThreshold: 0.5) == [])
    }

    @Test func nmsOptions() throws {
        let boxes = Boxes<Corners, Pixels>([Box(x1: 0, y1: 0, x2: 2, y2: 1), Box(x1: 0, y1: 0, x2: 1, y2: 1),
                                            Box(x1: 5, y1: 5, x2: 6, y2: 6)])
        let scores = Tensor([0.9, 0.8, 0.3])
        // IoU of the first two is exactly 0.5: it survives a 0.5 threshold.
        #expect(try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5) == [0, 1, 2])
        #expect(try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.49) == [0, 2])
        #expect(try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5, scoreThreshold: 0.3) == [0, 1])
        #expect(try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5, maxKeep: 1) == [0])
        #expect(try batchedNonMaxSuppression(boxes, scores: scores, labels: [1, 2, 1], iouThreshold: 0) == [0, 1, 2])
        #expect(try batchedNonMaxSuppression(boxes, scores: scores, labels: [1, 1, 1], iouThreshold: 0) == [0, 2])
    }

    @Test func badInputThrows() throws {
        #expect(throws: NeuronError.self) { try Boxes<Corners, Pixels>(Tensor.zeros([3, 5])) }
        #expect(throws: NeuronError.self) { try Boxes<Corners, Pixels>(Tensor.zeros([4])) }
        #expect(throws: NeuronError.self) { try Boxes<Corners, Pixels>(Tensor.zeros([2, 2, 4])) }
        let boxes = Boxes<Corners, Pixels>([Box(x1: 0, y1: 0, x2: 1, y2: 1), Box(x1: 0, y1: 0, x2: 2, y2: 2)])
        let scores = Tensor([0.5, 0.4])
        for bad in [-0.1, 1.5, Double.nan] {
            #expect(throws: NeuronError.self) { try nonMaxSuppression(boxes, scores: scores, iouThreshold: bad) }
        }
        #expect(throws: NeuronError.self) { try nonMaxSuppression(boxes, scores: Tensor([0.5]), iouThreshold: 0.5) }
        #expect(throws: NeuronError.self) { try nonMaxSuppression(boxes, scores: Tensor([[0.5, 0.4]]), iouThreshold: 0.5) }
        #expect(throws: NeuronError.self) { try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5, maxKeep: -1) }
        #expect(throws: NeuronError.self) { try nonMaxSuppression(boxes, scores: scores, iouThreshold: 0.5, scoreThreshold: .nan) }
        #expect(throws: NeuronError.self) { try batchedNonMaxSuppression(boxes, scores: scores, labels: [0], iouThreshold: 0.5) }
    }
}
