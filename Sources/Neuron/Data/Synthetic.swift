import Foundation

/// Generated datasets for demos and tests, deterministic from a generator.
public enum SyntheticData {
    /// Two interleaved spirals in the plane, a classic problem no linear model solves: points
    /// (x, y) [count, 2] with labels 0 and 1 (count/2 each), `turns` revolutions, Gaussian noise of
    /// standard deviation `noise`.
    public static func twoSpirals(count: Int, turns: Float = 1.5, noise: Float = 0.05,
                                  using generator: inout RandomGenerator) throws -> (points: Tensor, labels: [Int]) {
        guard count >= 2 else { throw NeuronError.invalidArgument("twoSpirals needs at least 2 points, got \(count)") }
        try Sizes.checkShape([count, 2], "twoSpirals points")
        var values = [Float](), labels = [Int]()
        values.reserveCapacity(2 * count)
        for i in 0..<count {
            let label = i % 2
            let t = Float(i / 2) / Float((count + 1) / 2)  // 0..1 along the arm
            let angle = t * turns * 2 * Float.pi + (label == 0 ? 0 : Float.pi)
            let radius = 0.1 + 0.9 * t
            values.append(radius * _cos(angle) + noise * generator.nextNormal())
            values.append(radius * _sin(angle) + noise * generator.nextNormal())
            labels.append(label)
        }
        return (try Tensor(shape: [count, 2], scalars: values), labels)
    }
}

private func _cos(_ x: Float) -> Float { Float(Foundation.cos(Double(x))) }
private func _sin(_ x: Float) -> Float { Float(Foundation.sin(Double(x))) }
