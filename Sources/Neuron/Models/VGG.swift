/// A small VGG-style network: blocks of (conv 3x3 → batch norm → ReLU) x `convsPerBlock` followed by
/// a 2x2 max-pool, one block per entry of `widths`, then global average pooling and a linear
/// classifier. Returned as a `Sequential`, so parameters are named `0.weight`, `1.running_mean`...
///
/// `VGG.small(inChannels: 1, widths: [16, 32], classes: 4)` suits 28 x 28 images.
public enum VGG {
    public static func small(inChannels: Int, widths: [Int], convsPerBlock: Int = 1, classes: Int,
                             dropout: Float = 0) -> Sequential {
        var layers: [any Module] = []
        var channels = inChannels
        for width in widths {
            for _ in 0..<convsPerBlock {
                layers += [Conv2D(in: channels, out: width, kernel: 3, padding: 1, bias: false), BatchNorm2D(width), ReLU()]
                channels = width
            }
            layers.append(MaxPool2D(kernel: 2))
        }
        layers += [GlobalAvgPool2D(), Flatten()]
        if dropout > 0 { layers.append(Dropout(p: dropout)) }
        layers.append(Linear(in: channels, out: classes))
        return Sequential(layers)
    }
}
