import CKernels

extension Tensor {
    /// Validates a pooling window over x [N, C, H, W] and fills the kernel's parameter block; the
    /// output size is computed in Swift without overflow and every value must fit the kernels' `int`.
    /// As in PyTorch, only the batch may be empty.
    static func poolParameters(_ x: Tensor, kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool,
                               countIncludePad: Bool = true, op: String) throws -> (params: nn_pool2d_params, outHeight: Int, outWidth: Int) {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("\(op) expects input [N, C, H, W], got \(shapeString(x.shape))") }
        try checkPoolWindow(kernel: kernel, stride: stride, padding: padding, op: op)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard c > 0, h > 0, w > 0 else {
            throw NeuronError.emptyInput("\(op) needs C, H and W of at least 1 (only the batch may be empty, as in PyTorch), got \(shapeString(x.shape))")
        }
        let s = stride ?? kernel
        let oh = outputSize(input: h, kernel: kernel.height, stride: s.height, padding: padding.height, ceilMode: ceilMode)
        let ow = outputSize(input: w, kernel: kernel.width, stride: s.width, padding: padding.width, ceilMode: ceilMode)
        guard oh >= 1, ow >= 1 else {
            throw NeuronError.shapeMismatch("\(op): window \(kernel) with padding \(padding) is larger than the padded input of \(shapeString(x.shape))")
        }
        // A stride longer than the padded axis gives one window either way; the kernels get one that fits in int.
        func extent(_ size: Int, _ pad: Int) -> Int { // pad <= kernel / 2, so 2 * pad cannot overflow
            let (e, overflow) = size.addingReportingOverflow(2 * pad)
            return overflow ? Int.max : e
        }
        let strideH = Swift.min(s.height, extent(h, padding.height)), strideW = Swift.min(s.width, extent(w, padding.width))
        let p = nn_pool2d_params(n: try Sizes.int32(n, "batch", op: op), c: try Sizes.int32(c, "channels", op: op),
                                 h: try Sizes.int32(h, "height", op: op), w: try Sizes.int32(w, "width", op: op),
                                 kh: try Sizes.int32(kernel.height, "kernel height", op: op),
                                 kw: try Sizes.int32(kernel.width, "kernel width", op: op),
                                 stride_h: try Sizes.int32(strideH, "stride height", op: op),
                                 stride_w: try Sizes.int32(strideW, "stride width", op: op),
                                 pad_h: try Sizes.int32(padding.height, "padding height", op: op),
                                 pad_w: try Sizes.int32(padding.width, "padding width", op: op),
                                 ceil_mode: ceilMode ? 1 : 0, count_include_pad: countIncludePad ? 1 : 0)
        _ = try Sizes.int32(oh, "output height", op: op)
        _ = try Sizes.int32(ow, "output width", op: op)
        return (p, oh, ow)
    }

    /// The checks PyTorch's pooling makes on its configuration: a window and stride of at least 1 and
    /// padding between 0 and half the window (so every window overlaps the input).
    static func checkPoolWindow(kernel: Size2D, stride: Size2D?, padding: Size2D, op: String) throws {
        guard kernel.height >= 1, kernel.width >= 1 else { throw NeuronError.invalidArgument("\(op): kernel must be at least 1, got \(kernel)") }
        if let s = stride, s.height < 1 || s.width < 1 {
            throw NeuronError.invalidArgument("\(op): stride must be at least 1, got \(s)")
        }
        guard padding.height >= 0, padding.width >= 0, padding.height <= kernel.height / 2, padding.width <= kernel.width / 2 else {
            throw NeuronError.invalidArgument("\(op): padding \(padding) must be between 0 and half the kernel \(kernel)")
        }
    }

    /// Max pooling over windows of x [N, C, H, W] (PyTorch's `F.max_pool2d`; stride defaults to the
    /// window): [N, C, OH, OW]. Padding counts as -inf; among equal maxima the first in row-major order
    /// wins and gets the whole gradient; NaN propagates.
    public static func maxPool2d(_ x: Tensor, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0],
                                 ceilMode: Bool = false) throws -> Tensor {
        try maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, returningIndices: false).values
    }

    /// Max pooling as `maxPool2d(_:kernel:stride:padding:ceilMode:)`, also returning, when
    /// `returningIndices` is true, the flat index h·W + w of each maximum in its input plane
    /// [N, C, OH, OW] (PyTorch's `return_indices=True`); `indices` is nil otherwise.
    public static func maxPool2d(_ x: Tensor, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0],
                                 ceilMode: Bool = false, returningIndices: Bool) throws -> (values: Tensor, indices: IntTensor?) {
        let (params, oh, ow) = try poolParameters(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, op: "max_pool2d")
        var p = params
        let outShape = [x.shape[0], x.shape[1], oh, ow]
        let out = try Tensor.allocated(outShape, op: "max_pool2d")
        try Sizes.checkAllocation(elements: 2 * out.count, "max_pool2d indices")  // Int64: two floats each
        var indices = [Int64](repeating: 0, count: out.count)
        if out.count > 0 { nn_max_pool2d_forward(out.pointer, &indices, x.pointer, &p) }
        let values = out.recorded("max_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_max_pool2d_backward(dx.pointer, g.pointer, indices, &p)
            return [dx]
        }
        return (values, returningIndices ? try IntTensor(shape: outShape, scalars: indices) : nil)
    }

    /// Average pooling (PyTorch's `F.avg_pool2d`); with `countIncludePad` (the default) padding
    /// counts in the divisor.
    public static func avgPool2d(_ x: Tensor, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0],
                                 ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
        let (params, oh, ow) = try poolParameters(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode,
                                             countIncludePad: countIncludePad, op: "avg_pool2d")
        var p = params
        let out = try Tensor.allocated([x.shape[0], x.shape[1], oh, ow], op: "avg_pool2d")
        if out.count > 0 { nn_avg_pool2d_forward(out.pointer, x.pointer, &p) }
        return out.recorded("avg_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_avg_pool2d_backward(dx.pointer, g.pointer, &p)
            return [dx]
        }
    }

    /// Adaptive average pooling to `outputSize` (PyTorch's `F.adaptive_avg_pool2d`): window i spans
    /// rows floor(i·H/oh) ..< ceil((i+1)·H/oh). Output size 1 is global average pooling. N and C may
    /// be 0; H and W may not.
    public static func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2D) throws -> Tensor {
        let op = "adaptive_avg_pool2d"
        let (n, c, h, w, oh, ow) = try adaptiveSizes(x, outputSize: outputSize, op: op)
        let out = try Tensor.allocated([x.shape[0], x.shape[1], outputSize.height, outputSize.width], op: op)
        if out.count > 0 { nn_adaptive_avg_pool2d_forward(out.pointer, x.pointer, n, c, h, w, oh, ow) }
        return out.recorded("adaptive_avg_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_adaptive_avg_pool2d_backward(dx.pointer, g.pointer, n, c, h, w, oh, ow)
            return [dx]
        }
    }
}

