extension Tensor {
    /// Bilinear resizing: `self` is `[N, C, H, W]`, the result `[N, C, height, width]`.
    ///
    /// PyTorch: `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=alignCorners)`
    /// (with `antialias=False`, its default: downscaling blends the two nearest pixels per axis
    /// rather than averaging over the footprint). The index and weight arithmetic is done in `Float`
    /// in PyTorch's order, so results agree with its CPU kernel to float rounding.
    /// - Parameters:
    ///   - height: rows of the result, at least 1.
    ///   - width: columns of the result, at least 1.
    ///   - alignCorners: `false` (PyTorch's default) treats pixels as unit squares: output index i
    ///     samples the input at (i + 0.5) · H / height − 0.5, clamped below at 0. `true` makes the
    ///     corner pixels' centres coincide: i samples i · (H − 1) / (height − 1).
    /// - Throws: `NeuronError.shapeMismatch` when `self` is not rank 4 or has an empty spatial axis;
    ///   `NeuronError.invalidArgument` for a size below 1, or when `self` requires gradients (resizing
    ///   is not differentiable here; resize `detached()` data).
    public func resized(height: Int, width: Int, alignCorners: Bool = false) throws -> Tensor {
        guard rank == 4, shape[2] > 0, shape[3] > 0 else {
            throw NeuronError.shapeMismatch("resized(height:width:) needs [N, C, H, W] with H, W > 0, got \(shapeString(shape))")
        }
        guard height > 0, width > 0 else {
            throw NeuronError.invalidArgument("resized(height:width:) needs a size of at least 1 x 1, got \(height) x \(width)")
        }
        guard !requiresGrad else {
            throw NeuronError.invalidArgument("resized(height:width:) has no gradient; resize detached() values")
        }
        var result = try Tensor.allocated([shape[0], shape[1], height, width], op: "resized(height:width:)")
        let (inHeight, inWidth) = (shape[2], shape[3])
        let rows = BilinearTaps(input: inHeight, output: height, alignCorners: alignCorners)
        let columns = BilinearTaps(input: inWidth, output: width, alignCorners: alignCorners)
        let planes = shape[0] * shape[1]
        withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                // Unchecked pointers into the column taps: bounds checks there cost more than the maths.
                columns.lower.withUnsafeBufferPointer { x0 in
                columns.upper.withUnsafeBufferPointer { x1 in
                columns.lowerWeight.withUnsafeBufferPointer { w0 in
                columns.upperWeight.withUnsafeBufferPointer { w1 in
                    var output = target.baseAddress!
                    for plane in 0..<planes {
                        let input = source.baseAddress! + plane * inHeight * inWidth
                        for y in 0..<height {
                            let upper = input + rows.lower[y] * inWidth, lower = input + rows.upper[y] * inWidth
                            let (wUpper, wLower) = (rows.lowerWeight[y], rows.upperWeight[y])
                            for x in 0..<width {
                                output[x] = wUpper * (w0[x] * upper[x0[x]] + w1[x] * upper[x1[x]])
                                    + wLower * (w0[x] * lower[x0[x]] + w1[x] * lower[x1[x]])
                            }
                            output += width
                        }
                    }
                }}}}
            }
        }
        return result
    }
}

/// For each output index along one axis, the two input indices bilinear interpolation blends and
/// their weights (`lowerWeight + upperWeight == 1`), as PyTorch's `compute_indices_weights_linear`.
struct BilinearTaps {
    var lower: [Int] = [], upper: [Int] = []
    var lowerWeight: [Float] = [], upperWeight: [Float] = []

    init(input: Int, output: Int, alignCorners: Bool) {
        let scale: Float = alignCorners
            ? (output > 1 ? Float(input - 1) / Float(output - 1) : 0)
            : Float(input) / Float(output)
        for i in 0..<output {
            let source = alignCorners ? scale * Float(i) : max(scale * (Float(i) + 0.5) - 0.5, 0)
            let index = min(Int(source.rounded(.down)), input - 1)
            let fraction = min(max(source - Float(index), 0), 1)
            lower.append(index)
            upper.append(index < input - 1 ? index + 1 : index)
            lowerWeight.append(1 - fraction)
            upperWeight.append(fraction)
        }
    }
}
