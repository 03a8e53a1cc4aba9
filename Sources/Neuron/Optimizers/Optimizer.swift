/// Updates a fixed list of named parameters from their gradients (PyTorch's `torch.optim.Optimizer`
/// with one parameter group).
///
/// The parameters are given with their `state_dict` names (`model.namedParameters`), and the
/// optimiser's state (momentum buffers, moment estimates, step counts) is keyed by those names, so a
/// checkpoint restores into a freshly built model and optimiser. A parameter whose gradient is `nil`
/// is skipped by `step()`: neither its value nor its state changes, as in PyTorch; so is a frozen one
/// (`Parameter.freeze()`, `Module.freeze()`), whatever its gradient. Every optimiser can also be built
/// from a module or an array of parameters (`ParameterSource`).
///
/// A training step: `optimizer.zeroGrad()`, forward, `loss.backward()`, `optimizer.step()`.
public protocol Optimizer: AnyObject {
    /// The parameters this optimiser updates, under their `state_dict` names.
    var parameters: [(name: String, parameter: Parameter)] { get }
    /// The learning rate the next `step()` uses; learning-rate schedules set it.
    var learningRate: Float { get set }
    /// Updates every parameter that has a gradient, in place.
    /// - Throws: `NeuronError.invalidArgument` when `learningRate` has been set negative or non-finite.
    func step() throws
    /// The optimiser's state by key `"<buffer>.<parameter name>"` (`"exp_avg.fc1.weight"`, float
    /// tensors of the parameter's shape) and `"step.<parameter name>"` (a rank-0 integer tensor, present
    /// for every parameter). Hyperparameters are not included: they come from the initialiser.
    func stateDict() -> [String: StoredTensor]
    /// Restores state saved by `stateDict()` of an optimiser of the same kind and configuration over
    /// parameters with the same names and shapes, so training resumes exactly.
    /// - Throws: `NeuronError.invalidArgument` naming missing or unexpected keys or a negative step,
    ///   `NeuronError.shapeMismatch` naming both shapes. On error the state is unchanged.
    func loadStateDict(_ state: [String: StoredTensor]) throws
}

extension Optimizer {
    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for (_, parameter) in parameters { parameter.zeroGrad() }
    }
}

/// What an optimiser can also be built from (besides named parameters `[(name:, parameter:)]`): a
/// module, `Adam(model, lr: 1e-3)`, whose parameters are taken under their `state_dict` names after
/// `checkParts()`, or an array of parameters, `Adam(model.parameters, lr: 1e-3)`, named by position
/// (`"0"`, `"1"`…, as PyTorch's optimiser `state_dict` numbers them). Frozen parameters are included
/// but left unchanged by `step()`, so unfreezing one later needs no new optimiser.
public protocol ParameterSource {
    /// The parameters under the names that key the optimiser's state.
    /// - Throws: what `Module.checkParts()` throws.
    func optimizerParameters() throws -> [(name: String, parameter: Parameter)]
}

/// A plain `[Parameter]` can be optimised (`SGD(params, lr: 0.1)`), its parameters named by position.
extension Array: ParameterSource where Element == Parameter {
    /// The parameters named by position: `"0"`, `"1"`…
    public func optimizerParameters() throws -> [(name: String, parameter: Parameter)] {
        enumerated().map { (String($0.offset), $0.element) }
    }
}

extension Module {
    /// `namedParameters`, after `checkParts()` confirmed that none was left out.
    public func optimizerParameters() throws -> [(name: String, parameter: Parameter)] {
        try checkParts()
        return namedParameters
    }
}

/// The per-parameter state all optimisers share (PyTorch's `optimizer.state`): a step count and a
/// fixed set of named buffers of the parameter's shape. Buffers are allocated once, on a parameter's
/// first update (or at construction when `allocatesEagerly`, as Adagrad's accumulator is), and then
/// updated in place by the C kernels.
final class OptimizerState {
    let parameters: [(name: String, parameter: Parameter)]
    /// PyTorch's state keys for this configuration (`["exp_avg", "exp_avg_sq"]`); may be empty.
    let bufferNames: [String]
    private let initialValue: Float
    private let allocatesEagerly: Bool
    /// Updates applied to each parameter so far.
    private(set) var steps: [Int]
    /// `buffers[i][k]` is buffer `bufferNames[k]` of parameter `i`; empty until allocated.
    private(set) var buffers: [[Tensor]]

    /// - Parameters are deduplicated by identity (tied weights appear once, under their first name,
    ///   like PyTorch's `named_parameters()`); two different parameters under one name throw.
    init(_ parameters: [(name: String, parameter: Parameter)], bufferNames: [String],
         initialValue: Float = 0, allocatesEagerly: Bool = false) throws {
        var seen = Set<ObjectIdentifier>()
        var names = Set<String>()
        var unique: [(name: String, parameter: Parameter)] = []
        for entry in parameters where seen.insert(ObjectIdentifier(entry.parameter)).inserted {
            guard names.insert(entry.name).inserted else {
                throw NeuronError.invalidArgument("two different parameters are both named '\(entry.name)'; optimiser state is keyed by name")
            }
            unique.append(entry)
        }
        self.parameters = unique
        self.bufferNames = bufferNames
        self.initialValue = initialValue
        self.allocatesEagerly = allocatesEagerly
        steps = Array(repeating: 0, count: unique.count)
        buffers = Array(repeating: [], count: unique.count)
        if allocatesEagerly {
            for i in unique.indices { allocate(i) }
        }
    }

