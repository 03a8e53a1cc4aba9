import Testing
@testable import Neuron

/// Triplet losses against PyTorch, triplet mining on hand-computed batches, and their gradients.
@Suite struct TripletTests {
    /// Both forms against PyTorch: `margin_loss` is nn.TripletMarginLoss(margin=1), `sqdist` the
    /// squared-distance form with margin 0.2; values per row, the mean, and the gradients of the mean.
    @Test(arguments: ["margin_loss", "sqdist"])
    func lossMatchesPyTorch(_ name: String) throws {
        let g = try Golden("triplet")
        let a = try g.float(name + ".anchor").requiringGrad(), p = try g.float(name + ".positive").requiringGrad()
        let n = try g.float(name + ".negative").requiringGrad()
        func loss(_ a: Tensor, _ p: Tensor, _ n: Tensor, _ reduction: Reduction) throws -> Tensor {
            name == "sqdist" ? try tripletLoss(anchor: a, positive: p, negative: n, margin: 0.2, reduction: reduction)
                : try tripletMarginLoss(anchor: a, positive: p, negative: n, margin: 1, reduction: reduction)
        }
        try g.expectValue(try loss(a.detached(), p.detached(), n.detached(), .none), name + ".loss_elements")
        let mean = try loss(a, p, n, .mean)
        try g.expectValue(mean, name + ".loss")
        try mean.backward()
        try g.expectGradient(a.grad, name + ".grad.anchor")
        try g.expectGradient(p.grad, name + ".grad.positive")
        try g.expectGradient(n.grad, name + ".grad.negative")
        // The sum is N times the mean.
        let sum = try loss(a.detached(), p.detached(), n.detached(), .sum)
        #expect(abs(try sum.item() - 8 * mean.item()) <= 1e-5)
    }

    /// Points on a line: 0 and 1 are identity 0, 3 and 3.5 identity 1. Squared distances: d01 = 1, d02 = 9,
    /// d03 = 12.25, d12 = 4, d13 = 6.25, d23 = 0.25.
    let line = (embeddings: Tensor([[0], [1], [3], [3.5]]), labels: [0, 0, 1, 1])

    func mined(_ mining: TripletMining, margin: Float) throws -> [Triplet] {
        try mineTriplets(distances: pairwiseSquaredDistances(line.embeddings), labels: line.labels, margin: margin, mining: mining)
    }

    @Test func pairwiseDistancesAreSquaredEuclidean() throws {
        let d = try pairwiseSquaredDistances(line.embeddings)
        expectClose(d, Tensor([[0, 1, 9, 12.25], [1, 0, 4, 6.25], [9, 4, 0, 0.25], [12.25, 6.25, 0.25, 0]]), atol: 1e-5)
        try checkGradients([randomTensor([5, 3], seed: 3)], atol: 1e-3) { try pairwiseSquaredDistances($0[0]) }
    }

