import Foundation
import Neuron

/// Many-to-one regression on a real series: forecast next week's CO2 at Mauna Loa from the last 60 weeks
/// with the classic Keras recipe LSTM(80, return_sequences) → Dropout(0.2) → LSTM(100) → Dropout(0.2) →
/// Dense(1) (`SequenceModels.stackedForecaster`), scored on the last 20% of the weeks against the naive
/// forecast "next week equals this week".
///
/// Data (`Datasets.co2MaunaLoaWeekly`, 2284 weeks, 1958–2001): the 59 missing weeks are filled by linear
/// interpolation between their neighbours. Windows are scaled one by one: the window's last value is
/// subtracted from its inputs and from its target, and both are divided by one scale (the RMS of those
/// differences in the training windows). The model thus predicts the change from this week, in a range
/// that the test years share with the training years, although their levels (about 355–372 ppm) lie above
/// every training value; an output of 0 is the naive forecast.
///
/// Split by time: windows whose target falls in the first 80% of the weeks train the model (the last
/// tenth of them validate it for early stopping); the rest are the test set.
public enum CO2Demo {
    public struct Result: Sendable {
        /// Root-mean-square error of the model's forecasts on the test weeks, in ppm.
        public var testRMSE: Double
        /// The same for the naive last-value forecast.
        public var naiveRMSE: Double
        public var testWindows: Int
        public var history: History
    }

    /// The window length in weeks.
    public static let window = 60

    /// Trains for up to `epochs` epochs (early stopping with patience 5 on the validation loss, best weights
    /// restored) and scores the test weeks.
    /// - Throws: `NeuronError.invalidArgument` for fewer than 1 epoch; `.io` when the data cannot be read.
    public static func run(epochs: Int = 40, batchSize: Int = 32, learningRate: Float = 1e-3, seed: UInt64 = 42,
                           progress: ProgressStyle = .automatic, log: (String) -> Void = { print($0) }) throws -> Result {
        guard epochs >= 1 else { throw NeuronError.invalidArgument("CO2Demo needs at least 1 epoch, got \(epochs)") }
        return try Random.withGenerator(seed: seed) {
            try train(epochs: epochs, batchSize: batchSize, learningRate: learningRate, seed: seed, progress: progress, log: log)
        }
    }

    private static func train(epochs: Int, batchSize: Int, learningRate: Float, seed: UInt64, progress: ProgressStyle,
                              log: (String) -> Void) throws -> Result {
        let table = try Datasets.co2MaunaLoaWeekly()
        let raw = try table.column(named: "co2_ppm").scalars
        let series = try TimeSeries.interpolatingMissing(raw)
        let (inputs, targets) = try TimeSeries.windows(series, length: window)
        let count = inputs.shape[0]
        // Window i's target is week i + window; the test set is the windows whose target lies in the last 20%.
        let firstTestWindow = Int((Double(series.count) * 0.8).rounded()) - window
        let firstValidationWindow = firstTestWindow - firstTestWindow / 10
        log(String(format: "CO2 at Mauna Loa: %d weeks (%d missing, filled by interpolation), %d windows of %d weeks: %d train, %d validation, %d test",
                   series.count, raw.filter(\.isNaN).count, count, window, firstValidationWindow,
                   firstTestWindow - firstValidationWindow, count - firstTestWindow))

        let last = try inputs.selecting(-1, alongAxis: 1)  // [count, 1]
        let deltas = try inputs - (try last.reshaped([count, 1, 1]))
        let trainDeltas = Array(deltas.scalars[..<(firstValidationWindow * window)])
        let scale = Float((trainDeltas.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(trainDeltas.count)).squareRoot())
        let x = deltas * (1 / scale)
        let y = try (targets - last) * (1 / scale)

        let model = try SequenceModels.stackedForecaster()
        log(try model.summary(inputShape: [1, window, 1]))
        let optimizer = try Adam(model.namedParameters, lr: learningRate)
        let loader = try DataLoader(x: try x.slice(0..<firstValidationWindow), y: try y.slice(0..<firstValidationWindow),
                                    batchSize: batchSize, generator: RandomGenerator(seed: seed &+ 1))
        let trainer = Trainer(model: model, optimizer: optimizer, trainData: loader,
                              validationData: (try x.slice(firstValidationWindow..<firstTestWindow), try y.slice(firstValidationWindow..<firstTestWindow))) {
            try mseLoss($0, $1)
        }
        trainer.earlyStopping = EarlyStopping(patience: 5, restoreBestWeights: true)
        trainer.progress = progress
        let history = try trainer.fit(epochs: epochs)

        let testX = try x.slice(firstTestWindow..<count)
        let predicted = try predict(model, testX, batchSize: 256)
        let truth = try targets.slice(firstTestWindow..<count).scalars, lastValues = try last.slice(firstTestWindow..<count).scalars
        func rmse(_ forecast: (Int) -> Double) -> Double {
            (truth.indices.reduce(0.0) { $0 + pow(forecast($1) - Double(truth[$1]), 2) } / Double(truth.count)).squareRoot()
        }
        let testRMSE = rmse { Double(lastValues[$0]) + Double(scale) * Double(predicted[$0]) }
        let naiveRMSE = rmse { Double(lastValues[$0]) }
        log(String(format: "test weeks %@ to %@: RMSE %.3f ppm (naive last-value forecast %.3f ppm) after %d epochs",
                   table.texts["date"]![firstTestWindow + window], table.texts["date"]!.last!, testRMSE, naiveRMSE, history.epochs.count))
        return Result(testRMSE: testRMSE, naiveRMSE: naiveRMSE, testWindows: count - firstTestWindow, history: history)
    }

    /// The model's outputs for `x`, in evaluation mode without gradients, `batchSize` windows at a time.
    static func predict(_ model: any Module, _ x: Tensor, batchSize: Int) throws -> [Float] {
        model.eval()
        defer { model.train() }
        return try noGrad {
            var out: [Float] = []
            for start in stride(from: 0, to: x.shape[0], by: batchSize) {
                out += try model(try x.slice(start..<min(start + batchSize, x.shape[0]))).scalars
            }
            return out
        }
    }
}
