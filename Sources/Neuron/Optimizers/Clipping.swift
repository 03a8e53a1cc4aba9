import CKernels
import Foundation

/// Rescales the gradients of `parameters` together so that their total norm is at most `maxNorm`,
/// and returns the total norm before clipping (PyTorch's `torch.nn.utils.clip_grad_norm_`).
///
/// The total norm is the `normType`-norm of all gradient elements as one vector, accumulated in
/// double. When it exceeds `maxNorm`, every gradient is multiplied by maxNorm / (total + 1e-6).
/// Parameters without a gradient are skipped; a parameter listed twice counts once.
///
/// - Parameters (in order):
///   - parameters: whose gradients to clip (`model.parameters`).
///   - maxNorm: the largest allowed total norm, non-negative.
///   - normType: p > 0 of the p-norm, or `.infinity` for the largest absolute value; 2 by default.
///   - errorIfNonfinite: throw when the total norm is NaN or infinite, leaving the gradients untouched.
///     `true` by default (PyTorch defaults to `false`); with `false` the norm is returned and the
///     gradients are scaled by PyTorch's coefficient (NaN or 0), as PyTorch does.
/// - Throws: `NeuronError.nonFinite` for a NaN or infinite total norm (see `errorIfNonfinite`),
///   `NeuronError.invalidArgument` for a negative or NaN `maxNorm` or a `normType` that is not positive.
@discardableResult
public func clipGradNorm(_ parameters: [Parameter], maxNorm: Float, normType: Float = 2,
                         errorIfNonfinite: Bool = true) throws -> Float {
    try Hyperparameter.require(maxNorm >= 0, "clipGradNorm maxNorm must be non-negative, got \(maxNorm)")
    try Hyperparameter.require(normType > 0, "clipGradNorm normType must be positive or .infinity, got \(normType)")
    let withGrads = uniqueParameters(parameters).filter { $0.grad != nil }
    let total = try totalNorm(withGrads, normType: Double(normType))
    if !total.isFinite && errorIfNonfinite {
        throw NeuronError.nonFinite("the total \(normType)-norm of the gradients of \(withGrads.count) parameters is \(total); pass errorIfNonfinite: false to clip anyway")
    }
    let coefficient = Float(Double(maxNorm) / (total + 1e-6))
    // NaN compares false, so a NaN coefficient is applied, as PyTorch multiplies by it.
    if !(coefficient >= 1) {
        for parameter in withGrads {
            parameter.updateGrad { g in nn_affine(g.baseAddress!, g.baseAddress!, coefficient, 0, g.count) }
        }
    }
    return Float(total)
}

/// Limits every gradient element of `parameters` to [−clipValue, clipValue] in place (PyTorch's
/// `torch.nn.utils.clip_grad_value_`). Parameters without a gradient are skipped.
/// - Throws: `NeuronError.invalidArgument` when `clipValue` is negative or NaN.
public func clipGradValue(_ parameters: [Parameter], clipValue: Float) throws {
    try Hyperparameter.require(clipValue >= 0, "clipGradValue clipValue must be non-negative, got \(clipValue)")
    for parameter in uniqueParameters(parameters) {
        parameter.updateGrad { g in nn_clamp(g.baseAddress!, g.baseAddress!, -clipValue, clipValue, g.count) }
    }
}

/// `parameters` in order with repeats (tied weights) removed, so no gradient is scaled twice.
private func uniqueParameters(_ parameters: [Parameter]) -> [Parameter] {
    var seen = Set<ObjectIdentifier>()
    return parameters.filter { seen.insert(ObjectIdentifier($0)).inserted }
}

/// The p-norm of all gradient elements of `parameters` taken as one vector, in double; 0 for none.
private func totalNorm(_ parameters: [Parameter], normType p: Double) throws -> Double {
    // Gradients are read one at a time, so none is still referenced when clipping writes in place.
    let grads = parameters.lazy.compactMap(\.grad)
    if p == 2 {
        return grads.reduce(0.0) { $0 + $1.withUnsafeBufferPointer { nn_sum_squares($0.baseAddress!, $0.count) } }.squareRoot()
    }
    // Rarer norms go through a temporary |g| (or |g|^p) per gradient.
    if p == .infinity {
        var largest = 0.0
        for g in grads where !g.isEmpty {
            let m = Double(try g.abs().max())
            if m.isNaN { return .nan }  // Swift.max would drop it
            largest = Swift.max(largest, m)
        }
        return largest
    }
    let sum = grads.reduce(0.0) { acc, g in
        let powered = p == 1 ? g.abs() : g.abs().pow(Float(p))
        return acc + powered.withUnsafeBufferPointer { nn_sum_all($0.baseAddress!, $0.count) }
    }
    return Foundation.pow(sum, 1 / p)
}

extension Parameter {
    /// In-place access to the gradient's elements, if there is a gradient (clipping, data-parallel
    /// reduction). Copies only if the gradient's buffer is shared.
    public func updateGrad(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        guard node.grad != nil else { return }
        node.grad!.withUnsafeMutableBufferPointer(body)
    }
}
