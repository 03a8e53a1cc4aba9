import Foundation

extension SyntheticData {
    /// The class names of `detectionScenes`, by label.
    public static let detectionClassNames = ["circle", "square", "triangle"]

    /// Grey-scale scenes holding several shapes each, with their bounding boxes: images
    /// [count, 1, size, size] in [0, 1] and, per image, its objects as pixel corner boxes with labels
    /// 0 circle, 1 square, 2 triangle (`detectionClassNames`).
    ///
    /// Each image draws its object count from `objects`, then places each object: a random class, a
    /// random size from `objectSize` (a circle's diameter, a square's side, an upright triangle's base, its
    /// height 0.9 of that), a random position inside the image, and a random grey level (0.55–1 on a
    /// background of 0–0.3). A placement whose box overlaps an earlier box by IoU above `maxOverlap` is
    /// drawn again (up to 20 times, then the object is left out), so boxes overlap but stay tellable
    /// apart; later shapes are painted over earlier ones. Edges are anti-aliased (4 x 4 samples per
    /// pixel) and Gaussian noise of standard deviation `noise` is added before clamping to [0, 1].
    /// Boxes are the shapes' exact extents in continuous pixel coordinates. The same generator state
    /// gives the same scenes.
    ///
    /// - Throws: `NeuronError.invalidArgument` for `count` < 1, `size` < 16, an empty or negative object
    ///   count range, object sizes outside [4, size], `maxOverlap` outside [0, 1], or a negative or
    ///   non-finite `noise`.
    public static func detectionScenes(count: Int, size: Int = 64, objects: ClosedRange<Int> = 1...4,
                                       objectSize: ClosedRange<Float> = 10...24, maxOverlap: Float = 0.3, noise: Float = 0.05,
                                       using generator: inout RandomGenerator) throws -> (images: Tensor, objects: [[LabeledBox<Corners, Pixels>]]) {
        guard count >= 1 else { throw NeuronError.invalidArgument("detectionScenes needs at least 1 image, got \(count)") }
        guard size >= 16 else { throw NeuronError.invalidArgument("detectionScenes needs images of at least 16 x 16 pixels, got \(size)") }
        guard objects.lowerBound >= 0 else { throw NeuronError.invalidArgument("detectionScenes: object counts \(objects) must not be negative") }
        guard objectSize.lowerBound >= 4, objectSize.upperBound <= Float(size) else {
            throw NeuronError.invalidArgument("detectionScenes: object sizes \(objectSize) must lie in [4, \(size)]")
        }
        guard maxOverlap >= 0, maxOverlap <= 1 else {
            throw NeuronError.invalidArgument("detectionScenes: maxOverlap must be in [0, 1], got \(maxOverlap)")
        }
        guard noise >= 0, noise.isFinite else { throw NeuronError.invalidArgument("detectionScenes: noise must be finite and >= 0, got \(noise)") }
        let pixels = size * size
        var values = [Float](repeating: 0, count: count * pixels)
        var scenes: [[LabeledBox<Corners, Pixels>]] = []
        values.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<count {
                let image = UnsafeMutableBufferPointer(rebasing: buffer[(i * pixels)..<((i + 1) * pixels)])
                scenes.append(drawScene(into: image, size: size, objects: objects, objectSize: objectSize,
                                        maxOverlap: maxOverlap, noise: noise, using: &generator))
            }
        }
        return (try Tensor(shape: [count, 1, size, size], scalars: values), scenes)
    }

    private static func drawScene(into image: UnsafeMutableBufferPointer<Float>, size: Int, objects: ClosedRange<Int>,
                                  objectSize: ClosedRange<Float>, maxOverlap: Float, noise: Float,
                                  using generator: inout RandomGenerator) -> [LabeledBox<Corners, Pixels>] {
        let side = Float(size)
        let background = 0.3 * generator.nextUniform()
        for p in image.indices { image[p] = background }
        let wanted = objects.lowerBound + Int(generator.next() % UInt64(objects.count))
        var placed: [LabeledBox<Corners, Pixels>] = []
        for _ in 0..<wanted {
            let label = Int(generator.next() % UInt64(detectionClassNames.count))
            let extent = objectSize.lowerBound + (objectSize.upperBound - objectSize.lowerBound) * generator.nextUniform()
            let (width, height) = (extent, label == 2 ? 0.9 * extent : extent)
            let grey = 0.55 + 0.45 * generator.nextUniform()
            for _ in 0..<20 {
                let x = (side - width) * generator.nextUniform(), y = (side - height) * generator.nextUniform()
                let box = Box<Corners, Pixels>(x1: x, y1: y, x2: x + width, y2: y + height)
                if !placed.isEmpty, let overlap = boxIoU(Boxes([box]), Boxes(placed.map(\.box))).scalars.max(), overlap > maxOverlap {
                    continue
                }
                paint(box, label: label, grey: grey, into: image, size: size)
                placed.append(LabeledBox(box, label: label))
                break
            }
        }
        for p in image.indices { image[p] = min(max(image[p] + noise * generator.nextNormal(), 0), 1) }
        return placed
    }

    /// Paints one shape filling `box` over the image with its coverage of each pixel (4 x 4 samples).
    private static func paint(_ box: Box<Corners, Pixels>, label: Int, grey: Float, into image: UnsafeMutableBufferPointer<Float>, size: Int) {
        let (cx, cy) = ((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2)
        let (halfWidth, height) = ((box.x2 - box.x1) / 2, box.y2 - box.y1)
        func inside(_ x: Float, _ y: Float) -> Bool {
            switch label {
            case 0: return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= halfWidth * halfWidth
            case 1: return x >= box.x1 && x <= box.x2 && y >= box.y1 && y <= box.y2
            default:
                // Apex at the top centre, base along the bottom edge.
                guard y >= box.y1, y <= box.y2 else { return false }
                return abs(x - cx) <= halfWidth * (y - box.y1) / height
            }
        }
        let rows = max(Int(box.y1), 0)...min(Int(box.y2), size - 1), columns = max(Int(box.x1), 0)...min(Int(box.x2), size - 1)
        for row in rows {
            for column in columns {
                var hits = 0
                for sy in 0..<4 {
                    for sx in 0..<4 where inside(Float(column) + (Float(sx) + 0.5) / 4, Float(row) + (Float(sy) + 0.5) / 4) { hits += 1 }
                }
                let coverage = Float(hits) / 16
                image[row * size + column] = image[row * size + column] * (1 - coverage) + grey * coverage
            }
        }
    }
}
