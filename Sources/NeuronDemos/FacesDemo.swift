import Foundation
import Neuron

/// The face-verification demo: a Siamese encoder learns 64-dimensional unit embeddings of generated
/// identities (`SyntheticData.identities`) with the triplet loss, mining its triplets in each batch; then
/// identities it has never seen are enrolled from ONE image each into an `EncodingDatabase`, and every other
/// image of them is verified and identified against it (one-shot learning).
///
/// Three disjoint draws of identities are used: training, validation (to choose the distance threshold)
/// and test (the reported figures). The database is saved as safetensors and reloaded; the reloaded one
/// must give the same distances.
public enum FacesDemo {
    public struct Result: Sendable {
        /// Accuracy on balanced test pairs (each probe against its own identity and against one other)
        /// at the threshold chosen on the validation identities.
        public var oneShotAccuracy: Double
        /// The threshold on Euclidean distance chosen on the validation identities.
        public var threshold: Float
        /// The ROC of all test pairs (each probe against every enrolled identity).
        public var roc: VerificationROC
        /// The share of test probes whose nearest enrolled identity is their own.
        public var identificationAccuracy: Double
        /// The share of probes of identities left out of the database that `identify` calls unknown.
        public var unknownRejectionRate: Double
        public var databaseURL: URL
    }