    private func allocate(_ i: Int) {
        let shape = parameters[i].parameter.shape
        buffers[i] = bufferNames.map { _ in Tensor(repeating: initialValue, shape: shape) }
    }

    /// Buffer `name` of parameter `i`, writable, or nil when this configuration has no such buffer
    /// (C kernels take NULL for buffers they do not use). Valid until the buffer is next replaced.
    func pointer(_ name: String, _ i: Int) -> UnsafeMutablePointer<Float>? {
        guard let k = bufferNames.firstIndex(of: name) else { return nil }
        // A tensor handed out by stateDict() still shares storage: the first write after it copies.
        buffers[i][k].makeUnique()
        return buffers[i][k].pointer
    }

    /// For each parameter with a gradient that is not frozen: allocates its buffers on first use, advances its step
    /// count, then calls `update(i, value, gradient, count)` to change the value in place.
    func updateEach(learningRate: Float,
                    _ update: (_ i: Int, _ value: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, _ count: Int) -> Void) throws {
        try Hyperparameter.requireNonNegative("learning rate", learningRate)
        for (i, (_, parameter)) in parameters.enumerated() {
            guard parameter.requiresGrad, let grad = parameter.grad else { continue }
            if buffers[i].isEmpty && !bufferNames.isEmpty { allocate(i) }
            steps[i] += 1
            grad.withUnsafeBufferPointer { g in
                parameter.update { p in update(i, p.baseAddress!, g.baseAddress!, p.count) }
            }
        }
    }

    func stateDict() -> [String: StoredTensor] {
        var out: [String: StoredTensor] = [:]
        for (i, (name, _)) in parameters.enumerated() {
            out["step." + name] = .int(IntTensor(Int64(steps[i])))
            for (k, buffer) in zip(bufferNames, buffers[i]) { out[k + "." + name] = .float(buffer) }
        }
        return out
    }

    func load(_ dict: [String: StoredTensor]) throws {
        var newSteps = steps
        var newBuffers = buffers
        var expected = Set<String>()
        for (i, (name, parameter)) in parameters.enumerated() {
            let stepKey = "step." + name
            expected.insert(stepKey)
            guard let stored = dict[stepKey] else {
                throw NeuronError.invalidArgument("optimizer state has no '\(stepKey)' for parameter '\(name)'")
            }
            guard case .int(let stepTensor) = stored, stepTensor.count == 1, stepTensor.scalars[0] >= 0 else {
                throw NeuronError.invalidArgument("optimizer state '\(stepKey)' must be one non-negative integer, got \(describe(stored))")
            }
            newSteps[i] = Int(stepTensor.scalars[0])
            // Buffers exist once a parameter has been updated (or from the start when eager).
            guard allocatesEagerly || newSteps[i] > 0 else {
                newBuffers[i] = []
                continue
            }
            newBuffers[i] = try bufferNames.map { bufferName in
                let key = bufferName + "." + name
                expected.insert(key)
                guard let stored = dict[key] else {
                    throw NeuronError.invalidArgument("optimizer state has no '\(key)' for parameter '\(name)' at step \(newSteps[i])")
                }
                guard case .float(let t) = stored else {
                    throw NeuronError.invalidArgument("optimizer state '\(key)' must be a float tensor, got \(describe(stored))")
                }
                guard t.shape == parameter.shape else {
                    throw NeuronError.shapeMismatch("optimizer state '\(key)' has shape \(shapeString(t.shape)) but parameter '\(name)' has shape \(shapeString(parameter.shape))")
                }
                return t.detached()
            }
        }
        let unexpected = dict.keys.filter { !expected.contains($0) }.sorted()
        guard unexpected.isEmpty else {
            throw NeuronError.invalidArgument("unexpected optimizer state keys \(unexpected.prefix(5).joined(separator: ", "))\(unexpected.count > 5 ? " (\(unexpected.count) in all)" : "") (expected buffers \(bufferNames) and 'step' for parameters \(parameters.map(\.name).prefix(5)))")
        }
        steps = newSteps
        buffers = newBuffers
    }

    private func describe(_ stored: StoredTensor) -> String {
        switch stored {
        case .float(let t): return "a float tensor of shape \(shapeString(t.shape))"
        case .int(let t): return "an integer tensor of shape \(shapeString(t.shape)) \(t.scalars.prefix(4))"
        }
    }
}

/// Checks of optimiser, schedule and clipping arguments (validated in Swift before any C call).
enum Hyperparameter {
    /// Throws `NeuronError.invalidArgument` with `message` unless `condition` holds.
    static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        guard condition else { throw NeuronError.invalidArgument(message()) }
    }

    /// Throws unless `value` (shown as `name`) is finite and non-negative; NaN fails too.
    static func requireNonNegative(_ name: String, _ value: Float) throws {
        try require(value.isFinite && value >= 0, "\(name) must be finite and non-negative, got \(value)")
    }
}
