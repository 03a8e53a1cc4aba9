import ArgumentParser
import Foundation
import Neuron
import NeuronDemos
import NeuronDistributed

/// The command-line front door: parses arguments and calls the library's demos and training runs.
struct NeuronCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron",
        abstract: "Neuron: deep learning for Swift with C kernels.",
        subcommands: [Demo.self, Spirals.self, Shapes.self, Faces.self, Style.self, Detect.self, CharLM.self, CO2.self, Info.self]
    )
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Threads for the kernels and OpenBLAS (0: OMP_NUM_THREADS or all cores).")
    var threads: Int = 0

    func apply(quiet: Bool = false) {
        Neuron.threads = threads
        if !quiet { print(Neuron.threadingSummary) }
    }
}

extension NeuronCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run every demo in its quick setting.")
        @OptionGroup var common: CommonOptions

        func run() throws {
            common.apply()
            print("== Demo 1: MLP on two spirals ==")
            let spirals = try SpiralsDemo.run()
            guard spirals.testAccuracy >= 0.95 else {
                throw ValidationError("two spirals reached only \(spirals.testAccuracy) held-out accuracy (target 0.95)")
            }
            let curves = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-spirals-loss.png")
            try spirals.history.plot(to: curves)
            print("loss curves: \(curves.path)")
            print("\n== Demo 2: CNN on generated shapes (circle, square, triangle, cross) ==")
            let shapes = try ShapesDemo.run()
            guard shapes.testAccuracy >= 0.97 else {
                throw ValidationError("shapes reached only \(shapes.testAccuracy) test accuracy (target 0.97)")
            }
            print("\n== Demo 3: one-shot face verification with a Siamese encoder and the triplet loss ==")
            let faces = try FacesDemo.run()
            guard faces.oneShotAccuracy >= 0.95 else {
                throw ValidationError("one-shot verification reached only \(faces.oneShotAccuracy) (target 0.95)")
            }
            print("\n== Demo 4: neural style transfer ==")
            let style = try StyleDemo.run()
            guard style.styleReduction >= 10 else {
                throw ValidationError("the style cost fell only \(style.styleReduction)x (expected at least 10x)")
            }
            print("result: \(style.outputURL.path)")
            print("\n== Demo 5: YOLO-style detection of circles, squares and triangles ==")
            let detection = try DetectionDemo.run()
            guard detection.meanAveragePrecision50 >= 0.8 else {
                throw ValidationError("detection reached only \(detection.meanAveragePrecision50) mAP@0.5 (target 0.8)")
            }
            print("\n== Demo 6: character-level LSTM language model on fortunes (2 epochs, then resumed for a third) ==")
            var options = CharLMDemo.Options.quick
            options.epochs = 2
            options.temperatures = []
            let first = try CharLMDemo.run(options)
            options = CharLMDemo.Options.quick
            options.resume = true
            let resumed = try CharLMDemo.run(options)
            let bits = first.bitsPerCharacter + resumed.bitsPerCharacter.dropFirst(resumed.startEpoch)
            guard resumed.startEpoch == 2, let start = bits.first, let end = bits.last, end < start else {
                throw ValidationError("char-LM validation bits per character did not fall: \(bits)")
            }
        }
    }

    struct Spirals: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train an MLP on two spirals.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Number of points.") var count = 2000
        @Option(help: "Maximum epochs.") var epochs = 150
        @Option(help: "Random seed.") var seed: UInt64 = 42
        @Option(help: "Write the training and validation loss curves to this PNG file.") var plot: String?

        func run() throws {
            common.apply()
            let result = try SpiralsDemo.run(count: count, epochs: epochs, seed: seed)
            if let plot {
                try result.history.plot(to: plot)
                print("loss curves: \(plot)")
            }
        }
    }

    struct Shapes: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train a CNN on generated 28x28 shape images and save it as safetensors.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Training images.") var trainCount = 8000
        @Option(help: "Test images.") var testCount = 2000
        @Option(help: "Epochs.") var epochs = 8
        @Option(help: "Random seed.") var seed: UInt64 = 42
        @Option(help: "Where to save the trained model (safetensors).") var output: String?
        @Option(help: "Checkpoint the training state here after every epoch (safetensors).") var checkpoint: String?
        @Flag(help: "Continue from --checkpoint when it exists.") var resume = false
        @Flag(help: "Data-parallel training, one rank per process: run under mpirun (e.g. mpirun -np 2 neuron shapes --distributed).")
        var distributed = false

        func run() throws {
            let parallel = distributed ? try DataParallel() : nil
            let rank = parallel?.rank ?? 0
            common.apply(quiet: rank != 0)
            if let parallel, rank == 0 {
                print("data parallel: \(parallel.replicaCount) ranks, global batch 64 (\(64 / parallel.replicaCount) images per rank)")
            }
            do {
                _ = try ShapesDemo.run(trainCount: trainCount, testCount: testCount, epochs: epochs, seed: seed,
                                       modelURL: output.map { URL(fileURLWithPath: $0) },
                                       checkpointURL: checkpoint.map { URL(fileURLWithPath: $0) }, resume: resume,
                                       reducer: parallel)
            } catch let error where parallel != nil {
                // The other ranks may be waiting for this one in a collective: end the whole job.
                FileHandle.standardError.write(Data("neuron shapes, rank \(rank): \(error)\n".utf8))
                parallel!.communicator.abort(code: 1)
            }
        }
    }

    struct CharLM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "charlm",
            abstract: "Train a character-level LSTM language model on the fortunes corpus (or --text FILE), checkpoint it, sample from it.")
        @OptionGroup var common: CommonOptions
        @Option(help: "A UTF-8 text file to learn (default: /usr/share/games/fortunes, else the excerpt shipped with Neuron).") var text: String?
        @Option(help: "Epochs (with --resume: the epoch to reach).") var epochs = 10
        @Option(help: "Training sequences per epoch (default: all).") var sequencesPerEpoch: Int?
        @Option(help: "Characters per training sequence.") var sequenceLength = 100
        @Option(help: "Sequences per batch.") var batchSize = 32
        @Option(help: "LSTM hidden size.") var hidden = 256
        @Option(help: "Stacked LSTM layers.") var layers = 2
        @Option(help: "Adam learning rate.") var learningRate: Float = 2e-3
        @Option(help: "Checkpoint file (safetensors; the vocabulary goes beside it as .vocab.json).") var checkpoint: String?
        @Flag(help: "Continue from the checkpoint.") var resume = false
        @Option(help: "Comma-separated sampling temperatures.") var temperatures = "0.5,0.8,1.0"
        @Option(help: "Characters per sample.") var sampleLength = 300
        @Option(help: "Random seed.") var seed: UInt64 = 42

        func run() throws {
            common.apply()
            var options = CharLMDemo.Options()
            options.textURL = text.map { URL(fileURLWithPath: $0) }
            options.epochs = epochs
            options.sequencesPerEpoch = sequencesPerEpoch
            options.sequenceLength = sequenceLength
            options.batchSize = batchSize
            options.hidden = hidden
            options.layers = layers
            options.learningRate = learningRate
            if let checkpoint { options.checkpointURL = URL(fileURLWithPath: checkpoint) }
            options.resume = resume
            options.temperatures = try temperatures.split(separator: ",").map {
                guard let t = Float($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("not a temperature: \($0)") }
                return t
            }
            options.sampleLength = sampleLength
            options.seed = seed
            _ = try CharLMDemo.run(options)
        }
    }

    struct CO2: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "co2",
            abstract: "Forecast next week's CO2 at Mauna Loa from the last 60 weeks with stacked LSTMs; compare with the naive forecast.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Maximum epochs (early stopping with patience 5).") var epochs = 40
        @Option(help: "Random seed.") var seed: UInt64 = 42

        func run() throws {
            common.apply()
            let result = try CO2Demo.run(epochs: epochs, seed: seed)
            guard result.testRMSE < result.naiveRMSE else {
                throw ValidationError("the model's RMSE \(result.testRMSE) did not beat the naive forecast's \(result.naiveRMSE)")
            }
        }
    }

    struct Faces: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a Siamese encoder with the triplet loss on generated identities, then verify unseen ones from one image each.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Training identities.") var trainIdentities = 400
        @Option(help: "Unseen test identities.") var testIdentities = 40
        @Option(help: "Training batches.") var steps = 600
        @Option(help: "Triplet mining: \(TripletMining.allCases.map(\.rawValue).joined(separator: ", ")).") var mining = "batchHard"
        @Option(help: "Triplet margin on squared distances.") var margin: Float = 0.2
        @Option(help: "Random seed.") var seed: UInt64 = 42
        @Option(help: "Where to save the test identities' encoding database (safetensors).") var database: String?

        func run() throws {
            common.apply()
            guard let strategy = TripletMining(rawValue: mining) else {
                throw ValidationError("unknown mining '\(mining)'; use one of \(TripletMining.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let result = try FacesDemo.run(trainIdentities: trainIdentities, testIdentities: testIdentities, steps: steps,
                                           margin: margin, mining: strategy, seed: seed,
                                           databaseURL: database.map { URL(fileURLWithPath: $0) })
            guard result.oneShotAccuracy >= 0.95 else {
                throw ValidationError("one-shot verification reached only \(result.oneShotAccuracy) (target 0.95)")
            }
        }
    }

    struct Style: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Neural style transfer: paint the content image in the style of the style image (PNG in, PNG out).")
        @OptionGroup var common: CommonOptions
        @Option(help: "Content image (PNG; default: the shipped chelsea.png).") var content: String?
        @Option(help: "Style image (PNG, grey or RGB; default: the shipped immunohistochemistry.png).") var style: String?
        @Option(help: "Where to write the result (PNG; default: neuron-style.png in the temporary directory).") var out: String?
        @Option(help: "Longer side of the working images and the result, in pixels.") var size = 192
        @Option(help: "Adam steps on the pixels.") var steps = StyleDemo.defaultTransfer.steps
        @Option(help: "Adam learning rate.") var learningRate = StyleDemo.defaultTransfer.learningRate
        @Option(help: "Content weight (alpha).") var contentWeight = StyleDemo.defaultTransfer.contentWeight
        @Option(help: "Style weight (beta).") var styleWeight = StyleDemo.defaultTransfer.styleWeight
        @Option(help: "Total-variation weight.") var tvWeight = StyleDemo.defaultTransfer.totalVariationWeight
        @Option(help: "Random seed of the starting noise.") var seed: UInt64 = 0

        func run() throws {
            common.apply()
            var transfer = StyleDemo.defaultTransfer
            transfer.steps = steps
            transfer.learningRate = learningRate
            transfer.contentWeight = contentWeight
            transfer.styleWeight = styleWeight
            transfer.totalVariationWeight = tvWeight
            transfer.seed = seed
            _ = try StyleDemo.run(contentURL: content.map { URL(fileURLWithPath: $0) }, styleURL: style.map { URL(fileURLWithPath: $0) },
                                  outputURL: out.map { URL(fileURLWithPath: $0) }, size: size, transfer: transfer)
        }
    }

    struct Detect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a small YOLO-style detector on generated scenes, report mAP and draw its detections into a PNG.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Training scenes.") var trainCount = 2000
        @Option(help: "Held-out test scenes.") var testCount = 400
        @Option(help: "Epochs.") var epochs = 6
        @Option(help: "Anchors (k-means on the training boxes).") var anchors = 2
        @Option(help: "Random seed.") var seed: UInt64 = 42
        @Option(help: "Where to write the PNG with the detections.") var output: String?

        func run() throws {
            common.apply()
            _ = try DetectionDemo.run(trainCount: trainCount, testCount: testCount, epochs: epochs, anchors: anchors, seed: seed,
                                      imageURL: output.map { URL(fileURLWithPath: $0) })
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how the kernels run: OpenMP threads, the CPU instruction level, OpenBLAS's core.")
        @OptionGroup var common: CommonOptions
        func run() throws {
            Neuron.threads = common.threads
            print(Neuron.buildSummary)
        }
    }
}

NeuronCommand.main()
