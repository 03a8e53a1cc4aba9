// The input/output architectures of recurrent networks as small builders. Layout is batch-first
// throughout ([N, T, ...]), so a `DataLoader` and the `Trainer` cut batches along the first axis.
//
//   many-to-one    SequenceModels.classifier, .stackedForecaster   [N, T, D] → [N, K]
//   many-to-many   SequenceModels.tagger (aligned, bidirectional)   ids [N, T] → [N, T, K]
//   one-to-many    VectorToSequence                                 [N, D] → ids [N, L]
//   seq-to-seq     EncoderDecoder (teacher forcing, greedy decoding) ids [N, S] → ids [N, L]

/// The recurrent layer a builder stacks.
public enum RecurrentKind: String, Sendable, CaseIterable {
    /// Elman RNN with tanh (`RNN`).
    case rnn
    /// Long short-term memory (`LSTM`, PyTorch's `nn.LSTM`).
    case lstm
    /// Gated recurrent unit (`GRU`, PyTorch's `nn.GRU`).
    case gru

    /// A batch-first layer of this kind.
    func layer(input: Int, hidden: Int, layers: Int = 1, dropout: Float = 0, bidirectional: Bool = false) throws -> any Module {
        switch self {
        case .rnn: return try RNN(input: input, hidden: hidden, layers: layers, batchFirst: true, dropout: dropout, bidirectional: bidirectional)
        case .lstm: return try LSTM(input: input, hidden: hidden, layers: layers, batchFirst: true, dropout: dropout, bidirectional: bidirectional)
        case .gru: return try GRU(input: input, hidden: hidden, layers: layers, batchFirst: true, dropout: dropout, bidirectional: bidirectional)
        }
    }
}

extension LSTM {
    /// Sets the forget-gate bias of every layer and direction to `value`: the forget block of each
    /// `bias_ih` to `value` and of each `bias_hh` to 0 (Keras's `unit_forget_bias=True` with 1; Jozefowicz
    /// et al. 2015). PyTorch draws these biases U(±1/√hidden) like the rest, so at the start the cell keeps
    /// only half its memory per step, and what happened 20 steps back reaches the loss scaled by about
    /// 2⁻²⁰: a bias of 1 keeps σ(1) ≈ 0.73 per step and lets long-range gradients through from the start.
    /// - Throws: `NeuronError.invalidArgument` for a layer without biases.
    public func setForgetGateBias(_ value: Float) throws {
        // The forget gate is block 1 of i, f, g, o, and block 0 of the coupled form's f, g, o.
        let block = variant == .coupled ? 0 : 1
        let h = hiddenSize
        let biases = namedParameters.filter { $0.name.hasPrefix("bias_") }
        guard !biases.isEmpty else { throw NeuronError.invalidArgument("setForgetGateBias: the LSTM has no biases") }
        for (name, parameter) in biases {
            let fill: Float = name.hasPrefix("bias_ih") ? value : 0
            parameter.update { b in
                for j in (block * h)..<((block + 1) * h) { b[j] = fill }
            }
        }
    }
}

/// Builders of `Sequential` recurrent models (Keras's functional recipes, PyTorch's usual modules).
public enum SequenceModels {
    /// Many-to-one classification: [N, T, input] → logits [N, classes], from the last step's output of a
    /// stack of `layers` recurrent layers (`0` the recurrent layer, `1` LastStep, `2` Linear).
    /// Train with `crossEntropy(_:labels:)`.
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1.
    public static func classifier(input: Int, hidden: Int, layers: Int = 1, classes: Int, kind: RecurrentKind = .lstm) throws -> Sequential {
        guard classes >= 1 else { throw NeuronError.invalidArgument("classifier: classes must be at least 1, got \(classes)") }
        let rnn = try kind.layer(input: input, hidden: hidden, layers: layers)
        return Sequential([rnn, LastStep(), try Linear(in: hidden, out: classes)])
    }

