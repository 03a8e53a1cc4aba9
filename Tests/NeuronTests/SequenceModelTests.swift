import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// The marked-value task: two features per step, a value and a marker. One of the first 5 steps is
/// marked (marker 1) and holds the class k in 0..<4 as the value k - 1.5; every other step holds N(0, 1)
/// noise in the value and 0 in the marker. The class must be carried from the mark to the last step
/// through the noise. [count, steps, 2] and labels.
func markedValueTask(count: Int, steps: Int, seed: UInt64) -> (x: Tensor, y: [Int]) {
    var g = RandomGenerator(seed: seed)
    var x = Tensor.zeros([count, steps, 2])
    var labels = [Int]()
    x.withUnsafeMutableBufferPointer { p in
        for n in 0..<count {
            let label = Int(g.next() % 4), mark = Int(g.next() % 5)
            labels.append(label)
            for t in 0..<steps {
                p[(n * steps + t) * 2] = t == mark ? Float(label) - 1.5 : g.nextNormal()
                p[(n * steps + t) * 2 + 1] = t == mark ? 1 : 0
            }
        }
    }
    return (x, labels)
}

/// Trains a classifier with Adam (gradients clipped to norm 1) on minibatches of 32 for `steps` steps;
/// returns the accuracy on `test`.
func trainClassifier(_ model: Sequential, train: (x: Tensor, y: [Int]), test: (x: Tensor, y: [Int]), steps: Int, lr: Float) throws -> Double {
    var loader = try DataLoader(x: train.x, y: train.y, batchSize: 32, generator: RandomGenerator(seed: 8))
    let optimizer = try Adam(model.namedParameters, lr: lr)
    var done = 0
    while done < steps {
        for batch in loader.epoch() where done < steps {
            optimizer.zeroGrad()
            try crossEntropy(try model(batch.x), labels: batch.y).backward()
            _ = try clipGradNorm(model.parameters, maxNorm: 1)
            try optimizer.step()
            done += 1
        }
    }
    model.eval()
    defer { model.train() }
    return try noGrad { try accuracy(predictions: try model(test.x).argmax(axis: 1), labels: test.y) }
}

/// Digit sequences tagged 1 where a digit is larger than each neighbour it has (a local maximum), else 0:
/// the tag of a digit depends on the digit after it. Token ids [count, steps] as floats and tags [count, steps].
func localMaximumTask(count: Int, steps: Int, seed: UInt64) -> (x: Tensor, y: IntTensor) {
    var g = RandomGenerator(seed: seed)
    var digits = [Float](), tags = [Int64]()
    for _ in 0..<count {
        let row = (0..<steps).map { _ in Int(g.next() % 10) }
        for t in 0..<steps {
            let left = t == 0 || row[t] > row[t - 1], right = t == steps - 1 || row[t] > row[t + 1]
            tags.append(left && right ? 1 : 0)
        }
        digits += row.map(Float.init)
    }
    return (try! Tensor(shape: [count, steps], scalars: digits), try! IntTensor(shape: [count, steps], scalars: tags))
}

/// Digit strings of 3 to 6 digits for the reversal task: sources padded with 10 (their lengths given),
/// decoder inputs (start token 11, then the reversed digits, padded with 10) and targets (the reversed
/// digits, then the end token 10, padded with the ignored index -100), all [count, 7] but the sources [count, 6].
func reversalTask(count: Int, seed: UInt64) -> (source: IntTensor, lengths: [Int], inputs: IntTensor, targets: IntTensor) {
    var g = RandomGenerator(seed: seed)
    var source = [Int64](), inputs = [Int64](), targets = [Int64](), lengths = [Int]()
    for _ in 0..<count {
        let length = 3 + Int(g.next() % 4)
        let digits = (0..<length).map { _ in Int64(g.next() % 10) }
        lengths.append(length)
        source += digits + Array(repeating: 10, count: 6 - length)
        inputs += [11] + digits.reversed() + Array(repeating: 10, count: 6 - length)
        targets += digits.reversed() + [10] + Array(repeating: -100, count: 6 - length)
    }
    return (try! IntTensor(shape: [count, 6], scalars: source), lengths,
            try! IntTensor(shape: [count, 7], scalars: inputs), try! IntTensor(shape: [count, 7], scalars: targets))
}

