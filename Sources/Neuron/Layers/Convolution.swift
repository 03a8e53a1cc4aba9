import CKernels

/// How a convolution is computed. Every algorithm gives the same result up to float rounding
/// (CKernels/README.md lists the measured errors) and is deterministic; PyTorch has no such switch
/// (its closest is `torch.backends.cudnn`'s algorithm search on GPUs).
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
    /// Chosen by shape: Winograd for 3x3 stride-1 convolutions with at least 32 channels on each side,
    /// else the direct kernel where it applies, else im2col.
    case automatic
    /// A direct convolution: kernels of at most 256 taps (strided ones read phase planes of the input,
    /// and their backward pass runs im2col), or depthwise (groups = channels).
    case direct
    /// im2col copies and OpenBLAS matrix products: any shape.
    case im2col
    /// Winograd F(2x2, 3x3): 3x3 kernels at stride 1, dilation 1, groups 1, any padding. The forward pass
    /// and the input gradient; the weight gradient, and a pass whose input holds Inf or NaN, run direct.
    case winograd

    var kernel: nn_conv2d_algorithm {
        switch self {
        case .automatic: return NN_CONV2D_AUTO
        case .direct: return NN_CONV2D_DIRECT
        case .im2col: return NN_CONV2D_IM2COL
        case .winograd: return NN_CONV2D_WINOGRAD
        }
    }

    /// What the algorithm needs, for the error thrown when it does not apply.
    var requirement: String {
        switch self {
        case .automatic, .im2col: return "nothing"
        case .direct: return "a kernel of at most 256 taps, or a depthwise convolution"
        case .winograd: return "a 3x3 kernel, stride 1, dilation 1 and groups 1"
        }
    }
}

