import CKernels
import Foundation

/// What one epoch of training produced.
///
/// Codable so histories can be saved as JSON, which has no NaN or infinity: non-finite values are
/// encoded as the strings `"nan"`, `"inf"` and `"-inf"` and decoded back (finite values stay numbers).
public struct EpochRecord: Sendable, Equatable, Codable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Mean training loss over the epoch's samples.
    public var trainLoss: Double
    /// Loss on the validation data, when there is any.
    public var validationLoss: Double?
    /// Validation metrics by name (training metrics when there is no validation data).
    public var metrics: [String: Double]
    /// The learning rate the epoch trained with (its first batch's, under a per-batch schedule).
    public var learningRate: Float
    /// Wall-clock time of the epoch, validation included.
    public var seconds: Double
}

// In an extension, so the memberwise initialiser stays.
extension EpochRecord {
    private enum CodingKeys: String, CodingKey { case epoch, trainLoss, validationLoss, metrics, learningRate, seconds }

    /// Decodes a record, reading "nan", "inf" and "-inf" strings as those values.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        trainLoss = try c.decode(JSONDouble.self, forKey: .trainLoss).value
        validationLoss = try c.decodeIfPresent(JSONDouble.self, forKey: .validationLoss)?.value
        metrics = try c.decode([String: JSONDouble].self, forKey: .metrics).mapValues(\.value)
        learningRate = Float(try c.decode(JSONDouble.self, forKey: .learningRate).value)
        seconds = try c.decode(JSONDouble.self, forKey: .seconds).value
    }

    /// Encodes the record, non-finite values as the strings "nan", "inf" and "-inf".
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(JSONDouble(trainLoss), forKey: .trainLoss)
        try c.encodeIfPresent(validationLoss.map(JSONDouble.init), forKey: .validationLoss)
        try c.encode(metrics.mapValues(JSONDouble.init), forKey: .metrics)
        if learningRate.isFinite {  // as a Float, so 0.01 reads 0.01
            try c.encode(learningRate, forKey: .learningRate)
        } else {
            try c.encode(JSONDouble(Double(learningRate)), forKey: .learningRate)
        }
        try c.encode(JSONDouble(seconds), forKey: .seconds)
    }
}

/// A Double that any JSON encoder accepts: a number when finite, else "nan", "inf" or "-inf".
struct JSONDouble: Codable {
    var value: Double
    init(_ value: Double) { self.value = value }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Double.self) {
            value = number
            return
        }
        switch try c.decode(String.self) {
        case "nan": value = .nan
        case "inf": value = .infinity
        case "-inf": value = -.infinity
        case let other:
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a number, \"nan\", \"inf\" or \"-inf\", got \"\(other)\"")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if value.isFinite { try c.encode(value) } else { try c.encode(value.isNaN ? "nan" : value > 0 ? "inf" : "-inf") }
    }
}

/// The epochs a `fit` ran, and how it ended.
public struct History: Sendable, Equatable, Codable {
    /// One record per completed epoch, in order.
    public var epochs: [EpochRecord] = []
    /// The epoch with the best monitored loss (validation loss, else training loss).
    public var bestEpoch: Int?
    /// Whether early stopping (or a callback) ended training before the requested epochs.
    public var stoppedEarly = false
    /// An empty history.
    public init() {}
}

/// Stops training when the monitored loss (validation loss, else training loss) has not improved by
/// more than `minDelta` for `patience` epochs (Keras's `EarlyStopping`), optionally restoring the
/// weights of the best epoch.
public struct EarlyStopping: Sendable {
    /// Epochs without improvement before training stops.
    public var patience: Int
    /// The least decrease of the monitored loss that counts as an improvement.
    public var minDelta: Double
    /// Whether the best epoch's weights are loaded back when training ends.
    public var restoreBestWeights: Bool
    /// Early stopping after `patience` epochs without an improvement larger than `minDelta`.
    public init(patience: Int, minDelta: Double = 0, restoreBestWeights: Bool = true) {
        self.patience = patience
        self.minDelta = minDelta
        self.restoreBestWeights = restoreBestWeights
    }
}

