import CKernels

// Boxes carry their layout and their units in their type: `Boxes<Corners, Pixels>` holds
// (x1, y1, x2, y2) rows in pixels, `Box<CenterSize, ImageRelative>` one (cx, cy, w, h) box in fractions of
// the image. Reading corners as centre-size, or pixels as fractions, does not compile; converting is
// always a call (`converted(to:)`, `relative(to:)`, `pixels(in:)`).

/// The three ways four numbers describe an axis-aligned box.
public enum BoxLayout: Sendable {
    /// (x1, y1, x2, y2): top-left and bottom-right corners (torchvision's `xyxy`).
    case corners
    /// (cx, cy, w, h): centre, width and height (torchvision's `cxcywh`).
    case centerSize
    /// (x, y, w, h): top-left corner, width and height (torchvision's `xywh`, COCO annotations).
    case topLeftSize

    var kernelFormat: nn_box_format {
        switch self {
        case .corners: return NN_BOX_XYXY
        case .centerSize: return NN_BOX_CXCYWH
        case .topLeftSize: return NN_BOX_XYWH
        }
    }
}

/// A box layout as a type, for `Box` and `Boxes`.
public protocol BoxFormat {
    /// The order of the four numbers.
    static var layout: BoxLayout { get }
}
/// (x1, y1, x2, y2), torchvision's `xyxy`.
public enum Corners: BoxFormat {
    /// `.corners`.
    public static var layout: BoxLayout { .corners }
}
/// (cx, cy, w, h), torchvision's `cxcywh`.
public enum CenterSize: BoxFormat {
    /// `.centerSize`.
    public static var layout: BoxLayout { .centerSize }
}
/// (x, y, w, h) with (x, y) the top-left corner, torchvision's `xywh`.
public enum TopLeftSize: BoxFormat {
    /// `.topLeftSize`.
    public static var layout: BoxLayout { .topLeftSize }
}

/// What a box's numbers are measured in.
public protocol BoxUnits {}
/// Pixels: x along columns, y along rows, (0, 0) the top-left corner of the image.
public enum Pixels: BoxUnits {}
/// Fractions of the image: (0, 0) is its top-left corner and (1, 1) its bottom-right, x scaled by its
/// width and y by its height.
public enum ImageRelative: BoxUnits {}

/// One box: four numbers in `Format`'s order, in `Units`.
public struct Box<Format: BoxFormat, Units: BoxUnits>: Hashable, Sendable, CustomStringConvertible {
    /// The four numbers in the format's order.
    public var values: SIMD4<Float>

    /// A box of the four numbers `values`, in `Format`'s order and in `Units`.
    public init(_ values: SIMD4<Float>) { self.values = values }

    /// The same box in another layout, with torchvision's arithmetic (x1 = cx - 0.5 w, cx = (x1 + x2) / 2).
    public func converted<F: BoxFormat>(to format: F.Type = F.self) -> Box<F, Units> {
        Box<F, Units>(Self.convert(values, from: Format.layout, to: F.layout))
    }

    static func convert(_ v: SIMD4<Float>, from: BoxLayout, to: BoxLayout) -> SIMD4<Float> {
        let c: SIMD4<Float>
        switch from {
        case .corners: c = v
        case .centerSize: c = [v[0] - 0.5 * v[2], v[1] - 0.5 * v[3], v[0] + 0.5 * v[2], v[1] + 0.5 * v[3]]
        case .topLeftSize: c = [v[0], v[1], v[0] + v[2], v[1] + v[3]]
        }
        switch to {
        case .corners: return c
        case .centerSize: return [(c[0] + c[2]) / 2, (c[1] + c[3]) / 2, c[2] - c[0], c[3] - c[1]]
        case .topLeftSize: return [c[0], c[1], c[2] - c[0], c[3] - c[1]]
        }
    }