    /// Many-to-one regression with stacked recurrent layers and dropout, the classic Keras forecasting
    /// recipe `LSTM(80, return_sequences=True) → Dropout(0.2) → LSTM(100) → Dropout(0.2) → Dense(1)`:
    /// [N, T, input] → [N, outputs]. Layers: `0` LSTM(input → first), `1` Dropout, `2` LSTM(first →
    /// second), `3` LastStep, `4` Dropout, `5` Linear(second → outputs).
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or a dropout outside [0, 1).
    public static func stackedForecaster(input: Int = 1, first: Int = 80, second: Int = 100, dropout: Float = 0.2,
                                         outputs: Int = 1, kind: RecurrentKind = .lstm) throws -> Sequential {
        guard dropout >= 0, dropout < 1 else { throw NeuronError.invalidArgument("stackedForecaster: dropout must be in [0, 1), got \(dropout)") }
        guard outputs >= 1 else { throw NeuronError.invalidArgument("stackedForecaster: outputs must be at least 1, got \(outputs)") }
        return Sequential([try kind.layer(input: input, hidden: first), try Dropout(p: dropout),
                           try kind.layer(input: first, hidden: second), LastStep(), try Dropout(p: dropout),
                           try Linear(in: second, out: outputs)])
    }

    /// Many-to-many, aligned: token ids [N, T] (whole numbers in a float tensor) → logits [N, T, tags], one
    /// tag per token, through `0` Embedding, `1` a (by default bidirectional) recurrent layer, so each
    /// tag sees the tokens on both sides, and `2` a Linear applied at every step. Train with
    /// `crossEntropy` on the logits reshaped to [N·T, tags].
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1.
    public static func tagger(vocabularySize: Int, embedding: Int, hidden: Int, tags: Int, bidirectional: Bool = true,
                              kind: RecurrentKind = .lstm) throws -> Sequential {
        guard tags >= 1, vocabularySize >= 1 else {
            throw NeuronError.invalidArgument("tagger: the vocabulary and the tags need at least 1 entry, got \(vocabularySize) and \(tags)")
        }
        return Sequential([try Embedding(count: vocabularySize, dimension: embedding),
                           try kind.layer(input: embedding, hidden: hidden, bidirectional: bidirectional),
                           TimeDistributed(try Linear(in: bidirectional ? 2 * hidden : hidden, out: tags))])
    }
}

/// One-to-many: a vector [N, D] → a token sequence. The vector sets the decoder's initial state,
/// h0 = tanh(vector Wᵀ + b) (`initial`, a Linear), and a GRU then emits one token per step, reading at each
/// step the token before it (`startToken` first): teacher forcing in training (`callAsFunction`), its own
/// greedy choice in generation (`generate`). Children: `initial`, `embedding`, `rnn`, `output`.
public final class VectorToSequence: Module {
    /// The vector [N, D] to the initial hidden state [N, hidden] (before the tanh).
    public let initial: Linear
    /// Token ids to vectors, weight [vocabularySize, embedding].
    public let embedding: Embedding
    /// The batch-first decoder, one layer.
    public let rnn: GRU
    /// Hidden states to one logit per token, [..., vocabularySize].
    public let output: Linear
    /// The token read before the first step.
    public let startToken: Int
    /// Training or evaluation mode.
    public var isTraining = true

    /// - Parameters:
    ///   - vectorSize: D, the input vector's width.
    ///   - vocabularySize: the tokens the decoder emits.
    ///   - embedding: the width of a token's embedding.
    ///   - hidden: the GRU's hidden size.
    ///   - startToken: the token read before the first step (an index of the vocabulary).
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or a start token outside the vocabulary.
    public init(vectorSize: Int, vocabularySize: Int, embedding: Int, hidden: Int, startToken: Int) throws {
        guard vectorSize >= 1, vocabularySize >= 1 else {
            throw NeuronError.invalidArgument("VectorToSequence: vector and vocabulary sizes must be at least 1, got \(vectorSize) and \(vocabularySize)")
        }
        guard (0..<vocabularySize).contains(startToken) else {
            throw NeuronError.invalidArgument("VectorToSequence: start token \(startToken) is outside the vocabulary 0..<\(vocabularySize)")
        }
        initial = try Linear(in: vectorSize, out: hidden)
        self.embedding = try Embedding(count: vocabularySize, dimension: embedding)
        rnn = try GRU(input: embedding, hidden: hidden, batchFirst: true)
        output = try Linear(in: hidden, out: vocabularySize)
        self.startToken = startToken
    }

    /// `initial`, `embedding`, `rnn`, `output`.
    public var children: [(name: String, module: any Module)] {
        [("initial", initial), ("embedding", embedding), ("rnn", rnn), ("output", output)]
    }