@Suite struct SequenceModelTests {
    @Test func lstmCarriesAValueThatAVanillaRNNLoses() throws {
        // 20 steps of noise between the mark and the answer: the LSTM (forget-gate bias 1, as Keras starts
        // it) learns the task, the tanh RNN with as many units stays near chance (0.25) with the same budget.
        let train = markedValueTask(count: 2048, steps: 20, seed: 1), test = markedValueTask(count: 512, steps: 20, seed: 2)
        var accuracies: [RecurrentKind: Double] = [:]
        for kind in [RecurrentKind.rnn, .lstm] {
            let model = try Random.withGenerator(seed: 3) { try SequenceModels.classifier(input: 2, hidden: 32, classes: 4, kind: kind) }
            if let lstm = model.layers[0] as? LSTM { try lstm.setForgetGateBias(1) }
            accuracies[kind] = try Random.withGenerator(seed: 4) { try trainClassifier(model, train: train, test: test, steps: 400, lr: 0.01) }
        }
        #expect(accuracies[.lstm]! >= 0.95, "LSTM accuracy \(accuracies[.lstm]!)")
        #expect(accuracies[.rnn]! <= 0.4, "RNN accuracy \(accuracies[.rnn]!)")
    }

    @Test func bidirectionalTaggerSeesTheNextToken() throws {
        let train = localMaximumTask(count: 2048, steps: 12, seed: 5), test = localMaximumTask(count: 256, steps: 12, seed: 6)
        var accuracies: [Bool: Double] = [:]
        for bidirectional in [true, false] {
            let model = try Random.withGenerator(seed: 7) {
                try SequenceModels.tagger(vocabularySize: 10, embedding: 8, hidden: 32, tags: 2, bidirectional: bidirectional)
            }
            var loader = try DataLoader(x: train.x, y: train.y, batchSize: 32, generator: RandomGenerator(seed: 8))
            let optimizer = try Adam(model.namedParameters, lr: 0.01)
            for _ in 0..<3 {
                for batch in loader.epoch() {
                    optimizer.zeroGrad()
                    try crossEntropy(try model(batch.x).reshaped([-1, 2]), labels: batch.y.ints).backward()
                    try optimizer.step()
                }
            }
            model.eval()
            let logits = try noGrad { try model(test.x) }
            #expect(logits.shape == [256, 12, 2])
            accuracies[bidirectional] = try accuracy(predictions: try logits.reshaped([-1, 2]).argmax(axis: 1), labels: test.y.ints)
        }
        // Reading left to right, the tag of a digit is a guess about the next digit (at best about 85% right).
        #expect(accuracies[true]! >= 0.97, "bidirectional accuracy \(accuracies[true]!)")
        #expect(accuracies[false]! <= 0.9, "unidirectional accuracy \(accuracies[false]!)")
    }

