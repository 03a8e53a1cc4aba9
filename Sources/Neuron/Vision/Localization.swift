import Foundation

/// Single-object localisation: an image holds at most one object, described by the target vector
/// y = [pc, bx, by, bh, bw, c1, ..., cn] (note: height before width), one row per image.
///
/// pc is 1 when there is an object and 0 otherwise; (bx, by) is the object's centre and (bh, bw) its
/// height and width, all image-relative ((0, 0) top-left, (1, 1) bottom-right); c1...cn is the one-hot
/// class. When pc = 0 the other components are "don't care": they are written as 0 and no loss looks at
/// them. A network predicting this has `vectorLength` outputs per image in the same order.
public struct ObjectLocalization: Sendable {
    /// The number of classes n.
    public let classes: Int

    /// - Throws: `NeuronError.invalidArgument` for fewer than 1 class.
    public init(classes: Int) throws {
        guard classes >= 1 else { throw NeuronError.invalidArgument("ObjectLocalization needs at least 1 class, got \(classes)") }
        self.classes = classes
    }

    /// 5 + classes.
    public var vectorLength: Int { 5 + classes }

    /// Targets [N, 5 + classes] for N images, each with one object or none (`nil`).
    /// - Throws: `NeuronError.invalidArgument` for a label outside 0..<classes or a non-finite box.
    public func targets(_ objects: [LabeledBox<CenterSize, ImageRelative>?]) throws -> Tensor {
        var values = [Float](repeating: 0, count: objects.count * vectorLength)
        for (i, object) in objects.enumerated() {
            guard let object else { continue }
            guard (0..<classes).contains(object.label) else {
                throw NeuronError.invalidArgument("localisation target \(i): label \(object.label) is outside 0..<\(classes)")
            }
            let b = object.box
            guard (0..<4).allSatisfy({ b.values[$0].isFinite }) else {
                throw NeuronError.invalidArgument("localisation target \(i): box \(b) is not finite")
            }
            let row = i * vectorLength
            values[row] = 1
            values[row + 1] = b.cx
            values[row + 2] = b.cy
            values[row + 3] = b.height
            values[row + 4] = b.width
            values[row + 5 + object.label] = 1
        }
        return try Tensor(shape: [objects.count, vectorLength], scalars: values)
    }

    /// The localisation loss of predictions [N, 5 + classes] against `targets` of the same shape,
    /// averaged (or summed, or per image) over the images. See `LocalizationLoss` for the two variants.
    /// - Throws: `NeuronError.shapeMismatch` for other shapes; `NeuronError.invalidArgument` when a
    ///   target's pc is not 0 or 1.
    public func loss(_ predictions: Tensor, _ targets: Tensor, _ kind: LocalizationLoss = .logistic,
                     reduction: Reduction = .mean) throws -> Tensor {
        try detectionLoss("localization_loss", predictions, targets,
                          params: localizationParams(kind, coords: 4, classes: classes), reduction: reduction)
    }

    /// The object each row of predictions [N, 5 + classes] describes, with score = P(object) × P(class)
    /// for its most likely class. Under `.logistic` the pc and class outputs are logits (sigmoid, softmax);
    /// under `.squaredError` they are read as probabilities as they are.
    /// - Throws: `NeuronError.shapeMismatch` unless predictions are [N, 5 + classes].
    public func objects(in predictions: Tensor, _ kind: LocalizationLoss = .logistic) throws -> [Detection<CenterSize, ImageRelative>] {
        guard predictions.rank == 2, predictions.shape[1] == vectorLength else {
            throw NeuronError.shapeMismatch("localisation predictions must be [N, \(vectorLength)], got \(shapeString(predictions.shape))")
        }
        let v = predictions.scalars, width = vectorLength
        return (0..<predictions.shape[0]).map { i in
            let row = Array(v[(i * width)..<((i + 1) * width)])
            let presence = kind == .logistic ? sigmoid(row[0]) : row[0]
            let scores = Array(row[5...])
            let probabilities = kind == .logistic ? softmax(scores) : scores
            let label = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            let box = Box<CenterSize, ImageRelative>(cx: row[1], cy: row[2], width: row[4], height: row[3])
            return Detection(box, label: label, score: presence * probabilities[label])
        }
    }
}

/// Landmark regression with the localisation machinery: the target vector is
/// y = [pc, l1x, l1y, ..., lkx, lky] for k image-relative points (pc = 1 when the landmarks are present),
/// and the loss is the same masked loss with 2k coordinates and no classes.
public struct LandmarkLocalization: Sendable {
    /// The number of points k.
    public let points: Int

    /// - Throws: `NeuronError.invalidArgument` for fewer than 1 point.
    public init(points: Int) throws {
        guard points >= 1 else { throw NeuronError.invalidArgument("LandmarkLocalization needs at least 1 point, got \(points)") }
        self.points = points
    }

    /// 1 + 2 points.
    public var vectorLength: Int { 1 + 2 * points }

    /// Targets [N, 1 + 2k]: for each image its k points (x, y), image-relative, or `nil` when absent.
    /// - Throws: `NeuronError.invalidArgument` when an image has other than k points or a non-finite one.
    public func targets(_ landmarks: [[SIMD2<Float>]?]) throws -> Tensor {
        var values = [Float](repeating: 0, count: landmarks.count * vectorLength)
        for (i, set) in landmarks.enumerated() {
            guard let set else { continue }
            guard set.count == points, set.allSatisfy({ $0.x.isFinite && $0.y.isFinite }) else {
                throw NeuronError.invalidArgument("landmark target \(i): needs \(points) finite points, got \(set)")
            }
            values[i * vectorLength] = 1
            for (k, point) in set.enumerated() {
                values[i * vectorLength + 1 + 2 * k] = point.x
                values[i * vectorLength + 2 + 2 * k] = point.y
            }
        }
        return try Tensor(shape: [landmarks.count, vectorLength], scalars: values)
    }

    /// The landmark loss of predictions [N, 1 + 2k] against targets of the same shape: pc by squared
    /// error or logistic loss (`kind`), the points by squared error when pc = 1.
    public func loss(_ predictions: Tensor, _ targets: Tensor, _ kind: LocalizationLoss = .logistic,
                     reduction: Reduction = .mean) throws -> Tensor {
        try detectionLoss("landmark_loss", predictions, targets,
                          params: localizationParams(kind, coords: 2 * points, classes: 0), reduction: reduction)
    }

    /// Each row's presence probability (a sigmoid of pc under `.logistic`) and its k points.
    public func landmarks(in predictions: Tensor, _ kind: LocalizationLoss = .logistic) throws -> [(presence: Float, points: [SIMD2<Float>])] {
        guard predictions.rank == 2, predictions.shape[1] == vectorLength else {
            throw NeuronError.shapeMismatch("landmark predictions must be [N, \(vectorLength)], got \(shapeString(predictions.shape))")
        }
        let v = predictions.scalars, width = vectorLength
        return (0..<predictions.shape[0]).map { i in
            let presence = kind == .logistic ? sigmoid(v[i * width]) : v[i * width]
            return (presence, (0..<points).map { SIMD2(v[i * width + 1 + 2 * $0], v[i * width + 2 + 2 * $0]) })
        }
    }
}

/// Softmax of a few scores (decoding, not a hot path).
func softmax(_ z: [Float]) -> [Float] {
    guard let m = z.max() else { return [] }
    let e = z.map { Foundation.exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}
