/// A token stream cut into training sequences for a language model: sequence i reads the tokens
/// `i·length ..< (i+1)·length` and its targets are the same positions shifted by one, the next token at
/// every step (the non-overlapping chunks of Karpathy's char-rnn; the final partial chunk is dropped).
///
/// Layout is batch-first, so a `DataLoader` can cut batches along the first axis: `inputs` [count, length]
/// holds the ids as whole numbers in a float tensor, `targets` [count, length] as integers. Build the
/// model with a batch-first recurrent layer to read them as they are.
public struct TokenSequences {
    /// The input ids [count, length], whole numbers stored as floats.
    public let inputs: Tensor
    /// The next-token ids [count, length].
    public let targets: IntTensor

    /// - Throws: `NeuronError.invalidArgument` for `length` < 1 or a negative id; `.emptyInput` when the
    ///   stream is too short for one sequence (it needs `length + 1` tokens).
    public init(tokens: [Int], length: Int) throws {
        guard length >= 1 else { throw NeuronError.invalidArgument("TokenSequences: length must be at least 1, got \(length)") }
        if let bad = tokens.first(where: { $0 < 0 }) {
            throw NeuronError.invalidArgument("TokenSequences: token id \(bad) is negative")
        }
        let count = tokens.count > 0 ? (tokens.count - 1) / length : 0
        guard count >= 1 else {
            throw NeuronError.emptyInput("TokenSequences: \(tokens.count) tokens make no sequence of \(length) (need \(length + 1))")
        }
        let used = count * length
        inputs = try Tensor(shape: [count, length], scalars: tokens[..<used].map(Float.init))
        targets = try IntTensor(shape: [count, length], scalars: tokens[1...used].map(Int64.init))
    }

    /// The number of sequences.
    public var count: Int { targets.shape[0] }
}
