import Foundation

/// Draws tokens from a model's logits: softmax(logits / temperature) over the `topK` largest logits
/// (all of them when `topK` is nil), with some tokens never drawn (by default `<UNK>`), from a seeded
/// generator, so the same seed gives the same text.
///
/// A temperature below 1 sharpens the distribution towards the likeliest tokens, above 1 flattens it.
/// Among equal logits at the top-k boundary the lower index is kept. (PyTorch has no such class; this
/// is the usual `torch.multinomial(softmax(logits / T))` loop with `torch.topk` filtering.)
public struct TokenSampler: Sendable, Equatable {
    /// T in softmax(logits / T): below 1 sharper, above 1 flatter.
    public let temperature: Float
    /// Draw only among the k largest logits; nil for all tokens.
    public let topK: Int?

    /// - Throws: `NeuronError.invalidArgument` for a temperature that is not a positive finite number,
    ///   or `topK` < 1.
    public init(temperature: Float = 1, topK: Int? = nil) throws {
        guard temperature > 0, temperature.isFinite else {
            throw NeuronError.invalidArgument("sampling temperature must be a positive finite number, got \(temperature) (use argmax for greedy decoding)")
        }
        if let k = topK, k < 1 {
            throw NeuronError.invalidArgument("sampling topK must be at least 1, got \(k)")
        }
        self.temperature = temperature
        self.topK = topK
    }

    /// The probability of each token under this sampler (zero outside the top k and for `excluded`).
    /// - Throws: `NeuronError.emptyInput` for no logits; `.invalidArgument` when every token is excluded
    ///   or an excluded index is out of range; `.nonFinite` for a NaN logit or when every candidate's
    ///   logit is -infinity.
    public func probabilities(_ logits: [Float], excluding excluded: Set<Int> = [Vocabulary.unknownIndex]) throws -> [Double] {
        guard !logits.isEmpty else { throw NeuronError.emptyInput("sampling from an empty vocabulary (no logits)") }
        if let bad = excluded.first(where: { $0 < 0 || $0 >= logits.count }) {
            throw NeuronError.invalidArgument("sampling: excluded token \(bad) is out of range for \(logits.count) logits")
        }
        if let i = logits.firstIndex(where: \.isNaN) {
            throw NeuronError.nonFinite("sampling: logit \(i) is NaN")
        }
        var candidates = logits.indices.filter { !excluded.contains($0) }
        guard !candidates.isEmpty else {
            throw NeuronError.invalidArgument("sampling: every one of the \(logits.count) tokens is excluded")
        }
        if let k = topK, k < candidates.count {
            candidates.sort { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
            candidates.removeLast(candidates.count - k)
        }
        let scaled = candidates.map { Double(logits[$0]) / Double(temperature) }
        let top = scaled.max()!
        guard top > -Double.infinity else {
            throw NeuronError.nonFinite("sampling: every candidate token has a logit of -infinity")
        }
        // +infinity logits share all the probability; otherwise a stable softmax.
        let weights = top == .infinity ? scaled.map { $0 == .infinity ? 1 : 0 } : scaled.map { Foundation.exp($0 - top) }
        let total = weights.reduce(0, +)
        var p = [Double](repeating: 0, count: logits.count)
        for (i, w) in zip(candidates, weights) { p[i] = w / total }
        return p
    }

    /// One token drawn from `probabilities(logits, excluding:)` with one uniform draw of `generator`.
    public func sample(_ logits: [Float], excluding excluded: Set<Int> = [Vocabulary.unknownIndex],
                       using generator: inout RandomGenerator) throws -> Int {
        let p = try probabilities(logits, excluding: excluded)
        let u = Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        var cumulative = 0.0
        var last = 0
        for (i, pi) in p.enumerated() where pi > 0 {
            cumulative += pi
            last = i
            if u < cumulative { return i }
        }
        // Rounding can leave the cumulative sum a hair below 1: the last candidate takes the rest.
        return last
    }
}