    @Test func batchHardTakesTheFarthestPositiveAndNearestNegative() throws {
        #expect(try mined(.batchHard, margin: 5) == [Triplet(anchor: 0, positive: 1, negative: 2), Triplet(anchor: 1, positive: 0, negative: 2),
                                                     Triplet(anchor: 2, positive: 3, negative: 1), Triplet(anchor: 3, positive: 2, negative: 1)])
        // Hinges 1-9+5 < 0, 1-4+5 = 2, 0.25-4+5 = 1.25, 0.25-6.25+5 < 0: mean 3.25 / 4.
        let loss = try tripletLoss(embeddings: line.embeddings, labels: line.labels, margin: 5, mining: .batchHard)
        #expect(abs(try loss.item() - 0.8125) <= 1e-5)
    }

    @Test func allKeepsTheTripletsThatViolateTheMargin() throws {
        #expect(try mined(.all, margin: 5) == [Triplet(anchor: 1, positive: 0, negative: 2), Triplet(anchor: 2, positive: 3, negative: 1)])
        let loss = try tripletLoss(embeddings: line.embeddings, labels: line.labels, margin: 5, mining: .all)
        #expect(abs(try loss.item() - 1.625) <= 1e-5)  // (2 + 1.25) / 2
        // With a small margin every triplet is satisfied: the loss is zero but still differentiable.
        #expect(try mined(.all, margin: 0.2).isEmpty)
        let x = line.embeddings.requiringGrad()
        let zero = try tripletLoss(embeddings: x, labels: line.labels, margin: 0.2, mining: .all)
        #expect(try zero.item() == 0)
        try zero.backward()
        #expect(x.grad == Tensor.zeros([4, 1]))
    }

    @Test func semiHardTakesTheNearestNegativeFartherThanThePositive() throws {
        // Anchor 1 with positive 0 (d = 1): both negatives are farther; the nearer one, 2 (d = 4), is chosen.
        #expect(try mined(.semiHard, margin: 0.2) == [Triplet(anchor: 0, positive: 1, negative: 2), Triplet(anchor: 1, positive: 0, negative: 2),
                                                      Triplet(anchor: 2, positive: 3, negative: 1), Triplet(anchor: 3, positive: 2, negative: 1)])
        // No negative is farther than the positive: the farthest negative is used.
        let points = Tensor([[0], [5], [1], [-1]]), labels = [0, 0, 1, 1]
        let triplets = try mineTriplets(distances: pairwiseSquaredDistances(points), labels: labels, margin: 0.2, mining: .semiHard)
        // d01 = 25, d02 = d03 = 1, d12 = 16, d13 = 36, d23 = 4. Anchor 0 finds no negative beyond its positive
        // and takes the farthest (a tie, so the first); the others take the nearest beyond.
        #expect(triplets == [Triplet(anchor: 0, positive: 1, negative: 2), Triplet(anchor: 1, positive: 0, negative: 3),
                             Triplet(anchor: 2, positive: 3, negative: 1), Triplet(anchor: 3, positive: 2, negative: 1)])
    }

    @Test(arguments: TripletMining.allCases)
    func minedLossPassesFiniteDifferences(_ mining: TripletMining) throws {
        // Three identities of three points in the plane, chosen so that no two pair distances and no hinge lie
        // within 0.04 of each other or of zero: a step of 1e-3 moves no distance past another, so the mined
        // triplets stay the same in every difference.
        let points = Tensor([[-0.1, 0.0], [-0.5, -0.3], [0.5, -0.5], [1.3, 0.0], [2.0, -0.2], [1.7, -0.2],
                             [0.8, 1.5], [0.1, 2.0], [0.9, 1.3]])
        let labels = (0..<9).map { $0 / 3 }
        try checkGradients([points], step: 1e-3, atol: 1e-3, rtol: 1e-2) {
            try tripletLoss(embeddings: $0[0], labels: labels, margin: 1.5, mining: mining)
        }
    }

    @Test func badInputThrows() throws {
        let a = randomTensor([4, 3], seed: 1)
        #expect(throws: NeuronError.invalidArgument("triplet_loss: margin must be >= 0, got -0.1")) {
            try tripletLoss(anchor: a, positive: a, negative: a, margin: -0.1)
        }
        #expect(throws: NeuronError.self) { try tripletMarginLoss(anchor: a, positive: a, negative: a, margin: -1) }
        #expect(throws: NeuronError.self) { try tripletLoss(embeddings: a, labels: [0, 1, 2, 3], margin: -1, mining: .all) }
        #expect(throws: NeuronError.self) { try mineTriplets(distances: Tensor.zeros([4, 4]), labels: [0, 0, 1, 1], margin: -1, mining: .all) }
        #expect(throws: NeuronError.self) { try tripletLoss(anchor: a, positive: randomTensor([4, 2], seed: 2), negative: a) }
        #expect(throws: NeuronError.self) { try tripletLoss(embeddings: a, labels: [0, 1], mining: .batchHard) }
        #expect(throws: NeuronError.self) { try tripletLoss(anchor: Tensor.zeros([0, 3]), positive: Tensor.zeros([0, 3]), negative: Tensor.zeros([0, 3])) }
        // A margin of zero is allowed.
        #expect(try tripletLoss(anchor: a, positive: a, negative: a, margin: 0).item() == 0)
    }
}
