import Foundation

/// A recurrent language model: token ids → `Embedding` (or one-hot vectors) → a stacked recurrent layer
/// (`LSTM`, `GRU` or `RNN`, unidirectional) → `Linear` to one logit per vocabulary token, predicting at
/// every step the next token (the model of PyTorch's `word_language_model` example and Karpathy's
/// char-rnn).
///
/// Layout follows the recurrent layer: token ids [T, N] time-major (PyTorch's default), or [N, T] when
/// the layer was built with `batchFirst`; logits are the ids' shape + [vocabularySize]. Children, hence
/// `state_dict` keys: `embedding.weight` (absent for one-hot input), `rnn.weight_ih_l0`..., `output.weight`,
/// `output.bias`.
///
/// Training minimises the per-step cross-entropy summed over time (`loss(logits:targets:)`); its
/// per-token mean gives the perplexity exp(mean) and, for characters, bits per character mean / ln 2.
/// Sequences start from a zero state; `<EOS>` (index 0) ends one sequence and serves as the start token
/// of the next, so `logProbability(of:)` scores a sentence as p(w1 | <EOS>) p(w2 | <EOS> w1) ... p(<EOS> | ...).
public final class LanguageModel<Recurrent: RecurrentModule & RecurrentLayer>: Module {
    /// Token ids to vectors, weight [vocabularySize, dimension] (`embedding.weight`); nil for one-hot input.
    public let embedding: Embedding?
    /// The recurrent stack (`rnn.weight_ih_l0`...).
    public let rnn: Recurrent
    /// Hidden states [..., hidden] to logits [..., vocabularySize] (`output.weight`, `output.bias`).
    public let output: Linear
    /// Tokens in the vocabulary, `<EOS>` and `<UNK>` included.
    public let vocabularySize: Int
    /// Training mode (the recurrent layer's dropout between layers is active) or evaluation mode.
    public var isTraining = true

    /// - Parameters:
    ///   - vocabularySize: tokens in the vocabulary (`Vocabulary.count`).
    ///   - embedding: the width of the embedding, or nil for one-hot input vectors of `vocabularySize`.
    ///   - rnn: the recurrent stack; its input size must be `embedding` (or `vocabularySize` for one-hot).
    /// - Throws: `NeuronError.invalidArgument` for a vocabulary below 2 tokens (an empty vocabulary has
    ///   just `<EOS>` and `<UNK>`... and then nothing to predict), a bidirectional `rnn` (a language
    ///   model must not see the future), or an input size that does not fit.
    public init(vocabularySize: Int, embedding: Int?, rnn: Recurrent) throws {
        guard vocabularySize >= 2 else {
            throw NeuronError.invalidArgument("LanguageModel: the vocabulary must hold at least 2 tokens, got \(vocabularySize)")
        }
        guard !rnn.bidirectional else {
            throw NeuronError.invalidArgument("LanguageModel: the recurrent layer must be unidirectional (a bidirectional one sees the tokens it predicts)")
        }
        let inputWidth = embedding ?? vocabularySize
        guard rnn.inputSize == inputWidth else {
            throw NeuronError.invalidArgument("LanguageModel: the recurrent layer takes input size \(rnn.inputSize), but the "
                                              + (embedding == nil ? "one-hot vectors have \(vocabularySize)" : "embedding has \(inputWidth)"))
        }
        self.vocabularySize = vocabularySize
        self.embedding = try embedding.map { try Embedding(count: vocabularySize, dimension: $0) }
        self.rnn = rnn
        output = try Linear(in: rnn.hiddenSize, out: vocabularySize)
    }

    /// `embedding` (when present), `rnn` and `output`, in the order the model applies them.
    public var children: [(name: String, module: any Module)] {
        (embedding.map { [("embedding", $0 as any Module)] } ?? []) + [("rnn", rnn), ("output", output)]
    }

    /// The model's name, `LanguageModel`.
    public var typeName: String { "LanguageModel" }

    /// Token ids [T, N] (or [N, T] for a batch-first layer) from `state` (zeros when nil) → logits
    /// [T, N, vocabularySize] (or [N, T, ...]) and the final state.
    /// - Throws: `NeuronError.shapeMismatch` for ids that are not a matrix; `.invalidArgument` for an id
    ///   outside the vocabulary; what the recurrent layer throws for a state of the wrong shape.
    public func callAsFunction(_ tokens: IntTensor, state: Recurrent.State?) throws -> (logits: Tensor, state: Recurrent.State) {
        guard tokens.shape.count == 2 else {
            throw NeuronError.shapeMismatch("LanguageModel expects token ids \(rnn.batchFirst ? "[N, T]" : "[T, N]"), got \(shapeString(tokens.shape))")
        }
        let x: Tensor
        if let embedding {
            x = try embedding(tokens)
        } else {
            x = try oneHot(tokens.ints, classes: vocabularySize).reshaped(tokens.shape + [vocabularySize])
        }
        let (hidden, last) = try rnn(x, state: state, lengths: nil)
        let logits = try output(try hidden.reshaped([-1, rnn.hiddenSize]))
        return (try logits.reshaped(tokens.shape + [vocabularySize]), last)
    }

