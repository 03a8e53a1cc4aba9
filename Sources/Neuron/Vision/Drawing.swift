/// An RGB copy of `image` enlarged `scale` times (nearest neighbour) with each box outlined in its colour,
/// [1, 3, H · scale, W · scale] with values in [0, 1], ready for `PNG.write`.
///
/// - Parameters:
///   - boxes: pixel boxes of the original image, each with an RGB colour in [0, 1]; drawn in order, edges
///     clipped to the image.
///   - image: [1, C, H, W] or [C, H, W] with C = 1 (grey, repeated into R, G, B) or 3.
///   - scale: at least 1.
///   - thickness: the outline's width in output pixels, at least 1, drawn inside the box's edges.
/// - Throws: `NeuronError.shapeMismatch` for another image layout; `NeuronError.invalidArgument` for a
///   scale or thickness below 1.
public func drawingBoxes(_ boxes: [(box: Box<Corners, Pixels>, color: SIMD3<Float>)], on image: Tensor, scale: Int = 1,
                         thickness: Int = 1) throws -> Tensor {
    let chw = image.rank == 4 && image.shape[0] == 1 ? Array(image.shape.dropFirst()) : image.shape
    guard chw.count == 3, chw[0] == 1 || chw[0] == 3 else {
        throw NeuronError.shapeMismatch("drawing boxes needs an image [1, C, H, W] or [C, H, W] with C = 1 or 3, got \(shapeString(image.shape))")
    }
    guard scale >= 1, thickness >= 1 else {
        throw NeuronError.invalidArgument("drawing boxes: scale and thickness must be at least 1, got \(scale) and \(thickness)")
    }
    let (channels, height, width) = (chw[0], chw[1], chw[2])
    let (outHeight, outWidth) = (height * scale, width * scale)
    let source = image.scalars
    var out = [Float](repeating: 0, count: 3 * outHeight * outWidth)
    for c in 0..<3 {
        let from = channels == 1 ? 0 : c
        for y in 0..<outHeight {
            for x in 0..<outWidth { out[(c * outHeight + y) * outWidth + x] = source[(from * height + y / scale) * width + x / scale] }
        }
    }
    for (box, color) in boxes {
        let v = box.values * Float(scale)
        guard (0..<4).allSatisfy({ v[$0].isFinite }) else { continue }
        let x1 = max(Int(v[0].rounded()), 0), y1 = max(Int(v[1].rounded()), 0)
        let x2 = min(Int(v[2].rounded()) - 1, outWidth - 1), y2 = min(Int(v[3].rounded()) - 1, outHeight - 1)
        guard x1 <= x2, y1 <= y2 else { continue }
        for y in y1...y2 {
            for x in x1...x2 where x - x1 < thickness || x2 - x < thickness || y - y1 < thickness || y2 - y < thickness {
                for c in 0..<3 { out[(c * outHeight + y) * outWidth + x] = color[c] }
            }
        }
    }
    return try Tensor(shape: [1, 3, outHeight, outWidth], scalars: out)
}
