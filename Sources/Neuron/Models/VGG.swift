/// A small VGG-style network: blocks of (conv 3x3 → batch norm → ReLU) x `convsPerBlock` followed by
/// a 2x2 max-pool, one block per entry of `widths`, then global average pooling and a linear
/// classifier. Returned as a `Sequential`, so parameters are named `0.weight`, `1.running_mean`...
///
/// `VGG.small(inChannels: 1, widths: [16, 32], classes: 4)` suits 28 x 28 images.
public enum VGG {
    /// - Throws: `NeuronError.invalidArgument` for negative sizes, `convsPerBlock` < 1 or a dropout
    ///   probability outside [0, 1].
    public static func small(inChannels: Int, widths: [Int], convsPerBlock: Int = 1, classes: Int,
                             dropout: Float = 0) throws -> Sequential {
        try Hyperparameter.require(convsPerBlock >= 1, "VGG: convsPerBlock must be at least 1, got \(convsPerBlock)")
        var layers: [any Module] = []
        var channels = inChannels
        for width in widths {
            for _ in 0..<convsPerBlock {
                layers += [try Conv2D(in: channels, out: width, kernel: 3, padding: 1, bias: false), try BatchNorm2D(width), ReLU()]
                channels = width
            }
            layers.append(try MaxPool2D(kernel: 2))
        }
        layers += [GlobalAvgPool2D(), Flatten()]
        if dropout != 0 { layers.append(try Dropout(p: dropout)) }
        layers.append(try Linear(in: channels, out: classes))
        return Sequential(layers)
    }
}

extension VGG {
    /// The layers of torchvision's configurations: convolution widths, `nil` for a 2x2 max-pool.
    static let configurations: [String: [Int?]] = [
        "vgg16": [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil],
        "vgg19": [64, 64, nil, 128, 128, nil, 256, 256, 256, 256, nil, 512, 512, 512, 512, nil, 512, 512, 512, 512, nil],
    ]

    /// VGG-16 (configuration D, Simonyan and Zisserman 2014) exactly as torchvision builds it, so a
    /// `torchvision.models.vgg16` state_dict saved as safetensors loads without renaming
    /// (`features.0.weight` ... `features.28.bias`, `classifier.0.weight` ... `classifier.6.bias`).
    /// `includeClassifier: false` leaves out the 124M-parameter classifier (feature extraction, style
    /// transfer; load such weights with `strict: false` or without the `classifier.` keys).
    public static func vgg16(classes: Int = 1000, includeClassifier: Bool = true) throws -> VGGNetwork {
        try VGGNetwork(configuration: configurations["vgg16"]!, classes: classes, includeClassifier: includeClassifier)
    }

    /// VGG-19 (configuration E) as torchvision builds it: `features.0` ... `features.34`, the classifier as in
    /// `vgg16`. Gatys et al.'s style transfer uses its relu1_1 ... relu5_1 (`features.1, 6, 11, 20, 29`)
    /// and relu4_2 (`features.22`).
    public static func vgg19(classes: Int = 1000, includeClassifier: Bool = true) throws -> VGGNetwork {
        try VGGNetwork(configuration: configurations["vgg19"]!, classes: classes, includeClassifier: includeClassifier)
    }
}

/// torchvision's `VGG` module: `features` (3x3 convolutions with padding 1, each followed by ReLU, and 2x2
/// max-pools), `avgpool` (adaptive average pooling to 7x7) and `classifier` (Linear(25088, 4096), ReLU,
/// Dropout(0.5), Linear(4096, 4096), ReLU, Dropout(0.5), Linear(4096, classes)). Input `[N, 3, H, W]`
/// normalised with ImageNet's mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225).
///
/// Initialisation is torchvision's: convolution weights N(0, 2/fan_out) (Kaiming, fan-out mode), linear
/// weights N(0, 0.01²), every bias zero.
public final class VGGNetwork: Module {
    /// The convolution and max-pooling stack, torchvision's `features` (`features.0.weight`...):
    /// `[N, 3, H, W]` → `[N, 512, H/32, W/32]`.
    public let features: Sequential
    /// Adaptive average pooling to 7 × 7 before the classifier, torchvision's `avgpool`.
    public let avgpool: AdaptiveAvgPool2D
    /// `nil` when built without the classifier.
    public let classifier: Sequential?
    /// Training mode (the classifier's dropout active) or evaluation mode.
    public var isTraining = true

    /// `hidden` is the classifier's width (4096 in every torchvision VGG; smaller only in tests).
    init(configuration: [Int?], classes: Int, includeClassifier: Bool, hidden: Int = 4096) throws {
        var layers: [any Module] = []
        var channels = 3
        for width in configuration {
            if let width {
                let conv = try Conv2D(in: channels, out: width, kernel: 3, padding: 1)
                conv.weight.value = Tensor.normal(conv.weight.shape, std: (2 / Float(width * 9)).squareRoot())
                conv.bias?.value = Tensor.zeros([width])
                layers += [conv, ReLU()]
                channels = width
            } else {
                layers.append(try MaxPool2D(kernel: 2))
            }
        }
        features = Sequential(layers)
        avgpool = try AdaptiveAvgPool2D(outputSize: 7)
        if includeClassifier {
            let linears = [try Linear(in: channels * 49, out: hidden), try Linear(in: hidden, out: hidden), try Linear(in: hidden, out: classes)]
            for linear in linears {
                linear.weight.value = Tensor.normal(linear.weight.shape, std: 0.01)
                linear.bias?.value = Tensor.zeros([linear.outFeatures])
            }
            classifier = Sequential([linears[0], ReLU(), try Dropout(p: 0.5), linears[1], ReLU(), try Dropout(p: 0.5), linears[2]])
        } else {
            classifier = nil
        }
    }

    /// x `[N, 3, H, W]` -> logits `[N, classes]`.
    /// - Throws: `NeuronError.invalidArgument` when built without the classifier (use `features`).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard let classifier else {
            throw NeuronError.invalidArgument("this VGG was built without its classifier; call features(x) for feature maps")
        }
        return try classifier(try avgpool(try features(x)).flattened(startAxis: 1))
    }

    /// `features`, `avgpool` and, when built with it, `classifier`: torchvision's names.
    public var children: [(name: String, module: any Module)] {
        [("features", features), ("avgpool", avgpool)] + (classifier.map { [("classifier", $0)] } ?? [])
    }

    /// `VGG`, torchvision's class name.
    public var typeName: String { "VGG" }
}