/// A named measure of a batch of outputs against targets, e.g. accuracy.
public struct Metric<Target> {
    /// The metric's name in `EpochRecord.metrics`.
    public let name: String
    /// The metric of the model's outputs for all samples against their targets.
    public let compute: (Tensor, Target) throws -> Double
    /// A metric called `name` computed by `compute(outputs, targets)`.
    public init(_ name: String, _ compute: @escaping (Tensor, Target) throws -> Double) {
        self.name = name
        self.compute = compute
    }
}

extension Metric where Target == [Int] {
    /// Share of rows whose largest logit is the label.
    public static var accuracy: Metric {
        Metric("accuracy", logitAccuracy)
    }
}

private func logitAccuracy(_ logits: Tensor, _ labels: [Int]) throws -> Double {
    try accuracy(predictions: logits.argmax(axis: 1), labels: labels)
}

/// What a callback wants after an epoch.
public enum CallbackAction: Sendable {
    /// Go on with the next epoch.
    case `continue`
    /// End training after this epoch (`History.stoppedEarly` is set), as Keras's `stop_training`.
    case stop
}

/// How `fit` reports progress: a live line on a terminal, plain lines otherwise (`automatic`).
public enum ProgressStyle: Sendable {
    /// `live` when standard output is a terminal, `lines` otherwise.
    case automatic
    /// One line rewritten in place after every batch, Keras's progress bar.
    case live
    /// One line per epoch, for logs and pipes.
    case lines
    /// Nothing printed.
    case silent
}

/// Runs the training loop: epochs of minibatches through model, loss, backward and optimiser step;
/// validation after each epoch; early stopping; callbacks; checkpoints that resume exactly (model,
/// optimiser state, schedule, epoch, early-stopping state and every random generator).
///
/// `fit(epochs:)` trains until `epoch == epochs`, so after `resume(from:)` the same call continues
/// where the checkpoint left off. A NaN or infinite loss (whatever computed it: a built-in loss or tensor
/// ops) stops training with `NeuronError.nonFinite` naming the epoch and batch, before its gradients are
/// applied; so does, with `checksParameters` (the default), a parameter that is no longer finite after
/// an optimiser step, naming it. Checkpoints are never written with non-finite parameters.
///
/// With a `reducer` (data-parallel training, e.g. NeuronDistributed's `DataParallel`) every process runs
/// the same Trainer over the same data and seed: `fit` first synchronises the model from replica 0,
/// each replica trains on its part of every global batch (`trainData.batchSize` is the global batch),
/// the gradients are combined into the global batch's mean gradient before clipping and the optimiser
/// step, losses and metrics are combined over replicas (validation rows are split among them and their
/// outputs gathered), so the history is the same on every replica. Buffers (batch-norm running
/// statistics) follow replica 0: they are copied from it after every step. Only replica 0 reports
/// progress and writes checkpoints; every replica must call `fit`, `evaluate` and `resume(from:)`.
public final class Trainer<Target: Batchable> {
    /// The model trained.
    public let model: any Module
    /// The optimiser that updates the model's parameters.
    public let optimizer: any Optimizer
    /// A closed-form schedule, stepped after every epoch or every batch (its `interval`).
    public var schedule: (any LearningRateSchedule)?
    /// Reduces the learning rate when its monitored quantity stalls, stepped after every epoch; not
    /// together with `schedule`.
    public var plateau: ReduceLROnPlateau?
    /// The training minibatches, reshuffled every epoch.
    public var trainData: DataLoader<Target>
    /// Data scored after every epoch (loss and metrics), never trained on.
    public var validationData: (x: Tensor, y: Target)?
    /// The loss of a batch's outputs against its targets, a rank-0 tensor.
    public let loss: (Tensor, Target) throws -> Tensor
    /// Measured after every epoch on the validation data (else the training data).
    public var metrics: [Metric<Target>]
    /// Stops training when the monitored loss stalls.
    public var earlyStopping: EarlyStopping?
    /// Clip the global gradient norm to this before each step.
    public var gradientClipNorm: Float?
    /// Written (atomically) after every epoch when set.
    public var checkpointURL: URL?
    /// Called after every epoch, in order, once the epoch's record is in `history`; any `.stop` ends
    /// training after the epoch. `add(_:)` appends a `TrainingCallback` (`ModelCheckpoint`, `HistoryLog`).
    public var callbacks: [(EpochRecord) throws -> CallbackAction] = []
    /// How `fit` reports progress.
    public var progress: ProgressStyle = .automatic
    /// Check after every optimiser step that every parameter is finite (one pass over their memory) and
    /// stop with `NeuronError.nonFinite` naming the first that is not. On by default.
    public var checksParameters = true
    /// Combines the replicas of data-parallel training; nil trains in this process alone.
    public var reducer: (any GradientReducer)?

