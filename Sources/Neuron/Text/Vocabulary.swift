import Foundation

/// The tokens a language model reads and writes, each with an index: `<EOS>` (end of sequence) is 0,
/// `<UNK>` (a token the vocabulary does not hold) is 1, then the tokens of the corpus.
///
/// Two levels:
/// - `.character`: every `Character` (extended grapheme cluster) of the text is a token, spaces and line
///   breaks included, so decoding gives the text back exactly (unknown characters aside).
/// - `.word`: a word is a run of letters, digits and apostrophes (`don't`, `1999`); any other character
///   that is not white space is a token of its own (`.`, `,`, `(`); white space only separates. Case is
///   kept (lower-case the text first for a case-free vocabulary). Decoding joins tokens with single
///   spaces, without one before closing punctuation (`.,;:!?)]}`) or after an opening bracket (`([{`).
///
/// Order: the corpus tokens are sorted by frequency, most frequent first, ties by the Unicode scalar
/// values of the token (code-point order), so the same corpus always gives the same indices. Tokens seen
/// fewer than `minFrequency` times are left out and encode as `<UNK>`.
public struct Vocabulary: Equatable, Sendable {
    /// What a token is: one character, or one word or punctuation mark.
    public enum Level: String, Sendable, Codable {
        /// `.character`: every `Character`; `.word`: runs of letters, digits and apostrophes, and single
        /// punctuation marks.
        case character, word
    }

    /// The end-of-sequence token, index 0: a language model predicts it after the last token.
    public static let endOfSequence = "<EOS>"
    /// The unknown token, index 1: what a token outside the vocabulary encodes as.
    public static let unknown = "<UNK>"
    /// The index of `<EOS>`.
    public static let endOfSequenceIndex = 0
    /// The index of `<UNK>`.
    public static let unknownIndex = 1

    /// Characters or words.
    public let level: Level
    /// Every token by index, the two special tokens first.
    public let tokens: [String]
    private let indices: [String: Int]

    /// The number of tokens, the two special ones included (the size of a model's embedding and output).
    public var count: Int { tokens.count }

    /// Builds the vocabulary of `text` at `level`.
    /// - Throws: `NeuronError.invalidArgument` for `minFrequency` < 1; `.emptyInput` when no token of the
    ///   text is seen `minFrequency` times (an empty vocabulary).
    public init(level: Level, text: String, minFrequency: Int = 1) throws {
        guard minFrequency >= 1 else {
            throw NeuronError.invalidArgument("Vocabulary: minFrequency must be at least 1, got \(minFrequency)")
        }
        var counts: [String: Int] = [:]
        switch level {
        case .character:
            var characterCounts: [Character: Int] = [:]
            for c in text { characterCounts[c, default: 0] += 1 }
            for (c, n) in characterCounts { counts[String(c), default: 0] += n }
        case .word:
            for word in Vocabulary.words(in: text) { counts[word, default: 0] += 1 }
        }
        let kept = counts.filter { $0.value >= minFrequency }.sorted { a, b in
            a.value != b.value ? a.value > b.value : a.key.unicodeScalars.lexicographicallyPrecedes(b.key.unicodeScalars)
        }
        guard !kept.isEmpty else {
            let why = counts.isEmpty ? "the text has no tokens" : "no token occurs \(minFrequency) times (\(counts.count) distinct tokens)"
            throw NeuronError.emptyInput("Vocabulary: empty vocabulary at \(level) level: \(why)")
        }
        try self.init(level: level, tokens: kept.map(\.key))
    }

    /// A vocabulary of the given corpus tokens, in that order, after `<EOS>` and `<UNK>`.
    /// - Throws: `NeuronError.emptyInput` for no tokens; `.invalidArgument` for a repeated token, a special
    ///   token among them, an empty token, or (at character level) a token that is not one character.
    public init(level: Level, tokens corpusTokens: [String]) throws {
        guard !corpusTokens.isEmpty else { throw NeuronError.emptyInput("Vocabulary: empty vocabulary (no tokens given)") }
        var indices = [Vocabulary.endOfSequence: Vocabulary.endOfSequenceIndex, Vocabulary.unknown: Vocabulary.unknownIndex]
        for token in corpusTokens {
            guard !token.isEmpty, level == .word || token.count == 1 else {
                throw NeuronError.invalidArgument("Vocabulary: \(token.debugDescription) is not a \(level == .word ? "non-empty word" : "single character")")
            }
            guard indices[token] == nil else {
                throw NeuronError.invalidArgument("Vocabulary: token \(token.debugDescription) is repeated or special")
            }
            indices[token] = indices.count
        }
        self.level = level
        self.tokens = [Vocabulary.endOfSequence, Vocabulary.unknown] + corpusTokens
        self.indices = indices
    }