    /// The four numbers under their names in this layout, e.g. `Box(x1: 0.0, y1: 0.0, x2: 2.0, y2: 1.0)`.
    public var description: String {
        let names: [String]
        switch Format.layout {
        case .corners: names = ["x1", "y1", "x2", "y2"]
        case .centerSize: names = ["cx", "cy", "w", "h"]
        case .topLeftSize: names = ["x", "y", "w", "h"]
        }
        return "Box(" + (0..<4).map { "\(names[$0]): \(values[$0])" }.joined(separator: ", ") + ")"
    }
}

extension Box where Format == Corners {
    /// The box from (x1, y1), its top-left corner, to (x2, y2), its bottom-right corner.
    public init(x1: Float, y1: Float, x2: Float, y2: Float) { self.init([x1, y1, x2, y2]) }
    /// The left edge.
    public var x1: Float { values[0] }
    /// The top edge.
    public var y1: Float { values[1] }
    /// The right edge.
    public var x2: Float { values[2] }
    /// The bottom edge.
    public var y2: Float { values[3] }
}

extension Box where Format == CenterSize {
    /// The box centred on (cx, cy) of `width` × `height`.
    public init(cx: Float, cy: Float, width: Float, height: Float) { self.init([cx, cy, width, height]) }
    /// The centre's x.
    public var cx: Float { values[0] }
    /// The centre's y.
    public var cy: Float { values[1] }
    /// The extent along x.
    public var width: Float { values[2] }
    /// The extent along y.
    public var height: Float { values[3] }
}

extension Box where Format == TopLeftSize {
    /// The box with top-left corner (x, y) of `width` × `height`.
    public init(x: Float, y: Float, width: Float, height: Float) { self.init([x, y, width, height]) }
}

extension Box where Units == Pixels {
    /// The box in fractions of an image of `size` pixels (x divided by its width, y by its height).
    public func relative(to size: Size2D) -> Box<Format, ImageRelative> {
        Box<Format, ImageRelative>(values / SIMD4(Float(size.width), Float(size.height), Float(size.width), Float(size.height)))
    }
}

extension Box where Units == ImageRelative {
    /// The box in pixels of an image of `size`.
    public func pixels(in size: Size2D) -> Box<Format, Pixels> {
        Box<Format, Pixels>(values * SIMD4(Float(size.width), Float(size.height), Float(size.width), Float(size.height)))
    }
}

/// N boxes as an [N, 4] tensor whose rows are in `Format` and `Units`.
public struct Boxes<Format: BoxFormat, Units: BoxUnits>: Equatable {
    /// [N, 4], one box per row.
    public let tensor: Tensor

    /// - Throws: `NeuronError.shapeMismatch` unless `tensor` is [N, 4] (N may be 0).
    public init(_ tensor: Tensor) throws {
        guard tensor.rank == 2, tensor.shape[1] == 4 else {
            throw NeuronError.shapeMismatch("boxes must be [N, 4] (one box of 4 numbers per row), got \(shapeString(tensor.shape))")
        }
        self.tensor = tensor.detached()
    }

    /// The boxes as the rows of an [N, 4] tensor.
    public init(_ boxes: [Box<Format, Units>]) {
        var t = Tensor(uninitializedShape: [boxes.count, 4])
        t.withUnsafeMutableBufferPointer { out in
            for (i, box) in boxes.enumerated() { for k in 0..<4 { out[4 * i + k] = box.values[k] } }
        }
        tensor = t
    }

    /// The number of boxes.
    public var count: Int { tensor.shape[0] }

    /// Row `index` as a `Box`; an index outside 0..<count is a programming error and traps.
    public subscript(index: Int) -> Box<Format, Units> {
        precondition(index >= 0 && index < count, "box \(index) out of range for \(count) boxes")
        return tensor.withUnsafeBufferPointer { Box(SIMD4($0[4 * index], $0[4 * index + 1], $0[4 * index + 2], $0[4 * index + 3])) }
    }

    /// Every box, in order.
    public var boxes: [Box<Format, Units>] { (0..<count).map { self[$0] } }