    /// Token ids as whole numbers in a float tensor (a `DataLoader` batch) → logits, from a zero state.
    public func callAsFunction(_ tokens: Tensor) throws -> Tensor {
        try self(try tokens.asIndices(name: "LanguageModel"), state: nil).logits
    }

    /// The per-step cross-entropy of `logits` (ids' shape + [V]) against the next tokens `targets` (the
    /// ids' shape), each step's mean over the batch, summed over the time steps.
    /// - Throws: `NeuronError.shapeMismatch` when the shapes disagree; `.invalidArgument` for a target
    ///   outside the vocabulary; `.nonFinite` for a NaN or infinite loss.
    public func loss(logits: Tensor, targets: IntTensor) throws -> Tensor {
        let steps = try checkTargets(logits: logits, targets: targets)
        return try crossEntropy(try logits.reshaped([-1, vocabularySize]), labels: targets.ints) * Float(steps)
    }

    /// The mean cross-entropy per token of `logits` against `targets`, in nats (log perplexity).
    public func meanCrossEntropy(logits: Tensor, targets: IntTensor) throws -> Double {
        _ = try checkTargets(logits: logits, targets: targets)
        return Double(try noGrad { try crossEntropy(try logits.reshaped([-1, vocabularySize]), labels: targets.ints) }.item())
    }

    /// The perplexity of `logits` against `targets`: exp of the mean cross-entropy per token (the number of
    /// equally likely tokens the model is as unsure as; the vocabulary size for uniform predictions).
    public func perplexity(logits: Tensor, targets: IntTensor) throws -> Double {
        Foundation.exp(try meanCrossEntropy(logits: logits, targets: targets))
    }

    /// The number of time steps, after checking `targets` against `logits`.
    private func checkTargets(logits: Tensor, targets: IntTensor) throws -> Int {
        guard targets.shape.count == 2, logits.shape == targets.shape + [vocabularySize] else {
            throw NeuronError.shapeMismatch("LanguageModel: logits \(shapeString(logits.shape)) and targets \(shapeString(targets.shape)) (expects ids' shape + [\(vocabularySize)] and the ids' shape)")
        }
        return rnn.batchFirst ? targets.shape[1] : targets.shape[0]
    }

    /// The log-probability (natural log) of `tokens` followed by `<EOS>`, from a zero state with `<EOS>`
    /// as the start token: the sum of log p(token_t | the tokens before it).
    /// - Throws: `NeuronError.invalidArgument` for an id outside the vocabulary.
    public func logProbability(of tokens: [Int]) throws -> Double {
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        return try noGrad {
            let inputs = [Vocabulary.endOfSequenceIndex] + tokens
            let targets = tokens + [Vocabulary.endOfSequenceIndex]
            let ids = try IntTensor(shape: rnn.batchFirst ? [1, inputs.count] : [inputs.count, 1], scalars: inputs.map(Int64.init))
            let (logits, _) = try self(ids, state: nil)
            let logp = try logits.reshaped([inputs.count, vocabularySize]).logSoftmax(axis: 1).scalars
            return targets.enumerated().reduce(0.0) { $0 + Double(logp[$1.offset * vocabularySize + $1.element]) }
        }
    }

    /// Generates tokens: runs `prompt` (default: just `<EOS>`, the start of a sequence) from `state` (zeros
    /// when nil), then draws one token at a time with `sampler` (never `<UNK>`) and feeds it back, until it
    /// draws `<EOS>` or has drawn `maxTokens`. Returns the drawn tokens without the final `<EOS>`.
    /// - Throws: `NeuronError.invalidArgument` for `maxTokens` < 0 or an id outside the vocabulary.
    public func generate(prompt: [Int] = [Vocabulary.endOfSequenceIndex], state: Recurrent.State? = nil,
                         maxTokens: Int, sampler: TokenSampler, using generator: inout RandomGenerator) throws -> [Int] {
        guard maxTokens >= 0 else { throw NeuronError.invalidArgument("generate: maxTokens must not be negative, got \(maxTokens)") }
        guard !prompt.isEmpty else { throw NeuronError.invalidArgument("generate: the prompt needs at least one token (use [Vocabulary.endOfSequenceIndex])") }
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        return try noGrad {
            var state = state
            var input = prompt
            var drawn: [Int] = []
            while drawn.count < maxTokens {
                let ids = try IntTensor(shape: rnn.batchFirst ? [1, input.count] : [input.count, 1], scalars: input.map(Int64.init))
                let (logits, next) = try self(ids, state: state)
                state = next
                let last = Array(logits.scalars.suffix(vocabularySize))
                let token = try sampler.sample(last, using: &generator)
                if token == Vocabulary.endOfSequenceIndex { break }
                drawn.append(token)
                input = [token]
            }
            return drawn
        }
    }
}
