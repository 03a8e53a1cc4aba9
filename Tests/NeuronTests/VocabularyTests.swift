import Foundation
import Testing
@testable import Neuron

/// Vocabularies at both levels (order, cut-off, encode/decode, files) and the token sampler
/// (distribution, top-k, exclusions, seeds, bad input).
@Suite struct VocabularyTests {
    @Test func characterLevelOrdersByFrequencyThenCodePoint() throws {
        let v = try Vocabulary(level: .character, text: "abracadabra!\n")
        // a×5, b×2, r×2, c×1, d×1, !×1, \n×1: ties in code-point order ("\n" < "!" < "c" < "d").
        #expect(v.tokens == ["<EOS>", "<UNK>", "a", "b", "r", "\n", "!", "c", "d"])
        #expect(v.count == 9)
        #expect(v.encode("cab?") == [7, 2, 3, 1])
        #expect(v.encode("ra", appendingEndOfSequence: true) == [4, 2, 0])
        #expect(try v.decode(v.encode("abracadabra!\n")) == "abracadabra!\n")
        #expect(try v.decode([2, 1, 0]) == "a<UNK><EOS>")
    }

    @Test func minimumFrequencyCutsRareTokens() throws {
        let v = try Vocabulary(level: .character, text: "aaabbc", minFrequency: 2)
        #expect(v.tokens == ["<EOS>", "<UNK>", "a", "b"])
        #expect(v.encode("abc") == [2, 3, 1])
        #expect(!v.contains("c") && v.contains("<UNK>"))
    }

    @Test func wordLevelSplitsPunctuationAndRejoins() throws {
        #expect(Vocabulary.words(in: "Don't panic! (Really.)  42\tways") == ["Don't", "panic", "!", "(", "Really", ".", ")", "42", "ways"])
        let v = try Vocabulary(level: .word, text: "the cat sat. the dog sat, the end.")
        #expect(v.tokens == ["<EOS>", "<UNK>", "the", ".", "sat", ",", "cat", "dog", "end"])
        let ids = v.encode("the bird sat.", appendingEndOfSequence: true)
        #expect(ids == [2, 1, 4, 3, 0])
        #expect(try v.decode(Array(ids.dropLast())) == "the <UNK> sat.")
        let text = "the cat (the dog) sat, the end."
        #expect(try Vocabulary(level: .word, text: text).decode(try Vocabulary(level: .word, text: text).encode(text)) == text)
    }

    @Test func sameCorpusSameIndices() throws {
        let text = (0..<200).map { "w\($0 % 17) x\($0 % 5)" }.joined(separator: " ")
        let a = try Vocabulary(level: .word, text: text), b = try Vocabulary(level: .word, text: text)
        #expect(a == b)
        #expect(a.tokens.prefix(7) == ["<EOS>", "<UNK>", "x0", "x1", "x2", "x3", "x4"])
    }

