import Foundation
import Neuron

/// The first demo: an MLP learns two interleaved spirals from 2-D points and is scored on held-out
/// points (a 70/30 holdout split).
public enum SpiralsDemo {
    public struct Result: Sendable {
        public var testAccuracy: Double
        public var epochs: Int
        public var history: History
    }

    /// Trains `2 → 64 → 64 → 2` (tanh) with Adam on `count` points and returns the held-out accuracy.
    public static func run(count: Int = 2000, epochs: Int = 150, seed: UInt64 = 42,
                           progress: ProgressStyle = .automatic, log: (String) -> Void = { print($0) }) throws -> Result {
        // A generator of the demo's own: the same seed gives the same run whatever else draws numbers.
        try Random.withGenerator(seed: seed) { try train(count: count, epochs: epochs, seed: seed, progress: progress, log: log) }
    }

    private static func train(count: Int, epochs: Int, seed: UInt64, progress: ProgressStyle, log: (String) -> Void) throws -> Result {
        var generator = RandomGenerator(seed: seed)
        let (points, labels) = try SyntheticData.twoSpirals(count: count, turns: 1.5, noise: 0.04, using: &generator)
        let split = try holdoutSplit(count: count, testFraction: 0.3, shuffle: true, generator: &generator)
        let trainX = try points.rows(at: split.train), testX = try points.rows(at: split.test)
        let trainY = try labels.gathering(split.train), testY = try labels.gathering(split.test)

        let model = try Sequential {
            try Linear(in: 2, out: 64)
            Tanh()
            try Linear(in: 64, out: 64)
            Tanh()
            try Linear(in: 64, out: 2)
        }
        log(try model.summary(inputShape: [1, 2]))
        let optimizer = try Adam(model.namedParameters, lr: 0.01)
        let loader = try DataLoader(x: trainX, y: trainY, batchSize: 64, generator: RandomGenerator(seed: seed &+ 1))
        let trainer = Trainer(model: model, optimizer: optimizer, trainData: loader, validationData: (testX, testY),
                              metrics: [.accuracy]) { logits, labels in try crossEntropy(logits, labels: labels) }
        trainer.schedule = try CosineAnnealingLR(optimizer, tMax: epochs, etaMin: 1e-4)
        trainer.progress = progress
        trainer.earlyStopping = EarlyStopping(patience: 40, minDelta: 1e-4)
        let history = try trainer.fit(epochs: epochs)
        let (_, metrics) = try trainer.evaluate(x: testX, y: testY)
        let accuracy = metrics["accuracy"] ?? 0
        let predictions = try noGrad { try model(testX).argmax(axis: 1) }
        log(try ConfusionMatrix(predictions: predictions, labels: testY, classes: 2).description)
        log(String(format: "two spirals: held-out accuracy %.2f%% after %d epochs", 100 * accuracy, history.epochs.count))
        return Result(testAccuracy: accuracy, epochs: history.epochs.count, history: history)
    }
}