extension Tensor {
    /// 2-D cross-correlation of x [N, C_in, H, W] with weight [C_out, C_in/groups, KH, KW] plus an
    /// optional bias [C_out] (PyTorch's `F.conv2d`), zero padding per side. Output [N, C_out, OH, OW].
    /// An input with C_in = 0 or an empty plane gives the bias at every output (an empty sum).
    /// `algorithm` forces how it is computed (the backward pass too); one that does not apply to these
    /// shapes throws `NeuronError.invalidArgument`.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2D = 1, padding: Padding2D = 0,
                              dilation: Size2D = 1, groups: Int = 1,
                              algorithm: ConvolutionAlgorithm = .automatic) throws -> Tensor {
        let (params, oh, ow) = try conv2dParameters(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        var p = params
        guard nn_conv2d_algorithm_applies(&p, algorithm.kernel) != 0 else {
            throw NeuronError.invalidArgument("conv2d: the \(algorithm) algorithm needs \(algorithm.requirement); got weight \(shapeString(weight.shape)), stride \(stride), dilation \(dilation), groups \(groups)")
        }
        let algo = algorithm.kernel
        let out = try Tensor.allocated([x.shape[0], weight.shape[0], oh, ow], op: "conv2d")
        if out.count > 0 {
            let workspace = try Sizes.workspace(nn_conv2d_workspace_size_with(&p, algo), op: "conv2d")
            nn_conv2d_forward_with(out.pointer, x.pointer, weight.pointer, bias?.pointer, workspace.pointer, &p, algo)
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded("conv2d", inputs: inputs) { g in
            let dx = x.requiresGrad ? Tensor(uninitializedShape: x.shape) : nil
            let dw = weight.requiresGrad ? Tensor.zeros(weight.shape) : nil
            let db = bias?.requiresGrad == true ? Tensor.zeros(bias!.shape) : nil
            if g.count > 0 {
                let scratch = try Sizes.workspace(nn_conv2d_workspace_size_with(&p, algo), op: "conv2d backward")
                nn_conv2d_backward_with(dx?.pointer, dw?.pointer, db?.pointer, g.pointer, x.pointer, weight.pointer, scratch.pointer, &p, algo)
            } else {
                dx.map { $0.pointer.update(repeating: 0, count: $0.count) }
            }
            return bias == nil ? [dx, dw] : [dx, dw, db]
        }
    }

    /// Validates the shapes and parameters of a convolution, computes the output size with checked
    /// arithmetic and fills the kernel's parameter block, whose `int` fields and the `int` index
    /// arithmetic of the kernels (padded planes, channel x tap counts) must stay within 32 bits.
    static func conv2dParameters(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2D, padding: Padding2D,
                                 dilation: Size2D, groups: Int) throws -> (params: nn_conv2d_params, outHeight: Int, outWidth: Int) {
        guard x.rank == 4 else { throw NeuronError.shapeMismatch("conv2d expects input [N, C, H, W], got \(shapeString(x.shape))") }
        guard weight.rank == 4 else { throw NeuronError.shapeMismatch("conv2d expects weight [C_out, C_in/groups, KH, KW], got \(shapeString(weight.shape))") }
        guard stride.height >= 1, stride.width >= 1 else { throw NeuronError.invalidArgument("conv2d: stride must be at least 1, got \(stride)") }
        guard dilation.height >= 1, dilation.width >= 1 else { throw NeuronError.invalidArgument("conv2d: dilation must be at least 1, got \(dilation)") }
        guard [padding.top, padding.bottom, padding.left, padding.right].allSatisfy({ $0 >= 0 }) else {
            throw NeuronError.invalidArgument("conv2d: padding must not be negative, got \(padding)")
        }
        let (n, cIn, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cOut, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        guard kh >= 1, kw >= 1 else {
            throw NeuronError.invalidArgument("conv2d: kernel must be at least 1x1, weight is \(shapeString(weight.shape))")
        }
        guard groups >= 1, cIn % groups == 0, cOut % groups == 0 else {
            throw NeuronError.invalidArgument("conv2d: groups \(groups) must divide input channels \(cIn) and output channels \(cOut)")
        }
        guard weight.shape[1] == cIn / groups else {
            // Names the channels per group: weight.shape[1] * groups could overflow for absurd groups.
            throw NeuronError.shapeMismatch("conv2d: input \(shapeString(x.shape)) has \(cIn / groups) channels per group (groups \(groups)) but weight \(shapeString(weight.shape)) expects \(weight.shape[1])")
        }
        if let bias, bias.shape != [cOut] {
            throw NeuronError.shapeMismatch("conv2d: bias \(shapeString(bias.shape)) for weight \(shapeString(weight.shape))")
        }
        let op = "conv2d"
        let paddedH = try Sizes.add(h, try Sizes.add(padding.top, padding.bottom, "\(op): padding"), "\(op): padded height")
        let paddedW = try Sizes.add(w, try Sizes.add(padding.left, padding.right, "\(op): padding"), "\(op): padded width")
        let spanH = try Sizes.add(try Sizes.multiply(dilation.height, kh - 1, "\(op): dilated kernel height"), 1, "\(op): dilated kernel height")
        let spanW = try Sizes.add(try Sizes.multiply(dilation.width, kw - 1, "\(op): dilated kernel width"), 1, "\(op): dilated kernel width")
        guard spanH <= paddedH, spanW <= paddedW else {
            throw NeuronError.shapeMismatch("conv2d: kernel \(kh)x\(kw) (dilation \(dilation), \(spanH)x\(spanW) wide) is larger than the padded input \(paddedH)x\(paddedW) of \(shapeString(x.shape))")
        }
        let oh = (paddedH - spanH) / stride.height + 1, ow = (paddedW - spanW) / stride.width + 1
        // A stride longer than the padded input gives one window, and a 1-tap axis ignores its
        // dilation: the kernels get equivalent values that fit in `int`.
        let strideH = Swift.min(stride.height, paddedH), strideW = Swift.min(stride.width, paddedW)
        let dilationH = kh == 1 ? 1 : dilation.height, dilationW = kw == 1 ? 1 : dilation.width
        // Every size the kernels compute in `int`: padded and dilated planes (with a stride of slack for
        // window arithmetic), plane areas, image-channel counts and channel x tap counts (x 4 for the
        // packed panels). Each is checked here so the C side cannot wrap.
        func sum(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (s, overflow) = a.addingReportingOverflow(b)
            return overflow ? nil : s
        }
        func product(_ factors: Int?...) -> Int? {
            var p = 1
            for f in factors {
                guard let f else { return nil }
                let (q, overflow) = p.multipliedReportingOverflow(by: f)
                if overflow { return nil }
                p = q
            }
            return p
        }
        let limits: [(String, Int?)] = [
            ("batch", n), ("input channels", cIn), ("height", h), ("width", w), ("output channels", cOut), ("groups", groups),
            ("padded height + stride", sum(paddedH, strideH)), ("padded width + stride", sum(paddedW, strideW)),
            ("height + dilated kernel", sum(h, spanH)), ("width + dilated kernel", sum(w, spanW)),
            ("padded plane", product(paddedH, paddedW)),
            ("dilated plane", product(sum(h, spanH), sum(w, spanW))),
            ("output plane", product(oh, ow)),
            ("batch x input channels", product(n, cIn)),
            ("batch x output channels", product(n, cOut)),
            ("4 x input channels x taps", product(4, cIn, kh, kw)),
            ("4 x output channels x taps", product(4, cOut, kh, kw)),
            ("weight elements", product(weight.shape[0], weight.shape[1], kh, kw)),
        ]
        for (name, value) in limits where value.map({ $0 > Int(Int32.max) }) ?? true {
            throw NeuronError.invalidArgument("conv2d: \(name) = \(value.map(String.init) ?? "more than \(Int.max)") exceeds the kernels' 32-bit index range (input \(shapeString(x.shape)), weight \(shapeString(weight.shape)), stride \(stride), padding \(padding), dilation \(dilation))")
        }
        let p = nn_conv2d_params(n: Int32(n), c_in: Int32(cIn), h: Int32(h), w: Int32(w),
                                 c_out: Int32(cOut), kh: Int32(kh), kw: Int32(kw),
                                 stride_h: Int32(strideH), stride_w: Int32(strideW),
                                 pad_top: Int32(padding.top), pad_bottom: Int32(padding.bottom),
                                 pad_left: Int32(padding.left), pad_right: Int32(padding.right),
                                 dil_h: Int32(dilationH), dil_w: Int32(dilationW), groups: Int32(groups))
        return (p, oh, ow)
    }
}

/// A 2-D convolution layer over NCHW input (PyTorch's `nn.Conv2d`).
///
/// Parameters: `weight` [out, in/groups, KH, KW] and `bias` [out]. Initialisation is PyTorch's:
/// kaiming-uniform with a = √5 over fan_in = in/groups · KH · KW, bias U(±1/√fan_in).
public final class Conv2D: Module {
    /// [out, in/groups, KH, KW], PyTorch's layout, so weights load from `state_dict`s unchanged.
    public let weight: Parameter
    /// [out], added to every output position; nil when built with `bias: false`.
    public let bias: Parameter?
    /// The step of the window [SH, SW]; OH = (H + padTop + padBottom - dilH·(KH - 1) - 1) / SH + 1.
    public let stride: Size2D
    /// Zeros added around the input (top, bottom, left, right), which may differ per side ("same" padding for even kernels).
    public let padding: Padding2D
    /// The spacing between kernel taps [DH, DW] (1: contiguous, PyTorch's default).
    public let dilation: Size2D
    /// Channel groups: each group of in/groups input channels feeds out/groups outputs (in = out = groups: depthwise).
    public let groups: Int
    /// How the convolution is computed (`.automatic` chooses by shape); forcing one that does not apply
    /// to the input throws when the layer is called.
    public var algorithm: ConvolutionAlgorithm
    /// Training mode; a convolution behaves the same in both modes.
    public var isTraining = true

    /// A 2-D convolution with PyTorch's initialisation.
    /// - Parameters:
    ///   - inChannels: C, the input's channel count.
    ///   - outChannels: C', the output's channel count.
    ///   - kernel: the window [KH, KW] (one Int for a square window).
    ///   - stride: the window's step [SH, SW], 1 by default.
    ///   - padding: zeros around the input (symmetric, or per side), 0 by default.
    ///   - dilation: the spacing between kernel taps, 1 by default.
    ///   - groups: channel groups (in = out = groups: depthwise), 1 by default.
    ///   - bias: whether to add a learned bias per output channel.
    ///   - algorithm: how to compute it; `.automatic` chooses by shape.
    /// - Throws: `NeuronError.invalidArgument` for negative channel counts, groups that do not divide
    ///   both, a kernel, stride or dilation below 1, negative padding, a weight over the allocation cap,
    ///   or an `algorithm` that cannot compute this kernel, stride, dilation and groups.
    public init(in inChannels: Int, out outChannels: Int, kernel: Size2D, stride: Size2D = 1, padding: Padding2D = 0,
                dilation: Size2D = 1, groups: Int = 1, bias: Bool = true,
                algorithm: ConvolutionAlgorithm = .automatic) throws {
        try Hyperparameter.require(inChannels >= 0 && outChannels >= 0,
                                   "Conv2D: channel counts must not be negative, got in \(inChannels), out \(outChannels)")
        try Hyperparameter.require(groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0,
                                   "Conv2D: groups \(groups) must divide in \(inChannels) and out \(outChannels)")
        try Hyperparameter.require(kernel.height >= 1 && kernel.width >= 1, "Conv2D: kernel must be at least 1, got \(kernel)")
        try Hyperparameter.require(stride.height >= 1 && stride.width >= 1, "Conv2D: stride must be at least 1, got \(stride)")
        try Hyperparameter.require(dilation.height >= 1 && dilation.width >= 1, "Conv2D: dilation must be at least 1, got \(dilation)")
        try Hyperparameter.require([padding.top, padding.bottom, padding.left, padding.right].allSatisfy { $0 >= 0 },
                                   "Conv2D: padding must not be negative, got \(padding)")
        let shape = [outChannels, inChannels / groups, kernel.height, kernel.width]
        try Sizes.checkShape(shape, "Conv2D weight")
        // With no input channels the weight is empty whatever `out` is; the bias is not.
        if bias { try Sizes.checkShape([outChannels], "Conv2D bias") }
        let fanIn = try Sizes.product([inChannels / groups, kernel.height, kernel.width], "Conv2D fan-in")
        weight = Parameter(Tensor.kaimingUniform(shape, fanIn: fanIn))
        let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        self.bias = bias ? Parameter(Tensor.uniform([outChannels], low: -bound, high: bound)) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.algorithm = algorithm
        let taps = kernel.height * kernel.width
        let applies: Bool
        switch algorithm {
        case .automatic, .im2col: applies = true
        case .direct: applies = taps <= 256 || (groups == inChannels && groups == outChannels)
        case .winograd: applies = kernel.height == 3 && kernel.width == 3 && stride.height == 1 && stride.width == 1
            && (dilation.height == 1 && dilation.width == 1) && groups == 1
        }
        try Hyperparameter.require(applies, "Conv2D: the \(algorithm) algorithm needs \(algorithm.requirement); got kernel \(kernel), stride \(stride), dilation \(dilation), groups \(groups)")
    }

    /// x [N, in, H, W] -> [N, out, OH, OW].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        traced(try Tensor.conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation,
                                 groups: groups, algorithm: algorithm))
    }

    /// PyTorch's repr: `1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)`, defaults left out
    /// after the stride as PyTorch does.
    public var configurationDescription: String {
        let shape = weight.shape
        var parts = ["\(shape[1] * groups), \(shape[0])", "kernel_size=\(Size2D(shape[2], shape[3]))", "stride=\(stride)"]
        if padding != 0 { parts.append("padding=\(padding)") }
        if dilation != 1 { parts.append("dilation=\(dilation)") }
        if groups != 1 { parts.append("groups=\(groups)") }
        if bias == nil { parts.append("bias=False") }
        return parts.joined(separator: ", ")
    }

    /// `weight` and, when present, `bias`.
    public var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// PyTorch's class name, `Conv2d`.
    public var typeName: String { "Conv2d" }
}
