import Foundation
import Neuron

/// One generated call: a description printed before it runs (so a trap can be attributed to it), and
/// the call itself with its reference check. Everything random is drawn while generating, or from
/// `Ctx.rng`, which continues the case's own stream: case `i` of seed `s` is the same on every run.
struct FuzzCase {
    var op: String
    var params: String
    var run: (Ctx) throws -> Void
}

/// What a case sees while it runs.
final class Ctx {
    let index: Int
    var rng: FuzzRandom
    var failures: [String] = []
    /// Whether PyTorch, and so the reference, answers this call (set before the library is called).
    /// Thrown errors are always acceptable; the count of those the reference could have answered is reported.
    var referenceValid: Bool?
    let emit: (String) -> Void

    init(index: Int, rng: FuzzRandom, emit: @escaping (String) -> Void) {
        self.index = index
        self.rng = rng
        self.emit = emit
    }

    /// Announces that the next call is expected to stop on a documented precondition (a tensor
    /// factory given a negative size), so the supervisor counts the trap apart.
    func expectPrecondition(_ why: String) { emit("P \(index)\t\(why)") }

    func check(_ failure: String?) { if let failure { failures.append(failure) } }

    func fail(_ message: String) { failures.append(message) }

    /// An input tensor from the throwing factory (itself under test), requiring gradients if asked.
    func tensor(_ shape: [Int], _ values: [Float], grad: Bool = false) throws -> Tensor {
        let t = try Tensor(shape: shape, scalars: values)
        return grad ? t.requiringGrad() : t
    }

    /// An upstream gradient for `shape`: mostly ordinary values, sometimes with NaN or Inf mixed in.
    func upstream(_ shape: [Int]) -> [Float] {
        let regime: ValueRegime = rng.chance(0.12) ? .special : .normal
        return rng.values(product(shape), regime)
    }

    /// Back-propagates `y` with a random upstream gradient and returns it (as doubles).
    func backward(_ y: Tensor) throws -> [Double] {
        let g = upstream(y.shape)
        try y.backward(try Tensor(shape: y.shape, scalars: g))
        return g.map(Double.init)
    }
}

/// The result of one case.
enum Outcome {
    case correct
    case thrown(referenceValid: Bool, message: String)
    case wrong(String)
}

/// Generates case `index` of `seed`.
func makeCase(seed: UInt64, index: Int) -> (FuzzCase, FuzzRandom) {
    var rng = FuzzRandom(seed: seed, case: index)
    let kind = rng.weighted(caseKinds.map(\.weight))
    let c = caseKinds[kind].make(&rng)
    return (c, rng)
}

/// Runs case `index` in this process; `emit` gets the protocol lines (`B` before the call, `P` before
/// an expected precondition stop).
func runCase(seed: UInt64, index: Int, emit: @escaping (String) -> Void) -> Outcome {
    let (c, rng) = makeCase(seed: seed, index: index)
    Random.seed(seed &+ UInt64(truncatingIfNeeded: index))
    emit("B \(index)\t\(c.op)\t\(c.params)")
    let ctx = Ctx(index: index, rng: rng, emit: emit)
    do {
        try c.run(ctx)
    } catch let error as NeuronError {
        if !ctx.failures.isEmpty { return .wrong(ctx.failures.joined(separator: "; ") + "; then threw \(error)") }
        return .thrown(referenceValid: ctx.referenceValid ?? false, message: "\(error)")
    } catch {
        return .wrong("threw \(type(of: error)), not NeuronError: \(error)")
    }
    return ctx.failures.isEmpty ? .correct : .wrong(ctx.failures.joined(separator: "; "))
}

/// A kind of case: a name for the statistics, a weight in the mix, and its generator.
struct CaseKind: Sendable {
    let name: String
    let weight: Int
    let make: @Sendable (inout FuzzRandom) -> FuzzCase
}

/// Every kind of case and its share of the mix (weights are relative).
let caseKinds: [CaseKind] = [
    CaseKind(name: "binary", weight: 8, make: binaryCase),
    CaseKind(name: "scalar", weight: 4, make: scalarCase),
    CaseKind(name: "unary", weight: 10, make: unaryCase),
    CaseKind(name: "autograd", weight: 3, make: autogradCase),
    CaseKind(name: "reshape", weight: 4, make: reshapeCase),
    CaseKind(name: "flatten", weight: 2, make: flattenCase),
    CaseKind(name: "permute", weight: 3, make: permuteCase),
    CaseKind(name: "transpose", weight: 1, make: transposeCase),
    CaseKind(name: "slice", weight: 2, make: sliceCase),
    CaseKind(name: "rows", weight: 2, make: rowsCase),
    CaseKind(name: "concatenate", weight: 2, make: concatenateCase),
    CaseKind(name: "stack", weight: 2, make: stackCase),
    CaseKind(name: "squeeze", weight: 2, make: squeezeCase),
    CaseKind(name: "sum", weight: 5, make: sumCase),
    CaseKind(name: "max", weight: 3, make: maxCase),
    CaseKind(name: "softmax", weight: 4, make: softmaxCase),
    CaseKind(name: "matmul", weight: 5, make: matmulCase),
    CaseKind(name: "linear", weight: 4, make: linearCase),
    CaseKind(name: "elementLoss", weight: 5, make: elementLossCase),
    CaseKind(name: "crossEntropy", weight: 4, make: crossEntropyCase),
    CaseKind(name: "penalty", weight: 1, make: penaltyCase),
    CaseKind(name: "conv2d", weight: 10, make: conv2dCase),
    CaseKind(name: "maxPool2d", weight: 4, make: maxPoolCase),
    CaseKind(name: "avgPool2d", weight: 4, make: avgPoolCase),
    CaseKind(name: "adaptiveAvgPool2d", weight: 3, make: adaptivePoolCase),
    CaseKind(name: "batchNorm", weight: 4, make: batchNormCase),
    CaseKind(name: "batchNormLayer", weight: 3, make: batchNormLayerCase),
    CaseKind(name: "dropout", weight: 3, make: dropoutCase),
    CaseKind(name: "recurrent", weight: 5, make: recurrentCase),
    CaseKind(name: "boxes", weight: 2, make: boxesCase),
    CaseKind(name: "linearLayer", weight: 2, make: linearLayerCase),
    CaseKind(name: "conv2dLayer", weight: 3, make: conv2dLayerCase),
    CaseKind(name: "sequential", weight: 1, make: sequentialCase),
    CaseKind(name: "model", weight: 1, make: modelCase),
    CaseKind(name: "factory", weight: 3, make: factoryCase),
]
