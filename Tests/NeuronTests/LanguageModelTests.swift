import Foundation
import Testing
@testable import Neuron

/// A toy English grammar for language-model tests: "the old man sees a small bird ." Word order
/// carries all the structure, so shuffled words make a sentence the model should find improbable.
private func grammarSentences(_ count: Int, seed: UInt64) -> [String] {
    var g = RandomGenerator(seed: seed)
    let determiners = ["the", "a"], adjectives = ["big", "small", "old", "young", "happy"]
    let nouns = ["dog", "cat", "man", "woman", "child", "bird"], verbs = ["sees", "likes", "follows", "hears", "finds"]
    func pick(_ words: [String]) -> String { words[Int(g.next() % UInt64(words.count))] }
    func phrase() -> String { pick(determiners) + (g.next() % 2 == 0 ? " " + pick(adjectives) : "") + " " + pick(nouns) }
    return (0..<count).map { _ in phrase() + " " + pick(verbs) + " " + phrase() + " ." }
}

/// Trains `model` on `tokens` (a stream) with Adam, sequences of `length`, for `steps` minibatches of 16.
private func train<R>(_ model: LanguageModel<R>, tokens: [Int], length: Int, steps: Int, lr: Float = 0.01) throws {
    let data = try TokenSequences(tokens: tokens, length: length)
    var loader = try DataLoader(x: data.inputs, y: data.targets, batchSize: 16, generator: RandomGenerator(seed: 3))
    let optimizer = try Adam(model.namedParameters, lr: lr)
    var done = 0
    while done < steps {
        for batch in loader.epoch() where done < steps {
            optimizer.zeroGrad()
            let logits = try model(try batch.x.asIndices(name: "test"), state: nil).logits
            try model.loss(logits: logits, targets: batch.y).backward()
            try optimizer.step()
            done += 1
        }
    }
}

