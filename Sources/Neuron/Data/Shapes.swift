import Foundation

extension SyntheticData {
    /// The class names of `shapes(count:size:noise:using:)`, by label.
    public static let shapeClassNames = ["circle", "square", "triangle", "cross"]

    /// Grey-scale images of one shape each: images [count, 1, size, size] in [0, 1] (NCHW, as PyTorch's
    /// `ToTensor` gives them) and labels 0 circle, 1 square, 2 triangle, 3 cross (`shapeClassNames`).
    ///
    /// Labels cycle 0, 1, 2, 3, 0... so every class has `count / 4` images, the first `count % 4`
    /// classes one more. Each shape has a random centre, size (circumradius 22–38 % of `size`),
    /// rotation (squares become diamonds, crosses become X's), fill or outline (1.5–2.5 pixels wide)
    /// and contrast (background 0–0.25, foreground 0.65–1); edges are anti-aliased, the whole shape
    /// stays inside images of 19 x 19 pixels or more, and Gaussian noise of standard deviation `noise` is added to every
    /// pixel before clamping to [0, 1]. The same generator state gives the same images.
    ///
    /// - Throws: `NeuronError.invalidArgument` for `count` < 1, `size` < 12 (too small to tell the shapes
    ///   apart) or a negative or non-finite `noise`.
    public static func shapes(count: Int, size: Int = 28, noise: Float = 0.1,
                              using generator: inout RandomGenerator) throws -> (images: Tensor, labels: [Int]) {
        guard count >= 1 else { throw NeuronError.invalidArgument("shapes needs at least 1 image, got \(count)") }
        guard size >= 12 else {
            throw NeuronError.invalidArgument("shapes needs images of at least 12 x 12 pixels to tell the shapes apart, got \(size)")
        }
        guard noise >= 0, noise.isFinite else {
            throw NeuronError.invalidArgument("shapes: noise must be a finite standard deviation >= 0, got \(noise)")
        }
        try Sizes.checkShape([count, 1, size, size], "shapes images")
        let pixels = size * size
        var values = [Float](repeating: 0, count: count * pixels)
        var labels = [Int]()
        labels.reserveCapacity(count)
        values.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<count {
                let label = i % shapeClassNames.count
                labels.append(label)
                let shape = RandomShape(label: label, size: size, using: &generator)
                shape.draw(into: UnsafeMutableBufferPointer(rebasing: buffer[(i * pixels)..<((i + 1) * pixels)]),
                           size: size, noise: noise, using: &generator)
            }
        }
        return (try Tensor(shape: [count, 1, size, size], scalars: values), labels)
    }
}

/// One image's shape, drawn as a signed distance (pixels, negative inside) in the shape's own frame.
private struct RandomShape {
    let label: Int
    let centreX: Float, centreY: Float
    /// Distance from the centre to the farthest corner (or the circle's radius).
    let radius: Float
    let cosAngle: Float, sinAngle: Float
    /// Outline width in pixels, or nil for a filled shape.
    let stroke: Float?
    /// The cross's bar half-thickness as a fraction of its arm's length from the centre.
    let barFraction: Float
    let background: Float, foreground: Float

    /// Draws every parameter from `generator` in a fixed order, so the images depend on the seed only.
    init(label: Int, size: Int, using generator: inout RandomGenerator) {
        let side = Float(size)
        self.label = label
        radius = side * (0.22 + 0.16 * generator.nextUniform())
        let angle = 2 * Float.pi * generator.nextUniform()
        cosAngle = Float(Foundation.cos(Double(angle)))
        sinAngle = Float(Foundation.sin(Double(angle)))
        let outlined = generator.nextUniform() < 0.5
        let width = 1.5 + generator.nextUniform()
        stroke = outlined ? width : nil
        barFraction = 0.18 + 0.14 * generator.nextUniform()
        // The outline's outer half and the anti-aliasing ramp also need room; in the smallest images
        // the largest shapes only fit centred (and may touch the border).
        let room = max(side - 2 * (radius + (outlined ? width / 2 : 0) + 1), 0)
        centreX = side / 2 + room * (generator.nextUniform() - 0.5)
        centreY = side / 2 + room * (generator.nextUniform() - 0.5)
        background = 0.25 * generator.nextUniform()
        foreground = 0.65 + 0.35 * generator.nextUniform()
    }

    /// Fills one size x size image (row-major) with the shape plus noise, clamped to [0, 1].
    func draw(into image: UnsafeMutableBufferPointer<Float>, size: Int, noise: Float, using generator: inout RandomGenerator) {
        for row in 0..<size {
            for column in 0..<size {
                // Pixel centres, rotated into the shape's frame.
                let dx = Float(column) + 0.5 - centreX, dy = Float(row) + 0.5 - centreY
                let x = cosAngle * dx + sinAngle * dy, y = -sinAngle * dx + cosAngle * dy
                let distance = signedDistance(x, y)
                // A one-pixel linear ramp across the edge approximates the pixel's coverage.
                let coverage = if let stroke { 0.5 + stroke / 2 - abs(distance) } else { 0.5 - distance }
                let ink = min(max(coverage, 0), 1)
                // Drawn even when `noise` is 0, so a seed gives the same shapes at every noise level.
                let value = background + (foreground - background) * ink + noise * generator.nextNormal()
                image[row * size + column] = min(max(value, 0), 1)
            }
        }
    }

    /// Inigo Quilez's exact 2-D distance functions, scaled so each shape's circumradius is `radius`.
    private func signedDistance(_ x: Float, _ y: Float) -> Float {
        switch label {
        case 0:
            return (x * x + y * y).squareRoot() - radius
        case 1:
            return boxDistance(x, y, halfWidth: radius / Float(2).squareRoot(), halfHeight: radius / Float(2).squareRoot())
        case 2:
            return triangleDistance(x, y, halfSide: radius * Float(3).squareRoot() / 2)
        default:
            let half = radius / (1 + barFraction * barFraction).squareRoot(), bar = barFraction * half
            return min(boxDistance(x, y, halfWidth: half, halfHeight: bar), boxDistance(x, y, halfWidth: bar, halfHeight: half))
        }
    }

    private func boxDistance(_ x: Float, _ y: Float, halfWidth: Float, halfHeight: Float) -> Float {
        let qx = abs(x) - halfWidth, qy = abs(y) - halfHeight
        let outside = (max(qx, 0) * max(qx, 0) + max(qy, 0) * max(qy, 0)).squareRoot()
        return outside + min(max(qx, qy), 0)
    }

    /// An equilateral triangle centred on its centroid, one side horizontal.
    private func triangleDistance(_ x: Float, _ y: Float, halfSide: Float) -> Float {
        let k = Float(3).squareRoot()
        var px = abs(x) - halfSide, py = y + halfSide / k
        if px + k * py > 0 { (px, py) = ((px - k * py) / 2, (-k * px - py) / 2) }
        px -= min(max(px, -2 * halfSide), 0)
        let length = (px * px + py * py).squareRoot()
        return py < 0 ? length : -length
    }
}
