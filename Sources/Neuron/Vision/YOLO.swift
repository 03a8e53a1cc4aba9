import CKernels
import Foundation

/// How an anchor slot stores a box's height and width relative to its anchor.
public enum AnchorSizeEncoding: Sendable {
    /// th = log(h / anchor height), tw = log(w / anchor width); decoded with exp (YOLOv2/v3).
    case logRatio
    /// th = h / anchor height, tw = w / anchor width; decoded by multiplying.
    case ratio
}

/// The weights of the YOLO loss's terms (YOLOv1's λ_coord = 5 and λ_noobj = 0.5 by default).
public struct YOLOLossWeights: Sendable {
    /// λ_coord, on the box terms (tx, ty, th, tw) of the slots that hold an object.
    public var coordinates: Float
    /// On pc of the slots that hold an object.
    public var object: Float
    /// λ_noobj, on pc of the empty slots.
    public var noObject: Float
    /// On the class scores of the slots that hold an object.
    public var classes: Float

    /// The weights; the defaults are YOLOv1's.
    public init(coordinates: Float = 5, object: Float = 1, noObject: Float = 0.5, classes: Float = 1) {
        self.coordinates = coordinates
        self.object = object
        self.noObject = noObject
        self.classes = classes
    }
}

/// A YOLO-style detection grid: an image of `imageSize` pixels is cut into `grid` cells, each cell has one
/// slot per anchor, and each slot predicts [pc, tx, ty, th, tw, c1, ..., cC].
///
/// Encoding: an object belongs to the cell that holds its centre and, in that cell, to the anchor whose
/// shape (width and height, both centred) has the highest IoU with its own (ties: the lower anchor; when
/// that slot is taken, the next best free one; when all are taken the object is dropped). Its slot holds
/// pc = 1, (tx, ty) = the centre's offset inside the cell in [0, 1), (th, tw) = its height and width
/// relative to the anchor's (`AnchorSizeEncoding`), and the one-hot class; every other slot is all zeros.
///
/// Network output: [N, anchors · (5 + C), gridRows, gridColumns], channel a · (5 + C) + k holding
/// component k of anchor a's slot (the layout of a 1x1 convolution head). pc and the class scores are
/// logits; tx and ty pass through a sigmoid; th and tw are decoded as the encoding says.
public struct YOLOGrid: Sendable {
    /// The image's height and width in pixels.
    public let imageSize: Size2D
    /// Cells per column (rows) and per row (columns).
    public let grid: Size2D
    /// Anchor (width, height) in pixels.
    public let anchors: [SIMD2<Float>]
    /// C, the number of object classes (labels 0..<C).
    public let classes: Int
    /// How th and tw relate a box's size to its anchor's.
    public let sizeEncoding: AnchorSizeEncoding

    /// - Throws: `NeuronError.invalidArgument` when the grid does not divide the image exactly, when
    ///   there are no anchors or an anchor is not a positive finite size, or for fewer than 1 class.
    public init(imageSize: Size2D, grid: Size2D, anchors: [SIMD2<Float>], classes: Int,
                sizeEncoding: AnchorSizeEncoding = .logRatio) throws {
        guard imageSize.height >= 1, imageSize.width >= 1, grid.height >= 1, grid.width >= 1 else {
            throw NeuronError.invalidArgument("YOLOGrid: image \(imageSize) and grid \(grid) must be at least 1 x 1")
        }
        guard imageSize.height % grid.height == 0, imageSize.width % grid.width == 0 else {
            throw NeuronError.invalidArgument("YOLOGrid: a \(grid.height) x \(grid.width) grid does not divide a \(imageSize.height) x \(imageSize.width) image into whole cells")
        }
        guard !anchors.isEmpty, anchors.allSatisfy({ $0.x > 0 && $0.y > 0 && $0.x.isFinite && $0.y.isFinite }) else {
            throw NeuronError.invalidArgument("YOLOGrid: anchors must be one or more positive finite (width, height) sizes, got \(anchors)")
        }
        guard classes >= 1 else { throw NeuronError.invalidArgument("YOLOGrid needs at least 1 class, got \(classes)") }
        self.imageSize = imageSize
        self.grid = grid
        self.anchors = anchors
        self.classes = classes
        self.sizeEncoding = sizeEncoding
    }

    /// 5 + classes values per slot.
    public var slotLength: Int { 5 + classes }
    /// The channels a network's output needs: anchors · (5 + classes).
    public var outputChannels: Int { anchors.count * slotLength }
    /// The shape of encoded targets for `images` images: [images, gridRows, gridColumns, anchors, 5 + classes].
    public func targetShape(images: Int) -> [Int] { [images, grid.height, grid.width, anchors.count, slotLength] }

