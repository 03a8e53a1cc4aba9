import CKernels

extension Tensor {
    /// Validates a pooling window over x [N, C, H, W] and fills the kernel's parameter block.
    static func poolParameters(_ x: Tensor, kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool,
                               countIncludePad: Bool = true, op: String) throws -> nn_pool2d_params {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("\(op) expects input [N, C, H, W], got \(shapeString(x.shape))") }
        let s = stride ?? kernel
        guard kernel.height >= 1, kernel.width >= 1 else { throw NeuronError.invalidArgument("\(op): kernel must be at least 1, got \(kernel)") }
        guard s.height >= 1, s.width >= 1 else { throw NeuronError.invalidArgument("\(op): stride must be at least 1, got \(s)") }
        guard padding.height >= 0, padding.width >= 0, padding.height <= kernel.height / 2, padding.width <= kernel.width / 2 else {
            throw NeuronError.invalidArgument("\(op): padding \(padding) must be between 0 and half the kernel \(kernel)")
        }
        var p = nn_pool2d_params(n: Int32(x.shape[0]), c: Int32(x.shape[1]), h: Int32(x.shape[2]), w: Int32(x.shape[3]),
                                 kh: Int32(kernel.height), kw: Int32(kernel.width), stride_h: Int32(s.height), stride_w: Int32(s.width),
                                 pad_h: Int32(padding.height), pad_w: Int32(padding.width), ceil_mode: ceilMode ? 1 : 0,
                                 count_include_pad: countIncludePad ? 1 : 0)
        guard nn_pool2d_out_h(&p) >= 1, nn_pool2d_out_w(&p) >= 1 else {
            throw NeuronError.shapeMismatch("\(op): window \(kernel) is larger than the padded input of \(shapeString(x.shape))")
        }
        return p
    }

    /// Max pooling over windows of x [N, C, H, W] (PyTorch's `F.max_pool2d`; stride defaults to the
    /// window). Padding counts as -inf; among equal maxima the first in row-major order wins and gets
    /// the whole gradient. Also returns the flat index h·W + w of each maximum in its input plane.
    public static func maxPool2d(_ x: Tensor, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0],
                                 ceilMode: Bool = false) throws -> (values: Tensor, indices: IntTensor) {
        var p = try poolParameters(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, op: "max_pool2d")
        let outShape = [x.shape[0], x.shape[1], Int(nn_pool2d_out_h(&p)), Int(nn_pool2d_out_w(&p))]
        let out = Tensor(uninitializedShape: outShape)
        var indices = [Int64](repeating: 0, count: out.count)
        if out.count > 0 { nn_max_pool2d_forward(out.pointer, &indices, x.pointer, &p) }
        let values = out.recorded("max_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_max_pool2d_backward(dx.pointer, g.pointer, indices, &p)
            return [dx]
        }
        return (values, try IntTensor(shape: outShape, scalars: indices))
    }

    /// Average pooling (PyTorch's `F.avg_pool2d`); with `countIncludePad` (the default) padding
    /// counts in the divisor.
    public static func avgPool2d(_ x: Tensor, kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0],
                                 ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
        var p = try poolParameters(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode,
                                   countIncludePad: countIncludePad, op: "avg_pool2d")
        let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], Int(nn_pool2d_out_h(&p)), Int(nn_pool2d_out_w(&p))])
        if out.count > 0 { nn_avg_pool2d_forward(out.pointer, x.pointer, &p) }
        return out.recorded("avg_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_avg_pool2d_backward(dx.pointer, g.pointer, &p)
            return [dx]
        }
    }

    /// Adaptive average pooling to `outputSize` (PyTorch's `F.adaptive_avg_pool2d`): window i spans
    /// rows floor(i·H/oh) ..< ceil((i+1)·H/oh). Output size 1 is global average pooling.
    public static func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2D) throws -> Tensor {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("adaptive_avg_pool2d expects input [N, C, H, W], got \(shapeString(x.shape))") }
        guard outputSize.height >= 1, outputSize.width >= 1 else { throw NeuronError.invalidArgument("adaptive_avg_pool2d: output size must be at least 1, got \(outputSize)") }
        let (n, c, h, w) = (Int32(x.shape[0]), Int32(x.shape[1]), Int32(x.shape[2]), Int32(x.shape[3]))
        guard h > 0, w > 0 else { throw NeuronError.emptyInput("adaptive_avg_pool2d of an empty plane, input \(shapeString(x.shape))") }
        let (oh, ow) = (Int32(outputSize.height), Int32(outputSize.width))
        let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], outputSize.height, outputSize.width])
        if out.count > 0 { nn_adaptive_avg_pool2d_forward(out.pointer, x.pointer, n, c, h, w, oh, ow) }
        return out.recorded("adaptive_avg_pool2d", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            nn_adaptive_avg_pool2d_backward(dx.pointer, g.pointer, n, c, h, w, oh, ow)
            return [dx]
        }
    }
}

/// Max pooling layer (PyTorch's `nn.MaxPool2d`; stride defaults to the window).
public final class MaxPool2D: Module {
    public let kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool
    public var isTraining = true
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0], ceilMode: Bool = false) {
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.ceilMode = ceilMode
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode).values
    }
    public var typeName: String { "MaxPool2d" }
}

/// Average pooling layer (PyTorch's `nn.AvgPool2d`).
public final class AvgPool2D: Module {
    public let kernel: Size2D, stride: Size2D?, padding: Size2D, ceilMode: Bool, countIncludePad: Bool
    public var isTraining = true
    public init(kernel: Size2D, stride: Size2D? = nil, padding: Size2D = [0, 0], ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.avgPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad)
    }
    public var typeName: String { "AvgPool2d" }
}

/// Global average pooling: [N, C, H, W] -> [N, C, 1, 1] (PyTorch's `nn.AdaptiveAvgPool2d(1)`).
public final class GlobalAvgPool2D: Module {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try Tensor.adaptiveAvgPool2d(x, outputSize: 1) }
    public var typeName: String { "AdaptiveAvgPool2d" }
}
