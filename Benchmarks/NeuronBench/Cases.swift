import Foundation
import Neuron

extension BenchmarkCase {
    static var all: [BenchmarkCase] { [sgemmPeak] }

    /// 2048 x 2048 x 2048 matrix product.
    static var sgemmPeak: BenchmarkCase {
        BenchmarkCase(name: "sgemm_peak", flops: 2 * pow(2048.0, 3)) {
        var g = RandomGenerator(seed: 1)
        let a = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
        let b = Tensor.uniform([2048, 2048], low: -1, high: 1, using: &g)
        return { _ = try a.matmul(b) }
        }
    }
}
