/// Random shapes, values and parameters, often invalid on purpose.
import Foundation

/// How the elements of an input are drawn. Every regime keeps exact float32 values: the reference
/// reads the same floats the library does.
enum ValueRegime: String, CaseIterable {
    /// Uniform in [-2, 2] with some exact zeros.
    case normal
    /// Small integers in [-3, 3]: ties for max and argmax, exact zeros for relu, abs and sign.
    case integers
    /// Mostly normal with NaN, ±Inf, ±0, values near the float32 limits and subnormals mixed in.
    case special
    /// Magnitudes log-uniform in 2^-30 ... 2^30.
    case wide
    /// Positive, in [0.01, 1): probabilities, variances.
    case positive
}

/// Values that stress float edge cases.
let specialValues: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                              1e30, -1e30, .leastNormalMagnitude, -.leastNormalMagnitude, .leastNonzeroMagnitude, 1, -1, 0.5]

extension FuzzRandom {
    mutating func regime() -> ValueRegime {
        [ValueRegime.normal, .integers, .special, .wide][weighted([55, 15, 20, 10])]
    }

    mutating func value(_ regime: ValueRegime) -> Float {
        switch regime {
        case .normal:
            return chance(0.05) ? 0 : Float(unit() * 4 - 2)
        case .integers:
            return Float(int(-3...3))
        case .special:
            return chance(0.15) ? pick(specialValues) : Float(unit() * 4 - 2)
        case .wide:
            let m = Float(exp2(unit() * 60 - 30))
            return chance(0.5) ? m : -m
        case .positive:
            return Float(0.01 + unit() * 0.99)
        }
    }

    mutating func values(_ count: Int, _ regime: ValueRegime) -> [Float] {
        // Inputs stay small; a huge request is a generator bug (a wild size on a tensor that is not empty).
        precondition(count <= 1 << 22, "the generator asked for \(count) values")
        return (0..<count).map { _ in value(regime) }
    }

    /// A small dimension: mostly 1 to 5, sometimes 0 (empty tensors are values) or up to 9.
    mutating func dim() -> Int {
        [0, 1, int(2...5), int(6...9)][weighted([8, 20, 60, 12])]
    }

    /// A shape of `rank` small dimensions whose element count stays at most `limit`.
    mutating func shape(rank: Int, limit: Int = 2048) -> [Int] {
        var s = (0..<rank).map { _ in dim() }
        while s.reduce(1, *) > limit, let i = s.indices.max(by: { s[$0] < s[$1] }) { s[i] = Swift.max(1, s[i] / 2) }
        return s
    }

    mutating func rank(_ range: ClosedRange<Int> = 0...4) -> Int { int(range) }

    /// An integer parameter (stride, padding, size, axis...): usually from `typical`, sometimes zero, negative,
    /// or huge (near 2^31, 2^32, 2^62, Int.max).
    mutating func wild(_ typical: ClosedRange<Int>, wildness: Double = 0.12) -> Int {
        guard chance(wildness) else { return int(typical) }
        return pick(wildInts)
    }
}

let wildInts: [Int] = [0, -1, -2, -3, 1 << 20, (1 << 30) - 1, 1 << 30, Int(Int32.max), 1 << 31, (1 << 32) - 1, 1 << 32,
                       (1 << 31) + 1, 1 << 62, Int.max, Int.min, Int(Int32.min), -(1 << 31) - 1, 46341, 65536]

/// Describes a shape the way the report prints it.
func str(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