    /// The boxes at `indices`, in that order (for instance the ones NMS kept).
    public func selecting(_ indices: [Int]) throws -> Boxes {
        try Boxes(try tensor.rows(at: indices))
    }

    /// The same boxes in another layout (torchvision's `box_convert`).
    public func converted<F: BoxFormat>(to format: F.Type = F.self) -> Boxes<F, Units> {
        let out = Tensor(uninitializedShape: tensor.shape)
        nn_box_convert(out.pointer, tensor.pointer, count, Format.layout.kernelFormat, F.layout.kernelFormat)
        return try! Boxes<F, Units>(out)
    }

    /// Rows divided (to fractions) or multiplied (to pixels) by (width, height, width, height) of `size`;
    /// dividing rather than multiplying by reciprocals keeps the bits equal to `Box.relative(to:)`.
    fileprivate func scaled<U: BoxUnits>(by size: Size2D, dividing: Bool) -> Boxes<Format, U> {
        let factors = Tensor([Float(size.width), Float(size.height), Float(size.width), Float(size.height)])
        return try! Boxes<Format, U>(dividing ? try! tensor / factors : try! tensor * factors)
    }
}

extension Boxes where Units == Pixels {
    /// The boxes in fractions of an image of `size` pixels.
    public func relative(to size: Size2D) -> Boxes<Format, ImageRelative> { scaled(by: size, dividing: true) }
}

extension Boxes where Units == ImageRelative {
    /// The boxes in pixels of an image of `size`.
    public func pixels(in size: Size2D) -> Boxes<Format, Pixels> { scaled(by: size, dividing: false) }
}

/// Pairwise IoU: `a` (N boxes) against `b` (M boxes) gives [N, M] (torchvision's `box_iou`).
///
/// IoU = intersection / union with area (x2 - x1)(y2 - y1), computed in torchvision's order, so values
/// on well-formed boxes are bit-identical to it. Degenerate boxes are defined (torchvision leaves them
/// undefined): an inverted axis (x2 < x1) has zero extent, two zero-area boxes have IoU 0 rather than
/// 0/0, and a NaN coordinate makes every IoU of its box NaN. Both sets must have the same layout and
/// units, which their types enforce.
public func boxIoU<F, U>(_ a: Boxes<F, U>, _ b: Boxes<F, U>) -> Tensor { pairwiseIoU(a, b, generalized: false) }

/// Pairwise generalized IoU, IoU − (C − union) / C with C the area of the smallest box enclosing both:
/// [N, M] in [−1, 1] (torchvision's `generalized_box_iou`). An enclosing area of 0 (two zero-area boxes
/// on one line) gives the IoU, 0.
public func generalizedBoxIoU<F, U>(_ a: Boxes<F, U>, _ b: Boxes<F, U>) -> Tensor { pairwiseIoU(a, b, generalized: true) }

private func pairwiseIoU<F, U>(_ a: Boxes<F, U>, _ b: Boxes<F, U>, generalized: Bool) -> Tensor {
    let out = Tensor(uninitializedShape: [a.count, b.count])
    let workspace = TensorStorage(count: nn_box_iou_workspace_size(b.count))
    nn_box_iou(out.pointer, a.tensor.pointer, b.tensor.pointer, a.count, b.count, F.layout.kernelFormat,
               generalized ? 1 : 0, workspace.pointer)
    return out
}

