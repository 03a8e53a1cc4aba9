import Foundation

/// A quantity of an `EpochRecord` that callbacks and `ReduceLROnPlateau` watch (Keras's `monitor`).
public enum Monitor: Sendable, Equatable, CustomStringConvertible {
    /// The mean training loss (Keras's "loss").
    case loss
    /// The validation loss (Keras's "val_loss"), or the training loss for a run without validation
    /// data, as `EarlyStopping` monitors.
    case validationLoss
    /// A metric by name from `EpochRecord.metrics` (validation metrics when there is validation data).
    case metric(String)

    /// "loss", "val_loss" or the metric's name.
    public var description: String {
        switch self {
        case .loss: return "loss"
        case .validationLoss: return "val_loss"
        case .metric(let name): return name
        }
    }

    /// The monitored value in `record`.
    /// - Throws: `NeuronError.invalidArgument` naming the metrics there are when `record` has no such metric.
    public func value(in record: EpochRecord) throws -> Double {
        switch self {
        case .loss: return record.trainLoss
        case .validationLoss: return record.validationLoss ?? record.trainLoss
        case .metric(let name):
            guard let value = record.metrics[name] else {
                throw NeuronError.invalidArgument("epoch \(record.epoch) has no metric \(name.debugDescription) to monitor; its metrics are \(record.metrics.keys.sorted())")
            }
            return value
        }
    }
}

/// Whether smaller or larger values of a monitored quantity are better.
public enum MonitorMode: Sendable, Equatable {
    /// Smaller is better (losses).
    case min
    /// Larger is better (accuracy).
    case max
    /// `.max` for a metric whose name contains "acc", "auc", "precision", "recall" or "f1", else `.min`
    /// (Keras's "auto", which looks for "acc").
    case auto

    /// `.min` or `.max` for `monitor`.
    public func resolved(for monitor: Monitor) -> MonitorMode {
        guard self == .auto else { return self }
        guard case .metric(let name) = monitor else { return .min }
        let lower = name.lowercased()
        return ["acc", "auc", "precision", "recall", "f1"].contains(where: lower.contains) ? .max : .min
    }

    /// Whether `value` is better than `best` by more than `minDelta` (`.auto` counts as `.min`).
    func improves(_ value: Double, on best: Double, minDelta: Double = 0) -> Bool {
        self == .max ? value - minDelta > best : value + minDelta < best
    }
}

/// An object `Trainer` calls after every epoch, once the epoch's record is in `history`; add it with
/// `trainer.add(_:)`. Because it gets the whole history, a callback that only compares epochs (as
/// `ModelCheckpoint` does) needs no state of its own and behaves the same after `resume(from:)`.
public protocol TrainingCallback: AnyObject {
    /// Called after epoch `record.epoch`; `history.epochs.last` is `record`. Return `.stop` to end training.
    func epochEnded(_ record: EpochRecord, history: History, model: any Module) throws -> CallbackAction
}

/// Saves the model's weights (its state dict, as safetensors) after an epoch whose monitored quantity
/// is the best so far (Keras's `ModelCheckpoint(save_best_only=True, save_weights_only=True)`), or after
/// every epoch with `saveBestOnly: false`.
///
/// The best so far is read from the trainer's history, so a resumed run keeps comparing against the
/// epochs before the resume. The file's metadata records `epoch`, `monitor` and `value`. A `{epoch}`
/// in the file name becomes the epoch number (`"model-{epoch}.safetensors"`), as in Keras. Epochs whose
/// value is NaN never count as best.
public final class ModelCheckpoint: TrainingCallback {
    /// Where the weights go; `{epoch}` in the last path component is replaced by the epoch number.
    public let url: URL
    /// The quantity compared between epochs.
    public let monitor: Monitor
    /// `.min` or `.max` (`.auto` resolved by `monitor`).
    public let mode: MonitorMode
    /// Whether only epochs better than every earlier one are saved.
    public let saveBestOnly: Bool
    /// The least improvement over the best that counts as better.
    public let minDelta: Double
    /// The epoch whose weights were saved last, if any.
    public private(set) var savedEpoch: Int?

    /// - Parameters:
    ///   - url: the safetensors file to write (atomically).
    ///   - monitor: the quantity compared (default the validation loss, else the training loss).
    ///   - mode: `.min`, `.max`, or `.auto` (from `monitor`).
    ///   - saveBestOnly: save only epochs better than every earlier one (default), or every epoch.
    ///   - minDelta: the least improvement that counts (default 0), not negative.
    /// - Throws: `NeuronError.invalidArgument` for a negative or non-finite `minDelta`.
    public init(to url: URL, monitor: Monitor = .validationLoss, mode: MonitorMode = .auto, saveBestOnly: Bool = true,
                minDelta: Double = 0) throws {
        try Hyperparameter.require(minDelta.isFinite && minDelta >= 0, "ModelCheckpoint minDelta must be finite and non-negative, got \(minDelta)")
        self.url = url
        self.monitor = monitor
        self.mode = mode.resolved(for: monitor)
        self.saveBestOnly = saveBestOnly
        self.minDelta = minDelta
    }

