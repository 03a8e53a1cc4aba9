import Foundation

/// A frozen CNN whose activations define the costs of neural style transfer: the output of layer
/// `contentLayer` of `network` for the content cost, and those of `styleLayers` (weighted by `styleWeights`)
/// for the style cost. Images are `[1, 3, H, W]` RGB in [0, 1]; each channel is normalised as
/// (x − inputMean) / inputStd before the first layer.
///
/// The network's parameters are frozen (`requiresGrad = false`) and it runs in evaluation mode: the
/// optimisation changes the image's pixels only.
public struct StyleFeatureExtractor {
    /// The CNN, e.g. the convolutional part of VGG-19 (`[1, 3, H, W]` in), frozen and in evaluation mode.
    public let network: Sequential
    /// Index into `network.layers` whose output is the content activation.
    public let contentLayer: Int
    /// Indices into `network.layers` whose outputs carry the style.
    public let styleLayers: [Int]
    /// λ_l for each style layer (deeplearning.ai's STYLE_LAYERS coefficients).
    public let styleWeights: [Float]
    /// The per-channel mean (R, G, B) subtracted before the first layer (ImageNet's for torchvision's VGG).
    public let inputMean: [Float]
    /// The per-channel standard deviation (R, G, B) divided by before the first layer.
    public let inputStd: [Float]

    /// - Throws: `NeuronError.invalidArgument` for a layer index outside the network, no style layers, a
    ///   weight count that differs from the layer count, or a mean/std that is not three values (std > 0).
    public init(network: Sequential, contentLayer: Int, styleLayers: [Int], styleWeights: [Float],
                inputMean: [Float] = [0.5, 0.5, 0.5], inputStd: [Float] = [0.25, 0.25, 0.25]) throws {
        let layers = network.layers.count
        guard !styleLayers.isEmpty, styleWeights.count == styleLayers.count else {
            throw NeuronError.invalidArgument("StyleFeatureExtractor: \(styleLayers.count) style layers with \(styleWeights.count) weights (needs at least one layer and one weight per layer)")
        }
        if let bad = (styleLayers + [contentLayer]).first(where: { $0 < 0 || $0 >= layers }) {
            throw NeuronError.invalidArgument("StyleFeatureExtractor: layer index \(bad) is outside the network's \(layers) layers")
        }
        guard inputMean.count == 3, inputStd.count == 3, inputStd.allSatisfy({ $0 > 0 }) else {
            throw NeuronError.invalidArgument("StyleFeatureExtractor: input mean and std must be three values per RGB channel (std > 0), got \(inputMean) and \(inputStd)")
        }
        self.network = network
        self.contentLayer = contentLayer
        self.styleLayers = styleLayers
        self.styleWeights = styleWeights
        self.inputMean = inputMean
        self.inputStd = inputStd
        network.freeze()
        network.eval()
    }

    /// The content activation and the style activations of `image` `[1, 3, H, W]`; the network runs only as
    /// far as the deepest layer used. Differentiable in `image`.
    public func activations(_ image: Tensor) throws -> (content: Tensor, style: [Tensor]) {
        guard image.rank == 4, image.shape[1] == 3 else {
            throw NeuronError.shapeMismatch("StyleFeatureExtractor expects an RGB image [N, 3, H, W], got \(shapeString(image.shape))")
        }
        let mean = try Tensor(shape: [1, 3, 1, 1], scalars: inputMean), std = try Tensor(shape: [1, 3, 1, 1], scalars: inputStd)
        var x = try (image - mean) / std
        var content: Tensor?
        var style: [Int: Tensor] = [:]
        let last = max(contentLayer, styleLayers.max()!)
        for (i, layer) in network.layers.enumerated() where i <= last {
            x = try layer(x)
            if i == contentLayer { content = x }
            if styleLayers.contains(i) { style[i] = x }
        }
        return (content!, styleLayers.map { style[$0]! })
    }