    @Test func vectorToSequenceGeneratesTheSequenceItDescribes() throws {
        // The vector one-hot encodes a start digit s and a step k in 1...3; the sequence is s, s + k, s + 2k...
        // (mod 10), 8 digits. Start token: 10.
        var vectors = [Float](), sequences = [Int64]()
        for s in 0..<10 {
            for k in 1...3 {
                vectors += (0..<13).map { $0 == s || $0 == 9 + k ? Float(1) : 0 }
                sequences += (0..<8).map { Int64((s + $0 * k) % 10) }
            }
        }
        let x = try Tensor(shape: [30, 13], scalars: vectors), y = try IntTensor(shape: [30, 8], scalars: sequences)
        let model = try Random.withGenerator(seed: 9) {
            try VectorToSequence(vectorSize: 13, vocabularySize: 11, embedding: 8, hidden: 32, startToken: 10)
        }
        let optimizer = try Adam(model.namedParameters, lr: 0.02)
        for _ in 0..<150 {
            optimizer.zeroGrad()
            try crossEntropy(try model(x, targets: y).reshaped([-1, 11]), labels: y.ints).backward()
            try optimizer.step()
        }
        let generated = try model.generate(from: x, length: 8)
        let exact = zip(generated, (0..<30).map { Array(y.ints[($0 * 8)..<($0 * 8 + 8)]) }).filter { $0 == $1 }.count
        #expect(exact == 30, "\(exact) of 30 sequences exact")
        #expect(model.namedParameters.map(\.name).first == "initial.weight")
    }

    @Test func encoderDecoderReversesDigitStrings() throws {
        let model = try Random.withGenerator(seed: 10) {
            try EncoderDecoder(sourceVocabulary: 11, targetVocabulary: 12, embedding: 16,
                               encoder: try LSTM(input: 16, hidden: 64, batchFirst: true),
                               decoder: try LSTM(input: 16, hidden: 64, batchFirst: true))
        }
        let optimizer = try Adam(model.namedParameters, lr: 0.01)
        for step in 0..<400 {
            let batch = reversalTask(count: 64, seed: UInt64(100 + step))
            optimizer.zeroGrad()
            let logits = try model(source: batch.source, sourceLengths: batch.lengths, targetInputs: batch.inputs)
            try crossEntropy(try logits.reshaped([-1, 12]), labels: batch.targets.ints, ignoreIndex: -100).backward()
            _ = try clipGradNorm(model.parameters, maxNorm: 1)
            try optimizer.step()
        }
        let test = reversalTask(count: 300, seed: 7)
        let decoded = try model.greedyDecode(test.source, sourceLengths: test.lengths, startToken: 11, endToken: 10, maxLength: 8)
        let exact = (0..<300).filter { i in decoded[i] == test.source.ints[(i * 6)..<(i * 6 + test.lengths[i])].reversed() }.count
        // Held-out strings, decoded greedily from the model's own outputs.
        #expect(Double(exact) / 300 >= 0.9, "\(exact) of 300 reversed exactly")
    }

    @Test func co2ForecastBeatsTheNaiveForecast() throws {
        // The short version of `neuron co2` (make train-co2 runs it to convergence).
        let result = try CO2Demo.run(epochs: 2, progress: .silent, log: { _ in })
        #expect(result.testWindows == 457)
        #expect(abs(result.naiveRMSE - 0.513) < 0.001)
        #expect(result.testRMSE < result.naiveRMSE, "RMSE \(result.testRMSE) vs naive \(result.naiveRMSE)")
    }

    @Test func sequenceLayersAndTheirGradients() throws {
        let x = randomTensor([2, 3, 4], seed: 11)
        #expect(try x.selecting(1, alongAxis: 1).scalars == Array(x.scalars[4..<8] + x.scalars[16..<20]))
        #expect(try x.selecting(-1, alongAxis: 0) == (try x.slice(1..<2).reshaped([3, 4])))
        try checkGradients([x]) { try $0[0].selecting(2, alongAxis: 1) }
        try checkGradients([x]) { try $0[0].selecting(0, alongAxis: -1) }
        #expect(try LastStep()(x) == (try x.selecting(2, alongAxis: 1)))
        #expect(try LastStep(batchFirst: false)(x) == (try x.selecting(1, alongAxis: 0)))
        let linear = try Linear(in: 4, out: 5)
        let distributed = TimeDistributed(linear)
        #expect(try distributed(x).shape == [2, 3, 5])
        expectClose(try distributed(x).selecting(1, alongAxis: 1), try linear(try x.selecting(1, alongAxis: 1)), "per step")
        #expect(distributed.namedParameters.map(\.name) == ["weight", "bias"])
        #expect(throws: NeuronError.self) { try x.selecting(3, alongAxis: 1) }
        #expect(throws: NeuronError.self) { try x.selecting(0, alongAxis: 3) }
        #expect(throws: NeuronError.self) { try LastStep()(Tensor.zeros([2, 0, 4])) }
        #expect(throws: NeuronError.self) { try LastStep()(Tensor.zeros([2, 4])) }
        #expect(throws: NeuronError.self) { try distributed(Tensor.zeros([2, 4])) }
    }