extension Tensor {
    /// Checks adaptive pooling's input [N, C, H, W] (H, W at least 1) and output size, returning the
    /// sizes as the kernels' ints.
    static func adaptiveSizes(_ x: Tensor, outputSize: Size2D, op: String) throws -> (n: Int32, c: Int32, h: Int32, w: Int32, oh: Int32, ow: Int32) {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("\(op) expects input [N, C, H, W], got \(shapeString(x.shape))") }
        guard outputSize.height >= 1, outputSize.width >= 1 else { throw NeuronError.invalidArgument("\(op): output size must be at least 1, got \(outputSize)") }
        guard x.shape[2] > 0, x.shape[3] > 0 else {
            throw NeuronError.emptyInput("\(op) needs H and W of at least 1 (PyTorch's rule), got \(shapeString(x.shape))")
        }
        return (try Sizes.int32(x.shape[0], "batch", op: op), try Sizes.int32(x.shape[1], "channels", op: op),
                try Sizes.int32(x.shape[2], "height", op: op), try Sizes.int32(x.shape[3], "width", op: op),
                try Sizes.int32(outputSize.height, "output height", op: op), try Sizes.int32(outputSize.width, "output width", op: op))
    }

    /// Adaptive max pooling to `outputSize` (PyTorch's `F.adaptive_max_pool2d`): [N, C, H, W] →
    /// [N, C, OH, OW], output (i, j) the maximum over rows floor(i·H/OH) ..< ceil((i+1)·H/OH) and the
    /// like columns. Ties and NaN as in `maxPool2d`. N and C may be 0; H and W may not.
    public static func adaptiveMaxPool2d(_ x: Tensor, outputSize: Size2D) throws -> Tensor {
        try adaptiveMaxPool2d(x, outputSize: outputSize, returningIndices: false).values
    }

    /// Adaptive max pooling, also returning, when `returningIndices` is true, the flat index h·W + w of
    /// each maximum in its input plane [N, C, OH, OW] (nil otherwise).
    public static func adaptiveMaxPool2d(_ x: Tensor, outputSize: Size2D, returningIndices: Bool) throws -> (values: Tensor, indices: IntTensor?) {
        let op = "adaptive_max_pool2d"
        let (n, c, h, w, oh, ow) = try adaptiveSizes(x, outputSize: outputSize, op: op)
        let outShape = [x.shape[0], x.shape[1], outputSize.height, outputSize.width]
        let out = try Tensor.allocated(outShape, op: op)
        try Sizes.checkAllocation(elements: 2 * out.count, "\(op) indices")
        var indices = [Int64](repeating: 0, count: out.count)
        if out.count > 0 { nn_adaptive_max_pool2d_forward(out.pointer, &indices, x.pointer, n, c, h, w, oh, ow) }
        let values = out.recorded(op, inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_adaptive_max_pool2d_backward(dx.pointer, g.pointer, indices, n, c, h, w, oh, ow)
            return [dx]
        }
        return (values, returningIndices ? try IntTensor(shape: outShape, scalars: indices) : nil)
    }
}

