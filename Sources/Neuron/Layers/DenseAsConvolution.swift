/// Sliding windows computed convolutionally (OverFeat): a dense layer that reads a C x H x W feature
/// map is the same function as a convolution whose kernel is that whole map, and every later dense
/// layer is a 1x1 convolution. Run on a larger image, the converted network yields one score vector
/// per window position in a single pass, sharing the overlapping computation.
extension Conv2D {
    /// The convolution equal to `linear` applied to a flattened [channels, height, width] map
    /// (flatten order c·H·W + h·W + w, PyTorch's `torch.flatten(x, 1)`): kernel height x width,
    /// `linear.outFeatures` output channels. Stride is the window step in the input of this layer.
    public convenience init(converting linear: Linear, inputChannels channels: Int, height: Int, width: Int, stride: Size2D = 1) throws {
        try Hyperparameter.require(channels >= 0 && height >= 1 && width >= 1,
                                   "a \(channels) x \(height) x \(width) map is not a feature map a convolution can read")
        let values = try? Sizes.product([channels, height, width], "")
        guard values == linear.inFeatures else {
            throw NeuronError.shapeMismatch("Linear(in: \(linear.inFeatures)) cannot read a \(channels) x \(height) x \(width) map (\(values.map(String.init) ?? "too many") values)")
        }
        try self.init(in: channels, out: linear.outFeatures, kernel: [height, width], stride: stride, bias: linear.bias != nil)
        weight.value = try linear.weight.withValue { try $0.reshaped([linear.outFeatures, channels, height, width]) }
        if let b = bias, let lb = linear.bias { b.value = lb.withValue { $0 } }
    }

    /// The 1x1 convolution equal to a dense layer applied at every position.
    public convenience init(converting linear: Linear) throws {
        try self.init(converting: linear, inputChannels: linear.inFeatures, height: 1, width: 1)
    }
}