    /// The default extractor, which needs no download: a CNN with random filters, which already captures
    /// texture and colour statistics well (Ustyuzhaninov, Brendel, Gatys and Bethge 2016; He, Wang and
    /// Hopcroft 2016). Four stages of 3x3 convolution (32, 64, 128, 256 channels, Kaiming-normal weights
    /// N(0, 2/fan_in) from `seed`, zero bias) and ReLU, separated by 2x2 average pools; the style is read
    /// after every ReLU (equal weights), the content after the second.
    public static func randomFilters(seed: UInt64 = 7) throws -> StyleFeatureExtractor {
        var generator = RandomGenerator(seed: seed)
        var layers: [any Module] = []
        var channels = 3
        for (stage, width) in [32, 64, 128, 256].enumerated() {
            if stage > 0 { layers.append(try AvgPool2D(kernel: 2)) }
            let conv = try Conv2D(in: channels, out: width, kernel: 3, padding: 1)
            conv.weight.value = Tensor.normal(conv.weight.shape, std: (2 / Float(channels * 9)).squareRoot(), using: &generator)
            conv.bias?.value = Tensor.zeros([width])
            layers += [conv, ReLU()]
            channels = width
        }
        return try StyleFeatureExtractor(network: Sequential(layers), contentLayer: 4, styleLayers: [1, 4, 7, 10],
                                         styleWeights: [0.25, 0.25, 0.25, 0.25])
    }

    /// Gatys et al.'s choice on torchvision's VGG-19 (`VGG.vgg19`, ImageNet weights loaded by the caller):
    /// style from relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (`features.1, 6, 11, 20, 29`, weight 0.2
    /// each), content from relu4_2 (`features.22`), ImageNet input normalisation.
    public static func vgg19(_ vgg: VGGNetwork) throws -> StyleFeatureExtractor {
        try StyleFeatureExtractor(network: vgg.features, contentLayer: 22, styleLayers: [1, 6, 11, 20, 29],
                                  styleWeights: [0.2, 0.2, 0.2, 0.2, 0.2], inputMean: [0.485, 0.456, 0.406], inputStd: [0.229, 0.224, 0.225])
    }

    /// The same layers on VGG-16: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (`features.1, 6, 11, 18, 25`),
    /// content from relu4_2 (`features.20`).
    public static func vgg16(_ vgg: VGGNetwork) throws -> StyleFeatureExtractor {
        try StyleFeatureExtractor(network: vgg.features, contentLayer: 20, styleLayers: [1, 6, 11, 18, 25],
                                  styleWeights: [0.2, 0.2, 0.2, 0.2, 0.2], inputMean: [0.485, 0.456, 0.406], inputStd: [0.229, 0.224, 0.225])
    }
}

/// Neural style transfer by pixel optimisation (Gatys, Ecker and Bethge 2015): the generated image G starts
/// from the content image plus noise and its pixels are optimised with Adam to minimise
/// J(G) = α J_content(C, G) + β J_style(S, G) + γ TV(G), the feature extractor frozen. J_content is
/// deeplearning.ai's, 1/(4 nH nW nC) Σ (a(C) − a(G))² at the content layer; J_style the weighted sum of the
/// per-layer style costs (`styleCost`); TV the total variation Σ (G[h+1, w] − G[h, w])² + (G[h, w+1] − G[h, w])².
/// Pixels are clamped to [0, 1] after every step.
public struct StyleTransfer {
    /// Adam steps on the pixels.
    public var steps = 300
    /// Adam's learning rate on the pixels (in units of [0, 1] intensity).
    public var learningRate: Float = 0.05
    /// α.
    public var contentWeight: Float = 50
    /// β.
    public var styleWeight: Float = 1e5
    /// γ; 0 leaves the total-variation term out.
    public var totalVariationWeight: Float = 0
    /// Standard deviation of the Gaussian noise added to the content image to start from.
    public var initialNoise: Float = 0.1
    /// Seeds the starting noise, so the same settings give the same image.
    public var seed: UInt64 = 0

    /// The defaults above; set the properties to change them.
    public init() {}

    /// The costs after one step (those of the image the step started from).
    public struct Progress: Sendable {
        /// The step, from 1.
        public var step: Int
        /// J_content, J_style, TV and the weighted total J(G), unweighted except `total`.
        public var content: Float, style: Float, totalVariation: Float, total: Float
    }

