import CKernels

// The costs of neural style transfer (Gatys, Ecker and Bethge 2015, in the notation of deeplearning.ai's
// course): a content cost that keeps the generated image's activations close to the content image's at one
// layer, and a style cost that matches the Gram matrices (channel correlations) of several layers.

extension Tensor {
    /// The Gram matrix of a feature map, G = F·Fᵀ with F the map seen as [C, K]: `[C, H, W]` or `[C, K]`
    /// gives `[C, C]`, a batch `[N, C, H, W]` gives `[N, C, C]`. PyTorch: `f = x.view(C, -1); f @ f.T`.
    ///
    /// Computed by a symmetric rank-K update in C (half the work of a matrix product, exactly symmetric);
    /// differentiable, with dF = (dG + dGᵀ)·F.
    /// - Throws: `NeuronError.shapeMismatch` for a tensor of rank below 2 or above 4.
    public func gramMatrix() throws -> Tensor {
        guard (2...4).contains(rank) else {
            throw NeuronError.shapeMismatch("gramMatrix expects a feature map [C, H, W], [C, K] or [N, C, H, W], got \(shapeString(shape))")
        }
        let batch = rank == 4 ? shape[0] : 1
        let c = rank == 4 ? shape[1] : shape[0]
        let k = batch * c == 0 ? 0 : count / (batch * c)
        let x = self
        let out = Tensor(uninitializedShape: rank == 4 ? [batch, c, c] : [c, c])
        let workspace = TensorStorage(count: nn_gram_forward_workspace_size(Int32(c), Int32(k)))
        for b in 0..<batch {
            nn_gram_forward(out.pointer + b * c * c, x.pointer + b * c * k, workspace.pointer, Int32(c), Int32(k))
        }
        return out.recorded("gram", inputs: [x]) { g in
            let dx = Tensor(uninitializedShape: x.shape)
            let scratch = TensorStorage(count: nn_gram_backward_workspace_size(Int32(c)))
            for b in 0..<batch {
                nn_gram_backward(dx.pointer + b * c * k, g.pointer + b * c * c, x.pointer + b * c * k, scratch.pointer,
                                 Int32(c), Int32(k))
            }
            return [dx]
        }
    }
}

/// One image's activations at one layer as `[C, H, W]`: accepts `[C, H, W]` or `[1, C, H, W]`.
func singleFeatureMap(_ a: Tensor, _ what: String) throws -> Tensor {
    if a.rank == 3 { return a }
    if a.rank == 4 && a.shape[0] == 1 { return try a.reshaped(Array(a.shape.dropFirst())) }
    throw NeuronError.shapeMismatch("\(what) expects one image's activations [C, H, W] or [1, C, H, W], got \(shapeString(a.shape))")
}

/// The content cost J_content = Σ (a(C) − a(G))² between the content image's activations `content` and
/// the generated image's `generated` at one layer, both `[C, H, W]` or `[1, C, H, W]` of the same shape.
/// Unnormalised, as in the golden reference; scale it with the content weight α. Differentiable in
/// `generated` (dJ/da(G) = 2 (a(G) − a(C))); `content` is a constant.
/// - Throws: `NeuronError.shapeMismatch` when the shapes differ or are not one image's activations.
public func contentCost(content: Tensor, generated: Tensor) throws -> Tensor {
    let c = try singleFeatureMap(content, "contentCost"), g = try singleFeatureMap(generated, "contentCost")
    guard c.shape == g.shape else {
        throw NeuronError.shapeMismatch("contentCost: content activations \(shapeString(content.shape)) and generated \(shapeString(generated.shape))")
    }
    return try mseLoss(g, c, reduction: .sum)
}

/// The style of one image at one layer: its Gram matrix divided by 2·nH·nW·nC of that image's activations,
/// computed once for the style image and compared with the generated image's at every step. Normalising
/// each Gram by its own map's size lets the style and generated images differ in size.
public struct StyleTarget {
    /// G / (2·nH·nW·nC), `[C, C]`.
    public let normalizedGram: Tensor

    /// The target of the activations `features` (`[C, H, W]` or `[1, C, H, W]`), as a constant.
    public init(features: Tensor) throws {
        normalizedGram = try noGrad { try StyleTarget.normalizedGram(features) }
    }

    /// C, the style layer's channel count.
    public var channels: Int { normalizedGram.shape[0] }

    /// G / (2·nH·nW·nC) of `features`, differentiable.
    static func normalizedGram(_ features: Tensor) throws -> Tensor {
        let a = try singleFeatureMap(features, "style cost")
        guard !a.isEmpty else { throw NeuronError.emptyInput("style cost of empty activations \(shapeString(features.shape))") }
        return try a.gramMatrix() / Float(2 * a.count)
    }
}

/// The style cost of one layer, J_style = Σ (G(S)/(2 nS) − G(G)/(2 nG))², with n = nH·nW·nC of each
/// image's activations; for images of one size it is 1/(2·nH·nW·nC)² · Σ (G(S) − G(G))². Differentiable
/// in `generated` (`[C, H, W]` or `[1, C, H, W]`).
/// - Throws: `NeuronError.shapeMismatch` when the channel counts differ.
public func styleCost(_ target: StyleTarget, generated: Tensor) throws -> Tensor {
    let a = try singleFeatureMap(generated, "styleCost")
    guard a.shape[0] == target.channels else {
        throw NeuronError.shapeMismatch("styleCost: the style activations have \(target.channels) channels, the generated \(shapeString(generated.shape)) have \(a.shape[0])")
    }
    return try (StyleTarget.normalizedGram(a) - target.normalizedGram).squared().sum()
}

/// The style cost of one layer between the style image's activations `style` and the generated image's.
public func styleCost(style: Tensor, generated: Tensor) throws -> Tensor {
    try styleCost(StyleTarget(features: style), generated: generated)
}

/// The style cost over several layers, Σ_l λ_l J_style(l): `targets[l]` against `generated[l]` with weight
/// `weights[l]` (deeplearning.ai's STYLE_LAYERS coefficients).
/// - Throws: `NeuronError.shapeMismatch` when the three lists differ in length or a layer's channels
///   differ; `NeuronError.emptyInput` for no layers.
public func styleCost(_ targets: [StyleTarget], generated: [Tensor], weights: [Float]) throws -> Tensor {
    guard targets.count == generated.count, targets.count == weights.count else {
        throw NeuronError.shapeMismatch("styleCost: \(targets.count) style targets, \(generated.count) generated activations and \(weights.count) weights")
    }
    guard !targets.isEmpty else { throw NeuronError.emptyInput("styleCost over no layers") }
    var total = Tensor(0)
    for (l, target) in targets.enumerated() {
        total = try total + styleCost(target, generated: generated[l]) * weights[l]
    }
    return total
}
