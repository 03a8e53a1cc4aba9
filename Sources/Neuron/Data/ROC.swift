/// How well a distance threshold separates genuine pairs (same identity) from impostor pairs (different
/// identities): the ROC curve of a verification system that accepts a pair when its distance is at most
/// the threshold, and its equal-error rate.
public struct VerificationROC: Sendable {
    /// One operating point: accepting distances <= `threshold` accepts `trueAcceptRate` of the genuine pairs
    /// and `falseAcceptRate` of the impostor pairs.
    public struct Point: Equatable, Sendable {
        /// The largest distance accepted.
        public var threshold: Float
        /// TAR: the share of genuine pairs accepted, in [0, 1].
        public var trueAcceptRate: Double
        /// FAR: the share of impostor pairs accepted, in [0, 1].
        public var falseAcceptRate: Double
    }

    /// Ascending thresholds: first one below every distance (accepts nothing), then each distinct distance;
    /// the last accepts everything (rates 1, 1).
    public let points: [Point]
    /// The rate at which false rejections (1 − TAR) and false accepts are equal, interpolated linearly
    /// between the two operating points where their difference changes sign.
    public let equalErrorRate: Double
    /// The threshold at the equal-error point (interpolated like the rate).
    public let equalErrorThreshold: Float
    /// The number of genuine pairs.
    public let genuineCount: Int
    /// The number of impostor pairs.
    public let impostorCount: Int
    private let genuine: [Float], impostor: [Float]

    /// - Parameters:
    ///   - genuine: the distances of the genuine pairs (same identity).
    ///   - impostor: the distances of the impostor pairs (different identities).
    /// - Throws: `NeuronError.emptyInput` when either list is empty; `NeuronError.invalidArgument` for a
    ///   NaN distance.
    public init(genuine: [Float], impostor: [Float]) throws {
        guard !genuine.isEmpty, !impostor.isEmpty else {
            throw NeuronError.emptyInput("a ROC curve needs genuine and impostor pairs, got \(genuine.count) and \(impostor.count)")
        }
        guard !(genuine + impostor).contains(where: \.isNaN) else { throw NeuronError.invalidArgument("ROC: a distance is NaN") }
        self.genuine = genuine.sorted()
        self.impostor = impostor.sorted()
        genuineCount = genuine.count
        impostorCount = impostor.count
        let thresholds = Array(Set(genuine + impostor)).sorted()
        var points = [Point(threshold: thresholds[0].nextDown, trueAcceptRate: 0, falseAcceptRate: 0)]
        var g = 0, i = 0
        for t in thresholds {
            while g < self.genuine.count && self.genuine[g] <= t { g += 1 }
            while i < self.impostor.count && self.impostor[i] <= t { i += 1 }
            points.append(Point(threshold: t, trueAcceptRate: Double(g) / Double(genuineCount),
                                falseAcceptRate: Double(i) / Double(impostorCount)))
        }
        self.points = points
        // FRR − FAR starts at 1 (accept nothing) and ends at −1 or 0: find where it first reaches 0.
        func gap(_ p: Point) -> Double { (1 - p.trueAcceptRate) - p.falseAcceptRate }
        let k = points.firstIndex { gap($0) <= 0 }!
        let before = points[k - 1], after = points[k]
        let s = gap(before) / (gap(before) - gap(after))
        equalErrorRate = before.falseAcceptRate + s * (after.falseAcceptRate - before.falseAcceptRate)
        equalErrorThreshold = before.threshold + Float(s) * (after.threshold - before.threshold)
    }

    /// The area under the curve (TAR against FAR, trapezoids): 1 for a perfect separation, 0.5 for chance.
    public var areaUnderCurve: Double {
        zip(points, points.dropFirst()).reduce(0) { area, pair in
            area + (pair.1.falseAcceptRate - pair.0.falseAcceptRate) * (pair.1.trueAcceptRate + pair.0.trueAcceptRate) / 2
        }
    }

    /// The share of all pairs decided correctly when distances <= `threshold` are accepted.
    public func accuracy(threshold: Float) -> Double {
        let accepted = genuine.prefix { $0 <= threshold }.count
        let rejected = impostor.count - impostor.prefix { $0 <= threshold }.count
        return Double(accepted + rejected) / Double(genuineCount + impostorCount)
    }

    /// The threshold among `points` with the highest accuracy (the lowest such threshold on ties).
    public var bestThreshold: (threshold: Float, accuracy: Double) {
        points.map { ($0.threshold, accuracy(threshold: $0.threshold)) }.max { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 > $1.0) }!
    }

    /// The curve as CSV lines `threshold,true_accept_rate,false_accept_rate` with a header.
    public var csv: String {
        (["threshold,true_accept_rate,false_accept_rate"] + points.map { "\($0.threshold),\($0.trueAcceptRate),\($0.falseAcceptRate)" })
            .joined(separator: "\n") + "\n"
    }
}
