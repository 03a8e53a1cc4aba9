/// LeNet-5 for 1 x 28 x 28 images, in the layout PyTorch tutorials use, so a PyTorch state_dict
/// (`conv1.weight`, ..., `fc3.bias`) loads directly:
/// conv1 (1→6, 5x5, padding 2) → ReLU → max-pool 2 → conv2 (6→16, 5x5) → ReLU → max-pool 2 →
/// flatten (16·5·5 = 400, index c·25 + h·5 + w) → fc1 (400→120) → ReLU → fc2 (120→84) → ReLU → fc3 (84→classes).
public final class LeNet5: Module {
    /// The convolutions: conv1 weight [6, inChannels, 5, 5], conv2 weight [16, 6, 5, 5].
    public let conv1: Conv2D, conv2: Conv2D
    /// The fully connected layers: fc1 [120, 400], fc2 [84, 120], fc3 [classes, 84].
    public let fc1: Linear, fc2: Linear, fc3: Linear
    /// Training or evaluation mode (LeNet-5 has no dropout or batch norm: both compute the same).
    public var isTraining = true

    /// - Throws: `NeuronError.invalidArgument` for a negative channel or class count.
    public init(inChannels: Int = 1, classes: Int = 10) throws {
        conv1 = try Conv2D(in: inChannels, out: 6, kernel: 5, padding: 2)
        conv2 = try Conv2D(in: 6, out: 16, kernel: 5)
        fc1 = try Linear(in: 400, out: 120)
        fc2 = try Linear(in: 120, out: 84)
        fc3 = try Linear(in: 84, out: classes)
    }

    /// x [N, inChannels, 28, 28] -> logits [N, classes].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let features = try features(x)
        return try fc3(try fc2(try fc1(features).relu()).relu())
    }

    /// The flattened convolutional features [N, 400] (PyTorch's `torch.flatten(pool2, 1)`).
    public func features(_ x: Tensor) throws -> Tensor {
        let pool1 = try Tensor.maxPool2d(try conv1(x).relu(), kernel: 2)
        let pool2 = try Tensor.maxPool2d(try conv2(pool1).relu(), kernel: 2)
        return try pool2.flattened(startAxis: 1)
    }
    // Children conv1 … fc3 are found by reflection, under their property names.
}