    private var pixels: SIMD2<Float> { SIMD2(Float(imageSize.width), Float(imageSize.height)) }

    /// The index of the best anchor for a box of `size` pixels among those not `taken`: the highest
    /// IoU of the two shapes centred on each other, ties to the lower index.
    private func bestAnchor(for size: SIMD2<Float>, excluding taken: Set<Int>) -> Int? {
        var best: Int?, bestIoU: Float = -1
        for (a, anchor) in anchors.enumerated() where !taken.contains(a) {
            let inter = min(size.x, anchor.x) * min(size.y, anchor.y)
            let iou = inter / (size.x * size.y + anchor.x * anchor.y - inter)
            if iou > bestIoU { best = a; bestIoU = iou }
        }
        return best
    }

    /// Targets [N, gridRows, gridColumns, anchors, 5 + classes] for the objects of N images.
    /// - Throws: `NeuronError.invalidArgument` for a label outside 0..<classes, a box that is not finite
    ///   or has no area, or a centre outside the image.
    public func encode(_ objects: [[LabeledBox<Corners, Pixels>]]) throws -> Tensor {
        let shape = targetShape(images: objects.count)
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        let cells = SIMD2(Float(grid.width), Float(grid.height))
        for (n, image) in objects.enumerated() {
            var taken: [Int: Set<Int>] = [:]
            for object in image {
                guard (0..<classes).contains(object.label) else {
                    throw NeuronError.invalidArgument("YOLOGrid.encode: label \(object.label) is outside 0..<\(classes)")
                }
                let box = object.box.relative(to: imageSize).converted(to: CenterSize.self)
                let centre = SIMD2(box.cx, box.cy), size = SIMD2(box.width, box.height)
                guard (0..<4).allSatisfy({ box.values[$0].isFinite }), size.x > 0, size.y > 0 else {
                    throw NeuronError.invalidArgument("YOLOGrid.encode: box \(object.box) must be finite with positive width and height")
                }
                guard centre.x >= 0, centre.x <= 1, centre.y >= 0, centre.y <= 1 else {
                    throw NeuronError.invalidArgument("YOLOGrid.encode: the centre of \(object.box) lies outside the \(imageSize.height) x \(imageSize.width) image")
                }
                let scaled = centre * cells
                let column = min(Int(scaled.x), grid.width - 1), row = min(Int(scaled.y), grid.height - 1)
                let cell = row * grid.width + column
                guard let a = bestAnchor(for: size * pixels, excluding: taken[cell, default: []]) else { continue }
                taken[cell, default: []].insert(a)
                let anchor = anchors[a] / pixels
                let ratio = size / anchor
                let encoded = sizeEncoding == .logRatio ? SIMD2(Foundation.log(ratio.x), Foundation.log(ratio.y)) : ratio
                let slot = (((n * grid.height + row) * grid.width + column) * anchors.count + a) * slotLength
                values[slot] = 1
                values[slot + 1] = scaled.x - Float(column)
                values[slot + 2] = scaled.y - Float(row)
                values[slot + 3] = encoded.y
                values[slot + 4] = encoded.x
                values[slot + 5 + object.label] = 1
            }
        }
        return try Tensor(shape: shape, scalars: values)
    }

    /// The objects encoded in targets [N, gridRows, gridColumns, anchors, 5 + classes]: every slot with
    /// pc = 1, as a box in pixels and the class of its largest class value, in slot order.
    /// - Throws: `NeuronError.shapeMismatch` for another shape.
    public func decode(targets: Tensor) throws -> [[LabeledBox<Corners, Pixels>]] {
        guard targets.rank == 5, Array(targets.shape.dropFirst()) == Array(targetShape(images: 0).dropFirst()) else {
            throw NeuronError.shapeMismatch("YOLOGrid: targets must be [N, \(grid.height), \(grid.width), \(anchors.count), \(slotLength)], got \(shapeString(targets.shape))")
        }
        let (boxes, scores) = decodeSlots(targets, activations: false)
        let perImage = grid.height * grid.width * anchors.count
        let pc = targets.scalars
        return (0..<targets.shape[0]).map { n in
            (0..<perImage).compactMap { s -> LabeledBox<Corners, Pixels>? in
                let slot = n * perImage + s
                guard pc[slot * slotLength] == 1 else { return nil }
                let label = (0..<classes).max { scores[slot * classes + $0] < scores[slot * classes + $1] }!
                return LabeledBox(box(boxes, slot), label: label)
            }
        }
    }

    /// Box `slot` of decoded image-relative corners, in pixels.
    private func box(_ corners: [Float], _ slot: Int) -> Box<Corners, Pixels> {
        Box<Corners, ImageRelative>(SIMD4(corners[4 * slot], corners[4 * slot + 1], corners[4 * slot + 2], corners[4 * slot + 3]))
            .pixels(in: imageSize)
    }