    @Test func savesAndLoads() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-vocab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for v in [try Vocabulary(level: .character, text: "héllo \"wörld\"\n\\"), try Vocabulary(level: .word, text: "a b b c")] {
            let url = directory.appendingPathComponent("vocab.json")
            try v.save(to: url)
            #expect(try Vocabulary(contentsOf: url) == v)
            #expect(try Vocabulary(json: v.json) == v)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["vocab.json"])
        let bad = [#"{"format":"other","version":1,"level":"word","tokens":["<EOS>","<UNK>","a"]}"#,
                   #"{"format":"neuron-vocabulary","version":1,"level":"word","tokens":["<UNK>","<EOS>","a"]}"#,
                   #"{"format":"neuron-vocabulary","version":1,"level":"character","tokens":["<EOS>","<UNK>","ab"]}"#,
                   #"{"format":"neuron-vocabulary","version":1,"level":"word","tokens":["<EOS>","<UNK>","a","a"]}"#,
                   #"{"format":"neuron-vocabulary","version":1,"level":"word","tokens":["<EOS>","<UNK>"]}"#,
                   #"{"format":"neuron-vocabulary","version":1,"level":"word""#]
        for json in bad {
            #expect(throws: NeuronError.self, "\(json)") { try Vocabulary(json: json) }
        }
        #expect(throws: NeuronError.self) { try Vocabulary(contentsOf: directory.appendingPathComponent("missing.json")) }
    }

    @Test func emptyVocabularyThrows() throws {
        #expect(throws: NeuronError.self) { try Vocabulary(level: .character, text: "") }
        #expect(throws: NeuronError.self) { try Vocabulary(level: .word, text: " \n\t ") }
        #expect(throws: NeuronError.self) { try Vocabulary(level: .word, text: "a b c", minFrequency: 2) }
        #expect(throws: NeuronError.self) { try Vocabulary(level: .word, tokens: []) }
        #expect(throws: NeuronError.self) { try Vocabulary(level: .word, text: "a", minFrequency: 0) }
        #expect(throws: NeuronError.self) { try Vocabulary(level: .word, tokens: ["a", "<EOS>"]) }
        let v = try Vocabulary(level: .word, text: "a")
        #expect(throws: NeuronError.self) { try v.decode([3]) }
    }

    @Test func samplerFollowsTheTemperedDistribution() throws {
        let logits: [Float] = [0.5, 3, 1, 2, -1]
        for temperature: Float in [0.5, 1, 2] {
            let sampler = try TokenSampler(temperature: temperature)
            let p = try sampler.probabilities(logits)
            #expect(p[1] == 0)  // <UNK> is never drawn
            let kept = [0, 2, 3, 4].map { exp(Double(logits[$0]) / Double(temperature)) }
            let z = kept.reduce(0, +)
            for (i, k) in zip([0, 2, 3, 4], kept) { #expect(abs(p[i] - k / z) < 1e-12) }
            var g = RandomGenerator(seed: 5)
            var counts = [Int](repeating: 0, count: 5)
            let n = 20_000
            for _ in 0..<n { counts[try sampler.sample(logits, using: &g)] += 1 }
            #expect(counts[1] == 0)
            for i in 0..<5 {
                // Within 5 binomial standard errors.
                let se = (p[i] * (1 - p[i]) / Double(n)).squareRoot()
                #expect(abs(Double(counts[i]) / Double(n) - p[i]) <= 5 * se + 1e-9, "token \(i) at T=\(temperature)")
            }
        }
    }

    @Test func samplerTopKAndSeeds() throws {
        let logits: [Float] = [4, 9, 3, 3, 1, 2]
        let top2 = try TokenSampler(topK: 2)
        let p = try top2.probabilities(logits)
        // <UNK> (index 1, the largest logit) is excluded first; the top 2 of the rest are 0 and then 2
        // (2 and 3 tie: the lower index stays).
        #expect(p.indices.filter { p[$0] > 0 } == [0, 2])
        #expect(try TokenSampler(topK: 1).probabilities(logits, excluding: []) == [0, 1, 0, 0, 0, 0])
        #expect(try TokenSampler(topK: 100).probabilities(logits) == (try TokenSampler().probabilities(logits)))
        var a = RandomGenerator(seed: 11), b = RandomGenerator(seed: 11)
        let s = try TokenSampler(temperature: 1.5, topK: 4)
        let first = try (0..<50).map { _ in try s.sample(logits, using: &a) }
        let second = try (0..<50).map { _ in try s.sample(logits, using: &b) }
        #expect(first == second)
        #expect(Set(first).isSubset(of: [0, 2, 3, 5]))
    }

    @Test func samplerRejectsBadInput() throws {
        #expect(throws: NeuronError.self) { try TokenSampler(temperature: 0) }
        #expect(throws: NeuronError.self) { try TokenSampler(temperature: -1) }
        #expect(throws: NeuronError.self) { try TokenSampler(temperature: .nan) }
        #expect(throws: NeuronError.self) { try TokenSampler(temperature: .infinity) }
        #expect(throws: NeuronError.self) { try TokenSampler(topK: 0) }
        #expect(throws: NeuronError.self) { try TokenSampler(topK: -3) }
        let s = try TokenSampler()
        var g = RandomGenerator(seed: 1)
        #expect(throws: NeuronError.self) { try s.sample([], using: &g) }
        #expect(throws: NeuronError.self) { try s.sample([1, .nan, 2], using: &g) }
        #expect(throws: NeuronError.self) { try s.sample([1, 2], excluding: [0, 1], using: &g) }
        #expect(throws: NeuronError.self) { try s.sample([1, 2], excluding: [5], using: &g) }
        #expect(throws: NeuronError.self) { try s.sample([-.infinity, 0, -.infinity], using: &g) }
        // An infinite logit is a certainty, not an error.
        #expect(try s.sample([.infinity, 0, 1], using: &g) == 0)
        #expect(try s.probabilities([.infinity, 0, 1, .infinity]) == [0.5, 0, 0, 0.5])
    }
}