    /// The index of `token`, or `unknownIndex` when the vocabulary does not hold it.
    public func index(of token: String) -> Int { indices[token] ?? Vocabulary.unknownIndex }

    /// Whether the vocabulary holds `token` (special tokens included).
    public func contains(_ token: String) -> Bool { indices[token] != nil }

    /// The text's tokens at this vocabulary's level (before lookup).
    public func tokenize(_ text: String) -> [String] {
        switch level {
        case .character: return text.map(String.init)
        case .word: return Vocabulary.words(in: text)
        }
    }

    /// The indices of the text's tokens, unknown ones as `<UNK>`, followed by `<EOS>` when asked.
    public func encode(_ text: String, appendingEndOfSequence: Bool = false) -> [Int] {
        var ids = tokenize(text).map(index(of:))
        if appendingEndOfSequence { ids.append(Vocabulary.endOfSequenceIndex) }
        return ids
    }

    /// The text of the tokens at `ids`; special tokens appear by name (`<EOS>`, `<UNK>`).
    /// - Throws: `NeuronError.invalidArgument` for an index outside 0..<count.
    public func decode(_ ids: [Int]) throws -> String {
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw NeuronError.invalidArgument("Vocabulary.decode: index \(bad) is out of range for \(count) tokens")
        }
        switch level {
        case .character:
            return ids.map { tokens[$0] }.joined()
        case .word:
            var out = ""
            var previous: String?
            for id in ids {
                let token = tokens[id]
                if let previous, !Vocabulary.closing.contains(token), !Vocabulary.opening.contains(previous) { out += " " }
                out += token
                previous = token
            }
            return out
        }
    }

    private static let closing: Set<String> = [".", ",", ";", ":", "!", "?", ")", "]", "}"]
    private static let opening: Set<String> = ["(", "[", "{"]

    /// The words of `text` as the word level splits it (see the type's documentation).
    public static func words(in text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for c in text {
            if c.isLetter || c.isNumber || c == "'" || c == "\u{2019}" {
                current.append(c)
                continue
            }
            if !current.isEmpty { words.append(current); current = "" }
            if !c.isWhitespace { words.append(String(c)) }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Whether both have the same level and the same tokens at the same indices.
    public static func == (a: Vocabulary, b: Vocabulary) -> Bool { a.level == b.level && a.tokens == b.tokens }
}

// MARK: - Files

extension Vocabulary {
    private struct File: Codable {
        var format: String
        var version: Int
        var level: Level
        var tokens: [String]
    }

    private static let format = "neuron-vocabulary"

    /// The vocabulary as one line of JSON, `{"format":"neuron-vocabulary","version":1,"level":...,
    /// "tokens":[...]}` (what `save(to:)` writes; also fit for a safetensors file's metadata).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try! encoder.encode(File(format: Vocabulary.format, version: 1, level: level, tokens: tokens))
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads the JSON that `json` produces.
    /// - Throws: `NeuronError.io` when it is not such a vocabulary, or its tokens do not start with
    ///   `<EOS>`, `<UNK>` or break the rules of `init(level:tokens:)`.
    public init(json: String, source: String = "vocabulary JSON") throws {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json.utf8))
        } catch {
            throw NeuronError.io("\(source): not a Neuron vocabulary (\(error))")
        }
        guard file.format == Vocabulary.format, file.version == 1 else {
            throw NeuronError.io("\(source): format \(file.format.debugDescription) version \(file.version), expected \(Vocabulary.format.debugDescription) version 1")
        }
        guard file.tokens.count >= 2, file.tokens[0] == Vocabulary.endOfSequence, file.tokens[1] == Vocabulary.unknown else {
            throw NeuronError.io("\(source): the tokens must start with \(Vocabulary.endOfSequence) and \(Vocabulary.unknown)")
        }
        do {
            try self.init(level: file.level, tokens: Array(file.tokens.dropFirst(2)))
        } catch let error as NeuronError {
            throw NeuronError.io("\(source): \(error)")
        }
    }

    /// Writes the vocabulary as JSON (atomically: a crash leaves the old file or the new one).
    public func save(to url: URL) throws {
        try writeAtomically(Data(json.utf8), to: url)
    }

    /// Reads a vocabulary written by `save(to:)`.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read vocabulary \(url.path): \(error.localizedDescription)")
        }
        try self.init(json: String(decoding: data, as: UTF8.self), source: url.path)
    }
}
