// Index-based train/test splits and k-fold cross-validation. They return indices, not data, so one
// split serves features, labels and anything else aligned with them (`x.rows(at: split.train)`).

/// Splits 0..<count into a training and a test set (scikit-learn's `train_test_split`).
///
/// The test set has `round(testFraction * count)` indices; both sets must end up non-empty. With
/// `shuffle` the membership is drawn from `generator`; without it the test set is the last indices
/// (scikit-learn's `shuffle=False`). Both index lists are ascending.
/// - Throws: `NeuronError.emptyInput` for `count` 0; `.invalidArgument` for `testFraction` outside
///   (0, 1) or a split that would leave either side empty.
public func holdoutSplit(count: Int, testFraction: Double = 0.3, shuffle: Bool = true,
                         generator: inout RandomGenerator) throws -> (train: [Int], test: [Int]) {
    try requireSampleCount(count, op: "holdoutSplit")
    guard testFraction > 0 && testFraction < 1 else {
        throw NeuronError.invalidArgument("holdoutSplit: testFraction must be in (0, 1), got \(testFraction)")
    }
    // Rounding rather than scikit-learn's ceil: 0.07 * 100 is 7.000000000000001 in floating point.
    let testCount = Int((testFraction * Double(count)).rounded())
    guard testCount > 0 && testCount < count else {
        throw NeuronError.invalidArgument(
            "holdoutSplit: testFraction \(testFraction) of \(count) samples gives \(testCount) test and \(count - testCount) training samples; both must be at least 1")
    }
    let order = shuffle ? shuffledIndices(count, using: &generator) : Array(0..<count)
    let trainCount = count - testCount
    return (order[..<trainCount].sorted(), order[trainCount...].sorted())
}

/// k-fold cross-validation splits of 0..<count (scikit-learn's `KFold`).
///
/// Every index is in exactly one validation fold; the first `count % k` folds have one index more than
/// the others. With `shuffle` the fold membership is drawn from `generator`; without it the folds are
/// consecutive runs. Each fold's training set is every other index. Both lists are ascending.
/// - Throws: `NeuronError.emptyInput` for `count` 0; `.invalidArgument` for `k` < 2 or `k` > `count`.
public func kFold(count: Int, k: Int, shuffle: Bool = true,
                  generator: inout RandomGenerator) throws -> [(train: [Int], validation: [Int])] {
    try requireSampleCount(count, op: "kFold")
    guard k >= 2 && k <= count else {
        throw NeuronError.invalidArgument("kFold: k must be in 2...count (\(count)), got \(k)")
    }
    let order = shuffle ? shuffledIndices(count, using: &generator) : Array(0..<count)
    var start = 0
    return (0..<k).map { fold in
        let size = count / k + (fold < count % k ? 1 : 0)
        let stop = start + size
        defer { start = stop }
        return ((order[..<start] + order[stop...]).sorted(), order[start..<stop].sorted())
    }
}

/// Runs `evaluate(train, validation)` on each of the `k` folds of `kFold(count:k:shuffle:generator:)`
/// and averages the scores (scikit-learn's `cross_val_score(...).mean()`).
///
/// `evaluate` trains a fresh model on the training indices and returns its score (accuracy, loss...)
/// on the validation indices.
/// - Throws: what `kFold` throws, what `evaluate` throws, and `NeuronError.nonFinite` when a fold's
///   score is NaN or infinite (naming the fold).
public func crossValidate(count: Int, k: Int, shuffle: Bool = true, generator: inout RandomGenerator,
                          evaluate: (_ train: [Int], _ validation: [Int]) throws -> Double) throws -> (perFold: [Double], mean: Double) {
    let folds = try kFold(count: count, k: k, shuffle: shuffle, generator: &generator)
    var scores = [Double]()
    for (fold, split) in folds.enumerated() {
        let score = try evaluate(split.train, split.validation)
        guard score.isFinite else {
            throw NeuronError.nonFinite("crossValidate: fold \(fold) of \(k) scored \(score)")
        }
        scores.append(score)
    }
    return (scores, scores.reduce(0, +) / Double(scores.count))
}