    /// Runs the decoding kernel over slots [rows, 5 + classes] (any leading shape): image-relative corners
    /// [rows · 4] and scores [rows · classes].
    private func decodeSlots(_ slots: Tensor, activations: Bool) -> (boxes: [Float], scores: [Float]) {
        let images = slots.count / (grid.height * grid.width * anchors.count * slotLength)
        let rows = slots.count / slotLength
        var boxes = [Float](repeating: 0, count: rows * 4), scores = [Float](repeating: 0, count: rows * classes)
        let relative = anchors.flatMap { [$0.x / pixels.x, $0.y / pixels.y] }
        relative.withUnsafeBufferPointer { anchorSizes in
            var p = nn_yolo_decode_params(grid_h: Int32(grid.height), grid_w: Int32(grid.width), anchors: Int32(anchors.count),
                                          classes: Int32(classes), anchor_sizes: anchorSizes.baseAddress,
                                          log_sizes: sizeEncoding == .logRatio ? 1 : 0, activations: activations ? 1 : 0)
            boxes.withUnsafeMutableBufferPointer { b in
                scores.withUnsafeMutableBufferPointer { s in nn_yolo_decode(b.baseAddress, s.baseAddress, slots.pointer, images, &p) }
            }
        }
        return (boxes, scores)
    }

    /// A network's output [N, anchors · (5 + C), gridRows, gridColumns] as slots
    /// [N, gridRows, gridColumns, anchors, 5 + C] (differentiable).
    /// - Throws: `NeuronError.shapeMismatch` for another shape.
    public func slots(_ output: Tensor) throws -> Tensor {
        guard output.rank == 4, output.shape[1] == outputChannels, output.shape[2] == grid.height, output.shape[3] == grid.width else {
            throw NeuronError.shapeMismatch("YOLOGrid: network output must be [N, \(outputChannels), \(grid.height), \(grid.width)] (anchors x (5 + classes) channels on the grid), got \(shapeString(output.shape))")
        }
        return try output.reshaped([output.shape[0], anchors.count, slotLength, grid.height, grid.width]).permuted([0, 3, 4, 1, 2])
    }

    /// The YOLO loss of a network's output [N, anchors · (5 + C), gridRows, gridColumns] against encoded
    /// targets [N, gridRows, gridColumns, anchors, 5 + C], summed over slots and averaged over images:
    /// per slot, weights.object · BCE(pc logit, 1) or weights.noObject · BCE(pc logit, 0); for slots with an
    /// object also weights.coordinates · [(σ(tx) − tx*)² + (σ(ty) − ty*)² + (th − th*)² + (tw − tw*)²] and
    /// weights.classes · softmax cross-entropy of the class logits.
    /// - Throws: `NeuronError.shapeMismatch` for other shapes; `NeuronError.invalidArgument` when a
    ///   target's pc is not 0 or 1.
    public func loss(_ output: Tensor, _ targets: Tensor, weights: YOLOLossWeights = YOLOLossWeights()) throws -> Tensor {
        let predicted = try slots(output)
        guard targets.shape == predicted.shape else {
            throw NeuronError.shapeMismatch("YOLOGrid.loss: targets \(shapeString(targets.shape)) for output \(shapeString(output.shape)) (expects \(shapeString(predicted.shape)))")
        }
        let params = nn_detection_loss_params(coords: 4, classes: Int32(classes), sigmoid_coords: 2,
                                              objectness: NN_OBJECTNESS_LOGISTIC, class_loss: NN_CLASSES_SOFTMAX,
                                              coord_weight: weights.coordinates, object_weight: weights.object,
                                              no_object_weight: weights.noObject, class_weight: weights.classes)
        let total = try detectionLoss("yolo_loss", try predicted.reshaped([-1, slotLength]), try targets.reshaped([-1, slotLength]),
                                      params: params, reduction: .sum)
        return total * (1 / Float(output.shape[0]))
    }

