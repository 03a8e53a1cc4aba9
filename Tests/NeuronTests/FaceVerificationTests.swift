import Foundation
import Testing
@testable import Neuron
@testable import NeuronDemos

/// Central finite differences of a scalar `loss()` with respect to every element of `parameter`, against
/// the gradient `backward()` leaves on it.
func checkParameterGradient(_ parameter: Parameter, step: Float = 1e-2, atol: Float = 1e-3, rtol: Float = 1e-2,
                            sourceLocation: SourceLocation = #_sourceLocation, _ loss: () throws -> Tensor) throws {
    parameter.zeroGrad()
    try loss().backward()
    let analytic = try #require(parameter.grad, "the parameter received no gradient", sourceLocation: sourceLocation)
    var numeric = [Float](repeating: 0, count: parameter.count)
    for i in 0..<parameter.count {
        parameter.update { $0[i] += step }
        let plus = try noGrad { try loss().item() }
        parameter.update { $0[i] -= 2 * step }
        let minus = try noGrad { try loss().item() }
        parameter.update { $0[i] += step }
        numeric[i] = (plus - minus) / (2 * step)
    }
    expectClose(analytic, try Tensor(shape: parameter.shape, scalars: numeric), atol: atol, rtol: rtol, "parameter gradient",
                sourceLocation: sourceLocation)
}

@Suite struct SiameseTests {
    @Test func l2NormalizedRowsHaveUnitLength() throws {
        let x = Tensor([[3, 4], [0, 0], [1e-3, 0]])
        expectClose(try x.l2Normalized(), Tensor([[0.6, 0.8], [0, 0], [1, 0]]))
        try checkGradients([randomTensor([3, 4], seed: 1)], step: 1e-3, atol: 1e-3) { try $0[0].l2Normalized() }
        // An all-zero row keeps a finite gradient.
        let zero = Tensor.zeros([1, 3]).requiringGrad()
        try zero.l2Normalized().sum().backward()
        let finite = try #require(zero.grad).scalars.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test func branchesShareWeightsAndAddTheirGradients() throws {
        let siamese = Siamese(encoder: try Sequential { try Linear(in: 3, out: 2) }, normalize: false)
        #expect(siamese.namedParameters.map(\.name) == ["encoder.0.weight", "encoder.0.bias"])
        let a = randomTensor([2, 3], seed: 2), b = randomTensor([2, 3], seed: 3)
        let both = try siamese([a, b])
        try (both[0].sum() + both[1].squared().sum()).backward()
        let together = try #require(siamese.parameters[0].grad)
        siamese.zeroGrad()
        try siamese(a).sum().backward()
        let first = try #require(siamese.parameters[0].grad)
        siamese.zeroGrad()
        try siamese(b).squared().sum().backward()
        let second = try #require(siamese.parameters[0].grad)
        expectClose(together, try first + second, atol: 1e-6)
        // Normalised embeddings are unit rows.
        let unit = try Siamese(encoder: siamese.encoder)(a)
        expectClose(try unit.squared().sum(axis: 1), Tensor([1, 1]), atol: 1e-6)
        #expect(throws: NeuronError.self) { try Siamese(encoder: ReLU())(a.reshaped([2, 3, 1])) }
    }

    @Test(arguments: SimilarityHead.Features.allCases)
    func similarityHeadPassesFiniteDifferences(_ features: SimilarityHead.Features) throws {
        Random.seed(5)
        let head = try SimilarityHead(embeddingSize: 4, features: features)
        // Non-negative embeddings apart from each other, away from the kinks of |·|.
        let a = randomTensor([3, 4], seed: 6, low: 0.2, high: 1), b = randomTensor([3, 4], seed: 7, low: 1.2, high: 2)
        try checkGradients([a, b], step: 1e-3, atol: 1e-3) { try head.logits($0[0], $0[1]) }
        let labels = Tensor([1, 0, 1])
        for (_, parameter) in head.namedParameters {
            try checkParameterGradient(parameter, step: 1e-3) { try binaryCrossEntropyWithLogits(head.logits(a, b), labels) }
        }
        let p = try head(a, b)
        expectClose(p, try head.logits(a, b).sigmoid())
        expectClose(try head(Tensor.stack([a, b])), p)
        #expect(head.namedParameters.map(\.name) == ["fc.weight", "fc.bias"])
    }