    @Test func timeSeriesGapsAndWindows() throws {
        let filled = try TimeSeries.interpolatingMissing([.nan, 1, .nan, .nan, 4, 5, .nan])
        #expect(filled == [1, 1, 2, 3, 4, 5, 5])
        #expect(throws: NeuronError.self) { try TimeSeries.interpolatingMissing([.nan, .nan]) }
        #expect(throws: NeuronError.self) { try TimeSeries.interpolatingMissing([]) }
        let (inputs, targets) = try TimeSeries.windows([1, 2, 3, 4, 5], length: 3)
        #expect(inputs.shape == [2, 3, 1] && inputs.scalars == [1, 2, 3, 2, 3, 4] && targets.scalars == [4, 5])
        #expect(try TimeSeries.windows([1, 2, 3, 4, 5], length: 2, horizon: 2).targets.scalars == [4, 5])
        #expect(throws: NeuronError.self) { try TimeSeries.windows([1, 2, 3], length: 3) }
        #expect(throws: NeuronError.self) { try TimeSeries.windows([1, 2, 3], length: 0) }
    }

    @Test func buildersRejectBadConfigurations() throws {
        #expect(throws: NeuronError.self) { try SequenceModels.classifier(input: 2, hidden: 4, classes: 0) }
        #expect(throws: NeuronError.self) { try SequenceModels.classifier(input: 0, hidden: 4, classes: 2) }
        #expect(throws: NeuronError.self) { try SequenceModels.stackedForecaster(dropout: 1) }
        #expect(throws: NeuronError.self) { try SequenceModels.tagger(vocabularySize: 0, embedding: 4, hidden: 4, tags: 2) }
        #expect(throws: NeuronError.self) { try VectorToSequence(vectorSize: 3, vocabularySize: 5, embedding: 4, hidden: 4, startToken: 5) }
        let lstm = { (h: Int, bf: Bool) in try LSTM(input: 4, hidden: h, batchFirst: bf) }
        #expect(throws: NeuronError.self) { try EncoderDecoder(sourceVocabulary: 5, targetVocabulary: 5, embedding: 4, encoder: try lstm(8, true), decoder: try lstm(6, true)) }
        #expect(throws: NeuronError.self) { try EncoderDecoder(sourceVocabulary: 5, targetVocabulary: 5, embedding: 4, encoder: try lstm(8, false), decoder: try lstm(8, false)) }
        #expect(throws: NeuronError.self) { try EncoderDecoder(sourceVocabulary: 5, targetVocabulary: 5, embedding: 3, encoder: try lstm(8, true), decoder: try lstm(8, true)) }
        // The forget-gate bias lands in the f block of each bias_ih (bias_hh's block is zeroed).
        let layer = try LSTM(input: 2, hidden: 3, layers: 2)
        try layer.setForgetGateBias(1)
        for (name, p) in layer.namedParameters where name.hasPrefix("bias") {
            #expect(Array(p.value.scalars[3..<6]) == (name.hasPrefix("bias_ih") ? [1, 1, 1] : [0, 0, 0]), "\(name)")
        }
        #expect(throws: NeuronError.self) { try LSTM(input: 2, hidden: 3, bias: false).setForgetGateBias(1) }
    }
}
