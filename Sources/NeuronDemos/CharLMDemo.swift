import Foundation
import Neuron

/// The language-model demo: a character-level LSTM (`Embedding` → 2-layer `LSTM` → `Linear`, Karpathy's
/// char-rnn) learns real English text, by default Debian's fortunes corpus (`Fortunes.read()`, about
/// 2.5 MB), else the excerpt shipped with Neuron, or any UTF-8 file. It reports the training loss and the
/// validation bits per character each epoch (the `Trainer`'s progress line), writes a safetensors
/// checkpoint after every epoch (and the vocabulary beside it as JSON), can resume from it, and prints
/// samples at a few temperatures.
///
/// Text: every fortune (or the whole file) is encoded and followed by `<EOS>`; the stream is cut into
/// sequences of `sequenceLength` characters (`TokenSequences`), of which a random 5% (at most
/// `validationSequences`) validate. Vocabulary: the characters seen at least 5 times in the
/// text (rarer ones read as `<UNK>`).
public enum CharLMDemo {
    public struct Options: Sendable {
        /// A UTF-8 text file to learn; nil: the fortunes corpus, or the shipped excerpt when it is missing.
        public var textURL: URL?
        public var epochs = 10
        /// Training sequences per epoch (a fixed random subset of the stream's sequences); nil: all of them.
        public var sequencesPerEpoch: Int?
        public var validationSequences = 256
        public var sequenceLength = 100
        public var batchSize = 32
        public var embedding = 64
        public var hidden = 256
        public var layers = 2
        public var learningRate: Float = 2e-3
        /// Where the checkpoint goes (`.safetensors`; the vocabulary is written beside it as `.vocab.json`).
        public var checkpointURL = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-charlm.safetensors")
        /// Continue from the checkpoint (model, optimiser, epoch, random streams) instead of starting afresh.
        public var resume = false
        public var temperatures: [Float] = [0.5, 0.8, 1.0]
        public var sampleLength = 300
        public var seed: UInt64 = 42
        public var progress: ProgressStyle = .automatic

        public init() {}

        /// The setting of `neuron demo`: the full model on a few short epochs of the corpus.
        public static var quick: Options {
            var o = Options()
            o.epochs = 3
            o.sequencesPerEpoch = 20 * 32
            o.validationSequences = 64
            o.sampleLength = 200
            return o
        }
    }

    public struct Result: Sendable {
        public var history: History
        /// Validation bits per character after each epoch of the run (resumed epochs included).
        public var bitsPerCharacter: [Double]
        /// One sample per temperature.
        public var samples: [(temperature: Float, text: String)]
        public var vocabulary: Vocabulary
        /// The epoch the run started from (0 unless resumed).
        public var startEpoch: Int
    }

    /// The file the vocabulary of the checkpoint at `url` is kept in.
    public static func vocabularyURL(forCheckpoint url: URL) -> URL {
        url.deletingPathExtension().appendingPathExtension("vocab.json")
    }

    /// Trains (or resumes) and samples.
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or no temperature; `.io` when the text or
    ///   the checkpoint cannot be read or written; `.emptyInput` for text too short for one training and
    ///   one validation sequence; what `TokenSampler` throws for a temperature <= 0.
    public static func run(_ options: Options, log: (String) -> Void = { print($0) }) throws -> Result {
        guard options.epochs >= 1, options.sequenceLength >= 1, options.batchSize >= 1, options.validationSequences >= 1,
              options.sequencesPerEpoch.map({ $0 >= 1 }) ?? true else {
            throw NeuronError.invalidArgument("CharLMDemo: epochs, sequence length, batch size and sequence counts must be at least 1")
        }
        let samplers = try options.temperatures.map { try TokenSampler(temperature: $0) }
        return try Random.withGenerator(seed: options.seed) { try train(options, samplers: samplers, log: log) }
    }

    /// The documents of the run: the file's text, else the fortunes, else the excerpt.
    static func documents(_ options: Options, log: (String) -> Void) throws -> [String] {
        if let url = options.textURL {
            let text = try Fortunes.readText(url)
            log("text: \(url.path), \(text.utf8.count) bytes")
            return [text]
        }
        do {
            let entries = try Fortunes.read()
            log("text: the fortunes corpus in \(Fortunes.defaultDirectory.path), \(entries.count) fortunes")
            return entries
        } catch {
            let entries = try Fortunes.excerpt()
            log("text: the fortunes excerpt shipped with Neuron, \(entries.count) fortunes (\(error))")
            return entries
        }
    }