    @Test func chiSquareGuardsTheDivision() throws {
        let head = try SimilarityHead(embeddingSize: 2, features: .chiSquare)
        let zero = Tensor.zeros([1, 2]).requiringGrad()
        let phi = try head.pairFeatures(zero, Tensor.zeros([1, 2]))
        #expect(phi.scalars == [0, 0])
        try head.logits(zero, Tensor.zeros([1, 2])).sum().backward()
        let finite = try #require(zero.grad).scalars.allSatisfy { $0.isFinite }
        #expect(finite)
        // (1 − 3)² / (1 + 3) = 1.
        expectClose(try head.pairFeatures(Tensor([[1, 0.5]]), Tensor([[3, 0.5]])), Tensor([[1, 0]]), atol: 1e-5)
        #expect(throws: NeuronError.self) { try head.pairFeatures(Tensor([[1, 2, 3]]), Tensor([[1, 2, 3]])) }
        #expect(throws: NeuronError.self) { try SimilarityHead(embeddingSize: 0) }
        #expect(throws: NeuronError.self) { try SimilarityHead(embeddingSize: 2, epsilon: -1) }
    }

    @Test func similarityHeadLearnsSameOrDifferent() throws {
        // Pairs from the same cluster (label 1) and from different clusters (0); BCE on the logits.
        Random.seed(8)
        var g = RandomGenerator(seed: 9)
        let head = try SimilarityHead(embeddingSize: 4)
        let optimizer = try Adam(head.namedParameters, lr: 0.05)
        func batch() throws -> (Tensor, Tensor, Tensor) {
            var a: [[Float]] = [], b: [[Float]] = [], y: [Float] = []
            for i in 0..<64 {
                let same = i % 2 == 0
                let ca = Float(i % 4), cb = same ? ca : Float((i % 4 + 1 + Int(g.next() % 3)) % 4)
                a.append((0..<4).map { _ in ca + 0.1 * g.nextNormal() })
                b.append((0..<4).map { _ in cb + 0.1 * g.nextNormal() })
                y.append(same ? 1 : 0)
            }
            return (Tensor(a), Tensor(b), Tensor(y))
        }
        for _ in 0..<150 {
            let (a, b, y) = try batch()
            optimizer.zeroGrad()
            try binaryCrossEntropyWithLogits(head.logits(a, b), y).backward()
            try optimizer.step()
        }
        let (a, b, y) = try batch()
        let predictions = try head(a, b).scalars.map { $0 > 0.5 ? Float(1) : 0 }
        #expect(zip(predictions, y.scalars).filter { $0 == $1 }.count >= 62)
    }
}

@Suite struct EncodingDatabaseTests {
    @Test func enrolVerifyIdentifyAndUnknown() throws {
        var db = try EncodingDatabase(dimension: 2)
        try db.enrol("ada", encodings: Tensor([[0, 0], [0, 1]]))
        try db.enrol("bob", encodings: Tensor([3, 4]))
        #expect(db.people == ["ada", "bob"] && db.encodingCount(of: "ada") == 2 && db.encodingCount(of: "eve") == 0)
        #expect(try db.distance(Tensor([0, 2]), to: "ada") == 1)  // the nearer of ada's two encodings
        let bob = try db.verify(Tensor([3, 3]), is: "bob", threshold: 1.5)
        #expect(bob.accepted && bob.distance == 1)
        #expect(try db.verify(Tensor([[3, 3]]), is: "ada", threshold: 1.5).accepted == false)
        #expect(try db.identify(Tensor([2.5, 4]), threshold: 1) == .person("bob", distance: 0.5))
        #expect(try db.identify(Tensor([10, 10]), threshold: 1) == .unknown(nearest: "bob", distance: Float(85).squareRoot()))
        #expect(try EncodingDatabase(dimension: 2).identify(Tensor([0, 0]), threshold: 1) == .unknown(nearest: nil, distance: .infinity))
        // Enrolling a known name adds to it.
        try db.enrol("bob", encodings: Tensor([[10, 10]]))
        #expect(try db.identify(Tensor([10, 10]), threshold: 1) == .person("bob", distance: 0))
    }

