import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// The training loop: exact resume from checkpoints, early stopping, callbacks, NaN handling,
/// and the first demo's accuracy target.
@Suite(.serialized) struct TrainerTests {
    /// A small classification problem with a dropout model, so the resume must restore every generator.
    struct Setup {
        let model: Sequential
        let optimizer: Adam
        let trainer: Trainer<[Int]>

        init(seed: UInt64, validationLabels: [Int]? = nil) throws {
            Random.seed(seed)
            var g = RandomGenerator(seed: 1)  // the data is the same for every seed: it is not in checkpoints
            let (x, labels) = try SyntheticData.twoSpirals(count: 200, using: &g)
            model = try Sequential {
                try Linear(in: 2, out: 16)
                Tanh()
                try Dropout(p: 0.2)
                try Linear(in: 16, out: 2)
            }
            optimizer = try Adam(model.namedParameters, lr: 0.02)
            let loader = try DataLoader(x: x, y: labels, batchSize: 32, generator: RandomGenerator(seed: seed + 1))
            trainer = Trainer(model: model, optimizer: optimizer, trainData: loader,
                              validationData: (x, validationLabels ?? labels), metrics: [.accuracy]) { logits, y in
                try crossEntropy(logits, labels: y)
            }
            trainer.schedule = try StepLR(optimizer, stepSize: 2, gamma: 0.5)
            trainer.progress = .silent
        }
    }

