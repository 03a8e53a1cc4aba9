/// How average precision summarises a precision–recall curve.
public enum APInterpolation: Sendable {
    /// COCO (pycocotools): the precision envelope (the best precision at any recall at least as high)
    /// sampled at the 101 recalls 0, 0.01, ..., 1, each at the first point of the curve reaching that
    /// recall (0 past the highest recall), and averaged.
    case coco101
    /// PASCAL VOC 2010 and later: the area under the precision envelope, summed over every point where
    /// recall changes (all-point interpolation).
    case vocAllPoints
}

/// Average precision per class and their mean, at one IoU threshold.
public struct MeanAveragePrecision: Sendable, Equatable {
    /// AP of each class; nil for a class with no ground-truth object (it does not count in the mean).
    public var perClass: [Double?]
    /// The mean of `perClass` over the classes that have ground truth.
    public var value: Double
}

/// Average precision of detections against ground truth, per class and averaged (mAP).
///
/// Matching follows pycocotools for both interpolations: within each image and class, detections are
/// taken in decreasing score order (ties in the given order), and each is matched to the unmatched
/// ground-truth box it overlaps most, if that IoU is at least `iouThreshold`: a true positive; otherwise,
/// a duplicate or a miss, a false positive. Over all images, detections sorted by score (stable) give
/// precision TP / (TP + FP) and recall TP / (ground-truth objects of the class) after each one.
/// A class with ground truth but no detections has AP 0. Every detection given counts (pycocotools
/// keeps the best 100 per image: cap them when decoding, as `YOLOGrid.detections` does).
/// - Parameters:
///   - detections: per image, the detector's boxes with labels and scores.
///   - groundTruth: per image, the true boxes with labels, in the same units as the detections.
///   - classes: labels run over 0..<classes.
///   - iouThreshold: in [0, 1].
///   - interpolation: COCO's 101-point precision envelope (the default) or VOC's all-point area.
/// - Throws: `NeuronError.shapeMismatch` when the two lists cover different numbers of images;
///   `NeuronError.invalidArgument` for a label outside 0..<classes, a NaN score or a threshold outside
///   [0, 1]; `NeuronError.emptyInput` when no image holds a ground-truth object.
public func meanAveragePrecision<U: BoxUnits>(detections: [[Detection<Corners, U>]], groundTruth: [[LabeledBox<Corners, U>]],
                                              classes: Int, iouThreshold: Double = 0.5,
                                              interpolation: APInterpolation = .coco101) throws -> MeanAveragePrecision {
    guard detections.count == groundTruth.count else {
        throw NeuronError.shapeMismatch("mAP: detections for \(detections.count) images but ground truth for \(groundTruth.count)")
    }
    guard classes >= 1 else { throw NeuronError.invalidArgument("mAP needs at least 1 class, got \(classes)") }
    try validateIoUThreshold(iouThreshold, "mAP")
    for image in detections {
        for d in image {
            guard (0..<classes).contains(d.label) else { throw NeuronError.invalidArgument("mAP: detection label \(d.label) is outside 0..<\(classes)") }
            guard !d.score.isNaN else { throw NeuronError.invalidArgument("mAP: a detection has a NaN score") }
        }
    }
    for image in groundTruth {
        for g in image where !(0..<classes).contains(g.label) {
            throw NeuronError.invalidArgument("mAP: ground-truth label \(g.label) is outside 0..<\(classes)")
        }
    }
    var perClass: [Double?] = []
    for c in 0..<classes {
        var outcomes: [(score: Float, truePositive: Bool)] = []
        var objects = 0
        for (found, truth) in zip(detections, groundTruth) {
            let mine = found.filter { $0.label == c }
            let targets = truth.filter { $0.label == c }
            objects += targets.count
            outcomes += matches(mine, targets, iouThreshold: iouThreshold)
        }
        guard objects > 0 else { perClass.append(nil); continue }
        // A stable sort: equal scores keep image order, then in-image order (pycocotools' mergesort).
        let ranked = outcomes.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
        var tp = 0.0, fp = 0.0
        var recall: [Double] = [], precision: [Double] = []
        for outcome in ranked {
            if outcome.truePositive { tp += 1 } else { fp += 1 }
            recall.append(tp / Double(objects))
            precision.append(tp / (tp + fp))
        }
        perClass.append(averagePrecision(recall: recall, precision: precision, interpolation))
    }
    let defined = perClass.compactMap { $0 }
    guard !defined.isEmpty else { throw NeuronError.emptyInput("mAP: no image holds a ground-truth object") }
    return MeanAveragePrecision(perClass: perClass, value: defined.reduce(0, +) / Double(defined.count))
}

/// COCO's headline figure, mAP@[.5:.95]: `meanAveragePrecision` averaged over the IoU thresholds
/// 0.5, 0.55, ..., 0.95.
public func meanAveragePrecisionOverIoUs<U: BoxUnits>(detections: [[Detection<Corners, U>]], groundTruth: [[LabeledBox<Corners, U>]],
                                                      classes: Int, interpolation: APInterpolation = .coco101) throws -> Double {
    let thresholds = (0..<10).map { 0.5 + 0.05 * Double($0) }
    return try thresholds.reduce(0.0) {
        $0 + (try meanAveragePrecision(detections: detections, groundTruth: groundTruth, classes: classes,
                                       iouThreshold: $1, interpolation: interpolation)).value
    } / Double(thresholds.count)
}

/// One image's detections of one class matched greedily to its ground truth of that class.
private func matches<U>(_ detections: [Detection<Corners, U>], _ truth: [LabeledBox<Corners, U>],
                        iouThreshold: Double) -> [(score: Float, truePositive: Bool)] {
    guard !truth.isEmpty else { return detections.map { ($0.score, false) } }
    let order = detections.indices.sorted { (detections[$0].score, -$0) > (detections[$1].score, -$1) }
    let iou = boxIoU(Boxes(order.map { detections[$0].box }), Boxes(truth.map(\.box))).scalars
    var taken = [Bool](repeating: false, count: truth.count)
    return order.indices.map { rank in
        var best: Int?, bestIoU = iouThreshold
        for g in truth.indices where !taken[g] {
            let v = Double(iou[rank * truth.count + g])
            if v >= bestIoU { best = g; bestIoU = v }
        }
        if let best { taken[best] = true }
        return (detections[order[rank]].score, best != nil)
    }
}

/// AP of one precision–recall curve (points in ranking order).
private func averagePrecision(recall: [Double], precision: [Double], _ interpolation: APInterpolation) -> Double {
    switch interpolation {
    case .coco101:
        var envelope = precision
        for i in stride(from: envelope.count - 1, to: 0, by: -1) { envelope[i - 1] = max(envelope[i - 1], envelope[i]) }
        let points = (0...100).map { Double($0) / 100 }
        return points.reduce(0.0) { sum, r in
            guard let i = recall.firstIndex(where: { $0 >= r }) else { return sum }
            return sum + envelope[i]
        } / Double(points.count)
    case .vocAllPoints:
        let r: [Double] = [0] + recall + [1]
        var p: [Double] = [0] + precision + [0]
        for i in stride(from: p.count - 1, to: 0, by: -1) { p[i - 1] = max(p[i - 1], p[i]) }
        var area = 0.0
        for i in 0..<(r.count - 1) where r[i + 1] != r[i] { area += (r[i + 1] - r[i]) * p[i + 1] }
        return area
    }
}