/// Max pooling layer (PyTorch's `nn.MaxPool2d`; stride defaults to the window).
public final class MaxPool2D: Module {
    /// The window [KH, KW], the stride (nil: the window, as PyTorch's default), the zero padding
    /// (padded cells never win) and whether the output size rounds up (PyTorch's `ceil_mode`).
    public let kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool
    /// Training mode; pooling behaves the same in both modes.
    public var isTraining = true
    /// A max pool over windows of each channel plane.
    /// - Parameters:
    ///   - kernel: the window [KH, KW].
    ///   - stride: the window's step; nil (the default) steps by the window, as PyTorch.
    ///   - padding: cells added on each side, at most half the window.
    ///   - ceilMode: round the output size up, so a partial last window counts.
    /// - Throws: `NeuronError.invalidArgument` for a kernel or stride below 1 or padding outside 0...kernel/2.
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0], ceilMode: Bool = false) throws {
        try Tensor.checkPoolWindow(kernel: kernel, stride: stride, padding: padding, op: "MaxPool2D")
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.ceilMode = ceilMode
    }
    /// x [N, C, H, W] -> [N, C, OH, OW], OH = (H + 2·padH - KH) / strideH + 1 (rounded up with `ceilMode`).
    /// - Throws: `NeuronError` for input that is not rank 4 or smaller than the window.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        traced(try Tensor.maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode))
    }
    /// PyTorch's class name, `MaxPool2d`.
    public var typeName: String { "MaxPool2d" }
    /// PyTorch's repr: `kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False`.
    public var configurationDescription: String {
        "kernel_size=\(kernel.reprValue), stride=\((stride ?? kernel).reprValue), padding=\(padding.reprValue), dilation=1, ceil_mode=\(ceilMode.reprValue)"
    }
}

/// Average pooling layer (PyTorch's `nn.AvgPool2d`).
public final class AvgPool2D: Module {
    /// The window [KH, KW], the stride (nil: the window), the padding, whether the output size rounds up
    /// (`ceil_mode`) and whether padded zeros count in each average's divisor (`count_include_pad`).
    public let kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool, countIncludePad: Bool
    /// Training mode; pooling behaves the same in both modes.
    public var isTraining = true
    /// An average pool over windows of each channel plane.
    /// - Parameters:
    ///   - kernel: the window [KH, KW].
    ///   - stride: the window's step; nil (the default) steps by the window, as PyTorch.
    ///   - padding: zeros added on each side, at most half the window.
    ///   - ceilMode: round the output size up, so a partial last window counts.
    ///   - countIncludePad: divide by the whole window including padded zeros (PyTorch's default) rather than by the real cells.
    /// - Throws: `NeuronError.invalidArgument` for a kernel or stride below 1 or padding outside 0...kernel/2.
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0], ceilMode: Bool = false, countIncludePad: Bool = true) throws {
        try Tensor.checkPoolWindow(kernel: kernel, stride: stride, padding: padding, op: "AvgPool2D")
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }
    /// x [N, C, H, W] -> [N, C, OH, OW], OH = (H + 2·padH - KH) / strideH + 1 (rounded up with `ceilMode`).
    /// - Throws: `NeuronError` for input that is not rank 4 or smaller than the window.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        traced(try Tensor.avgPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad))
    }
    /// PyTorch's class name, `AvgPool2d`.
    public var typeName: String { "AvgPool2d" }
    /// PyTorch's repr: `kernel_size=2, stride=2, padding=0`.
    public var configurationDescription: String {
        "kernel_size=\(kernel.reprValue), stride=\((stride ?? kernel).reprValue), padding=\(padding.reprValue)"
            + (ceilMode ? ", ceil_mode=True" : "") + (countIncludePad ? "" : ", count_include_pad=False")
    }
}

