import CKernels

extension Tensor {
    /// 2-D cross-correlation of x [N, C_in, H, W] with weight [C_out, C_in/groups, KH, KW] plus an
    /// optional bias [C_out] (PyTorch's `F.conv2d`), zero padding per side. Output [N, C_out, OH, OW].
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2D = 1, padding: Padding2D = 0,
                              dilation: Size2D = 1, groups: Int = 1) throws -> Tensor {
        var p = try conv2dParameters(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        let oh = Int(nn_conv2d_out_h(&p)), ow = Int(nn_conv2d_out_w(&p))
        let out = Tensor(uninitializedShape: [x.shape[0], weight.shape[0], oh, ow])
        let workspace = TensorStorage(count: nn_conv2d_workspace_size(&p))
        if out.count > 0 { nn_conv2d_forward(out.pointer, x.pointer, weight.pointer, bias?.pointer, workspace.pointer, &p) }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded("conv2d", inputs: inputs) { g in
            let dx = x.requiresGrad ? Tensor(uninitializedShape: x.shape) : nil
            let dw = weight.requiresGrad ? Tensor.zeros(weight.shape) : nil
            let db = bias?.requiresGrad == true ? Tensor.zeros(bias!.shape) : nil
            let scratch = TensorStorage(count: nn_conv2d_workspace_size(&p))
            if g.count > 0 {
                nn_conv2d_backward(dx?.pointer, dw?.pointer, db?.pointer, g.pointer, x.pointer, weight.pointer, scratch.pointer, &p)
            } else {
                dx.map { $0.pointer.update(repeating: 0, count: $0.count) }
            }
            return bias == nil ? [dx, dw] : [dx, dw, db]
        }
    }

    /// Validates the shapes of a convolution and fills the kernel's parameter block.
    static func conv2dParameters(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2D, padding: Padding2D,
                                 dilation: Size2D, groups: Int) throws -> nn_conv2d_params {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("conv2d expects input [N, C, H, W], got \(shapeString(x.shape))") }
        guard weight.rank == 4 else { throw NeuronError.shapeMismatch("conv2d expects weight [C_out, C_in/groups, KH, KW], got \(shapeString(weight.shape))") }
        guard stride.height >= 1, stride.width >= 1 else { throw NeuronError.invalidArgument("conv2d: stride must be at least 1, got \(stride)") }
        guard dilation.height >= 1, dilation.width >= 1 else { throw NeuronError.invalidArgument("conv2d: dilation must be at least 1, got \(dilation)") }
        guard [padding.top, padding.bottom, padding.left, padding.right].allSatisfy({ $0 >= 0 }) else {
            throw NeuronError.invalidArgument("conv2d: padding must not be negative, got \(padding)")
        }
        let cOut = weight.shape[0], cIn = x.shape[1]
        guard groups >= 1, cIn % groups == 0, cOut % groups == 0 else {
            throw NeuronError.invalidArgument("conv2d: groups \(groups) must divide input channels \(cIn) and output channels \(cOut)")
        }
        guard weight.shape[1] * groups == cIn else {
            throw NeuronError.shapeMismatch("conv2d: input \(shapeString(x.shape)) has \(cIn) channels but weight \(shapeString(weight.shape)) expects \(weight.shape[1] * groups) (groups \(groups))")
        }
        if let bias, bias.shape != [cOut] {
            throw NeuronError.shapeMismatch("conv2d: bias \(shapeString(bias.shape)) for weight \(shapeString(weight.shape))")
        }
        let p = nn_conv2d_params(n: Int32(x.shape[0]), c_in: Int32(cIn), h: Int32(x.shape[2]), w: Int32(x.shape[3]),
                                 c_out: Int32(cOut), kh: Int32(weight.shape[2]), kw: Int32(weight.shape[3]),
                                 stride_h: Int32(stride.height), stride_w: Int32(stride.width),
                                 pad_top: Int32(padding.top), pad_bottom: Int32(padding.bottom),
                                 pad_left: Int32(padding.left), pad_right: Int32(padding.right),
                                 dil_h: Int32(dilation.height), dil_w: Int32(dilation.width), groups: Int32(groups))
        var q = p
        guard nn_conv2d_out_h(&q) >= 1, nn_conv2d_out_w(&q) >= 1 else {
            throw NeuronError.shapeMismatch("conv2d: kernel \(weight.shape[2])x\(weight.shape[3]) (dilation \(dilation)) is larger than the padded input \(x.shape[2] + padding.top + padding.bottom)x\(x.shape[3] + padding.left + padding.right) of \(shapeString(x.shape))")
        }
        return p
    }
}

/// A 2-D convolution layer over NCHW input (PyTorch's `nn.Conv2d`).
///
/// Parameters: `weight` [out, in/groups, KH, KW] and `bias` [out]. Initialisation is PyTorch's:
/// kaiming-uniform with a = √5 over fan_in = in/groups · KH · KW, bias U(±1/√fan_in).
public final class Conv2D: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Size2D
    public let padding: Padding2D
    public let dilation: Size2D
    public let groups: Int
    public var isTraining = true

    public init(in inChannels: Int, out outChannels: Int, kernel: Size2D, stride: Size2D = 1, padding: Padding2D = 0,
                dilation: Size2D = 1, groups: Int = 1, bias: Bool = true) {
        precondition(groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2D: groups \(groups) must divide in \(inChannels) and out \(outChannels)")
        let fanIn = inChannels / groups * kernel.height * kernel.width
        weight = Parameter(Tensor.kaimingUniform([outChannels, inChannels / groups, kernel.height, kernel.width], fanIn: fanIn))
        let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        self.bias = bias ? Parameter(Tensor.uniform([outChannels], low: -bound, high: bound)) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// x [N, in, H, W] -> [N, out, OH, OW].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public var typeName: String { "Conv2d" }
}