    /// Post-processing of a network's output [N, anchors · (5 + C), gridRows, gridColumns]: every slot and
    /// class whose score σ(pc) · softmax(classes)_c is above `scoreThreshold` is a candidate box; NMS
    /// within each class (`iouThreshold`) and a cap of `maxDetections` per image follow. Each image's
    /// detections come in decreasing score order, boxes in pixels.
    /// - Throws: `NeuronError.shapeMismatch` for another output shape; `NeuronError.invalidArgument` for a
    ///   threshold outside [0, 1] or a negative cap.
    public func detections(in output: Tensor, scoreThreshold: Float = 0.25, iouThreshold: Double = 0.45,
                           maxDetections: Int = 100) throws -> [[Detection<Corners, Pixels>]] {
        guard scoreThreshold >= 0, scoreThreshold <= 1 else {
            throw NeuronError.invalidArgument("YOLOGrid.detections: the score threshold must be in [0, 1], got \(scoreThreshold)")
        }
        try validateIoUThreshold(iouThreshold, "YOLOGrid.detections")
        guard maxDetections >= 0 else { throw NeuronError.invalidArgument("YOLOGrid.detections: maxDetections must not be negative, got \(maxDetections)") }
        let slotValues = try noGrad { try slots(output.detached()) }
        let (corners, scores) = decodeSlots(slotValues, activations: true)
        let perImage = grid.height * grid.width * anchors.count
        return try (0..<output.shape[0]).map { n in
            var candidates: [(slot: Int, label: Int)] = [], candidateScores: [Float] = []
            for s in 0..<perImage {
                let slot = n * perImage + s
                for c in 0..<classes where scores[slot * classes + c] > scoreThreshold {
                    candidates.append((slot, c))
                    candidateScores.append(scores[slot * classes + c])
                }
            }
            let boxes = Boxes<Corners, ImageRelative>(candidates.map { candidate in
                Box(SIMD4(corners[4 * candidate.slot], corners[4 * candidate.slot + 1], corners[4 * candidate.slot + 2], corners[4 * candidate.slot + 3]))
            })
            let keep = try batchedNonMaxSuppression(boxes, scores: Tensor(candidateScores), labels: candidates.map(\.label),
                                                    iouThreshold: iouThreshold, maxKeep: maxDetections)
            return keep.map { Detection(box(corners, candidates[$0].slot), label: candidates[$0].label, score: candidateScores[$0]) }
        }
    }

    /// `count` anchor sizes (width, height) clustered from box sizes by k-means with the distance
    /// 1 − IoU of the two shapes centred on each other (YOLOv2's), smallest area first.
    ///
    /// Centres start by k-means++ (each next one drawn with probability proportional to its distance from
    /// the nearest chosen one) from a generator seeded with `seed`; each round assigns every size to its
    /// nearest centre and moves each centre to the mean of its sizes (a centre left without sizes stays),
    /// until no assignment changes or after `iterations` rounds.
    /// - Throws: `NeuronError.invalidArgument` for `count` < 1, fewer sizes than `count`, or a size that is
    ///   not positive and finite.
    public static func anchors(clustering sizes: [SIMD2<Float>], count: Int, iterations: Int = 100,
                               seed: UInt64 = 0) throws -> [SIMD2<Float>] {
        guard count >= 1, sizes.count >= count else {
            throw NeuronError.invalidArgument("anchor k-means needs at least \(max(count, 1)) box sizes for \(count) anchors, got \(sizes.count)")
        }
        guard sizes.allSatisfy({ $0.x > 0 && $0.y > 0 && $0.x.isFinite && $0.y.isFinite }) else {
            throw NeuronError.invalidArgument("anchor k-means: every box size must be positive and finite")
        }
        func shapes(_ s: [SIMD2<Float>]) -> Boxes<CenterSize, Pixels> { Boxes(s.map { Box(cx: 0, cy: 0, width: $0.x, height: $0.y) }) }
        let boxes = shapes(sizes)
        var generator = RandomGenerator(seed: seed)
        var centres = [sizes[Int(generator.next() % UInt64(sizes.count))]]
        while centres.count < count {
            let iou = boxIoU(boxes, shapes(centres)).scalars
            let distance = (0..<sizes.count).map { i in 1 - (0..<centres.count).map { iou[i * centres.count + $0] }.max()! }
            let total = distance.reduce(0, +)
            var pick = Float(generator.nextUniform()) * total, chosen = sizes.count - 1
            for (i, d) in distance.enumerated() where d > 0 {
                pick -= d
                if pick < 0 { chosen = i; break }
            }
            centres.append(sizes[chosen])
        }
        var assignment = [Int](repeating: -1, count: sizes.count)
        for _ in 0..<max(iterations, 1) {
            let iou = boxIoU(boxes, shapes(centres)).scalars
            let next = (0..<sizes.count).map { i in (0..<count).max { iou[i * count + $0] < iou[i * count + $1] }! }
            if next == assignment { break }
            assignment = next
            for c in 0..<count {
                let members = sizes.indices.filter { assignment[$0] == c }
                if !members.isEmpty { centres[c] = members.reduce(SIMD2<Float>()) { $0 + sizes[$1] } / Float(members.count) }
            }
        }
        return centres.sorted { $0.x * $0.y < $1.x * $1.y }
    }
}