    /// Teacher forcing: logits [N, L, vocabulary] for the sequences `targets` [N, L], each step reading
    /// the true token before it.
    /// - Throws: `NeuronError.shapeMismatch` when the batch sizes differ or `targets` is not [N, L].
    public func callAsFunction(_ vector: Tensor, targets: IntTensor) throws -> Tensor {
        guard targets.shape.count == 2, vector.rank == 2, targets.shape[0] == vector.shape[0] else {
            throw NeuronError.shapeMismatch("VectorToSequence: vectors \(shapeString(vector.shape)) and targets \(shapeString(targets.shape)) (expects [N, D] and [N, L])")
        }
        let n = targets.shape[0], length = targets.shape[1]
        var inputs = [Int64]()
        inputs.reserveCapacity(n * length)
        for row in 0..<n {
            inputs.append(Int64(startToken))
            inputs += targets.scalars[(row * length)..<(row * length + length - 1)]
        }
        let h = try decode(try IntTensor(shape: [n, length], scalars: inputs), state: try initialState(vector)).output
        return try TimeDistributed(output)(h)
    }

    /// Only the teacher-forced form is a function of one tensor.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        throw NeuronError.invalidArgument("VectorToSequence needs the target tokens too: call model(vector, targets:) or generate(from:length:)")
    }

    /// Greedy generation: the likeliest token at every step, fed back, for `length` steps: [N, length].
    public func generate(from vector: Tensor, length: Int) throws -> [[Int]] {
        guard length >= 0 else { throw NeuronError.invalidArgument("VectorToSequence.generate: length must not be negative, got \(length)") }
        guard vector.rank == 2 else { throw NeuronError.shapeMismatch("VectorToSequence.generate: vectors must be [N, D], got \(shapeString(vector.shape))") }
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        return try noGrad {
            try greedySteps(count: vector.shape[0], startToken: startToken, endToken: nil, maxLength: length,
                            state: try initialState(vector), step: decode, project: { try self.output($0) })
        }
    }

    private func initialState(_ vector: Tensor) throws -> Tensor {
        try initial(vector).tanh().unsqueezed(axis: 0)
    }

    private func decode(_ tokens: IntTensor, state: Tensor) throws -> (output: Tensor, state: Tensor) {
        try rnn(try embedding(tokens), state: state, lengths: nil)
    }
}

/// Sequence to sequence: an encoder reads the source tokens [N, S] and hands its final state to a decoder
/// that emits the target tokens (Sutskever et al. 2014, without attention). Both are recurrent layers of
/// the same kind, hidden size and depth, batch-first; each side has its own embedding. Training uses teacher
/// forcing (`callAsFunction(source:targetInputs:)`: the decoder reads the true previous tokens); inference
/// decodes greedily (`greedyDecode`), feeding back its own choices until `endToken`. Variable-length sources
/// pass `sourceLengths`, so the encoder's final state is each source's own last step (padding is ignored).
/// Children: `sourceEmbedding`, `encoder`, `targetEmbedding`, `decoder`, `output`.
public final class EncoderDecoder<Recurrent: RecurrentModule & RecurrentLayer>: Module {
    /// Source token ids to vectors, weight [sourceVocabulary, embedding].
    public let sourceEmbedding: Embedding
    /// Reads the embedded source [N, S, embedding]; its final state starts the decoder.
    public let encoder: Recurrent
    /// Target token ids to vectors, weight [targetVocabulary, embedding].
    public let targetEmbedding: Embedding
    /// Reads the embedded previous target tokens [N, L, embedding].
    public let decoder: Recurrent
    /// The decoder's outputs to one logit per target token, [N, L, targetVocabulary].
    public let output: Linear
    /// Training mode (dropout between the recurrent layers' layers) or evaluation mode.
    public var isTraining = true

    /// - Parameters:
    ///   - sourceVocabulary: the number of source tokens.
    ///   - targetVocabulary: the number of target tokens.
    ///   - embedding: the width of both embeddings, the recurrent layers' input size.
    ///   - encoder: a batch-first, unidirectional recurrent layer.
    ///   - decoder: one of the same kind, depth and hidden size.
    /// - Throws: `NeuronError.invalidArgument` when the layers are not batch-first, are bidirectional, differ
    ///   in hidden size or depth, or do not take the embedding width.
    public init(sourceVocabulary: Int, targetVocabulary: Int, embedding: Int, encoder: Recurrent, decoder: Recurrent) throws {
        guard encoder.batchFirst, decoder.batchFirst, !encoder.bidirectional, !decoder.bidirectional else {
            throw NeuronError.invalidArgument("EncoderDecoder: the encoder and decoder must be batch-first and unidirectional")
        }
        guard encoder.hiddenSize == decoder.hiddenSize, encoder.layers == decoder.layers else {
            throw NeuronError.invalidArgument("EncoderDecoder: the encoder (\(encoder.layers) x \(encoder.hiddenSize)) and decoder (\(decoder.layers) x \(decoder.hiddenSize)) must match in depth and hidden size")
        }
        guard encoder.inputSize == embedding, decoder.inputSize == embedding else {
            throw NeuronError.invalidArgument("EncoderDecoder: the encoder and decoder must take the embedding width \(embedding), they take \(encoder.inputSize) and \(decoder.inputSize)")
        }
        sourceEmbedding = try Embedding(count: sourceVocabulary, dimension: embedding)
        targetEmbedding = try Embedding(count: targetVocabulary, dimension: embedding)
        self.encoder = encoder
        self.decoder = decoder
        output = try Linear(in: decoder.hiddenSize, out: targetVocabulary)
    }