    func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("neuron-\(UUID().uuidString)-\(name)")
    }

    @Test func resumingFromACheckpointContinuesExactly() throws {
        let checkpoint = temporaryURL("ckpt.safetensors"), afterTwo = temporaryURL("ckpt2.safetensors")
        defer { try? FileManager.default.removeItem(at: checkpoint); try? FileManager.default.removeItem(at: afterTwo) }

        // Each run has a default generator of its own, so tests running in parallel cannot disturb it.
        let a = try Random.withGenerator(seed: 0) {
            let a = try Setup(seed: 5)
            a.trainer.checkpointURL = checkpoint
            try a.trainer.fit(epochs: 2)
            try FileManager.default.copyItem(at: checkpoint, to: afterTwo)
            try a.trainer.fit(epochs: 5)
            return a
        }
        let b = try Random.withGenerator(seed: 0) {
            let b = try Setup(seed: 77)  // different initial weights and generators: all must come from the file
            try b.trainer.resume(from: afterTwo)
            #expect(b.trainer.epoch == 2 && b.trainer.history.epochs.count == 2)
            #expect(b.optimizer.learningRate == a.trainer.history.epochs[2].learningRate)
            try b.trainer.fit(epochs: 5)
            return b
        }

        #expect(a.trainer.history == b.trainer.history.withTimesOf(a.trainer.history))
        for ((name, pa), (_, pb)) in zip(a.model.namedParameters, b.model.namedParameters) {
            #expect(pa.value.scalars == pb.value.scalars, "\(name) differs after resuming")
        }
    }

    @Test func aCheckpointOfAnotherStructureLeavesTheTrainerAsItWas() throws {
        let checkpoint = temporaryURL("ckpt.safetensors")
        defer { try? FileManager.default.removeItem(at: checkpoint) }
        let a = try Setup(seed: 5)
        a.trainer.checkpointURL = checkpoint
        try a.trainer.fit(epochs: 1)

        // The same model under SGD with momentum: the model part loads, the optimiser part cannot.
        let b = try Setup(seed: 6)
        let optimizer = try SGD(b.model.namedParameters, lr: 0.1, momentum: 0.9)
        let trainer = Trainer(model: b.model, optimizer: optimizer, trainData: b.trainer.trainData) { logits, y in
            try crossEntropy(logits, labels: y)
        }
        let weights = b.model.namedParameters.map { $0.parameter.value.scalars }
        #expect(throws: NeuronError.self) { try trainer.resume(from: checkpoint) }
        #expect(b.model.namedParameters.map { $0.parameter.value.scalars } == weights)
        #expect(trainer.epoch == 0 && trainer.history.epochs.isEmpty)
    }

    @Test func earlyStoppingRestoresTheBestWeights() throws {
        // Validation labels are the training labels flipped: the better the fit, the worse the
        // validation loss, so the best epoch is the first.
        var g = RandomGenerator(seed: 1)
        let flipped = try SyntheticData.twoSpirals(count: 200, using: &g).labels.map { 1 - $0 }
        let s = try Setup(seed: 3, validationLabels: flipped)
        s.trainer.earlyStopping = EarlyStopping(patience: 2, restoreBestWeights: true)
        var weightsAtBest: [Float] = []
        s.trainer.callbacks.append { record in
            if record.epoch == s.trainer.history.bestEpoch ?? record.epoch { weightsAtBest = s.model.parameters[0].value.scalars }
            return .continue
        }
        let history = try s.trainer.fit(epochs: 30)
        #expect(history.stoppedEarly)
        let best = try #require(history.bestEpoch)
        #expect(history.epochs.count == best + 2)
        #expect(s.model.parameters[0].value.scalars == weightsAtBest)
    }

    @Test func callbacksCanStopTraining() throws {
        let s = try Setup(seed: 4)
        var seen: [Int] = []
        s.trainer.callbacks.append { record in
            seen.append(record.epoch)
            return record.epoch == 3 ? .stop : .continue
        }
        let history = try s.trainer.fit(epochs: 10)
        #expect(seen == [1, 2, 3] && history.epochs.count == 3 && history.stoppedEarly)
        #expect(history.epochs.allSatisfy { $0.validationLoss != nil && $0.metrics["accuracy"] != nil })
    }

    @Test func aNaNLossStopsTrainingWithAClearError() throws {
        Random.seed(1)
        let model = try Linear(in: 2, out: 1)
        let loader = try DataLoader(x: Tensor([[1, 2], [3, 4]]), y: Tensor([[1], [2]]), batchSize: 1)
        let trainer = Trainer(model: model, optimizer: try SGD(model.namedParameters, lr: 0.1), trainData: loader) { output, target in
            try mseLoss(output * Float.nan, target)
        }
        trainer.progress = .silent
        do {
            try trainer.fit(epochs: 1)
            Issue.record("expected a non-finite loss error")
        } catch NeuronError.nonFinite(let message) {
            #expect(message.contains("epoch 1, batch 1"))
        }
    }

    /// y = w·x + b on one-feature samples, one per batch in data order, trained by SGD with `loss`.
    func tinyTrainer(x: [Float], lr: Float = 0.1, loss: @escaping (Tensor, Tensor) throws -> Tensor) throws -> (Linear, Trainer<Tensor>) {
        let model = try Linear(in: 1, out: 1)
        let loader = try DataLoader(x: try Tensor(shape: [x.count, 1], scalars: x), y: Tensor.ones([x.count, 1]), batchSize: 1,
                                    shuffle: false)
        let trainer = Trainer(model: model, optimizer: try SGD(model.namedParameters, lr: lr), trainData: loader, loss: loss)
        trainer.progress = .silent
        return (model, trainer)
    }

    @Test func aNaNLossFromTensorOpsStopsBeforeItsStep() throws {
        // Not a built-in loss, so nothing inside it checks: the trainer must. Batch order is the data order.
        let checkpoint = temporaryURL("nan.safetensors")
        defer { try? FileManager.default.removeItem(at: checkpoint) }
        let (model, trainer) = try tinyTrainer(x: [1, .nan, 2, 3]) { output, target in try ((output - target).squared()).mean() }
        trainer.checkpointURL = checkpoint
        var weightAfterFirstStep: [Float] = []
        do {
            try trainer.fit(epochs: 3)
            Issue.record("expected a non-finite loss error")
        } catch NeuronError.nonFinite(let message) {
            #expect(message.contains("epoch 1, batch 2") && message.contains("loss is nan"))
            weightAfterFirstStep = model.weight.value.scalars
        }
        // It stopped before backward and the step: the weights are finite, no checkpoint was written.
        #expect(weightAfterFirstStep.count == 1 && weightAfterFirstStep.allSatisfy { $0.isFinite })
        #expect(!FileManager.default.fileExists(atPath: checkpoint.path))
    }

    @Test func aParameterThatStopsBeingFiniteStopsTrainingNamingIt() throws {
        // A gradient near 1e6 times lr 1e38 makes the first step's weight infinite; the first loss is finite.
        let (_, trainer) = try tinyTrainer(x: [1000, 2000, 3000, 4000], lr: 1e38) { output, target in try mseLoss(output, target) }
        do {
            try trainer.fit(epochs: 1)
            Issue.record("expected a non-finite parameter error")
        } catch NeuronError.nonFinite(let message) {
            #expect(message.contains("epoch 1, batch 1") && message.contains("parameter 'weight'"))
        }
        // With the check off, the next loss gives it away instead.
        let (_, unchecked) = try tinyTrainer(x: [1000, 2000, 3000, 4000], lr: 1e38) { output, target in try ((output - target).squared()).mean() }
        unchecked.checksParameters = false
        #expect(throws: NeuronError.self) { try unchecked.fit(epochs: 1) }
    }

    @Test func checkpointsAreNeverWrittenWithNonFiniteParameters() throws {
        let url = temporaryURL("inf.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let (model, trainer) = try tinyTrainer(x: [1, 2]) { output, target in try mseLoss(output, target) }
        model.bias!.value = Tensor([.infinity])
        do {
            try trainer.saveCheckpoint(to: url)
            Issue.record("expected a non-finite parameter error")
        } catch NeuronError.nonFinite(let message) {
            #expect(message.contains("'bias'"))
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        model.bias!.value = Tensor([0])
        try trainer.saveCheckpoint(to: url)
        #expect(FileManager.default.fileExists(atPath: url.path))
    }

    @Test func historiesWithNaNEncodeAsJSONAndBack() throws {
        var history = History()
        history.epochs = [EpochRecord(epoch: 1, trainLoss: .nan, validationLoss: .infinity,
                                      metrics: ["accuracy": -.infinity, "f1": 0.5], learningRate: .nan, seconds: 1.5)]
        let json = try JSONEncoder().encode(history)
        #expect(String(decoding: json, as: UTF8.self).contains("\"nan\""))
        let back = try JSONDecoder().decode(History.self, from: json).epochs[0]
        #expect(back.trainLoss.isNaN && back.validationLoss == .infinity && back.learningRate.isNaN)
        #expect(back.metrics["accuracy"] == -.infinity && back.metrics["f1"] == 0.5 && back.seconds == 1.5)
        // Histories written before (numbers only) still decode.
        let old = #"{"epochs":[{"epoch":2,"trainLoss":0.25,"metrics":{},"learningRate":0.01,"seconds":3}],"stoppedEarly":false}"#
        #expect(try JSONDecoder().decode(History.self, from: Data(old.utf8)).epochs[0].trainLoss == 0.25)
    }

    @Test func learningRateFollowsTheSchedule() throws {
        let s = try Setup(seed: 6)
        let history = try s.trainer.fit(epochs: 5)
        #expect(history.epochs.map(\.learningRate) == [0.02, 0.02, 0.01, 0.01, 0.005])
    }

    @Test func spiralsDemoReachesItsTarget() throws {
        let result = try SpiralsDemo.run(progress: .silent, log: { _ in })
        #expect(result.testAccuracy >= 0.95)
    }

    @Test func kernelsAreBuiltWithOpenMPWhenTheMakefileSaysSo() {
        // `make test` sets NEURON_EXPECT_OPENMP=1: a build that silently dropped -fopenmp fails here.
        if ProcessInfo.processInfo.environment["NEURON_EXPECT_OPENMP"] == "1" {
            #expect(Neuron.isOpenMPEnabled, "\(Neuron.threadingSummary)")
        }
        #expect(Neuron.threadingSummary.contains(Neuron.isOpenMPEnabled ? "OpenMP on" : "one thread"))
    }
}

extension History {
    /// This history with the wall-clock times of `other`, which are the only fields allowed to differ.
    func withTimesOf(_ other: History) -> History {
        var h = self
        for i in h.epochs.indices where i < other.epochs.count { h.epochs[i].seconds = other.epochs[i].seconds }
        return h
    }
}
