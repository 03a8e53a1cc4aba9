import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// The char-LM demo on the shipped excerpt with a small model: bits per character fall, the checkpoint
/// resumes exactly where an uninterrupted run would be, samples never hold <UNK>, bad options throw.
@Suite struct CharLMDemoTests {
    static func options(_ directory: URL, epochs: Int) throws -> CharLMDemo.Options {
        var o = CharLMDemo.Options()
        o.textURL = try Datasets.resource("fortunes-excerpt.txt")
        o.epochs = epochs
        o.sequencesPerEpoch = 96
        o.validationSequences = 32
        o.sequenceLength = 40
        o.embedding = 16
        o.hidden = 64
        o.layers = 1
        o.learningRate = 0.01
        o.checkpointURL = directory.appendingPathComponent("lm.safetensors")
        o.temperatures = [0.7]
        o.sampleLength = 80
        o.progress = .silent
        return o
    }

    @Test func trainsCheckpointsResumesAndSamples() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-charlm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var two = try Self.options(directory, epochs: 2)
        two.temperatures = []
        let first = try CharLMDemo.run(two, log: { _ in })
        #expect(FileManager.default.fileExists(atPath: two.checkpointURL.path))
        #expect(try Vocabulary(contentsOf: CharLMDemo.vocabularyURL(forCheckpoint: two.checkpointURL)) == first.vocabulary)

        var three = try Self.options(directory, epochs: 3)
        three.resume = true
        let resumed = try CharLMDemo.run(three, log: { _ in })
        #expect(resumed.startEpoch == 2 && resumed.history.epochs.count == 3)
        // Uninterrupted, in a directory of its own: the same three epochs, bit for bit.
        let other = directory.appendingPathComponent("straight")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let straight = try CharLMDemo.run(try Self.options(other, epochs: 3), log: { _ in })
        #expect(straight.bitsPerCharacter == resumed.bitsPerCharacter)
        let bits = resumed.bitsPerCharacter
        #expect(bits[2] < bits[0] && bits[0] < log2(Double(first.vocabulary.count)), "bits per character \(bits)")
        #expect(resumed.samples.count == 1 && !resumed.samples[0].text.contains("<UNK>"))
        #expect(straight.samples[0].text == resumed.samples[0].text)
    }

    @Test func badOptionsThrow() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-charlm-\(UUID().uuidString)")
        var o = try Self.options(directory, epochs: 1)
        o.temperatures = [0]
        #expect(throws: NeuronError.self) { try CharLMDemo.run(o, log: { _ in }) }
        o.temperatures = [1]
        o.epochs = 0
        #expect(throws: NeuronError.self) { try CharLMDemo.run(o, log: { _ in }) }
        o.epochs = 1
        o.resume = true  // no checkpoint there
        #expect(throws: NeuronError.self) { try CharLMDemo.run(o, log: { _ in }) }
        o.resume = false
        o.textURL = directory.appendingPathComponent("missing.txt")
        #expect(throws: NeuronError.self) { try CharLMDemo.run(o, log: { _ in }) }
    }
}