@Suite struct LanguageModelTests {
    @Test func shapesKeysAndUniformPerplexity() throws {
        let model = try Random.withGenerator(seed: 1) {
            try LanguageModel(vocabularySize: 7, embedding: 5, rnn: try LSTM(input: 5, hidden: 6, layers: 2))
        }
        #expect(model.namedParameters.map(\.name) == [
            "embedding.weight",
            "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
            "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
            "output.weight", "output.bias"])
        let ids = try IntTensor(shape: [4, 3], scalars: [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4])
        let (logits, state) = try model(ids, state: nil)
        #expect(logits.shape == [4, 3, 7])
        #expect(state.h.shape == [2, 3, 6] && state.c.shape == [2, 3, 6])
        // Running the halves with the carried state gives the same logits as the whole.
        let first = try model(try IntTensor(shape: [2, 3], scalars: Array(ids.scalars[..<6])), state: nil)
        let second = try model(try IntTensor(shape: [2, 3], scalars: Array(ids.scalars[6...])), state: first.state)
        expectClose(try Tensor.concatenate([first.logits, second.logits]), logits, atol: 1e-6, rtol: 1e-5, "carried state")

        // Zero output weights give uniform predictions: cross-entropy ln V per token, perplexity V, and
        // the training loss sums the per-step means over the T = 4 steps.
        model.output.weight.value = Tensor.zeros([7, 6])
        model.output.bias!.value = Tensor.zeros([7])
        let uniform = try model(ids, state: nil).logits
        let mean = try model.meanCrossEntropy(logits: uniform, targets: ids)
        #expect(abs(mean - log(7.0)) < 1e-6)
        #expect(abs(try model.perplexity(logits: uniform, targets: ids) - 7) < 1e-5)
        #expect(abs(Double(try model.loss(logits: uniform, targets: ids).item()) - 4 * log(7.0)) < 1e-5)

        // One-hot input: no embedding, the layer reads V-wide vectors.
        let oneHotModel = try LanguageModel(vocabularySize: 7, embedding: nil, rnn: try GRU(input: 7, hidden: 4, batchFirst: true))
        #expect(oneHotModel.namedParameters.first?.name == "rnn.weight_ih_l0")
        #expect(try oneHotModel(Tensor([[1, 2, 3]])).shape == [1, 3, 7])
    }

    @Test func realSentencesOutscoreTheirShuffledWords() throws {
        let corpus = grammarSentences(400, seed: 10)
        let vocabulary = try Vocabulary(level: .word, text: corpus.joined(separator: " "))
        let tokens = corpus.flatMap { vocabulary.encode($0, appendingEndOfSequence: true) }
        let model = try Random.withGenerator(seed: 2) {
            try LanguageModel(vocabularySize: vocabulary.count, embedding: 16, rnn: try LSTM(input: 16, hidden: 32, batchFirst: true))
        }
        let before = try model.meanCrossEntropy(logits: model(IntTensor(shape: [1, tokens.count - 1], scalars: tokens.dropLast().map(Int64.init)), state: nil).logits,
                                                targets: IntTensor(shape: [1, tokens.count - 1], scalars: tokens.dropFirst().map(Int64.init)))
        try train(model, tokens: tokens, length: 24, steps: 150)
        let after = try model.meanCrossEntropy(logits: model(IntTensor(shape: [1, tokens.count - 1], scalars: tokens.dropLast().map(Int64.init)), state: nil).logits,
                                               targets: IntTensor(shape: [1, tokens.count - 1], scalars: tokens.dropFirst().map(Int64.init)))
        // The grammar's entropy is about 1.2 nats per token; uniform guessing over 21 tokens is 3.0.
        #expect(after < 1.5 && after < before - 1, "perplexity \(exp(before)) -> \(exp(after))")
        // Held-out sentences (another seed) against the same words in a shuffled order.
        var g = RandomGenerator(seed: 20)
        var wins = 0
        let heldOut = grammarSentences(20, seed: 99)
        for sentence in heldOut {
            let ids = vocabulary.encode(sentence)
            var shuffled = ids
            while shuffled == ids { shuffled = shuffledIndices(ids.count, using: &g).map { ids[$0] } }
            if try model.logProbability(of: ids) > model.logProbability(of: shuffled) { wins += 1 }
        }
        #expect(wins == heldOut.count)
    }

    @Test func realFortunesOutscoreTheirShuffledWords() throws {
        // A word-level model of the shipped fortunes excerpt (lower-cased, words seen 3 times or more),
        // asked about one-line fortunes from it against the same words shuffled.
        let entries = try Fortunes.excerpt().map { $0.lowercased() }
        let vocabulary = try Vocabulary(level: .word, text: entries.joined(separator: "\n"), minFrequency: 3)
        let tokens = entries.flatMap { vocabulary.encode($0, appendingEndOfSequence: true) }
        let model = try Random.withGenerator(seed: 12) {
            try LanguageModel(vocabularySize: vocabulary.count, embedding: 32, rnn: try LSTM(input: 32, hidden: 64, batchFirst: true))
        }
        try train(model, tokens: tokens, length: 32, steps: 300, lr: 0.005)
        var g = RandomGenerator(seed: 13)
        let sentences = entries.filter { !$0.contains("\n") && (6...14).contains(Vocabulary.words(in: $0).count) }.prefix(40)
        var wins = 0
        for sentence in sentences {
            let ids = vocabulary.encode(sentence)
            var shuffled = ids
            while shuffled == ids { shuffled = shuffledIndices(ids.count, using: &g).map { ids[$0] } }
            if try model.logProbability(of: ids) > model.logProbability(of: shuffled) { wins += 1 }
        }
        // 40 of 40 when written; a few may flip with float rounding on other machines.
        #expect(sentences.count == 40 && wins >= 36, "\(wins) of \(sentences.count)")
    }

    @Test func generatesUntilEndOfSequenceAndNeverUnknown() throws {
        let text = "hello world"
        let vocabulary = try Vocabulary(level: .character, text: text)
        let tokens = (0..<60).flatMap { _ in vocabulary.encode(text, appendingEndOfSequence: true) }
        let model = try Random.withGenerator(seed: 4) {
            try LanguageModel(vocabularySize: vocabulary.count, embedding: 8, rnn: try LSTM(input: 8, hidden: 24, batchFirst: true))
        }
        try train(model, tokens: tokens, length: 24, steps: 120, lr: 0.02)
        var g = RandomGenerator(seed: 5)
        let greedy = try model.generate(maxTokens: 100, sampler: TokenSampler(topK: 1), using: &g)
        #expect(try vocabulary.decode(greedy) == text)
        // A prompt continues the text; maxTokens caps it.
        let continued = try model.generate(prompt: vocabulary.encode("hello w"), maxTokens: 100, sampler: TokenSampler(topK: 1), using: &g)
        #expect(try vocabulary.decode(continued) == "orld")
        #expect(try model.generate(maxTokens: 3, sampler: TokenSampler(topK: 1), using: &g).count == 3)
        // Same seed, same sample.
        var a = RandomGenerator(seed: 6), b = RandomGenerator(seed: 6)
        let sampler = try TokenSampler(temperature: 2)
        #expect(try model.generate(maxTokens: 40, sampler: sampler, using: &a) == model.generate(maxTokens: 40, sampler: sampler, using: &b))
        // Even when the model favours <UNK> above everything, it is never drawn.
        var bias = model.output.bias!.value
        bias[Vocabulary.unknownIndex] = 100
        model.output.bias!.value = bias
        let drawn = try model.generate(maxTokens: 200, sampler: TokenSampler(temperature: 1.5), using: &g)
        #expect(!drawn.contains(Vocabulary.unknownIndex) && !drawn.isEmpty)
        #expect(model.isTraining)  // generation restores the mode
    }

    @Test func badInputThrows() throws {
        #expect(throws: NeuronError.self) { try LanguageModel(vocabularySize: 1, embedding: 4, rnn: try LSTM(input: 4, hidden: 4)) }
        #expect(throws: NeuronError.self) { try LanguageModel(vocabularySize: 5, embedding: 4, rnn: try LSTM(input: 3, hidden: 4)) }
        #expect(throws: NeuronError.self) { try LanguageModel(vocabularySize: 5, embedding: nil, rnn: try LSTM(input: 4, hidden: 4)) }
        #expect(throws: NeuronError.self) { try LanguageModel(vocabularySize: 5, embedding: 4, rnn: try GRU(input: 4, hidden: 4, bidirectional: true)) }
        let model = try LanguageModel(vocabularySize: 5, embedding: 4, rnn: try LSTM(input: 4, hidden: 4))
        #expect(throws: NeuronError.self) { try model(IntTensor([1, 2]), state: nil) }
        #expect(throws: NeuronError.self) { try model(IntTensor(shape: [1, 1], scalars: [5]), state: nil) }
        #expect(throws: NeuronError.self) { try model.logProbability(of: [7]) }
        let logits = try model(IntTensor(shape: [2, 1], scalars: [1, 2]), state: nil).logits
        #expect(throws: NeuronError.self) { try model.loss(logits: logits, targets: IntTensor(shape: [1, 2], scalars: [1, 2])) }
        var g = RandomGenerator(seed: 1)
        #expect(throws: NeuronError.self) { try model.generate(maxTokens: -1, sampler: TokenSampler(), using: &g) }
        #expect(throws: NeuronError.self) { try model.generate(prompt: [], maxTokens: 3, sampler: TokenSampler(), using: &g) }
        #expect(throws: NeuronError.self) { try TokenSequences(tokens: [1, 2, 3], length: 3) }
        #expect(throws: NeuronError.self) { try TokenSequences(tokens: [1, 2, 3], length: 0) }
        let sequences = try TokenSequences(tokens: [5, 6, 7, 8, 9, 10, 11], length: 3)
        #expect(sequences.inputs == Tensor([[5, 6, 7], [8, 9, 10]]) && sequences.targets.ints == [6, 7, 8, 9, 10, 11])
    }
}
