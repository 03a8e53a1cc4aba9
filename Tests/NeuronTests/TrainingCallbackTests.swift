import Foundation
import Testing
@testable import Neuron

/// Learning-rate schedules against PyTorch's sequences (torch 2.15, `torch.optim.lr_scheduler`), the
/// Trainer's per-batch and plateau stepping, ModelCheckpoint, the history log and the loss plot.
@Suite(.serialized) struct TrainingCallbackTests {
    /// An SGD optimiser over one parameter, for schedules.
    func optimizer(lr: Float) throws -> SGD {
        try SGD([(name: "w", parameter: Parameter(Tensor([0])))], lr: lr)
    }

    func expectRates(_ actual: [Float], _ expected: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, sourceLocation: sourceLocation)
        for (i, (a, b)) in zip(actual, expected).enumerated() {
            #expect(Swift.abs(Double(a) - b) <= 1e-10 + 1e-5 * Swift.abs(b), "step \(i): \(a) vs PyTorch \(b)", sourceLocation: sourceLocation)
        }
    }

    /// The rate before each of `count` steps.
    func rates(_ schedule: some LearningRateSchedule, count: Int) -> [Float] {
        (0..<count).map { i in
            defer { if i < count - 1 { schedule.step() } }
            return schedule.optimizer.learningRate
        }
    }

    func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("neuron-\(UUID().uuidString)-\(name)")
    }

    @Test func oneCycleAndLinearWarmUpMatchPyTorch() throws {
        // OneCycleLR(SGD(lr=0.1), max_lr=0.1, total_steps=20): rate before each of the 20 steps.
        let cosine = try OneCycleLR(try optimizer(lr: 0.1), maxLearningRate: 0.1, totalSteps: 20)
        expectRates(rates(cosine, count: 20), [
            0.0040000000000000036, 0.013167184270002533, 0.037167184270002526, 0.06683281572999747, 0.09083281572999748,
            0.1, 0.09874640062350874, 0.09504846320134738, 0.089091617757105, 0.0811745653949763, 0.07169430017913009,
            0.06112620219362893, 0.0500002, 0.03887419780637107, 0.028306099820869922, 0.0188258346050237,
            0.010908782242895003, 0.004951936798652629, 0.0012539993764912555, 4e-07])
        // OneCycleLR(max_lr=0.05, epochs=3, steps_per_epoch=7, pct_start=0.25, anneal_strategy="linear",
        // div_factor=10, final_div_factor=100, three_phase=True).
        let linear = try OneCycleLR(try optimizer(lr: 1), maxLearningRate: 0.05, totalSteps: 21, pctStart: 0.25, annealing: .linear,
                                    divFactor: 10, finalDivFactor: 100, threePhase: true)
        expectRates(rates(linear, count: 21), [
            0.005, 0.01558823529411765, 0.026176470588235298, 0.03676470588235294, 0.04735294117647059, 0.04205882352941177,
            0.03147058823529412, 0.02088235294117647, 0.010294117647058822, 0.0047847826086956525, 0.004354347826086956,
            0.003923913043478261, 0.003493478260869565, 0.0030630434782608694, 0.0026326086956521737, 0.0022021739130434785,
            0.0017717391304347824, 0.0013413043478260871, 0.000910869565217391, 0.0004804347826086958, 4.99999999999997e-05])
        #expect(linear.interval == .batch && linear.baseLearningRate == 0.005)
        // LinearLR(SGD(lr=0.1), start_factor=0.1, end_factor=1.0, total_iters=4), seven steps.
        let warmUp = try LinearLR(try optimizer(lr: 0.1), startFactor: 0.1, totalIters: 4)
        expectRates(rates(warmUp, count: 7), [0.010000000000000002, 0.0325, 0.055, 0.0775, 0.1, 0.1, 0.1])
        // Resuming sets the rate from the step count alone.
        let resumed = try OneCycleLR(try optimizer(lr: 0.1), maxLearningRate: 0.1, totalSteps: 20)
        try resumed.loadStateDict(cosine.stateDict())
        #expect(resumed.optimizer.learningRate == cosine.optimizer.learningRate && resumed.lastEpoch == 19)

        #expect(throws: NeuronError.self) { try OneCycleLR(try optimizer(lr: 0.1), maxLearningRate: 0.1, totalSteps: 3) }
        #expect(throws: NeuronError.self) { try OneCycleLR(try optimizer(lr: 0.1), maxLearningRate: 0.1, totalSteps: 20, pctStart: 1) }
        #expect(throws: NeuronError.self) { try LinearLR(try optimizer(lr: 0.1), startFactor: 0) }
        #expect(throws: NeuronError.self) { try LinearLR(try optimizer(lr: 0.1), totalIters: 0) }
    }

    @Test func reduceLROnPlateauMatchesPyTorch() throws {
        // ReduceLROnPlateau(SGD(lr=1), mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1,
        // min_lr=0.1): the rate after each step(metric).
        let minimum = try ReduceLROnPlateau(try optimizer(lr: 1), monitor: .loss, factor: 0.5, patience: 2, threshold: 0.01,
                                            cooldown: 1, minLearningRate: 0.1)
        let falling: [Double] = [1.0, 0.9, 0.895, 0.899, 0.9, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91, 0.92, 0.93, 0.94]
        expectRates(falling.map { minimum.step($0); return minimum.optimizer.learningRate },
                    [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125])
        // mode="max", factor=0.1, patience=1, threshold=0.05, threshold_mode="abs"; `.auto` on accuracy is max.
        let maximum = try ReduceLROnPlateau(try optimizer(lr: 1), monitor: .metric("accuracy"), factor: 0.1, patience: 1,
                                            threshold: 0.05, thresholdMode: .absolute)
        #expect(maximum.mode == .max)
        let rising: [Double] = [0.5, 0.6, 0.62, 0.64, 0.7, 0.71, 0.72, 0.8, 0.8]
        expectRates(rising.map { maximum.step($0); return maximum.optimizer.learningRate },
                    [1, 1, 1, 0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002])
        // Its state round-trips, the rate included.
        let restored = try ReduceLROnPlateau(try optimizer(lr: 1), monitor: .metric("accuracy"), factor: 0.1, patience: 1,
                                             threshold: 0.05, thresholdMode: .absolute)
        try restored.loadStateDict(maximum.stateDict())
        #expect(restored.best == maximum.best && restored.badEpochs == maximum.badEpochs && restored.lastEpoch == 9)
        #expect(restored.optimizer.learningRate == maximum.optimizer.learningRate)
        #expect(throws: NeuronError.self) { try ReduceLROnPlateau(try optimizer(lr: 1), factor: 1) }
        #expect(throws: NeuronError.self) { try restored.loadStateDict([:]) }
    }

    @Test func trainerStepsPerBatchSchedulesEveryBatch() throws {
        let s = try TrainerTests.Setup(seed: 8)
        let batches = s.trainer.trainData.batchCount
        let schedule = try OneCycleLR(s.optimizer, maxLearningRate: 0.05, totalSteps: 3 * batches)
        s.trainer.schedule = schedule
        let history = try s.trainer.fit(epochs: 3)
        #expect(schedule.lastEpoch == 3 * batches)
        #expect(history.epochs.map(\.learningRate) == (0..<3).map { schedule.learningRate(atEpoch: $0 * batches) })
        // A plateau reducer and a closed-form schedule would fight over the rate.
        s.trainer.plateau = try ReduceLROnPlateau(s.optimizer)
        #expect(throws: NeuronError.self) { try s.trainer.fit(epochs: 4) }
    }

    @Test func modelCheckpointKeepsTheBestEpochAcrossAResume() throws {
        // Validation labels flipped: the validation loss rises and falls without tracking training, so the
        // best epoch is not simply the last.
        var g = RandomGenerator(seed: 1)
        let flipped = try SyntheticData.twoSpirals(count: 200, using: &g).labels.map { 1 - $0 }
        let best = temporaryURL("best.safetensors"), afterThree = temporaryURL("ckpt3.safetensors")
        let checkpoint = temporaryURL("ckpt.safetensors"), resumedBest = temporaryURL("best-resumed.safetensors")
        let every = temporaryURL("every-{epoch}.safetensors"), accuracyBest = temporaryURL("best-accuracy.safetensors")
        defer { for url in [best, afterThree, checkpoint, resumedBest, accuracyBest] { try? FileManager.default.removeItem(at: url) } }

        let (a, weights) = try Random.withGenerator(seed: 0) {
            let a = try TrainerTests.Setup(seed: 6, validationLabels: flipped)
            a.trainer.checkpointURL = checkpoint
            let saver = try ModelCheckpoint(to: best)
            a.trainer.add(saver)
            a.trainer.add(try ModelCheckpoint(to: accuracyBest, monitor: .metric("accuracy")))
            a.trainer.add(try ModelCheckpoint(to: every, saveBestOnly: false))
            var weights: [[Float]] = []
            a.trainer.callbacks.append { _ in weights.append(a.model.parameters[0].value.scalars); return .continue }
            try a.trainer.fit(epochs: 3)
            try FileManager.default.copyItem(at: checkpoint, to: afterThree)
            try a.trainer.fit(epochs: 8)
            return (a, weights)
        }
        let losses = a.trainer.history.epochs.map { $0.validationLoss! }
        let bestEpoch = losses.indices.min { losses[$0] < losses[$1] }! + 1
        #expect(bestEpoch != 8, "the test needs a best epoch before the last: \(losses)")
        let saved = try Safetensors.metadata(contentsOf: best)
        #expect(saved["epoch"] == String(bestEpoch) && saved["monitor"] == "val_loss")
        let model = try TrainerTests.Setup(seed: 9).model
        _ = try model.load(from: best)
        #expect(model.parameters[0].value.scalars == weights[bestEpoch - 1])
        // The accuracy checkpoint keeps the first epoch of highest accuracy (mode max).
        let accuracies = a.trainer.history.epochs.map { $0.metrics["accuracy"]! }
        let bestAccuracy = accuracies.firstIndex(of: accuracies.max()!)! + 1
        #expect(try Safetensors.metadata(contentsOf: accuracyBest)["epoch"] == String(bestAccuracy))
        // saveBestOnly: false writes every epoch to its own file.
        for epoch in 1...8 {
            let url = every.deletingLastPathComponent().appendingPathComponent(every.lastPathComponent.replacingOccurrences(of: "{epoch}", with: "\(epoch)"))
            #expect(try Safetensors.metadata(contentsOf: url)["epoch"] == String(epoch))
            try? FileManager.default.removeItem(at: url)
        }
        // A run resumed after epoch 3 compares with the epochs before the resume, so it saves the same best epoch.
        try Random.withGenerator(seed: 0) {
            let b = try TrainerTests.Setup(seed: 7, validationLabels: flipped)
            try b.trainer.resume(from: afterThree)
            let saver = try ModelCheckpoint(to: resumedBest)
            b.trainer.add(saver)
            try b.trainer.fit(epochs: 8)
            #expect(b.trainer.history == a.trainer.history.withTimesOf(b.trainer.history))
            if bestEpoch > 3 {
                #expect(saver.savedEpoch == bestEpoch)
                #expect(try Safetensors.metadata(contentsOf: resumedBest)["epoch"] == String(bestEpoch))
            } else {
                #expect(saver.savedEpoch == nil)
            }
        }
        #expect(throws: NeuronError.self) { try ModelCheckpoint(to: best, minDelta: -1) }
    }

    @Test func plateauReducerStepsInTheTrainerAndResumes() throws {
        let checkpoint = temporaryURL("plateau.safetensors")
        defer { try? FileManager.default.removeItem(at: checkpoint) }
        let (a, b) = try Random.withGenerator(seed: 0) {
            let a = try TrainerTests.Setup(seed: 2)
            a.trainer.schedule = nil
            a.trainer.plateau = try ReduceLROnPlateau(a.optimizer, monitor: .loss, factor: 0.5, patience: 0, threshold: 0.05)
            a.trainer.checkpointURL = checkpoint
            try a.trainer.fit(epochs: 3)
            let b = try TrainerTests.Setup(seed: 3)
            b.trainer.schedule = nil
            b.trainer.plateau = try ReduceLROnPlateau(b.optimizer, monitor: .loss, factor: 0.5, patience: 0, threshold: 0.05)
            try b.trainer.resume(from: checkpoint)
            return (a, b)
        }
        // With patience 0 every epoch that does not improve by 5% halves the rate; the reducer's state and
        // the rate it set come back from the checkpoint.
        let records = a.trainer.history.epochs
        var expected: Float = 0.02, best = Double.infinity
        for r in records {
            #expect(r.learningRate == expected)
            if r.trainLoss < best * (1 - 0.05) { best = r.trainLoss } else { expected *= 0.5 }
        }
        #expect(a.optimizer.learningRate == expected)
        #expect(b.optimizer.learningRate == expected && b.trainer.plateau?.best == a.trainer.plateau?.best)
    }

    @Test func historyLogWritesCSVAndJSONAfterEveryEpoch() throws {
        let csv = temporaryURL("log.csv"), json = temporaryURL("log.json")
        defer { try? FileManager.default.removeItem(at: csv); try? FileManager.default.removeItem(at: json) }
        let s = try TrainerTests.Setup(seed: 1)
        s.trainer.add(HistoryLog(to: csv))
        s.trainer.add(HistoryLog(to: json))
        var rowsSeen: [Int] = []
        s.trainer.callbacks.append { _ in rowsSeen.append(try CSVTable(contentsOf: csv, hasHeader: true).rowCount); return .continue }
        let history = try s.trainer.fit(epochs: 4)
        #expect(rowsSeen == [1, 2, 3, 4])
        let table = try CSVTable(contentsOf: csv, hasHeader: true, emptyCells: .nan)
        #expect(table.columnNames == ["epoch", "loss", "val_loss", "accuracy", "lr", "seconds"])
        #expect(try table.column(named: "epoch").scalars == [1, 2, 3, 4])
        #expect(try table.column(named: "loss").scalars == history.epochs.map { Float($0.trainLoss) })
        #expect(try table.column(named: "lr").scalars == history.epochs.map(\.learningRate))
        #expect(try JSONDecoder().decode(History.self, from: Data(contentsOf: json)) == history)
    }

    @Test func historyPlotDrawsBothCurvesAxesAndLegend() throws {
        var history = History()
        for epoch in 1...30 {
            let e = Double(epoch)
            history.epochs.append(EpochRecord(epoch: epoch, trainLoss: 2 * Foundation.exp(-e / 8) + 0.05,
                                              validationLoss: epoch == 12 ? .nan : 2 * Foundation.exp(-e / 10) + 0.15 + 0.004 * e,
                                              metrics: ["accuracy": 1 - Foundation.exp(-e / 6)], learningRate: 0.01, seconds: 1))
        }
        let url = temporaryURL("loss.png")
        defer { try? FileManager.default.removeItem(at: url) }
        try history.plot(to: url.path)
        let image = try PNG.read(contentsOf: url, channels: .rgb)
        #expect(image.shape == [1, 3, 500, 800])
        // Pixels in each curve's colour (to the 8-bit rounding of the file), and dark text and axes.
        let (h, w) = (500, 800), p = image.scalars
        func count(_ color: SIMD3<Float>) -> Int {
            (0..<(h * w)).filter { i in (0..<3).allSatisfy { Swift.abs(p[$0 * h * w + i] - color[$0]) < 0.003 } }.count
        }
        #expect(count(PlotCanvas.blue) > 1000 && count(PlotCanvas.orange) > 1000)
        #expect(count(PlotCanvas.black) > 1500 && count(PlotCanvas.text) > 500)
        let accuracy = try history.plotImage(metric: "accuracy", logScale: true)
        #expect(accuracy.shape == [1, 3, 500, 800])
        #expect(throws: NeuronError.self) { try History().plotImage() }
        #expect(throws: NeuronError.self) { try history.plotImage(metric: "f1") }
        #expect(throws: NeuronError.self) { try history.plotImage(width: 10) }
        // Tick labels at round numbers with just enough decimals.
        #expect(niceTicks(0.05, 1.83, count: 6).map(\.label) == ["0.0", "0.5", "1.0", "1.5", "2.0"])
        #expect(niceTicks(1, 30, count: 8, integers: true).map(\.label) == ["0", "5", "10", "15", "20", "25", "30"])
        #expect(niceTicks(1, 1, count: 8, integers: true).map(\.label) == ["0", "1", "2"])
    }
}
