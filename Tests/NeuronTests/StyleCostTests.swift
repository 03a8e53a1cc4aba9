import Testing
@testable import Neuron

/// The Gram matrix and the content and style costs against PyTorch, finite differences and bad input.
@Suite struct StyleCostTests {
    @Test func gramMatchesPyTorch() throws {
        let g = try Golden("gram_style")
        let f = try g.float("gram.F").requiringGrad()
        let y = try f.gramMatrix()
        try g.expectValue(y, "gram.y")
        try (y * g.float("gram.R")).sum().backward()
        try g.expectGradient(f.grad, "gram.grad.F")
    }

    @Test func styleCostMatchesPyTorch() throws {
        let g = try Golden("gram_style")
        let style = try g.float("style.a_S"), generated = try g.float("style.a_G").requiringGrad()
        try g.expectValue(try style.gramMatrix(), "style.gram_S")
        try g.expectValue(try generated.gramMatrix(), "style.gram_G")
        let j = try styleCost(style: style, generated: generated)
        try g.expectValue(j, "style.J")
        try j.backward()
        try g.expectGradient(generated.grad, "style.grad.a_G")
        // A batch axis of one is accepted.
        let batched = try styleCost(style: style.unsqueezed(axis: 0), generated: generated.detached().unsqueezed(axis: 0))
        try g.expectValue(batched, "style.J")
    }

    @Test func contentCostMatchesPyTorch() throws {
        let g = try Golden("gram_style")
        let generated = try g.float("content.a_G").requiringGrad()
        let j = try contentCost(content: g.float("content.a_C"), generated: generated)
        try g.expectValue(j, "content.J")
        try j.backward()
        try g.expectGradient(generated.grad, "content.grad.a_G")
    }

    @Test func gramOfABatchIsEachImagesGram() throws {
        let x = randomTensor([3, 5, 4, 2], seed: 1)
        let batched = try x.gramMatrix()
        #expect(batched.shape == [3, 5, 5])
        for n in 0..<3 {
            let single = try x.slice(n..<(n + 1)).reshaped([5, 4, 2]).gramMatrix()
            #expect(try batched.slice(n..<(n + 1)).reshaped([5, 5]) == single)
        }
        try checkGradients([randomTensor([2, 3, 2, 3], seed: 2)]) { try $0[0].gramMatrix() }
        // No elements along K: the Gram of an empty map is zero, and so is its gradient.
        #expect(try Tensor.zeros([4, 0]).gramMatrix() == Tensor.zeros([4, 4]))
    }

    @Test func styleCostOfImagesOfDifferentSizes() throws {
        // Each Gram is normalised by its own map's size, so a 6x7 style map and a 3x4 generated map compare.
        let style = randomTensor([4, 6, 7], seed: 3, low: 0, high: 1)
        let generated = randomTensor([4, 3, 4], seed: 4, low: 0, high: 1)
        let j = try styleCost(style: style, generated: generated)
        let gs = try style.gramMatrix() / Float(2 * 4 * 6 * 7), gg = try generated.gramMatrix() / Float(2 * 4 * 3 * 4)
        let want = try (gs - gg).squared().sum()
        #expect(abs(try j.item() - want.item()) <= 1e-6 * abs(try want.item()) + 1e-9)
        try checkGradients([generated], step: 1e-2, atol: 1e-5, rtol: 1e-2) { try styleCost(style: style, generated: $0[0]) }
    }

    @Test func weightedStyleCostAddsTheLayers() throws {
        let layers = [([3, 4, 4], 5), ([6, 2, 2], 6)].map { shape, seed in
            (randomTensor(shape, seed: UInt64(seed), low: 0, high: 1), randomTensor(shape, seed: UInt64(seed + 10), low: 0, high: 1))
        }
        let targets = try layers.map { try StyleTarget(features: $0.0) }
        let total = try styleCost(targets, generated: layers.map(\.1), weights: [0.25, 0.75])
        let want = try 0.25 * styleCost(style: layers[0].0, generated: layers[0].1).item()
            + 0.75 * styleCost(style: layers[1].0, generated: layers[1].1).item()
        #expect(abs(try total.item() - want) <= 1e-6 * abs(want))
        try checkGradients(layers.map(\.1), atol: 1e-5) { try styleCost(targets, generated: $0, weights: [0.25, 0.75]) }
    }

    @Test func badInputThrows() throws {
        let a = randomTensor([3, 4, 4], seed: 7)
        #expect(throws: NeuronError.self) { try styleCost(style: a, generated: randomTensor([4, 4, 4], seed: 8)) }
        #expect(throws: NeuronError.self) { try contentCost(content: a, generated: randomTensor([3, 4, 5], seed: 8)) }
        #expect(throws: NeuronError.self) { try contentCost(content: randomTensor([2, 3, 4, 4], seed: 8), generated: a) }
        #expect(throws: NeuronError.self) { try Tensor([1, 2, 3]).gramMatrix() }
        #expect(throws: NeuronError.self) { try styleCost([], generated: [], weights: []) }
        #expect(throws: NeuronError.self) { try styleCost([StyleTarget(features: a)], generated: [a], weights: [1, 2]) }
        #expect(throws: NeuronError.self) { try StyleTarget(features: Tensor.zeros([3, 0, 4])) }
    }
}
