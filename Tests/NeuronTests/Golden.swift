import Foundation
import Testing
@testable import Neuron

/// Reference tensors computed by PyTorch (Tests/Fixtures/golden, copied from ../shared/golden with
/// its README, which documents every key).
struct Golden {
    let name: String
    let tensors: [String: StoredTensor]

    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("golden")
    }

    init(_ name: String) throws {
        self.name = name
        tensors = try Safetensors.read(contentsOf: Golden.directory.appendingPathComponent(name + ".safetensors"))
    }

    func float(_ key: String) throws -> Tensor {
        guard case .float(let t)? = tensors[key] else { throw NeuronError.io("\(name): no float tensor '\(key)'") }
        return t
    }

    func ints(_ key: String) throws -> [Int] {
        guard case .int(let t)? = tensors[key] else { throw NeuronError.io("\(name): no integer tensor '\(key)'") }
        return t.ints
    }

    /// Compares with the golden README's forward tolerances (atol 1e-6, rtol 1e-5).
    func expectValue(_ actual: Tensor?, _ key: String, atol: Float = 1e-6, rtol: Float = 1e-5,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let a = try #require(actual, "\(name).\(key): no value", sourceLocation: sourceLocation)
        expectClose(a, try float(key), atol: atol, rtol: rtol, "\(name).\(key)", sourceLocation: sourceLocation)
    }

    /// Compares with the gradient tolerances (atol 1e-5, rtol 1e-4).
    func expectGradient(_ actual: Tensor?, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectValue(actual, key, atol: 1e-5, rtol: 1e-4, sourceLocation: sourceLocation)
    }
}