    /// The file for `epoch`: `url` with `{epoch}` replaced.
    public func url(forEpoch epoch: Int) -> URL {
        let name = url.lastPathComponent
        guard name.contains("{epoch}") else { return url }
        return url.deletingLastPathComponent().appendingPathComponent(name.replacingOccurrences(of: "{epoch}", with: String(epoch)))
    }

    /// Whether `record` is better than every earlier epoch of `history` (all of them before `record`).
    func isBest(_ record: EpochRecord, history: History) throws -> Bool {
        let value = try monitor.value(in: record)
        guard !value.isNaN else { return false }
        for earlier in history.epochs where earlier.epoch < record.epoch {
            let previous = try monitor.value(in: earlier)
            if !previous.isNaN && !mode.improves(value, on: previous, minDelta: minDelta) { return false }
        }
        return true
    }

    /// Saves the model's weights when `record` is the best epoch so far (or always, without `saveBestOnly`).
    /// - Throws: `NeuronError.invalidArgument` when the monitored metric is missing; `.io` when the file
    ///   cannot be written.
    public func epochEnded(_ record: EpochRecord, history: History, model: any Module) throws -> CallbackAction {
        guard try !saveBestOnly || isBest(record, history: history) else { return .continue }
        let value = try monitor.value(in: record)
        try model.save(to: url(forEpoch: record.epoch),
                       metadata: ["epoch": String(record.epoch), "monitor": monitor.description, "value": String(value)])
        savedEpoch = record.epoch
        return .continue
    }
}

/// Writes the trainer's whole history to a file after every epoch (Keras's `CSVLogger`): CSV when the
/// file name ends in `.csv` (`History.csvText()`), else JSON (`History`'s `Codable` form). The file is
/// rewritten atomically from the history each time, so after `resume(from:)` it holds every epoch.
public final class HistoryLog: TrainingCallback {
    /// The log file: CSV when its name ends in `.csv`, else JSON.
    public let url: URL

    /// A log written to `url` after every epoch.
    public init(to url: URL) { self.url = url }

    /// Rewrites the log from `history`.
    /// - Throws: `NeuronError.io` when the file cannot be written.
    public func epochEnded(_ record: EpochRecord, history: History, model: any Module) throws -> CallbackAction {
        try history.write(to: url)
        return .continue
    }
}

extension History {
    /// The history as CSV, one row per epoch: `epoch`, `loss`, `val_loss` (when any epoch has one; empty
    /// where missing), each metric in name order (empty where missing), `lr`, `seconds` (the columns of
    /// Keras's `CSVLogger`, with the learning rate and time added). Reads back with `CSVTable(parsing:
    /// hasHeader: true, emptyCells: .nan)`.
    /// - Throws: `NeuronError.nonFinite` when a value is infinite (CSV cells are finite numbers or empty).
    public func csvText() throws -> String {
        let hasValidation = epochs.contains { $0.validationLoss != nil }
        let metricNames = Set(epochs.flatMap(\.metrics.keys)).sorted()
        let names = ["epoch", "loss"] + (hasValidation ? ["val_loss"] : []) + metricNames + ["lr", "seconds"]
        let rows: [[Float]] = epochs.map { r in
            [Float(r.epoch), Float(r.trainLoss)] + (hasValidation ? [Float(r.validationLoss ?? .nan)] : [])
                + metricNames.map { Float(r.metrics[$0] ?? .nan) } + [r.learningRate, Float(r.seconds)]
        }
        let values = try Tensor(shape: [rows.count, names.count], scalars: rows.flatMap { $0 })
        return try CSVTable(values: values, columnNames: names).csvText()
    }

    /// Writes the history to `url` atomically: CSV (`csvText()`) when the name ends in `.csv`, else JSON.
    /// - Throws: `NeuronError.io` when the file cannot be written; as `csvText()` for CSV.
    public func write(to url: URL) throws {
        let data: Data
        if url.pathExtension.lowercased() == "csv" {
            data = Data(try csvText().utf8)
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            data = try encoder.encode(self)
        }
        do {
            try writeAtomically(data, to: url)
        } catch NeuronError.io(let reason) {
            throw NeuronError.io("\(url.path): \(reason)")
        }
    }
}
