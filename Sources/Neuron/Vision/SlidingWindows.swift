/// A window classifier run over every window position of a larger image in one convolutional pass
/// (OverFeat's convolutional sliding windows).
///
/// The classifier is a `Sequential` that reads [N, C, windowHeight, windowWidth] images: convolutions,
/// pooling and element-wise layers, then `Flatten`, then dense layers with element-wise layers between
/// them. The dense layer after `Flatten` becomes a convolution whose kernel is the whole feature map
/// (`Conv2D(converting:inputChannels:height:width:)`), each later dense layer a 1x1 convolution, and a
/// final `Softmax`/`LogSoftmax` acts on the channel axis. The converted network shares the classifier's
/// parameters. On a larger image its output [N, classes, OH, OW] holds at (i, j) the classifier's output
/// for the window whose top-left corner is (j · stride.width, i · stride.height), where the stride is the
/// product of the convolution and pooling strides before `Flatten`. Every overlapping window's shared
/// computation is done once. The scores equal cropping and classifying each window exactly when no layer
/// before `Flatten` pads (padding sees the neighbouring pixels in the large image, zeros in a crop).
public final class SlidingWindowClassifier {
    /// The fully convolutional network.
    public let network: Sequential
    /// The classifier's input size.
    public let window: Size2D
    /// The step between neighbouring windows, in pixels.
    public let stride: Size2D
    /// The classifier's input channels.
    public let channels: Int

    /// - Parameters:
    ///   - classifier: the window classifier, as described above.
    ///   - window: its input height and width.
    ///   - channels: its input channels.
    /// - Throws: `NeuronError.invalidArgument` when the classifier has no `Flatten` followed by a
    ///   `Linear`, or a layer after `Flatten` that has no convolutional equivalent here; errors of the
    ///   classifier itself on a window-sized input.
    public init(_ classifier: Sequential, window: Size2D, channels: Int) throws {
        let layers = classifier.layers
        guard let flatten = layers.firstIndex(where: { $0 is Flatten }), flatten + 1 < layers.count, layers[flatten + 1] is Linear else {
            throw NeuronError.invalidArgument("sliding windows: the classifier needs a Flatten followed by a Linear layer")
        }
        let features = Array(layers[..<flatten])
        // The feature map the first dense layer reads, from a window-sized input.
        let wasTraining = classifier.isTraining
        classifier.eval()
        defer { classifier.train(wasTraining) }
        let map = try noGrad { try Sequential(features)(Tensor.zeros([1, channels, window.height, window.width])) }
        guard map.rank == 4 else {
            throw NeuronError.invalidArgument("sliding windows: the layers before Flatten give \(shapeString(map.shape)), not a feature map [1, C, H, W]")
        }
        var converted: [any Module] = features
        let first = layers[flatten + 1] as! Linear
        converted.append(try Conv2D(converting: first, inputChannels: map.shape[1], height: map.shape[2], width: map.shape[3]))
        for layer in layers[(flatten + 2)...] {
            switch layer {
            case let linear as Linear: converted.append(try Conv2D(converting: linear))
            case is Softmax: converted.append(Softmax(axis: 1))
            case is LogSoftmax: converted.append(LogSoftmax(axis: 1))
            case is ReLU, is LeakyReLU, is Sigmoid, is Tanh, is Dropout: converted.append(layer)
            default:
                throw NeuronError.invalidArgument("sliding windows: \(layer.typeName) after Flatten has no convolutional equivalent here")
            }
        }
        var step = Size2D(1, 1)
        for layer in features {
            let s: Size2D
            switch layer {
            case let conv as Conv2D: s = conv.stride
            case let pool as MaxPool2D: s = pool.stride ?? pool.kernel
            case let pool as AvgPool2D: s = pool.stride ?? pool.kernel
            default: s = Size2D(1, 1)
            }
            step = Size2D(step.height * s.height, step.width * s.width)
        }
        network = Sequential(converted)
        self.window = window
        self.stride = step
        self.channels = channels
    }

    /// The classifier's outputs for every window of `images` [N, C, H, W] (H, W at least the window),
    /// as scores [N, classes, OH, OW], and the windows as pixel boxes in row-major order of (i, j): window
    /// i · OW + j is (j · stride.width, i · stride.height) + the window size. Run in evaluation mode.
    /// - Throws: `NeuronError.shapeMismatch` when images are not [N, channels, H, W] with H, W at least
    ///   the window.
    public func scores(_ images: Tensor) throws -> (scores: Tensor, windows: Boxes<Corners, Pixels>) {
        guard images.rank == 4, images.shape[1] == channels, images.shape[2] >= window.height, images.shape[3] >= window.width else {
            throw NeuronError.shapeMismatch("sliding windows: images must be [N, \(channels), H, W] with H >= \(window.height) and W >= \(window.width), got \(shapeString(images.shape))")
        }
        let wasTraining = network.isTraining
        network.eval()
        defer { network.train(wasTraining) }
        let out = try noGrad { try network(images) }
        let (rows, columns) = (out.shape[2], out.shape[3])
        var windows: [Box<Corners, Pixels>] = []
        windows.reserveCapacity(rows * columns)
        for i in 0..<rows {
            for j in 0..<columns {
                let x = Float(j * stride.width), y = Float(i * stride.height)
                windows.append(Box(x1: x, y1: y, x2: x + Float(window.width), y2: y + Float(window.height)))
            }
        }
        return (out, Boxes(windows))
    }
}