/// Global average pooling: [N, C, H, W] -> [N, C, 1, 1] (PyTorch's `nn.AdaptiveAvgPool2d(1)`).
public final class GlobalAvgPool2D: Module {
    /// Training mode; pooling behaves the same in both modes.
    public var isTraining = true
    /// A global average pool; it has no parameters.
    public init() {}
    /// x [N, C, H, W] -> [N, C, 1, 1], each plane's mean.
    /// - Throws: `NeuronError` for input that is not rank 4.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try Tensor.adaptiveAvgPool2d(x, outputSize: 1)) }
    /// PyTorch's class name, `AdaptiveAvgPool2d` (a global pool is its output size 1).
    public var typeName: String { "AdaptiveAvgPool2d" }
    /// PyTorch's repr: `output_size=1`.
    public var configurationDescription: String { "output_size=1" }
}

/// What the adaptive pooling layers share: the output size [OH, OW], validated, and no parameters.
public class AdaptivePool2D {
    /// The output's spatial size [OH, OW].
    public let outputSize: Size2D
    /// Unused: pooling behaves the same in training and evaluation.
    public var isTraining = true

    init(outputSize: Size2D, layer: String) throws {
        guard outputSize.height >= 1, outputSize.width >= 1 else {
            throw NeuronError.invalidArgument("\(layer): output size must be at least 1, got \(outputSize)")
        }
        self.outputSize = outputSize
    }

    /// PyTorch's repr: `output_size=7`.
    public var configurationDescription: String { "output_size=\(outputSize.reprValue)" }
}

/// Adaptive average pooling to a fixed output size: [N, C, H, W] -> [N, C, OH, OW]
/// (PyTorch's `nn.AdaptiveAvgPool2d(output_size)`), e.g. the 7x7 before VGG's classifier.
public final class AdaptiveAvgPool2D: AdaptivePool2D, Module {
    /// An adaptive average pool to `outputSize`.
    /// - Parameter outputSize: [OH, OW] (one Int for a square output).
    /// - Throws: `NeuronError.invalidArgument` for an output size below 1.
    public init(outputSize: Size2D) throws { try super.init(outputSize: outputSize, layer: "AdaptiveAvgPool2D") }
    /// x [N, C, H, W] -> [N, C, OH, OW].
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try Tensor.adaptiveAvgPool2d(x, outputSize: outputSize)) }
    /// PyTorch's class name, `AdaptiveAvgPool2d`.
    public var typeName: String { "AdaptiveAvgPool2d" }
}

/// Adaptive max pooling to a fixed output size: [N, C, H, W] -> [N, C, OH, OW], each output the
/// maximum of its window rows floor(i·H/OH) ..< ceil((i+1)·H/OH) (PyTorch's
/// `nn.AdaptiveMaxPool2d(output_size)`; `Tensor.adaptiveMaxPool2d(_:outputSize:returningIndices:)`
/// gives the indices).
public final class AdaptiveMaxPool2D: AdaptivePool2D, Module {
    /// An adaptive max pool to `outputSize`.
    /// - Parameter outputSize: [OH, OW] (one Int for a square output).
    /// - Throws: `NeuronError.invalidArgument` for an output size below 1.
    public init(outputSize: Size2D) throws { try super.init(outputSize: outputSize, layer: "AdaptiveMaxPool2D") }
    /// x [N, C, H, W] -> [N, C, OH, OW].
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try Tensor.adaptiveMaxPool2d(x, outputSize: outputSize)) }
    /// PyTorch's class name, `AdaptiveMaxPool2d`.
    public var typeName: String { "AdaptiveMaxPool2d" }
}
