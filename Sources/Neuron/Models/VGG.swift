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
