import Testing
@testable import Neuron

@Suite struct TensorTests {
    @Test func creationAndAccess() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t[1, 2] == 6)
        #expect(t.rank == 2 && t.count == 6)
        #expect(Tensor.zeros([2, 2]).scalars == [0, 0, 0, 0])
        #expect(Tensor(repeating: 7, shape: [3]).scalars == [7, 7, 7])
        #expect(throws: NeuronError.self) { try Tensor(shape: [2, 2], scalars: [1, 2, 3]) }
    }

    @Test func copyOnWrite() {
        var a = Tensor([1, 2, 3])
        let b = a
        a[0] = 10
        #expect(a.scalars == [10, 2, 3])
        #expect(b.scalars == [1, 2, 3])
    }

    @Test func scalarsAndEmptyTensorsAreValues() throws {
        let s = Tensor(3.5)
        #expect(s.shape == [] && s.count == 1)
        #expect(try s.item() == 3.5)
        #expect((try (s * Tensor([1, 2])).scalars) == [3.5, 7])
        let e = Tensor.zeros([0, 3])
        #expect(e.isEmpty && e.shape == [0, 3])
        #expect((try e + Tensor.ones([3])).shape == [0, 3])
        #expect((try e.sum().item()) == 0)
        #expect((try e.sum(axis: 0)).scalars == [0, 0, 0])
        #expect(try e.mean().item().isNaN)
        #expect(throws: NeuronError.self) { try e.max() }
        #expect(try e.reshaped([3, 0]).shape == [3, 0])
        #expect(try e.matmul(Tensor.ones([3, 2])).shape == [0, 2])
    }

    @Test func broadcastingFollowsNumPy() throws {
        let a = try Tensor(shape: [2, 1, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [2, 1], scalars: [10, 20])
        let c = try a + b
        #expect(c.shape == [2, 2, 3])
        #expect(c.scalars == [11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26])
        #expect((Tensor([1, 2, 3]) * 2 - 1).scalars == [1, 3, 5])
    }

    @Test func shapeErrorsNameBothShapes() {
        do {
            _ = try Tensor.zeros([2, 3]) + Tensor.zeros([4])
            Issue.record("expected a shape error")
        } catch let error as NeuronError {
            #expect(error.description.contains("[2, 3]") && error.description.contains("[4]"))
        } catch { Issue.record("unexpected error \(error)") }
        do {
            _ = try Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
            Issue.record("expected a shape error")
        } catch let error as NeuronError {
            #expect(error.description.contains("[2, 3]") && error.description.contains("[4, 5]"))
        } catch { Issue.record("unexpected error \(error)") }
    }

    @Test func reshapeTransposeSliceConcat() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(try t.reshaped([3, -1]).shape == [3, 2])
        #expect(throws: NeuronError.self) { try t.reshaped([4, -1]) }
        #expect(try t.transposed().scalars == [1, 4, 2, 5, 3, 6])
        #expect(try t.slice(1..<2).scalars == [4, 5, 6])
        #expect(try t.rows(at: [1, 0, 1]).scalars == [4, 5, 6, 1, 2, 3, 4, 5, 6])
        #expect(try Tensor.concatenate([t, t], axis: 1).scalars == [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6])
        #expect(try Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1).scalars == [1, 3, 2, 4])
        #expect(throws: NeuronError.self) { try Tensor.concatenate([t, Tensor.zeros([2, 2])], axis: 0) }
    }

    @Test func reductionsAndMatmul() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 5, 3, 4, 2, 6])
        #expect(try t.sum(axis: 0).scalars == [5, 7, 9])
        #expect(try t.mean(axis: 1).scalars == [3, 4])
        #expect(try t.argmax(axis: 1) == [1, 2])
        #expect(try t.max() == 6)
        let ties = Tensor([[1, 3, 3]])
        #expect(try ties.argmax(axis: 1) == [1])
        let m = try t.matmul(Tensor([[1, 0], [0, 1], [1, 1]]))
        #expect(m.scalars == [4, 8, 10, 8])
        let batched = try Tensor.stack([t, t]).matmul(Tensor.stack([try t.transposed(), try t.transposed()]))
        #expect(batched.shape == [2, 2, 2] && batched.scalars.prefix(4) == [35, 32, 32, 56])
    }

    @Test func softmaxIsStableOnLargeLogits() throws {
        let x = Tensor([[1000, -1000, 0, 1000], [-1000, -1000, -1000, -1000]])
        let p = try x.softmax(axis: 1)
        let lp = try x.logSoftmax(axis: 1)
        #expect(p.scalars.allSatisfy { $0.isFinite } && lp.scalars.allSatisfy { $0.isFinite })
        expectClose(p, Tensor([[0.5, 0, 0, 0.5], [0.25, 0.25, 0.25, 0.25]]))
        #expect(abs(lp[0, 0] + 0.6931472) < 1e-6)
    }

    @Test func descriptionPrintsLikeNumPy() throws {
        #expect(Tensor([[1, 2], [3, 4]]).description == "[[1. 2.]\n [3. 4.]]")
        #expect(Tensor([0.5, -1.25]).description == "[  0.5 -1.25]")
        #expect(Tensor(3).description == "3.")
        #expect(Tensor.zeros([2000]).description.contains("..."))
    }

    @Test func seededInitialisationIsReproducible() throws {
        // Explicit generators: other tests draw from the default one in parallel.
        var g1 = RandomGenerator(seed: 7), g2 = RandomGenerator(seed: 7)
        let a = Tensor.normal([100], using: &g1)
        let b = Tensor.normal([100], using: &g2)
        #expect(a == b)
        #expect(g1.state == g2.state)
        let mean = a.scalars.reduce(0, +) / 100
        #expect(abs(mean) < 0.3)
        let linear = try Linear(in: 16, out: 4)
        #expect(linear.weight.value.scalars.allSatisfy { abs($0) <= 0.25 })
    }
}