    /// `sourceEmbedding`, `encoder`, `targetEmbedding`, `decoder`, `output`.
    public var children: [(name: String, module: any Module)] {
        [("sourceEmbedding", sourceEmbedding), ("encoder", encoder), ("targetEmbedding", targetEmbedding),
         ("decoder", decoder), ("output", output)]
    }

    /// The encoder's final state for `source` [N, S] (each row's own last step when `sourceLengths` is given).
    public func encode(_ source: IntTensor, sourceLengths: [Int]? = nil) throws -> Recurrent.State {
        try encoder(try sourceEmbedding(source), state: nil, lengths: sourceLengths).state
    }

    /// Teacher forcing: logits [N, L, targetVocabulary] for the decoder inputs `targetInputs` [N, L] (the
    /// targets shifted right behind a start token).
    public func callAsFunction(source: IntTensor, sourceLengths: [Int]? = nil, targetInputs: IntTensor) throws -> Tensor {
        guard source.shape.count == 2, targetInputs.shape.count == 2, source.shape[0] == targetInputs.shape[0] else {
            throw NeuronError.shapeMismatch("EncoderDecoder: source \(shapeString(source.shape)) and target inputs \(shapeString(targetInputs.shape)) (expects [N, S] and [N, L])")
        }
        let state = try encode(source, sourceLengths: sourceLengths)
        let h = try decoder(try targetEmbedding(targetInputs), state: state, lengths: nil).output
        return try TimeDistributed(output)(h)
    }

    /// Only the teacher-forced form is a function of tensors.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        throw NeuronError.invalidArgument("EncoderDecoder needs source and target tokens: call model(source:targetInputs:) or greedyDecode")
    }

    /// Greedy decoding: from the encoder's state, reads `startToken`, then its own likeliest token at every
    /// step, until it emits `endToken` (not included) or `maxLength` tokens.
    public func greedyDecode(_ source: IntTensor, sourceLengths: [Int]? = nil, startToken: Int, endToken: Int, maxLength: Int) throws -> [[Int]] {
        guard maxLength >= 0 else { throw NeuronError.invalidArgument("greedyDecode: maxLength must not be negative, got \(maxLength)") }
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        return try noGrad {
            try greedySteps(count: source.shape.first ?? 0, startToken: startToken, endToken: endToken, maxLength: maxLength,
                            state: try encode(source, sourceLengths: sourceLengths),
                            step: { try self.decoder(try self.targetEmbedding($0), state: $1, lengths: nil) }, project: { try self.output($0) })
        }
    }
}

/// Greedy decoding of `count` sequences at once: from `state`, reads `startToken`, then at every step the
/// likeliest token of the one before, until each sequence emits `endToken` (not kept; nil: never) or
/// `maxLength` tokens are drawn. `step` runs the decoder on tokens [count, 1]; `project` maps its output
/// [count, 1, hidden] folded to [count, hidden] onto the logits.
private func greedySteps<State>(count n: Int, startToken: Int, endToken: Int?, maxLength: Int, state: State,
                                step: (IntTensor, State) throws -> (output: Tensor, state: State),
                                project: (Tensor) throws -> Tensor) throws -> [[Int]] {
    var state = state
    var tokens = [Int](repeating: startToken, count: n)
    var out = [[Int]](repeating: [], count: n)
    var finished = [Bool](repeating: false, count: n)
    for _ in 0..<maxLength where finished.contains(false) {
        let next = try step(try IntTensor(shape: [n, 1], scalars: tokens.map(Int64.init)), state)
        state = next.state
        tokens = try project(try next.output.reshaped([n, -1])).argmax(axis: 1)
        for i in 0..<n where !finished[i] {
            if tokens[i] == endToken { finished[i] = true } else { out[i].append(tokens[i]) }
        }
    }
    return out
}