    /// Epochs completed so far.
    public private(set) var epoch = 0
    /// The epochs trained so far (restored by `resume(from:)`).
    public private(set) var history = History()
    private var bestLoss = Double.infinity
    private var epochsWithoutImprovement = 0
    private var bestState: [String: StoredTensor]?

    /// A trainer of `model` by `optimizer` on `trainData`, minimising `loss`; see the properties for the rest.
    public init(model: any Module, optimizer: any Optimizer, schedule: (any LearningRateSchedule)? = nil,
                trainData: DataLoader<Target>, validationData: (x: Tensor, y: Target)? = nil,
                metrics: [Metric<Target>] = [], loss: @escaping (Tensor, Target) throws -> Tensor) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.trainData = trainData
        self.validationData = validationData
        self.metrics = metrics
        self.loss = loss
    }

    /// Trains until `epochs` epochs are complete (or early stopping ends it) and returns the history.
    @discardableResult
    public func fit(epochs: Int) throws -> History {
        guard epochs >= 0 else { throw NeuronError.invalidArgument("fit: epochs must not be negative, got \(epochs)") }
        guard schedule == nil || plateau == nil else {
            throw NeuronError.invalidArgument("fit: a closed-form schedule and ReduceLROnPlateau both set the learning rate; use one")
        }
        let reporter = ProgressReporter(style: (reducer?.rank ?? 0) == 0 ? progress : .silent, total: epochs,
                                        batches: trainData.batchCount)
        try reducer?.synchronize(model)
        history.stoppedEarly = false
        while epoch < epochs {
            let record = try runEpoch(reporter: reporter)
            history.epochs.append(record)
            var stop = updateEarlyStopping(record)
            for callback in callbacks where try callback(record) == .stop { stop = true }
            if let schedule, schedule.interval == .epoch { schedule.step() }
            if let plateau { plateau.step(try plateau.monitor.value(in: record)) }
            if let url = checkpointURL { try writeCheckpoint(to: url) }
            reporter.finishEpoch(record)
            if stop {
                history.stoppedEarly = true
                break
            }
        }
        if let best = bestState, earlyStopping?.restoreBestWeights == true {
            try model.loadStateDict(best)
        }
        return history
    }

    private func runEpoch(reporter: ProgressReporter) throws -> EpochRecord {
        let start = Date()
        let number = epoch + 1
        let learningRate = optimizer.learningRate
        model.train()
        var total = 0.0, samples = 0
        let batches = trainData.epoch()
        for index in batches.indices {
            if let reducer {
                let (loss, count) = try distributedStep(batches, index, reducer, number)
                total += loss * Double(count)
                samples += count
                reporter.batchDone(epoch: number, batch: index + 1, loss: total / Double(samples))
                continue
            }
            let batch = batches[index]
            let value: Tensor
            do {
                optimizer.zeroGrad()
                value = try loss(try model(batch.x), batch.y)
                // A loss built from tensor ops does not check itself as the built-in losses do.
                if let bad = value.withUnsafeBufferPointer({ $0.first { !$0.isFinite } }) {
                    throw NeuronError.nonFinite("the loss is \(bad) (check the data for NaN, and the learning rate)")
                }
            } catch NeuronError.nonFinite(let message) {
                throw NeuronError.nonFinite("epoch \(number), batch \(index + 1): \(message)")
            }
            try backwardAndStep(value, epoch: number, batch: index)
            let n = batch.x.shape[0]
            total += Double(try value.item()) * Double(n)
            samples += n
            reporter.batchDone(epoch: number, batch: index + 1, loss: total / Double(samples))
        }
        epoch = number
        var record = EpochRecord(epoch: number, trainLoss: total / Double(max(samples, 1)), validationLoss: nil,
                                 metrics: [:], learningRate: learningRate, seconds: 0)
        if let validation = validationData {
            let (vLoss, vMetrics): (Double, [String: Double])
            do {
                (vLoss, vMetrics) = try evaluate(x: validation.x, y: validation.y)
                guard vLoss.isFinite else { throw NeuronError.nonFinite("the loss is \(vLoss) (check the validation data for NaN)") }
            } catch NeuronError.nonFinite(let message) {
                throw NeuronError.nonFinite("epoch \(number), validation: \(message)")
            }
            record.validationLoss = vLoss
            record.metrics = vMetrics
        } else if !metrics.isEmpty {
            record.metrics = try evaluate(x: trainData.x, y: trainData.y).metrics
        }
        record.seconds = Date().timeIntervalSince(start)
        return record
    }

    /// Appends `callback` to `callbacks`: it is called after every epoch with the record, the history
    /// and the model. The trainer keeps the callback; the callback does not keep the trainer.
    public func add(_ callback: some TrainingCallback) {
        callbacks.append { [unowned self] record in try callback.epochEnded(record, history: self.history, model: self.model) }
    }

    /// Loss and metrics of the model on `x`, `y` in evaluation mode without gradients, run in batches
    /// of the training batch size.
    public func evaluate(x: Tensor, y: Target) throws -> (loss: Double, metrics: [String: Double]) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        return try noGrad {
            let n = try x.sampleCount()
            guard n > 0 else { throw NeuronError.emptyInput("evaluate: no samples in \(shapeString(x.shape))") }
            // Data parallel: each replica runs its share of the rows (all of them when there are fewer
            // rows than replicas) and every replica scores the gathered outputs.
            let shared = reducer.map { n >= $0.replicaCount } ?? false
            let rows = shared ? reducer!.share(of: n) : 0..<n
            var outputs: [Tensor] = []
            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: trainData.batchSize) {
                outputs.append(try model(try x.slice(start..<min(start + trainData.batchSize, rows.upperBound))))
            }
            var output = try Tensor.concatenate(outputs, axis: 0)
            if shared { output = try reducer!.gatherRows(output) }
            let value = Double(try loss(output, y).item())
            var results: [String: Double] = [:]
            for metric in metrics { results[metric.name] = try metric.compute(output, y) }
            return (value, results)
        }
    }

    /// One data-parallel step on this replica's part of batch `index`: the loss of the global batch
    /// (summed over replicas before backward, so a non-finite loss or a failure on any replica stops
    /// every replica at the same step), then backward, the reduced gradients, clipping and the step.
    /// Returns the global batch's mean loss and size.
    private func distributedStep(_ batches: DataLoader<Target>.Epoch, _ index: Int, _ reducer: any GradientReducer,
                                 _ number: Int) throws -> (loss: Double, count: Int) {
        let shard = batches.shard(index, rank: reducer.rank, of: reducer.replicaCount)
        let count = try shard.x.sampleCount()
        optimizer.zeroGrad()
        var value: Tensor?
        var localLoss = 0.0
        var localError: Error?
        if count > 0 {
            do {
                let v = try loss(try model(shard.x), shard.y)
                localLoss = Double(try v.item()) * Double(count)
                value = v
            } catch { localError = error }
        }
        let totals = try reducer.sum([localLoss, Double(count), localError == nil ? 0 : 1])
        if let localError { throw localError }
        guard totals[2] == 0 else {
            throw NeuronError.communication("epoch \(number), batch \(index + 1): another replica failed computing its loss (its own error says why)")
        }
        let globalCount = Int(totals[1])
        let globalLoss = totals[0] / Double(globalCount)
        guard globalLoss.isFinite else {
            throw NeuronError.nonFinite("epoch \(number), batch \(index + 1): the loss is \(globalLoss) (check the data for NaN, and the learning rate)")
        }
        try backwardAndStep(value, epoch: number, batch: index) {
            try reducer.reduceGradients(model.parameters, weight: Float(count) / Float(globalCount))
        }
        try reducer.broadcastBuffers(of: model)
        return (globalLoss, globalCount)
    }

    /// Backward from `value` (when there is one), `combine` (the data-parallel reduction), clipping, the
    /// optimiser step and the parameter check; a non-finite value is reported with its epoch and batch.
    private func backwardAndStep(_ value: Tensor?, epoch number: Int, batch index: Int,
                                 combine: () throws -> Void = {}) throws {
        do {
            try value?.backward()
            try combine()
            if let maxNorm = gradientClipNorm { _ = try clipGradNorm(model.parameters, maxNorm: maxNorm) }
            try optimizer.step()
            if checksParameters, let name = firstNonFiniteParameter(model.namedParameters) {
                throw NeuronError.nonFinite("parameter '\(name)' is NaN or infinite after the optimiser step (check the gradients and the learning rate)")
            }
            if let schedule, schedule.interval == .batch { schedule.step() }
        } catch NeuronError.nonFinite(let message) {
            throw NeuronError.nonFinite("epoch \(number), batch \(index + 1): \(message)")
        }
    }

    /// Writes the checkpoint; with a reducer, replica 0 writes it and every replica learns whether
    /// that worked, so a failed write stops all of them.
    private func writeCheckpoint(to url: URL) throws {
        guard let reducer else { return try saveCheckpoint(to: url) }
        var saveError: Error?
        if reducer.rank == 0 {
            do { try saveCheckpoint(to: url) } catch { saveError = error }
        }
        let failed = try reducer.sum([saveError == nil ? 0 : 1])[0]
        if let saveError { throw saveError }
        guard failed == 0 else {
            throw NeuronError.communication("replica 0 could not write the checkpoint \(url.path) (its error says why)")
        }
    }

    /// The name of the first parameter holding a NaN or an infinity, if any (one pass, in C).
    func firstNonFiniteParameter(_ parameters: [(name: String, parameter: Parameter)]) -> String? {
        parameters.first { _, p in p.withValue { nn_all_finite($0.pointer, $0.count) == 0 } }?.name
    }

    var bestStateForCheckpoint: [String: StoredTensor]? { bestState }
    var bestLossForCheckpoint: Double { bestLoss }
    var stalledEpochs: Int { epochsWithoutImprovement }

    func restoreTrainingState(epoch: Int, history: History, bestLoss: Double, stalledEpochs: Int, bestState: [String: StoredTensor]?) {
        self.epoch = epoch
        self.history = history
        self.bestLoss = bestLoss
        self.epochsWithoutImprovement = stalledEpochs
        self.bestState = bestState
    }

    /// Records the monitored loss; returns whether patience has run out.
    private func updateEarlyStopping(_ record: EpochRecord) -> Bool {
        let monitored = record.validationLoss ?? record.trainLoss
        let delta = earlyStopping?.minDelta ?? 0
        if monitored < bestLoss - delta {
            bestLoss = monitored
            epochsWithoutImprovement = 0
            history.bestEpoch = record.epoch
            if earlyStopping?.restoreBestWeights == true { bestState = model.stateDict() }
            return false
        }
        epochsWithoutImprovement += 1
        guard let stopping = earlyStopping else { return false }
        return epochsWithoutImprovement >= stopping.patience
    }
}