/// Greedy non-maximum suppression (torchvision's `nms`): the indices of the boxes kept, in decreasing
/// score order.
///
/// Boxes are visited from the highest score down; equal scores are visited lowest index first (as
/// torchvision's stable sort does) and NaN scores first (PyTorch's sort order). A visited box is kept
/// unless a kept box overlaps it with IoU strictly greater than `iouThreshold` (an IoU equal to the
/// threshold survives). Only the kept boxes are compared with each candidate, so no N x N matrix is built.
/// - Parameters:
///   - boxes: N boxes.
///   - scores: [N].
///   - iouThreshold: in [0, 1]. A `Double`, as torchvision takes it: IoUs are compared with the exact
///     value, so `0.3` behaves as it does in torchvision (a `Float` 0.3 is slightly larger).
///   - scoreThreshold: when given, only boxes with a score strictly greater take part (NaN scores never).
///   - maxKeep: when given, at most this many indices: the first of what an uncapped call keeps.
/// - Throws: `NeuronError.shapeMismatch` when `scores` is not [N]; `NeuronError.invalidArgument` for a
///   threshold outside [0, 1] or NaN, a NaN score threshold or a negative `maxKeep`.
public func nonMaxSuppression<F, U>(_ boxes: Boxes<F, U>, scores: Tensor, iouThreshold: Double,
                                    scoreThreshold: Float? = nil, maxKeep: Int? = nil) throws -> [Int] {
    try suppress(boxes, scores: scores, labels: nil, iouThreshold: iouThreshold, scoreThreshold: scoreThreshold, maxKeep: maxKeep)
}

/// Non-maximum suppression within each label (torchvision's `batched_nms`): boxes of different labels
/// never suppress each other. The kept indices of all labels come out together in decreasing score order
/// (equal scores lowest index first); `maxKeep` caps that combined list. Other parameters and errors as in
/// `nonMaxSuppression`; `labels` holds one integer per box.
public func batchedNonMaxSuppression<F, U>(_ boxes: Boxes<F, U>, scores: Tensor, labels: some IntegerLabels, iouThreshold: Double,
                                           scoreThreshold: Float? = nil, maxKeep: Int? = nil) throws -> [Int] {
    let labels = try labels.labelValues(op: "batched NMS")
    guard labels.count == boxes.count else {
        throw NeuronError.shapeMismatch("batched NMS: \(labels.count) labels for \(boxes.count) boxes")
    }
    return try suppress(boxes, scores: scores, labels: labels.map(Int64.init), iouThreshold: iouThreshold,
                        scoreThreshold: scoreThreshold, maxKeep: maxKeep)
}

/// Checks that an IoU threshold is a number in [0, 1].
func validateIoUThreshold(_ threshold: Double, _ what: String) throws {
    guard threshold >= 0, threshold <= 1 else {
        throw NeuronError.invalidArgument("\(what): the IoU threshold must be in [0, 1], got \(threshold)")
    }
}

private func suppress<F, U>(_ boxes: Boxes<F, U>, scores: Tensor, labels: [Int64]?, iouThreshold: Double,
                            scoreThreshold: Float?, maxKeep: Int?) throws -> [Int] {
    let n = boxes.count
    guard scores.shape == [n] else {
        throw NeuronError.shapeMismatch("NMS: scores must be [N] for \(n) boxes, got \(shapeString(scores.shape))")
    }
    try validateIoUThreshold(iouThreshold, "NMS")
    if let scoreThreshold, scoreThreshold.isNaN {
        throw NeuronError.invalidArgument("NMS: the score threshold is NaN")
    }
    if let maxKeep, maxKeep < 0 { throw NeuronError.invalidArgument("NMS: maxKeep must not be negative, got \(maxKeep)") }
    guard n > 0 else { return [] }
    var p = nn_nms_params(format: F.layout.kernelFormat, iou_threshold: iouThreshold,
                          use_score_threshold: scoreThreshold == nil ? 0 : 1, score_threshold: scoreThreshold ?? 0,
                          max_keep: maxKeep ?? -1)
    let workspace = TensorStorage(count: nn_nms_workspace_size(n))
    var keep = [Int64](repeating: 0, count: n)
    let kept = keep.withUnsafeMutableBufferPointer { out in
        if let labels {
            return labels.withUnsafeBufferPointer {
                nn_nms(out.baseAddress, boxes.tensor.pointer, scores.pointer, $0.baseAddress, n, &p, workspace.pointer)
            }
        }
        return nn_nms(out.baseAddress, boxes.tensor.pointer, scores.pointer, nil, n, &p, workspace.pointer)
    }
    return keep.prefix(kept).map { Int($0) }
}