    @Test func saveAndLoadRoundTrip() throws {
        var db = try EncodingDatabase(dimension: 3)
        try db.enrol("x", encodings: randomTensor([2, 3], seed: 1))
        try db.enrol("y z", encodings: randomTensor([1, 3], seed: 2))
        try db.enrol("x", encodings: randomTensor([1, 3], seed: 3))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-db-\(UInt32.random(in: 0 ... .max)).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try db.save(to: url)
        let loaded = try EncodingDatabase(contentsOf: url)
        #expect(loaded.people == ["x", "y z"] && loaded.dimension == 3 && loaded.encodingCount(of: "x") == 3)
        let probe = randomTensor([3], seed: 4)
        for name in db.people { #expect(try loaded.distance(probe, to: name) == db.distance(probe, to: name)) }
        // A file that is not a database is refused with its path.
        try Safetensors.write(["w": .float(Tensor([1]))], to: url)
        #expect(throws: NeuronError.self) { try EncodingDatabase(contentsOf: url) }
        #expect(throws: NeuronError.self) { try EncodingDatabase(contentsOf: url.appendingPathExtension("missing")) }
    }

    @Test func badInputThrows() throws {
        var db = try EncodingDatabase(dimension: 2)
        #expect(throws: NeuronError.emptyInput("EncodingDatabase: no encodings to enrol ada with (an empty enrolment set)")) {
            try db.enrol("ada", encodings: Tensor.zeros([0, 2]))
        }
        #expect(throws: NeuronError.self) { try db.enrol("ada", images: Tensor.zeros([0, 1, 4, 4]), encoder: ReLU()) }
        #expect(throws: NeuronError.self) { try db.enrol("ada", encodings: Tensor([[1, 2, 3]])) }
        #expect(throws: NeuronError.self) { try db.enrol("", encodings: Tensor([[1, 2]])) }
        #expect(throws: NeuronError.self) { try db.enrol("a\nb", encodings: Tensor([[1, 2]])) }
        #expect(throws: NeuronError.self) { try db.enrol("nan", encodings: Tensor([[.nan, 2]])) }
        #expect(throws: NeuronError.self) { try db.distance(Tensor([1, 2]), to: "nobody") }
        #expect(throws: NeuronError.self) { try db.save(to: URL(fileURLWithPath: "/tmp/never.safetensors")) }
        try db.enrol("ada", encodings: Tensor([[1, 2]]))
        #expect(throws: NeuronError.self) { try db.identify(Tensor([1, 2, 3]), threshold: 1) }
        #expect(throws: NeuronError.self) { try EncodingDatabase(dimension: 0) }
    }
}

@Suite struct VerificationROCTests {
    @Test func handComputedCurve() throws {
        let roc = try VerificationROC(genuine: [0.3, 0.1, 0.2], impostor: [0.5, 0.25, 0.6])
        #expect(roc.points.map(\.threshold).dropFirst() == [0.1, 0.2, 0.25, 0.3, 0.5, 0.6])
        let third = 1.0 / 3, twoThirds = 2.0 / 3
        let tar: [Double] = [0, third, twoThirds, twoThirds, 1, 1, 1], far: [Double] = [0, 0, 0, third, third, twoThirds, 1]
        #expect(roc.points.map(\.trueAcceptRate) == tar)
        #expect(roc.points.map(\.falseAcceptRate) == far)
        // At 0.25 one genuine pair is rejected and one impostor accepted: FRR = FAR = 1/3.
        #expect(abs(roc.equalErrorRate - 1.0 / 3) < 1e-12 && roc.equalErrorThreshold == 0.25)
        #expect(abs(roc.areaUnderCurve - 8.0 / 9) < 1e-12)  // P(genuine < impostor)
        #expect(roc.accuracy(threshold: 0.2) == 5.0 / 6 && roc.accuracy(threshold: 0.6) == 0.5)
        #expect(roc.bestThreshold.threshold == 0.2 && roc.bestThreshold.accuracy == 5.0 / 6)
        #expect(roc.csv.hasPrefix("threshold,true_accept_rate,false_accept_rate\n"))
    }

