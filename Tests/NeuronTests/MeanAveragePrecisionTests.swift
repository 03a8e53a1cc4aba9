import Testing
@testable import Neuron

/// Average precision and mAP against cases computed by hand.
@Suite struct MeanAveragePrecisionTests {
    typealias Truth = LabeledBox<Corners, Pixels>
    typealias Found = Detection<Corners, Pixels>

    func box(_ x1: Float, _ y1: Float, _ x2: Float, _ y2: Float) -> Box<Corners, Pixels> { Box(x1: x1, y1: y1, x2: x2, y2: y2) }

    /// Two images, three objects of class 0. Ranked: TP (A), FP (nothing there), TP (B at IoU 81/119),
    /// TP (C), FP (duplicate of A). Recall 1/3, 1/3, 2/3, 1, 1; precision 1, 1/2, 2/3, 3/4, 3/5;
    /// envelope 1, 3/4, 3/4, 3/4, 3/5.
    var truth: [[Truth]] { [[Truth(box(0, 0, 10, 10), label: 0), Truth(box(20, 20, 30, 30), label: 0)], [Truth(box(0, 0, 10, 10), label: 0)]] }
    var found: [[Found]] {
        [[Found(box(0, 0, 10, 10), label: 0, score: 0.9), Found(box(21, 21, 31, 31), label: 0, score: 0.7),
          Found(box(0, 0, 10, 10), label: 0, score: 0.5)],
         [Found(box(50, 50, 60, 60), label: 0, score: 0.8), Found(box(0, 0, 10, 10), label: 0, score: 0.6)]]
    }

    @Test func handComputedCurve() throws {
        // VOC all-point: 1/3 · 1 + 1/3 · 3/4 + 1/3 · 3/4.
        let voc = try meanAveragePrecision(detections: found, groundTruth: truth, classes: 1, interpolation: .vocAllPoints)
        #expect(abs(voc.value - (1.0 / 3 + 0.25 + 0.25)) < 1e-12)
        // COCO 101-point: recalls 0...0.33 (34 points) at 1, 0.34...0.66 (33) and 0.67...1 (34) at 3/4.
        let coco = try meanAveragePrecision(detections: found, groundTruth: truth, classes: 1)
        #expect(abs(coco.value - (34 + 0.75 * 67) / 101) < 1e-12)
        #expect(coco.perClass.count == 1)
        // At IoU 0.7 the 81/119 match is a false positive: TP, FP, FP, TP, FP over 3 objects.
        // VOC: recall 1/3 at precision 1, 2/3 at 1/2 (envelope 1/2): 1/3 + 1/3 · 1/2.
        let strict = try meanAveragePrecision(detections: found, groundTruth: truth, classes: 1, iouThreshold: 0.7, interpolation: .vocAllPoints)
        #expect(abs(strict.value - (1.0 / 3 + 1.0 / 6)) < 1e-12)
    }

    @Test func perfectAndEmptyClasses() throws {
        // Class 0 found perfectly, class 1 has objects but no detections, class 2 has neither (not counted).
        let truth: [[Truth]] = [[Truth(box(0, 0, 5, 5), label: 0), Truth(box(10, 10, 20, 20), label: 1)]]
        let found: [[Found]] = [[Found(box(0, 0, 5, 5), label: 0, score: 0.3), Found(box(40, 40, 50, 50), label: 2, score: 0.9)]]
        for interpolation in [APInterpolation.coco101, .vocAllPoints] {
            let map = try meanAveragePrecision(detections: found, groundTruth: truth, classes: 3, interpolation: interpolation)
            #expect(map.perClass == [1, 0, nil])
            #expect(map.value == 0.5)
        }
    }

    @Test func averagedOverIoUThresholds() throws {
        // One object found at IoU 0.77: a hit at 0.5 ... 0.75 (6 thresholds), a miss at 0.8 ... 0.95.
        let truth: [[Truth]] = [[Truth(box(0, 0, 10, 10), label: 0)]]
        let found: [[Found]] = [[Found(box(0, 0, 10, 7.7), label: 0, score: 1)]]
        let value = try meanAveragePrecisionOverIoUs(detections: found, groundTruth: truth, classes: 1)
        #expect(abs(value - 0.6) < 1e-12)
        // A lower-scored duplicate does not lower AP once every object is found first.
        let duplicate: [[Found]] = [[found[0][0], Found(box(0, 0, 10, 10), label: 0, score: 0.5)]]
        #expect(try meanAveragePrecision(detections: duplicate, groundTruth: truth, classes: 1).value == 1)
        // A higher-scored false positive halves precision at full recall: COCO 101 points all at 1/2.
        let early: [[Found]] = [[Found(box(50, 50, 60, 60), label: 0, score: 2), found[0][0]]]
        #expect(abs(try meanAveragePrecision(detections: early, groundTruth: truth, classes: 1).value - 0.5) < 1e-12)
    }

    @Test func badInputThrows() throws {
        let truth: [[Truth]] = [[Truth(box(0, 0, 10, 10), label: 0)]]
        let found: [[Found]] = [[Found(box(0, 0, 10, 10), label: 0, score: 1)]]
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: found + found, groundTruth: truth, classes: 1) }
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: found, groundTruth: truth, classes: 1, iouThreshold: 1.5) }
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: found, groundTruth: truth, classes: 1, iouThreshold: -1) }
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: [[Found(box(0, 0, 1, 1), label: 1, score: 1)]], groundTruth: truth, classes: 1) }
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: [[Found(box(0, 0, 1, 1), label: 0, score: .nan)]], groundTruth: truth, classes: 1) }
        #expect(throws: NeuronError.self) { try meanAveragePrecision(detections: found, groundTruth: [[]], classes: 1) }
    }
}
