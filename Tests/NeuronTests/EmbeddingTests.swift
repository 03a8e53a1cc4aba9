import Testing
@testable import Neuron

/// Embedding: the lookup against known rows, its gradient against finite differences and by hand
/// (repeated indices add up, the padding row gets nothing), PyTorch's initialisation, bad input.
@Suite struct EmbeddingTests {
    @Test func looksUpRowsForAnyIndexShape() throws {
        let layer = try Embedding(count: 4, dimension: 3)
        let w = Tensor([[0, 1, 2], [10, 11, 12], [20, 21, 22], [30, 31, 32]])
        layer.weight.value = w
        let y = try layer(try IntTensor(shape: [2, 2], scalars: [3, 0, 1, 3]))
        #expect(y.shape == [2, 2, 3])
        #expect(y.scalars == [30, 31, 32, 0, 1, 2, 10, 11, 12, 30, 31, 32])
        // The same through a float tensor of whole numbers and through [Int].
        #expect(try layer(Tensor([[3, 0], [1, 3]])) == y)
        #expect(try layer([2]).scalars == [20, 21, 22])
        // No indices: no vectors.
        #expect(try layer([Int]()).shape == [0, 3])
        #expect(try layer(try IntTensor(shape: [4, 0], scalars: [])).shape == [4, 0, 3])
    }

    @Test func gradientAddsRepeatedRowsAndSkipsPadding() throws {
        let layer = try Embedding(count: 5, dimension: 2, paddingIndex: 1)
        let y = try layer([0, 3, 0, 1, 1])
        let g = Tensor([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
        try y.backward(g)
        // Row 0 gets positions 0 and 2; row 3 position 2; row 1 is padding; rows 2 and 4 are unused.
        #expect(layer.weight.grad?.scalars == [6, 8, 0, 0, 0, 0, 3, 4, 0, 0])
    }

    @Test func gradientPassesFiniteDifferences() throws {
        let indices = try IntTensor(shape: [3, 4], scalars: [0, 5, 2, 2, 6, 0, 1, 5, 5, 3, 2, 0])
        try checkGradients([randomTensor([7, 5], seed: 31)]) { try Tensor.embedding(indices, weight: $0[0]) }
        try checkGradients([randomTensor([7, 5], seed: 32)]) {
            // The padding row's finite difference is not zero (its value is read), so mask it out of L.
            let y = try Tensor.embedding(indices, weight: $0[0], paddingIndex: 2)
            let keep = Tensor(indices.scalars.map { $0 == 2 ? Float(0) : 1 })
            return try y * (try keep.reshaped([3, 4, 1]))
        }
    }

    @Test func initialisationIsStandardNormalWithAZeroPaddingRow() throws {
        let layer = try Random.withGenerator(seed: 7) { try Embedding(count: 500, dimension: 40, paddingIndex: -1) }
        #expect(layer.paddingIndex == 499)
        let w = layer.weight.value.scalars
        #expect(w[(499 * 40)...].allSatisfy { $0 == 0 })
        let body = w[..<(499 * 40)].map(Double.init)
        let mean = body.reduce(0, +) / Double(body.count)
        let variance = body.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(body.count)
        // 19960 draws: the standard error of the mean is 0.007, of the variance about 0.01.
        #expect(abs(mean) < 0.035)
        #expect(abs(variance - 1) < 0.05)
        #expect(layer.namedParameters.map(\.name) == ["weight"])
    }

    @Test func paddingRowStaysPutWhileTraining() throws {
        let layer = try Embedding(count: 4, dimension: 3, paddingIndex: 0)
        let optimizer = try Adam(layer.namedParameters, lr: 0.1)
        let before = layer.weight.value.scalars
        for _ in 0..<3 {
            optimizer.zeroGrad()
            try layer([0, 2, 0, 3]).squared().sum().backward()
            try optimizer.step()
        }
        let after = layer.weight.value.scalars
        #expect(after[0..<3].allSatisfy { $0 == 0 })
        #expect(after[3..<6] == before[3..<6])   // row 1: never looked up
        #expect(after[6..<9] != before[6..<9])   // row 2: trained
    }

    @Test func badInputThrows() throws {
        #expect(throws: NeuronError.self) { try Embedding(count: -1, dimension: 3) }
        #expect(throws: NeuronError.self) { try Embedding(count: 3, dimension: -2) }
        #expect(throws: NeuronError.self) { try Embedding(count: 3, dimension: 2, paddingIndex: 3) }
        #expect(throws: NeuronError.self) { try Embedding(count: 3, dimension: 2, paddingIndex: -4) }
        let layer = try Embedding(count: 3, dimension: 2)
        #expect(throws: NeuronError.invalidArgument("embedding: index 3 at position 1 is out of range for 3 rows (0..<3)")) {
            try layer([0, 3])
        }
        #expect(throws: NeuronError.self) { try layer([-1]) }
        #expect(throws: NeuronError.self) { try layer(Tensor([0, 1.5])) }
        #expect(throws: NeuronError.self) { try Tensor.embedding(IntTensor([0]), weight: Tensor([1, 2])) }
    }
}