    @Test func equalErrorRateInterpolates() throws {
        // Perfect separation: zero; complete overlap of one value each: one half.
        #expect(try VerificationROC(genuine: [0.1, 0.2], impostor: [0.9, 1]).equalErrorRate == 0)
        #expect(try VerificationROC(genuine: [0.5], impostor: [0.5]).equalErrorRate == 0.5)
        // FRR − FAR goes from 1/2 (threshold 0.2) to −1/2 (0.4): the crossing is halfway.
        let roc = try VerificationROC(genuine: [0.1, 0.4], impostor: [0.2, 0.9])
        #expect(abs(roc.equalErrorRate - 0.5) < 1e-12)
        #expect(throws: NeuronError.self) { try VerificationROC(genuine: [], impostor: [1]) }
        #expect(throws: NeuronError.self) { try VerificationROC(genuine: [.nan], impostor: [1]) }
    }
}

@Suite struct IdentitiesTests {
    @Test func samplesOfOneIdentityAreCloserThanOthers() throws {
        var g = RandomGenerator(seed: 1)
        let (images, labels) = try SyntheticData.identities(count: 6, samplesPerIdentity: 5, size: 24, using: &g)
        #expect(images.shape == [30, 1, 24, 24] && labels == (0..<30).map { $0 / 5 })
        #expect(images.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        var g2 = RandomGenerator(seed: 1)
        #expect(try SyntheticData.identities(count: 6, samplesPerIdentity: 5, size: 24, using: &g2).images == images)
        let d = try pairwiseSquaredDistances(images.reshaped([30, 24 * 24])).scalars
        var same: [Float] = [], other: [Float] = []
        for i in 0..<30 {
            for j in 0..<30 where i != j {
                if labels[i] == labels[j] { same.append(d[i * 30 + j]) } else { other.append(d[i * 30 + j]) }
            }
        }
        let meanSame: Float = same.reduce(0, +) / Float(same.count), meanOther: Float = other.reduce(0, +) / Float(other.count)
        #expect(meanSame < meanOther)
        #expect(throws: NeuronError.self) { try SyntheticData.identities(count: 0, samplesPerIdentity: 2, using: &g) }
        #expect(throws: NeuronError.self) { try SyntheticData.identities(count: 2, samplesPerIdentity: 2, size: 4, using: &g) }
    }

    @Test func splitByIdentityKeepsIdentitiesOnOneSide() throws {
        var g = RandomGenerator(seed: 2)
        let labels = (0..<40).map { $0 / 4 }
        let split = try splitByIdentity(labels: labels, testFraction: 0.3, generator: &g)
        let trainIds = Set(split.train.map { labels[$0] }), testIds = Set(split.test.map { labels[$0] })
        #expect(trainIds.isDisjoint(with: testIds) && testIds.count == 3 && trainIds.count == 7)
        #expect(split.train.count + split.test.count == 40)
        #expect(throws: NeuronError.self) { try splitByIdentity(labels: [1, 1], testFraction: 0.5, generator: &g) }
    }

    @Test func facesDemoLearnsToVerifyUnseenIdentities() throws {
        // A short run: far from the demo's 95 %, but well above chance (50 %), through the whole pipeline.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-faces-test-\(UInt32.random(in: 0 ... .max)).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let result = try FacesDemo.run(trainIdentities: 40, validationIdentities: 10, testIdentities: 10, samplesPerIdentity: 4,
                                       steps: 40, identitiesPerBatch: 8, samplesPerBatchIdentity: 3, databaseURL: url, log: { _ in })
        #expect(result.oneShotAccuracy > 0.7)
        #expect(result.roc.areaUnderCurve > 0.75)
        #expect(try EncodingDatabase(contentsOf: url).people.count == 10)
    }
}
