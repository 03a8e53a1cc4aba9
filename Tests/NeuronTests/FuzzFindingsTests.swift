import Testing
@testable import Neuron

/// Regression tests for what the shape fuzzer (`neuron-fuzz`) found; each names the case that found it.
@Suite struct FuzzFindingsTests {
    /// seed 1 case 197: flatten of a scalar ignored its axis; PyTorch accepts only 0 and -1 there.
    @Test func flattenOfAScalarChecksTheAxis() throws {
        let s = Tensor(3.5)
        #expect(try s.flattened(startAxis: 0).shape == [1])
        #expect(try s.flattened(startAxis: -1).shape == [1])
        #expect(throws: NeuronError.self) { try s.flattened(startAxis: 1) }
        #expect(throws: NeuronError.self) { try Flatten(startAxis: 4)(s) }
    }

    /// seed 1 case 504: binary cross-entropy of probabilities outside [0, 1] (or NaN) returned a finite loss,
    /// because the clamp of the logs at -100 swallowed the NaN of log(-0.5).
    @Test func binaryCrossEntropyRefusesValuesOutsideZeroOne() throws {
        for bad: Float in [-0.5, 1.5, .nan, .infinity] {
            #expect(throws: NeuronError.self) { try binaryCrossEntropy(Tensor([0.5, bad]), Tensor([1, 0])) }
            #expect(throws: NeuronError.self) { try binaryCrossEntropy(Tensor([0.5, bad]), Tensor([1, 0]), reduction: .none) }
        }
        // The ends of the interval stay valid: the logs are clamped at -100, as in PyTorch.
        #expect(try binaryCrossEntropy(Tensor([0, 1]), Tensor([1, 0]), reduction: .sum).item() == 200)
    }
}