/// The live progress line or plain lines of `Trainer.fit`.
final class ProgressReporter {
    private let live: Bool
    private let silent: Bool
    private let total: Int
    private let batches: Int

    init(style: ProgressStyle, total: Int, batches: Int) {
        self.total = total
        self.batches = batches
        silent = style == .silent
        switch style {
        case .live: live = true
        case .automatic: live = isatty(STDOUT_FILENO) != 0
        case .lines, .silent: live = false
        }
    }

    func batchDone(epoch: Int, batch: Int, loss: Double) {
        guard live, !silent else { return }
        let width = 24, filled = batches > 0 ? width * batch / batches : width
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        print(String(format: "\repoch %d/%d [%@] %d/%d  loss %.4f", epoch, total, bar, batch, batches, loss), terminator: "")
        fflush(nil)  // all C streams: `stdout` itself is not concurrency-safe to name in Swift 6
    }

    func finishEpoch(_ r: EpochRecord) {
        guard !silent else { return }
        var line = String(format: "epoch %d/%d  loss %.4f", r.epoch, total, r.trainLoss)
        if let v = r.validationLoss { line += String(format: "  val_loss %.4f", v) }
        for (name, value) in r.metrics.sorted(by: { $0.key < $1.key }) { line += String(format: "  %@ %.4f", name, value) }
        line += String(format: "  lr %.3g  %.2fs", Double(r.learningRate), r.seconds)
        print((live ? "\r\u{1B}[K" : "") + line)
        fflush(nil)  // all C streams: `stdout` itself is not concurrency-safe to name in Swift 6
    }
}
