import Testing
@testable import Neuron

/// Central finite differences of L = Σ f(inputs) · R against the gradients `backward()` leaves on
/// each input. Differences are taken in float32 with a step large enough that rounding stays small
/// next to the truncation error, and the sums in double.
func checkGradients(_ inputs: [Tensor], step: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
                    sourceLocation: SourceLocation = #_sourceLocation,
                    _ f: ([Tensor]) throws -> Tensor) throws {
    let leaves = inputs.map { $0.requiringGrad() }
    let y = try f(leaves)
    var generator = RandomGenerator(seed: 99)
    let r = Tensor.normal(y.shape, using: &generator)
    try (y * r).sum().backward()

    func loss(_ xs: [Tensor]) throws -> Double {
        let out = try noGrad { try f(xs) }
        return zip(out.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    for (index, leaf) in leaves.enumerated() {
        let analytic = try #require(leaf.grad, "input \(index) received no gradient", sourceLocation: sourceLocation)
        var numeric = [Float](repeating: 0, count: leaf.count)
        for i in 0..<leaf.count {
            var plus = inputs, minus = inputs
            plus[index].withUnsafeMutableBufferPointer { $0[i] += step }
            minus[index].withUnsafeMutableBufferPointer { $0[i] -= step }
            numeric[i] = Float((try loss(plus) - loss(minus)) / (2 * Double(step)))
        }
        let expected = try Tensor(shape: leaf.shape, scalars: numeric)
        #expect(analytic.isClose(to: expected, atol: atol, rtol: rtol),
                "input \(index): analytic \(analytic.scalars.prefix(8)) vs numeric \(numeric.prefix(8))",
                sourceLocation: sourceLocation)
    }
}

/// Values drawn from a fixed seed.
func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var g = RandomGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &g)
}

/// |a − b| ≤ atol + rtol·|b| for every element, with the first mismatches and the largest errors on failure.
func expectClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-6, rtol: Float = 1e-5, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard a.shape == b.shape else {
        Issue.record("\(what): shape \(a.shape) vs expected \(b.shape)", sourceLocation: sourceLocation)
        return
    }
    let x = a.scalars, y = b.scalars
    var bad: [String] = []
    var maxAbs: Float = 0, maxRel: Float = 0
    for i in 0..<x.count {
        let d = abs(x[i] - y[i])
        if d.isFinite { maxAbs = max(maxAbs, d); if y[i] != 0 { maxRel = max(maxRel, d / abs(y[i])) } }
        let ok = d <= atol + rtol * abs(y[i]) || x[i] == y[i] || (x[i].isNaN && y[i].isNaN)
        if !ok && bad.count < 5 { bad.append("[\(i)] \(x[i]) vs \(y[i])") }
    }
    if !bad.isEmpty {
        Issue.record("\(what): mismatch \(bad.joined(separator: ", ")); max abs \(maxAbs), max rel \(maxRel)",
                     sourceLocation: sourceLocation)
    }
}