    /// Generates an image with the content of `content` and the style of `style`.
    ///
    /// Both images are `[1, C, H, W]` or `[C, H, W]` with values in [0, 1] and C = 3 (RGB) or C = 1 (grey,
    /// repeated to three channels); their sizes may differ (each Gram is normalised by its own map's size).
    /// The result has the content image's size. `progress` is called after every step.
    /// - Throws: `NeuronError.shapeMismatch` for an image that is not one grey or RGB image;
    ///   `NeuronError.invalidArgument` for a negative weight, a non-positive learning rate or steps < 1;
    ///   `NeuronError.nonFinite` when the cost becomes NaN or infinite.
    public func run(content: Tensor, style: Tensor, extractor: StyleFeatureExtractor,
                    progress: (Progress) -> Void = { _ in }) throws -> (image: Tensor, history: [Progress]) {
        guard steps >= 1, learningRate > 0 else {
            throw NeuronError.invalidArgument("StyleTransfer needs steps >= 1 and a positive learning rate, got \(steps) and \(learningRate)")
        }
        guard contentWeight >= 0, styleWeight >= 0, totalVariationWeight >= 0, initialNoise >= 0 else {
            throw NeuronError.invalidArgument("StyleTransfer: weights and noise must be >= 0, got α \(contentWeight), β \(styleWeight), γ \(totalVariationWeight), noise \(initialNoise)")
        }
        let contentImage = try StyleTransfer.rgbImage(content, "content"), styleImage = try StyleTransfer.rgbImage(style, "style")
        let (contentTarget, styleTargets) = try noGrad {
            let c = try extractor.activations(contentImage).content
            let s = try extractor.activations(styleImage).style.map { try StyleTarget(features: $0) }
            return (c, s)
        }
        let contentScale = 1 / Float(4 * contentTarget.count)
        var generator = RandomGenerator(seed: seed)
        let start = try (contentImage + Tensor.normal(contentImage.shape, std: initialNoise, using: &generator)).clamped(min: 0, max: 1)
        let pixels = Parameter(start)
        let optimizer = try Adam([("image", pixels)], lr: learningRate)
        var history: [Progress] = []
        for step in 1...steps {
            optimizer.zeroGrad()
            let image = pixels.value
            let (a, s) = try extractor.activations(image)
            let jContent = try contentCost(content: contentTarget, generated: a) * contentScale
            let jStyle = try styleCost(styleTargets, generated: s, weights: extractor.styleWeights)
            var total = try jContent * contentWeight + jStyle * styleWeight
            var tv: Float = 0
            if totalVariationWeight > 0 {
                let variation = try totalVariation(image)
                tv = try variation.item()
                total = try total + variation * totalVariationWeight
            }
            try checkFinite(total, "style transfer")
            try total.backward()
            try optimizer.step()
            pixels.update { p in for i in p.indices { p[i] = min(max(p[i], 0), 1) } }
            let record = Progress(step: step, content: try jContent.item(), style: try jStyle.item(), totalVariation: tv, total: try total.item())
            history.append(record)
            progress(record)
        }
        return (pixels.withValue { $0 }, history)
    }

    /// One image as `[1, 3, H, W]`: a grey image's channel is repeated.
    static func rgbImage(_ image: Tensor, _ what: String) throws -> Tensor {
        let x = image.rank == 3 ? try image.unsqueezed(axis: 0) : image
        guard x.rank == 4, x.shape[0] == 1, x.shape[1] == 1 || x.shape[1] == 3, x.shape[2] > 0, x.shape[3] > 0 else {
            throw NeuronError.shapeMismatch("style transfer: the \(what) image must be one grey or RGB image [1, C, H, W] or [C, H, W] with C = 1 or 3, got \(shapeString(image.shape)) (\(image.rank >= 3 ? "\(image.shape[image.rank - 3]) channels" : "not an image"))")
        }
        return x.shape[1] == 3 ? x.detached() : try Tensor.concatenate([x, x, x], axis: 1).detached()
    }
}

/// The total variation of images `[N, C, H, W]`: Σ (x[h+1, w] − x[h, w])² + Σ (x[h, w+1] − x[h, w])², a
/// smoothness penalty for generated images; differentiable. Computed as two depthwise convolutions with
/// difference kernels.
public func totalVariation(_ images: Tensor) throws -> Tensor {
    guard images.rank == 4 else { throw NeuronError.shapeMismatch("totalVariation expects [N, C, H, W], got \(shapeString(images.shape))") }
    let c = images.shape[1]
    let vertical = try Tensor(shape: [c, 1, 2, 1], scalars: Array(repeating: [-1, 1], count: c).flatMap { $0 })
    let horizontal = try Tensor(shape: [c, 1, 1, 2], scalars: Array(repeating: [-1, 1], count: c).flatMap { $0 })
    var total = Tensor(0)
    if images.shape[2] > 1 { total = try total + Tensor.conv2d(images, weight: vertical, bias: nil, groups: c).squared().sum() }
    if images.shape[3] > 1 { total = try total + Tensor.conv2d(images, weight: horizontal, bias: nil, groups: c).squared().sum() }
    return total
}