    /// The encoder: three (3x3 conv → ReLU → 2x2 max-pool) blocks of 16, 32 and 64 channels, then a linear
    /// map of the 64 x (size/8)² features to the embedding.
    public static func makeEncoder(size: Int = 32, embedding: Int = 64) throws -> Sequential {
        try Sequential {
            try Conv2D(in: 1, out: 16, kernel: 3, padding: 1)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 16, out: 32, kernel: 3, padding: 1)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 32, out: 64, kernel: 3, padding: 1)
            ReLU()
            try MaxPool2D(kernel: 2)
            Flatten()
            try Linear(in: 64 * (size / 8) * (size / 8), out: embedding)
        }
    }

    /// Trains for `steps` batches of `identitiesPerBatch` identities x `samplesPerBatchIdentity` images, then
    /// evaluates one-shot verification on `testIdentities` unseen identities with `samplesPerIdentity` images
    /// each (the first enrolled, the rest probes).
    ///
    /// - Throws: `NeuronError.invalidArgument` for fewer than 2 identities in any set, fewer than 2 samples
    ///   per identity, a batch larger than the training set, or fewer than 1 step; `NeuronError.io` when the
    ///   database cannot be saved or the reloaded copy disagrees.
    public static func run(trainIdentities: Int = 400, validationIdentities: Int = 30, testIdentities: Int = 40,
                           samplesPerIdentity: Int = 8, size: Int = 32, steps: Int = 600, identitiesPerBatch: Int = 16,
                           samplesPerBatchIdentity: Int = 4, margin: Float = 0.2, mining: TripletMining = .batchHard,
                           seed: UInt64 = 42, databaseURL: URL? = nil, log: (String) -> Void = { print($0) }) throws -> Result {
        guard min(trainIdentities, validationIdentities, testIdentities) >= 2, samplesPerIdentity >= 2, samplesPerBatchIdentity >= 2 else {
            throw NeuronError.invalidArgument("FacesDemo needs at least 2 identities per set and 2 samples per identity")
        }
        guard identitiesPerBatch >= 2, identitiesPerBatch <= trainIdentities, samplesPerBatchIdentity <= samplesPerIdentity else {
            throw NeuronError.invalidArgument("FacesDemo: a batch of \(identitiesPerBatch) x \(samplesPerBatchIdentity) does not fit \(trainIdentities) training identities of \(samplesPerIdentity) samples")
        }
        guard steps >= 1 else { throw NeuronError.invalidArgument("FacesDemo needs at least 1 step, got \(steps)") }
        return try Random.withGenerator(seed: seed) {
            var generator = RandomGenerator(seed: seed)
            let start = Date()
            let train = try SyntheticData.identities(count: trainIdentities, samplesPerIdentity: samplesPerIdentity, size: size, using: &generator)
            let validation = try SyntheticData.identities(count: validationIdentities, samplesPerIdentity: samplesPerIdentity, size: size, using: &generator)
            let test = try SyntheticData.identities(count: testIdentities, samplesPerIdentity: samplesPerIdentity, size: size, using: &generator)
            log(String(format: "generated %d training, %d validation and %d test identities of %d images (%dx%d) in %.2fs",
                       trainIdentities, validationIdentities, testIdentities, samplesPerIdentity, size, size, Date().timeIntervalSince(start)))

            let model = Siamese(encoder: try makeEncoder(size: size), normalize: true)
            let optimizer = try Adam(model.namedParameters, lr: 1e-3)
            for step in 1...steps {
                // P identities x K samples, so every anchor has positives and negatives in the batch.
                let chosen = shuffledIndices(trainIdentities, using: &generator).prefix(identitiesPerBatch)
                var rows: [Int] = [], labels: [Int] = []
                for identity in chosen {
                    for s in shuffledIndices(samplesPerIdentity, using: &generator).prefix(samplesPerBatchIdentity) {
                        rows.append(identity * samplesPerIdentity + s)
                        labels.append(identity)
                    }
                }
                optimizer.zeroGrad()
                let loss = try tripletLoss(embeddings: model(train.images.rows(at: rows)), labels: labels, margin: margin, mining: mining)
                try loss.backward()
                try optimizer.step()
                if step == 1 || step % max(steps / 6, 1) == 0 || step == steps {
                    log(String(format: "step %4d/%d  triplet loss (%@) %.4f  (%.1fs)", step, steps, mining.rawValue, try loss.item(),
                               Date().timeIntervalSince(start)))
                }
            }

            let validationPairs = try oneShotPairs(model, validation, samplesPerIdentity: samplesPerIdentity)
            let threshold = try VerificationROC(genuine: validationPairs.genuine, impostor: validationPairs.balancedImpostor).bestThreshold.threshold
            let url = databaseURL ?? FileManager.default.temporaryDirectory.appendingPathComponent("neuron-faces-database.safetensors")
            let testPairs = try oneShotPairs(model, test, samplesPerIdentity: samplesPerIdentity, saveTo: url)
            let balanced = try VerificationROC(genuine: testPairs.genuine, impostor: testPairs.balancedImpostor)
            let roc = try VerificationROC(genuine: testPairs.genuine, impostor: testPairs.impostor)
            let accuracy = balanced.accuracy(threshold: threshold)
            log(String(format: "one-shot verification on %d unseen identities: accuracy %.2f%% at threshold %.3f (chosen on validation identities)",
                       testIdentities, 100 * accuracy, threshold))
            log(String(format: "ROC over %d genuine and %d impostor pairs: equal-error rate %.2f%% (threshold %.3f), area under curve %.4f",
                       roc.genuineCount, roc.impostorCount, 100 * roc.equalErrorRate, roc.equalErrorThreshold, roc.areaUnderCurve))
            log(String(format: "identification: the nearest enrolled identity is right for %.2f%% of probes; with a quarter of the people left out of the database, %.2f%% of their probes are called unknown",
                       100 * testPairs.identificationAccuracy, 100 * testPairs.unknownRejection(threshold)))
            log("saved the encodings of \(testIdentities) people to \(url.path) and reloaded them: identical distances")
            return Result(oneShotAccuracy: accuracy, threshold: threshold, roc: roc, identificationAccuracy: testPairs.identificationAccuracy,
                          unknownRejectionRate: testPairs.unknownRejection(threshold), databaseURL: url)
        }
    }

    /// The distances of a one-shot evaluation of `set`: the first image of each identity is enrolled, every
    /// other image is a probe. `genuine` holds each probe's distance to its own identity, `impostor` to every
    /// other, `balancedImpostor` to one other (the next identity). A second database leaves out the last
    /// quarter of the identities, whose probes measure how often a stranger is called unknown.
    private struct Pairs {
        var genuine: [Float] = [], impostor: [Float] = [], balancedImpostor: [Float] = []
        var identificationAccuracy = 0.0
        /// Nearest-enrolled distances of the left-out identities' probes.
        var strangerDistances: [Float] = []
        func unknownRejection(_ threshold: Float) -> Double {
            Double(strangerDistances.filter { $0 > threshold }.count) / Double(max(strangerDistances.count, 1))
        }
    }

    private static func oneShotPairs(_ model: Siamese, _ set: (images: Tensor, labels: [Int]), samplesPerIdentity: Int,
                                     saveTo url: URL? = nil) throws -> Pairs {
        let identities = set.labels.count / samplesPerIdentity
        let encodings = try EncodingDatabase.encode(set.images, with: model)
        let dimension = encodings.shape[1]
        func encoding(_ identity: Int, _ sample: Int) throws -> Tensor {
            let row = identity * samplesPerIdentity + sample
            return try encodings.slice(row..<(row + 1))
        }
        var database = try EncodingDatabase(dimension: dimension)
        for identity in 0..<identities { try database.enrol("person \(identity)", encodings: try encoding(identity, 0)) }
        if let url {
            try database.save(to: url)
            let reloaded = try EncodingDatabase(contentsOf: url)
            let probe = try encoding(0, 1)
            guard reloaded.people == database.people, try reloaded.distance(probe, to: "person 0") == database.distance(probe, to: "person 0") else {
                throw NeuronError.io("FacesDemo: the database reloaded from \(url.path) differs from the one saved")
            }
            database = reloaded
        }
        let known = identities - max(identities / 4, 1)
        var strangers = try EncodingDatabase(dimension: dimension)
        for identity in 0..<known { try strangers.enrol("person \(identity)", encodings: try encoding(identity, 0)) }

        var pairs = Pairs()
        var correct = 0, probes = 0
        for identity in 0..<identities {
            for sample in 1..<samplesPerIdentity {
                let probe = try encoding(identity, sample)
                for other in 0..<identities {
                    let d = try database.distance(probe, to: "person \(other)")
                    if other == identity {
                        pairs.genuine.append(d)
                    } else {
                        pairs.impostor.append(d)
                        if other == (identity + 1) % identities { pairs.balancedImpostor.append(d) }
                    }
                }
                if case .person(let name, _) = try database.identify(probe, threshold: .infinity), name == "person \(identity)" { correct += 1 }
                probes += 1
                if identity >= known, case .unknown(_, let d) = try strangers.identify(probe, threshold: -1) {
                    pairs.strangerDistances.append(d)
                }
            }
        }
        pairs.identificationAccuracy = Double(correct) / Double(probes)
        return pairs
    }
}
