import Foundation

/// The fraction of `predictions` equal to `labels` (scikit-learn's `accuracy_score`).
/// - Throws: `NeuronError.shapeMismatch` for different lengths, `.emptyInput` for none.
public func accuracy(predictions: some IntegerLabels, labels: some IntegerLabels) throws -> Double {
    let predictions = try predictions.labelValues(op: "accuracy"), labels = try labels.labelValues(op: "accuracy")
    try checkPairs(predictions, labels, op: "accuracy")
    return Double(zip(predictions, labels).count(where: { $0.0 == $0.1 })) / Double(labels.count)
}

/// Counts of (true class, predicted class) pairs for a classifier over `classes` classes:
/// `counts[actual][predicted]`, rows the true class and columns the prediction (scikit-learn's
/// `confusion_matrix` layout; PyTorch has none built in).
///
/// Per-class precision, recall and F1 are 0 where their denominator is 0 (scikit-learn's
/// `zero_division=0`); the macro averages are unweighted means over all `classes` classes, including
/// classes that never occur.
public struct ConfusionMatrix: CustomStringConvertible, Equatable, Sendable {
    /// The number of classes; labels and predictions run over 0..<classes.
    public let classes: Int
    /// `counts[actual][predicted]`, [classes][classes].
    public let counts: [[Int]]

    /// - Throws: `NeuronError.shapeMismatch` for different lengths, `.emptyInput` for none,
    ///   `.invalidArgument` for `classes` < 1 or a label or prediction outside 0..<classes.
    public init(predictions: some IntegerLabels, labels: some IntegerLabels, classes: Int) throws {
        let predictions = try predictions.labelValues(op: "ConfusionMatrix"), labels = try labels.labelValues(op: "ConfusionMatrix")
        try checkPairs(predictions, labels, op: "ConfusionMatrix")
        guard classes >= 1 else { throw NeuronError.invalidArgument("ConfusionMatrix: classes must be at least 1, got \(classes)") }
        for (name, values) in [("label", labels), ("prediction", predictions)] {
            if let i = values.firstIndex(where: { $0 < 0 || $0 >= classes }) {
                throw NeuronError.invalidArgument("ConfusionMatrix: \(name) \(values[i]) at index \(i) is outside 0..<\(classes)")
            }
        }
        // classes x classes Ints, two floats each.
        try Sizes.checkAllocation(elements: try Sizes.product([classes, classes, 2], "ConfusionMatrix size"), "ConfusionMatrix of \(classes) classes")
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (p, t) in zip(predictions, labels) { counts[t][p] += 1 }
        self.classes = classes
        self.counts = counts
    }

    /// The number of samples.
    public var total: Int { counts.joined().reduce(0, +) }
    /// The fraction classified correctly (the diagonal over the total).
    public var accuracy: Double { Double((0..<classes).map { counts[$0][$0] }.reduce(0, +)) / Double(total) }

    /// The number of samples whose true class is `c`.
    public func support(class c: Int) throws -> Int { try checkClass(c); return counts[c].reduce(0, +) }

    /// Of the samples predicted as `c`, the fraction that are `c`: tp / (tp + fp).
    public func precision(class c: Int) throws -> Double { try checkClass(c); return scores(c).precision }

    /// Of the samples of class `c`, the fraction predicted as `c`: tp / (tp + fn).
    public func recall(class c: Int) throws -> Double { try checkClass(c); return scores(c).recall }

    /// The harmonic mean of precision and recall: 2 tp / (2 tp + fp + fn).
    public func f1(class c: Int) throws -> Double { try checkClass(c); return scores(c).f1 }

    /// The unweighted mean of the per-class precisions (scikit-learn's `average="macro"`).
    public var macroPrecision: Double { macro { $0.precision } }
    /// The unweighted mean of the per-class recalls.
    public var macroRecall: Double { macro { $0.recall } }
    /// The unweighted mean of the per-class F1 scores (not the F1 of the macro precision and recall).
    public var macroF1: Double { macro { $0.f1 } }

    /// The matrix with true classes down and predictions across, then a per-class report (scikit-learn's
    /// `classification_report`).
    public var description: String {
        let labelWidth = Swift.max("true \(classes - 1)".count, "accuracy".count)
        let countWidth = Swift.max("pred \(classes - 1)".count, String(counts.joined().max() ?? 0).count)
        func row(_ label: String, _ cells: [String], width: Int) -> String {
            func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: Swift.max(w - s.count, 0)) + s }
            return ([pad(label, labelWidth)] + cells.map { pad($0, width) }).joined(separator: "  ")
        }
        func number(_ x: Double) -> String { String(format: "%.4f", x) }
        var lines = ["confusion matrix: \(total) samples, rows = true class, columns = predicted class"]
        lines.append(row("", (0..<classes).map { "pred \($0)" }, width: countWidth))
        for t in 0..<classes { lines.append(row("true \(t)", counts[t].map(String.init), width: countWidth)) }
        lines.append("")
        lines.append(row("class", ["precision", "recall", "f1", "support"], width: 9))
        for c in 0..<classes {
            let s = scores(c)
            lines.append(row(String(c), [s.precision, s.recall, s.f1].map(number) + [String(counts[c].reduce(0, +))], width: 9))
        }
        lines.append(row("macro", [macroPrecision, macroRecall, macroF1].map(number) + [String(total)], width: 9))
        lines.append(row("accuracy", [number(accuracy)], width: 9))
        return lines.joined(separator: "\n")
    }

    private func checkClass(_ c: Int) throws {
        guard c >= 0 && c < classes else {
            throw NeuronError.invalidArgument("class \(c) is outside 0..<\(classes) of this confusion matrix")
        }
    }

    /// Class `c`'s scores; `c` must be in range.
    private func scores(_ c: Int) -> (precision: Double, recall: Double, f1: Double) {
        func ratio(_ numerator: Int, _ denominator: Int) -> Double {
            denominator == 0 ? 0 : Double(numerator) / Double(denominator)
        }
        let truePositives = counts[c][c]
        let predicted = counts.map { $0[c] }.reduce(0, +), actual = counts[c].reduce(0, +)
        return (ratio(truePositives, predicted), ratio(truePositives, actual), ratio(2 * truePositives, predicted + actual))
    }

    private func macro(_ score: ((precision: Double, recall: Double, f1: Double)) -> Double) -> Double {
        (0..<classes).map { score(scores($0)) }.reduce(0, +) / Double(classes)
    }
}

/// Checks that predictions and labels pair up and are not empty.
private func checkPairs(_ predictions: [Int], _ labels: [Int], op: String) throws {
    guard predictions.count == labels.count else {
        throw NeuronError.shapeMismatch("\(op): \(predictions.count) predictions for \(labels.count) labels")
    }
    guard !labels.isEmpty else { throw NeuronError.emptyInput("\(op): no predictions or labels") }
}
