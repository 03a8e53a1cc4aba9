import Foundation
import Synchronization

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64). Same seed, same
/// sequence, on every machine. Its state can be saved and restored, so a checkpoint resumes the
/// exact random stream (shuffling, dropout masks, initialisation).
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The four xoshiro256** state words: what a checkpoint saves and `init(state:)` restores.
    public private(set) var state: [UInt64]

    /// The generator for `seed`: the four state words are SplitMix64's first four outputs from it.
    public init(seed: UInt64) {
        var sm = seed
        func splitMix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = [splitMix(), splitMix(), splitMix(), splitMix()]
    }

    /// Restores a generator from a saved `state` (four words, not all zero).
    public init(state: [UInt64]) throws {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else {
            throw NeuronError.invalidArgument("a generator state is four words, not all zero; got \(state)")
        }
        self.state = state
    }

    /// The next 64 random bits (`RandomNumberGenerator`), advancing the state.
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits (every value exactly representable as Float).
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal by Box–Muller (the cosine branch only, so the state stays four words).
    public mutating func nextNormal() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

/// The library's default generator, used when an API is not given one. `Random.seed(_:)` makes
/// everything that draws from it reproducible (PyTorch's `torch.manual_seed`).
///
/// `withGenerator(seed:_:)` gives a block a generator of its own (PyTorch's `fork_rng`): draws inside
/// it neither see nor disturb the process-wide one, so concurrent tasks stay reproducible.
public enum Random {
    final class Source: Sendable {
        let generator: Mutex<RandomGenerator>
        init(_ g: RandomGenerator) { generator = Mutex(g) }
    }

    private static let shared = Source(RandomGenerator(seed: 0x5EED))
    @TaskLocal private static var scoped: Source?

    private static var current: Source { scoped ?? shared }

    /// Reseeds the current default generator (the scoped one inside `withGenerator`).
    public static func seed(_ seed: UInt64) { current.generator.withLock { $0 = RandomGenerator(seed: seed) } }

    /// The current default generator's state, for checkpoints.
    public static var generator: RandomGenerator {
        get { current.generator.withLock { $0 } }
        set { current.generator.withLock { $0 = newValue } }
    }

    /// Runs `body` with exclusive use of the current default generator.
    public static func using<R>(_ body: (inout RandomGenerator) throws -> R) rethrows -> R {
        try current.generator.withLock { try body(&$0) }
    }

    /// Runs `body` with a default generator of its own, seeded with `seed`.
    public static func withGenerator<R>(seed: UInt64, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(Source(RandomGenerator(seed: seed))) { try body() }
    }
}

extension Tensor {
    // The factories below share the precondition of `Tensor(repeating:shape:)`: no negative
    // dimension, and the elements fit in memory.

    /// Uniform values in [low, high) from `generator`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.pointer[i] = low + (high - low) * generator.nextUniform() }
        return t
    }

    /// Normal values with the given mean and standard deviation from `generator`.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.pointer[i] = mean + std * generator.nextNormal() }
        return t
    }

    /// Uniform values from the default generator (`Random.seed`).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1) -> Tensor {
        Random.using { uniform(shape, low: low, high: high, using: &$0) }
    }

    /// Normal values from the default generator (`Random.seed`).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        Random.using { normal(shape, mean: mean, std: std, using: &$0) }
    }

    /// Glorot (Xavier) uniform: U(±sqrt(6 / (fanIn + fanOut))).
    public static func glorotUniform(_ shape: [Int], fanIn: Int, fanOut: Int) -> Tensor {
        let bound = Float(6.0 / (Double(fanIn) + Double(fanOut))).squareRoot()
        return uniform(shape, low: -bound, high: bound)
    }

    /// He (Kaiming) normal for ReLU: N(0, 2 / fanIn).
    public static func heNormal(_ shape: [Int], fanIn: Int) -> Tensor {
        normal(shape, std: Float(2.0 / Double(fanIn)).squareRoot())
    }

    /// PyTorch's `kaiming_uniform_(w, a)` with leaky-ReLU gain: U(±gain * sqrt(3 / fanIn)),
    /// gain = sqrt(2 / (1 + a²)). With a = √5 (the Linear and Conv default) the bound is 1/sqrt(fanIn).
    public static func kaimingUniform(_ shape: [Int], fanIn: Int, a: Float = Float(5).squareRoot()) -> Tensor {
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(Swift.max(fanIn, 1))).squareRoot()
        return uniform(shape, low: -bound, high: bound)
    }
}