    private static func train(_ options: Options, samplers: [TokenSampler], log: (String) -> Void) throws -> Result {
        let documents = try documents(options, log: log)
        let vocabularyURL = vocabularyURL(forCheckpoint: options.checkpointURL)
        let vocabulary = options.resume
            ? try Vocabulary(contentsOf: vocabularyURL)
            : try Vocabulary(level: .character, text: documents.joined(separator: "\n"), minFrequency: 5)
        let tokens = documents.flatMap { vocabulary.encode($0, appendingEndOfSequence: true) }
        let length = options.sequenceLength
        let all = try TokenSequences(tokens: tokens, length: length)
        let validationCount = min(options.validationSequences, max(all.count / 20, 1))
        let trainCount = all.count - validationCount
        guard trainCount >= 1 else {
            throw NeuronError.emptyInput("CharLMDemo: \(tokens.count) characters make \(all.count) sequences of \(length); need at least 2")
        }
        // Validation sequences are drawn from the whole corpus (its tail is one fortune file, unlike the rest).
        var generator = RandomGenerator(seed: options.seed)
        let order = shuffledIndices(all.count, using: &generator)
        let validationRows = Array(order.prefix(validationCount)).sorted()
        let trainRows = Array(order.dropFirst(validationCount).prefix(options.sequencesPerEpoch ?? trainCount)).sorted()
        let trainX = try all.inputs.rows(at: trainRows), trainY = try all.targets.gathering(trainRows)
        let validationX = try all.inputs.rows(at: validationRows), validationY = try all.targets.gathering(validationRows)
        log("vocabulary: \(vocabulary.count) characters (\(vocabulary.count - 2) seen at least 5 times, <EOS>, <UNK>); "
            + "\(tokens.count) characters in \(all.count) sequences of \(length): \(trainRows.count) train per epoch, \(validationCount) validation")

        let model = try LanguageModel(vocabularySize: vocabulary.count, embedding: options.embedding,
                                      rnn: try LSTM(input: options.embedding, hidden: options.hidden, layers: options.layers, batchFirst: true))
        log(try model.summary(inputShape: [1, length]))
        let optimizer = try Adam(model.namedParameters, lr: options.learningRate)
        let loader = try DataLoader(x: trainX, y: trainY, batchSize: options.batchSize, generator: RandomGenerator(seed: options.seed &+ 1))
        let bitsPerCharacter = Metric<IntTensor>("val_bits_per_char") { logits, targets in
            try model.meanCrossEntropy(logits: logits, targets: targets) / Foundation.log(2.0)
        }
        let trainer = Trainer(model: model, optimizer: optimizer, trainData: loader, validationData: (validationX, validationY),
                              metrics: [bitsPerCharacter]) { logits, targets in try model.loss(logits: logits, targets: targets) }
        trainer.gradientClipNorm = 5
        trainer.progress = options.progress
        trainer.checkpointURL = options.checkpointURL
        if options.resume {
            try trainer.resume(from: options.checkpointURL)
            log("resumed from \(options.checkpointURL.path) after epoch \(trainer.epoch)")
        } else {
            try vocabulary.save(to: vocabularyURL)
        }
        let startEpoch = trainer.epoch
        log("loss: cross-entropy summed over the \(length) steps of a sequence (nats); val_bits_per_char: its mean per character / ln 2")
        let history = try trainer.fit(epochs: max(options.epochs, startEpoch))
        log("checkpoint: \(options.checkpointURL.path) (vocabulary: \(vocabularyURL.path)); continue with --resume")

        var samples: [(Float, String)] = []
        for sampler in samplers {
            let ids = try model.generate(maxTokens: options.sampleLength, sampler: sampler, using: &generator)
            let text = try vocabulary.decode(ids)
            samples.append((sampler.temperature, text))
            log(String(format: "--- sample at temperature %.2f ---\n", sampler.temperature) + text)
        }
        return Result(history: history, bitsPerCharacter: history.epochs.map { $0.metrics["val_bits_per_char"] ?? .nan },
                      samples: samples, vocabulary: vocabulary, startEpoch: startEpoch)
    }
}
