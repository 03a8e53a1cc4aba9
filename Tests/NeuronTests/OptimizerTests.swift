import Foundation
import Testing
@testable import Neuron

// Optimisers are checked against PyTorch's documented update rules (torch.optim docs), written out
// below in plain Double arithmetic, one element at a time, step by step.

// MARK: - Fixtures and helpers

/// Starting values of the parameter the reference tests update.
private let start: [Float] = [0.5, -1.2, 2.0, 0.01, -0.3]

/// The gradient given at step `t` (from 1): mixed signs and scales, not derived from the value, so
/// the reference needs no autograd.
private func syntheticGradient(step t: Int, count: Int = start.count) -> [Float] {
    (0..<count).map { i in
        let phase: Double = 1.3 * Double(t) + 0.7 * Double(i)
        let scale: Double = 0.5 * Double(i + 1)
        return Float(Foundation.sin(phase) * scale)
    }
}

/// Runs `steps` updates of a fresh optimiser over one parameter named "w" and returns its values
/// after each step.
private func trajectory(steps: Int, _ make: ([(name: String, parameter: Parameter)]) throws -> any Optimizer) throws -> [[Float]] {
    let w = Parameter(Tensor(start))
    let optimizer = try make([("w", w)])
    return try (1...steps).map { t in
        w.grad = Tensor(syntheticGradient(step: t))
        try optimizer.step()
        return w.value.scalars
    }
}

/// The gradients `trajectory` gives, in Double, for the references.
private func referenceGradients(steps: Int) -> [[Double]] {
    (1...steps).map { syntheticGradient(step: $0).map(Double.init) }
}

/// Checks |a − b| ≤ atol + rtol·|b| everywhere; on a mismatch reports the first differing elements
/// and the largest absolute and relative errors.
private func expectClose(_ actual: [Float], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5,
                         _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(context): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var bad: [String] = []
    var maxAbs = 0.0, maxRel = 0.0
    for (i, (a, b)) in zip(actual.map(Double.init), expected).enumerated() {
        let err = Swift.abs(a - b)
        maxAbs = Swift.max(maxAbs, err)
        maxRel = Swift.max(maxRel, err / Swift.max(Swift.abs(b), 1e-30))
        if !(err <= atol + rtol * Swift.abs(b)) && bad.count < 4 { bad.append("[\(i)] \(a) vs \(b)") }
    }
    if !bad.isEmpty {
        Issue.record("\(context): \(bad.joined(separator: ", ")); max abs error \(maxAbs), max rel error \(maxRel)",
                     sourceLocation: sourceLocation)
    }
}

private func expectTrajectory(_ actual: [[Float]], _ expected: [[Double]], _ context: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
    for (t, (a, e)) in zip(actual, expected).enumerated() {
        expectClose(a, e, "\(context), step \(t + 1)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw `NeuronError.invalidArgument`.
private func expectInvalidArgument(_ context: String, sourceLocation: SourceLocation = #_sourceLocation,
                                   _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("\(context): did not throw", sourceLocation: sourceLocation)
    } catch let error as NeuronError {
        guard case .invalidArgument = error else {
            Issue.record("\(context): threw \(error), expected invalid argument", sourceLocation: sourceLocation)
            return
        }
    } catch {
        Issue.record("\(context): threw \(error)", sourceLocation: sourceLocation)
    }
}

/// Hyperparameters as the optimiser sees them (Float), widened for the Double references.
private func d(_ x: Float) -> Double { Double(x) }

// MARK: - References (PyTorch's documented algorithms)

private func sgdReference(lr: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool,
                          steps: Int) -> [[Double]] {
    var p = start.map(Double.init)
    var buf: [Double]? = nil
    var out: [[Double]] = []
    for g0 in referenceGradients(steps: steps) {
        var dp = zip(g0, p).map { g, p in g + d(weightDecay) * p }
        if momentum != 0 {
            if let b = buf {
                buf = zip(b, dp).map { b, g in d(momentum) * b + (1 - d(dampening)) * g }
            } else {
                buf = dp
            }
            dp = nesterov ? zip(dp, buf!).map { g, b in g + d(momentum) * b } : buf!
        }
        p = zip(p, dp).map { p, g in p - d(lr) * g }
        out.append(p)
    }
    return out
}

private func adamReference(lr: Float, betas: (Float, Float), eps: Float, weightDecay: Float, decoupled: Bool,
                           steps: Int) -> [[Double]] {
    var p = start.map(Double.init)
    var m = Array(repeating: 0.0, count: p.count), v = m
    var out: [[Double]] = []
    let (b1, b2) = (d(betas.0), d(betas.1))
    for (index, g0) in referenceGradients(steps: steps).enumerated() {
        let t = Double(index + 1)
        for i in p.indices {
            var g = g0[i]
            if decoupled { p[i] *= 1 - d(lr) * d(weightDecay) } else { g += d(weightDecay) * p[i] }
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mHat = m[i] / (1 - Foundation.pow(b1, t))
            let vHat = v[i] / (1 - Foundation.pow(b2, t))
            p[i] -= d(lr) * mHat / (vHat.squareRoot() + d(eps))
        }
        out.append(p)
    }
    return out
}

private func adagradReference(lr: Float, lrDecay: Float, weightDecay: Float, initial: Float, eps: Float,
                              steps: Int) -> [[Double]] {
    var p = start.map(Double.init)
    var sum = Array(repeating: d(initial), count: p.count)
    var out: [[Double]] = []
    for (index, g0) in referenceGradients(steps: steps).enumerated() {
        let clr = d(lr) / (1 + Double(index) * d(lrDecay))
        for i in p.indices {
            let g = g0[i] + d(weightDecay) * p[i]
            sum[i] += g * g
            p[i] -= clr * g / (sum[i].squareRoot() + d(eps))
        }
        out.append(p)
    }
    return out
}

private func rmspropReference(lr: Float, alpha: Float, eps: Float, weightDecay: Float, momentum: Float,
                              centered: Bool, steps: Int) -> [[Double]] {
    var p = start.map(Double.init)
    var square = Array(repeating: 0.0, count: p.count), gradAvg = square, buf = square
    var out: [[Double]] = []
    let a = d(alpha)
    for g0 in referenceGradients(steps: steps) {
        for i in p.indices {
            let g = g0[i] + d(weightDecay) * p[i]
            square[i] = a * square[i] + (1 - a) * g * g
            var avg = square[i]
            if centered {
                gradAvg[i] = a * gradAvg[i] + (1 - a) * g
                avg -= gradAvg[i] * gradAvg[i]
            }
            let denom = avg.squareRoot() + d(eps)
            if momentum > 0 {
                buf[i] = d(momentum) * buf[i] + g / denom
                p[i] -= d(lr) * buf[i]
            } else {
                p[i] -= d(lr) * g / denom
            }
        }
        out.append(p)
    }
    return out
}

// MARK: - Update rules against the references

@Suite struct OptimizerTests {
    @Test func sgdMatchesPyTorchRule() throws {
        let variants: [(lr: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool)] = [
            (0.1, 0, 0, 0, false),
            (0.1, 0, 0, 0.05, false),
            (0.05, 0.9, 0, 0, false),
            (0.05, 0.8, 0.3, 0.01, false),
            (0.05, 0.9, 0, 0, true),
            (0.05, 0.7, 0, 0.02, true),
        ]
        for c in variants {
            let actual = try trajectory(steps: 6) {
                try SGD($0, lr: c.lr, momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay, nesterov: c.nesterov)
            }
            let expected = sgdReference(lr: c.lr, momentum: c.momentum, dampening: c.dampening,
                                        weightDecay: c.weightDecay, nesterov: c.nesterov, steps: 6)
            expectTrajectory(actual, expected, "SGD \(c)")
        }
    }

    @Test func adamAndAdamWMatchPyTorchRule() throws {
        let variants: [(lr: Float, betas: (Float, Float), eps: Float, weightDecay: Float)] = [
            (0.1, (0.9, 0.999), 1e-8, 0),
            (0.05, (0.8, 0.99), 1e-3, 0.1),
            (0.02, (0, 0.5), 1e-8, 0.3),
        ]
        for c in variants {
            let adam = try trajectory(steps: 6) { try Adam($0, lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay) }
            expectTrajectory(adam, adamReference(lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay,
                                                 decoupled: false, steps: 6), "Adam \(c)")
            let adamW = try trajectory(steps: 6) { try AdamW($0, lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay) }
            expectTrajectory(adamW, adamReference(lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay,
                                                  decoupled: true, steps: 6), "AdamW \(c)")
        }
        // Coupled and decoupled decay must actually differ, or the two checks above prove nothing apart.
        let coupled = adamReference(lr: 0.05, betas: (0.8, 0.99), eps: 1e-3, weightDecay: 0.1, decoupled: false, steps: 6)
        let decoupled = adamReference(lr: 0.05, betas: (0.8, 0.99), eps: 1e-3, weightDecay: 0.1, decoupled: true, steps: 6)
        #expect(zip(coupled.last!, decoupled.last!).contains { Swift.abs($0 - $1) > 1e-3 })
    }

    @Test func adamWDefaultsDifferFromAdamOnlyInWeightDecay() throws {
        let w = Parameter(Tensor(start))
        let adam = try Adam([("w", w)])
        let adamW = try AdamW([("w", w)])
        #expect(adam.learningRate == 1e-3 && adamW.learningRate == 1e-3)
        #expect(adam.betas == (0.9, 0.999) && adamW.betas == (0.9, 0.999))
        #expect(adam.eps == 1e-8 && adamW.eps == 1e-8)
        #expect(adam.weightDecay == 0 && adamW.weightDecay == 1e-2)
        let sgd = try SGD([("w", w)], lr: 0.1)
        #expect(sgd.momentum == 0 && sgd.dampening == 0 && sgd.weightDecay == 0 && !sgd.nesterov)
        let adagrad = try Adagrad([("w", w)])
        #expect(adagrad.learningRate == 1e-2 && adagrad.lrDecay == 0 && adagrad.initialAccumulatorValue == 0 && adagrad.eps == 1e-10)
        let rmsprop = try RMSProp([("w", w)])
        #expect(rmsprop.learningRate == 1e-2 && rmsprop.alpha == 0.99 && rmsprop.eps == 1e-8 && rmsprop.momentum == 0 && !rmsprop.centered)
    }

    @Test func adagradMatchesPyTorchRule() throws {
        let variants: [(lr: Float, lrDecay: Float, weightDecay: Float, initial: Float, eps: Float)] = [
            (0.1, 0, 0, 0, 1e-10),
            (0.1, 0.5, 0.05, 0.1, 1e-10),
            (0.3, 0.1, 0, 0.5, 1e-2),
        ]
        for c in variants {
            let actual = try trajectory(steps: 6) {
                try Adagrad($0, lr: c.lr, lrDecay: c.lrDecay, weightDecay: c.weightDecay, initialAccumulatorValue: c.initial, eps: c.eps)
            }
            expectTrajectory(actual, adagradReference(lr: c.lr, lrDecay: c.lrDecay, weightDecay: c.weightDecay,
                                                      initial: c.initial, eps: c.eps, steps: 6), "Adagrad \(c)")
        }
    }

    @Test func rmspropMatchesPyTorchRule() throws {
        let variants: [(lr: Float, alpha: Float, eps: Float, weightDecay: Float, momentum: Float, centered: Bool)] = [
            (0.01, 0.99, 1e-8, 0, 0, false),
            (0.01, 0.9, 1e-8, 0.05, 0, false),
            (0.01, 0.9, 1e-8, 0, 0.8, false),
            (0.01, 0.95, 1e-6, 0, 0, true),
            (0.005, 0.9, 1e-8, 0.02, 0.5, true),
        ]
        for c in variants {
            let actual = try trajectory(steps: 6) {
                try RMSProp($0, lr: c.lr, alpha: c.alpha, eps: c.eps, weightDecay: c.weightDecay, momentum: c.momentum, centered: c.centered)
            }
            expectTrajectory(actual, rmspropReference(lr: c.lr, alpha: c.alpha, eps: c.eps, weightDecay: c.weightDecay,
                                                      momentum: c.momentum, centered: c.centered, steps: 6), "RMSProp \(c)")
        }
    }

    /// With a gradient of 1e-6 the accumulator's root is 1e-6: eps = 1e-10 outside the root barely
    /// changes the step (lr·0.9999), inside it would shrink it tenfold (lr·1e-6/√(1e-12 + 1e-10)).
    @Test func adagradEpsilonIsOutsideTheSquareRoot() throws {
        let w = Parameter(Tensor([0]))
        let optimizer = try Adagrad([("w", w)])
        w.grad = Tensor([1e-6])
        try optimizer.step()
        let outside = -0.01 * 1e-6 / (1e-6 + 1e-10)
        let inside = -0.01 * 1e-6 / (1e-12 + 1e-10).squareRoot()
        expectClose(w.value.scalars, [outside], "Adagrad step with eps outside the root")
        #expect(Swift.abs(Double(w.value.scalars[0]) - inside) > 1e-3)
    }

    /// Bias correction makes the first Adam step ≈ lr per element whatever the gradient's scale
    /// (uncorrected it would be lr·(1 − β₁)/√(1 − β₂) ≈ 3.16·lr).
    @Test func adamFirstStepMovesByLearningRate() throws {
        let gradient: [Float] = [1e-3, 5, -100, 0.3, -2e-2]
        let w = Parameter(Tensor.zeros([gradient.count]))
        let optimizer = try Adam([("w", w)], lr: 1e-3)
        w.grad = Tensor(gradient)
        try optimizer.step()
        expectClose(w.value.scalars, gradient.map { -1e-3 * ($0 > 0 ? 1 : -1) }, atol: 0, rtol: 1e-4, "first Adam step")
    }

    // MARK: - Convergence

    /// Minimises f(p) = Σ cᵢ(pᵢ − tᵢ)² with gradients from the autograd tape.
    @Test(arguments: ["SGD", "SGD nesterov", "Adam", "AdamW", "Adagrad", "RMSProp", "RMSProp centered momentum"])
    func minimisesAQuadratic(_ kind: String) throws {
        let target = Tensor([1, -2, 3]), curvature = Tensor([1, 3, 0.5])
        let p = Parameter(Tensor.zeros([3]))
        let named = [(name: "p", parameter: p)]
        let (optimizer, steps): (any Optimizer, Int) = switch kind {
        case "SGD": (try SGD(named, lr: 0.1), 300)
        case "SGD nesterov": (try SGD(named, lr: 0.05, momentum: 0.9, nesterov: true), 300)
        case "Adam": (try Adam(named, lr: 0.05), 1500)
        case "AdamW": (try AdamW(named, lr: 0.05, weightDecay: 0), 1500)
        case "Adagrad": (try Adagrad(named, lr: 0.5), 1500)
        case "RMSProp": (try RMSProp(named, lr: 0.01), 1500)
        default: (try RMSProp(named, lr: 0.005, momentum: 0.5, centered: true), 1500)
        }
        // A cosine decay over the run lets the adaptive methods settle instead of hovering at ~lr.
        let schedule = try CosineAnnealingLR(optimizer, tMax: steps / 10)
        let initialLoss = try ((p.value - target).squared() * curvature).sum().item()
        for t in 1...steps {
            optimizer.zeroGrad()
            let loss = try ((p.value - target).squared() * curvature).sum()
            try loss.backward()
            try optimizer.step()
            if t % 10 == 0 { schedule.step() }
        }
        let finalLoss = try ((p.value - target).squared() * curvature).sum().item()
        #expect(initialLoss > 10)
        #expect(finalLoss < 1e-4, "\(kind): loss \(finalLoss), p = \(p.value.scalars)")
        expectClose(p.value.scalars, [1, -2, 3], atol: 1e-2, rtol: 0, kind)
    }

    // MARK: - Gradients that are nil, state allocation

    @Test func parametersWithoutGradientAreSkipped() throws {
        let w = Parameter(Tensor([1, 2])), b = Parameter(Tensor([3]))
        let optimizer = try Adam([("w", w), ("b", b)], lr: 0.1)
        w.grad = Tensor([0.5, -0.5])
        try optimizer.step()
        #expect(b.value.scalars == [3])
        #expect(w.value.scalars != [1, 2])
        let state = optimizer.stateDict()
        #expect(state["step.w"] == .int(IntTensor(1)))
        #expect(state["step.b"] == .int(IntTensor(0)))
        #expect(state["exp_avg.b"] == nil && state["exp_avg.w"] != nil)
    }

    @Test func stateBuffersAreAllocatedOnceAndUpdatedInPlace() throws {
        let w = Parameter(Tensor(start))
        let optimizers: [any Optimizer] = [
            try SGD([("w", w)], lr: 0.01, momentum: 0.9), try Adam([("w", w)]), try Adagrad([("w", w)]),
            try RMSProp([("w", w)], momentum: 0.5, centered: true),
        ]
        for optimizer in optimizers {
            w.grad = Tensor(syntheticGradient(step: 1))
            try optimizer.step()
            let state = try #require(Self.state(of: optimizer))
            let storages = state.buffers[0].map { ObjectIdentifier($0.storage) }
            #expect(!storages.isEmpty)
            for t in 2...4 {
                w.grad = Tensor(syntheticGradient(step: t))
                try optimizer.step()
            }
            #expect(state.buffers[0].map { ObjectIdentifier($0.storage) } == storages, "\(type(of: optimizer))")
        }
    }

    private static func state(of optimizer: any Optimizer) -> OptimizerState? {
        switch optimizer {
        case let o as SGD: o.state
        case let o as Adam: o.state
        case let o as Adagrad: o.state
        case let o as RMSProp: o.state
        default: nil
        }
    }

    @Test func duplicateParametersAreDeduplicatedAndNameClashesThrow() throws {
        let w = Parameter(Tensor([1])), v = Parameter(Tensor([2]))
        let optimizer = try SGD([("w", w), ("tied.w", w)], lr: 0.5)
        #expect(optimizer.parameters.map(\.name) == ["w"])
        w.grad = Tensor([1])
        try optimizer.step()
        #expect(w.value.scalars == [0.5])  // updated once, not twice
        expectInvalidArgument("two parameters named w") { _ = try SGD([("w", w), ("w", v)], lr: 0.5) }
    }

    @Test func zeroGradClearsEveryGradient() throws {
        let w = Parameter(Tensor([1])), v = Parameter(Tensor([2]))
        let optimizer = try SGD([("w", w), ("v", v)], lr: 0.5)
        w.grad = Tensor([1]); v.grad = Tensor([1])
        optimizer.zeroGrad()
        #expect(w.grad == nil && v.grad == nil)
    }

    // MARK: - State save and restore

    /// Runs k steps, saves, runs m more; a fresh optimiser over a copy of the k-step values that loads
    /// the saved state must then reach bit-identical values. "b" gets no gradient on the first two
    /// steps, so its state is still empty at some saves.
    @Test(arguments: [
        "SGD momentum", "SGD nesterov decay", "Adam", "AdamW", "Adagrad", "RMSProp", "RMSProp centered momentum",
    ])
    func resumesBitIdenticallyFromStateDict(_ kind: String) throws {
        func make(_ named: [(name: String, parameter: Parameter)]) throws -> any Optimizer {
            switch kind {
            case "SGD momentum": try SGD(named, lr: 0.05, momentum: 0.9, dampening: 0.1)
            case "SGD nesterov decay": try SGD(named, lr: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true)
            case "Adam": try Adam(named, lr: 0.01, weightDecay: 0.01)
            case "AdamW": try AdamW(named, lr: 0.01)
            case "Adagrad": try Adagrad(named, lr: 0.1, lrDecay: 0.05, initialAccumulatorValue: 0.1)
            case "RMSProp": try RMSProp(named, lr: 0.01)
            default: try RMSProp(named, lr: 0.01, weightDecay: 0.01, momentum: 0.9, centered: true)
            }
        }
        func gradients(_ t: Int) -> (w: Tensor, b: Tensor?) {
            (try! Tensor(shape: [2, 3], scalars: syntheticGradient(step: t, count: 6)),
             t > 2 ? Tensor(syntheticGradient(step: t + 7, count: 3)) : nil)
        }
        for k in [1, 3] {
            let w = Parameter(try Tensor(shape: [2, 3], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]))
            let b = Parameter(Tensor([0.01, 0.02, -0.03]))
            let original = try make([("fc.weight", w), ("fc.bias", b)])
            func run(_ optimizer: any Optimizer, _ w: Parameter, _ b: Parameter, _ steps: ClosedRange<Int>) throws {
                for t in steps {
                    (w.grad, b.grad) = gradients(t)
                    try optimizer.step()
                }
            }
            try run(original, w, b, 1...k)
            let saved = original.stateDict()
            let snapshot = saved.mapValues(Self.deepCopy)
            let w2 = Parameter(w.value.detached()), b2 = Parameter(b.value.detached())
            try run(original, w, b, (k + 1)...(k + 4))
            #expect(saved == snapshot, "\(kind): continuing to train changed a saved state dict")

            let resumed = try make([("fc.weight", w2), ("fc.bias", b2)])
            try resumed.loadStateDict(saved)
            try run(resumed, w2, b2, (k + 1)...(k + 4))
            #expect(w2.value == w.value && b2.value == b.value, "\(kind), k = \(k): resumed training differs")
            #expect(resumed.stateDict() == original.stateDict())
        }
    }

    private static func deepCopy(_ stored: StoredTensor) -> StoredTensor {
        switch stored {
        case .float(let t): .float(try! Tensor(shape: t.shape, scalars: t.scalars))
        case .int(let t): .int(t)
        }
    }

    @Test func loadStateDictRejectsMismatchesAndLeavesStateUnchanged() throws {
        let w = Parameter(Tensor([1, 2, 3])), b = Parameter(Tensor([0]))
        let optimizer = try Adam([("w", w), ("b", b)])
        w.grad = Tensor([1, 1, 1]); b.grad = Tensor([1])
        try optimizer.step()
        let good = optimizer.stateDict()
        #expect(Set(good.keys) == ["step.w", "exp_avg.w", "exp_avg_sq.w", "step.b", "exp_avg.b", "exp_avg_sq.b"])

        var missingStep = good; missingStep["step.b"] = nil
        var missingBuffer = good; missingBuffer["exp_avg_sq.w"] = nil
        var unexpected = good; unexpected["momentum_buffer.w"] = .float(Tensor([0, 0, 0]))
        var otherModel = good; otherModel["step.fc.w"] = otherModel.removeValue(forKey: "step.w")
        var negativeStep = good; negativeStep["step.w"] = .int(IntTensor(-1))
        var floatStep = good; floatStep["step.w"] = .float(Tensor(1))
        var intBuffer = good; intBuffer["exp_avg.w"] = .int(IntTensor([1, 2, 3]))
        for (label, dict) in [("missing step", missingStep), ("missing buffer", missingBuffer),
                              ("unexpected key", unexpected), ("renamed parameter", otherModel),
                              ("negative step", negativeStep), ("float step", floatStep), ("int buffer", intBuffer)] {
            expectInvalidArgument(label) { try optimizer.loadStateDict(dict) }
            #expect(optimizer.stateDict() == good, "\(label): a failed load changed the state")
        }
        var wrongShape = good; wrongShape["exp_avg.w"] = .float(Tensor([1, 2]))
        let error = #expect(throws: NeuronError.self) { try optimizer.loadStateDict(wrongShape) }
        if case .shapeMismatch(let message) = error {
            #expect(message.contains("[2]") && message.contains("[3]") && message.contains("exp_avg.w"))
        } else {
            Issue.record("shape mismatch threw \(String(describing: error))")
        }
        #expect(optimizer.stateDict() == good)

        // Another optimiser kind's state does not load.
        let sgd = try SGD([("w", w), ("b", b)], lr: 0.1, momentum: 0.9)
        expectInvalidArgument("Adam state into SGD") { try sgd.loadStateDict(good) }
    }

    // MARK: - Bad hyperparameters

    @Test func badHyperparametersThrow() throws {
        let named = [(name: "w", parameter: Parameter(Tensor([1])))]
        let cases: [(String, () throws -> Void)] = [
            ("SGD lr -1", { _ = try SGD(named, lr: -1) }),
            ("SGD lr NaN", { _ = try SGD(named, lr: .nan) }),
            ("SGD lr inf", { _ = try SGD(named, lr: .infinity) }),
            ("SGD momentum -0.1", { _ = try SGD(named, lr: 0.1, momentum: -0.1) }),
            ("SGD weight decay -1", { _ = try SGD(named, lr: 0.1, weightDecay: -1) }),
            ("SGD nesterov without momentum", { _ = try SGD(named, lr: 0.1, nesterov: true) }),
            ("SGD nesterov with dampening", { _ = try SGD(named, lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true) }),
            ("Adam lr -1", { _ = try Adam(named, lr: -1) }),
            ("Adam beta1 1", { _ = try Adam(named, betas: (1, 0.999)) }),
            ("Adam beta2 -0.1", { _ = try Adam(named, betas: (0.9, -0.1)) }),
            ("Adam beta2 NaN", { _ = try Adam(named, betas: (0.9, .nan)) }),
            ("Adam eps -1", { _ = try Adam(named, eps: -1) }),
            ("Adam weight decay -1", { _ = try Adam(named, weightDecay: -1) }),
            ("AdamW weight decay -1", { _ = try AdamW(named, weightDecay: -1) }),
            ("AdamW beta1 1.5", { _ = try AdamW(named, betas: (1.5, 0.999)) }),
            ("Adagrad lr -1", { _ = try Adagrad(named, lr: -1) }),
            ("Adagrad lr decay -1", { _ = try Adagrad(named, lrDecay: -1) }),
            ("Adagrad initial accumulator -1", { _ = try Adagrad(named, initialAccumulatorValue: -1) }),
            ("Adagrad eps -1", { _ = try Adagrad(named, eps: -1) }),
            ("RMSProp alpha 1.5", { _ = try RMSProp(named, alpha: 1.5) }),
            ("RMSProp alpha -0.1", { _ = try RMSProp(named, alpha: -0.1) }),
            ("RMSProp momentum -1", { _ = try RMSProp(named, momentum: -1) }),
            ("RMSProp eps -1", { _ = try RMSProp(named, eps: -1) }),
            ("RMSProp weight decay -1", { _ = try RMSProp(named, weightDecay: -1) }),
            ("StepLR stepSize 0", { _ = try StepLR(try SGD(named, lr: 0.1), stepSize: 0) }),
            ("StepLR gamma -1", { _ = try StepLR(try SGD(named, lr: 0.1), stepSize: 1, gamma: -1) }),
            ("Cosine tMax 0", { _ = try CosineAnnealingLR(try SGD(named, lr: 0.1), tMax: 0) }),
            ("Cosine etaMin -1", { _ = try CosineAnnealingLR(try SGD(named, lr: 0.1), tMax: 5, etaMin: -1) }),
        ]
        for (label, body) in cases { expectInvalidArgument(label, body) }
    }

    @Test func negativeLearningRateSetLaterThrowsAtStep() throws {
        let w = Parameter(Tensor([1]))
        let optimizer = try Adam([("w", w)])
        optimizer.learningRate = -0.1
        w.grad = Tensor([1])
        expectInvalidArgument("step with lr -0.1") { try optimizer.step() }
        #expect(w.value.scalars == [1])
        #expect(optimizer.stateDict()["step.w"] == .int(IntTensor(0)))
    }

    // MARK: - Schedules

    @Test func stepLRFollowsClosedForm() throws {
        let optimizer = try SGD([("w", Parameter(Tensor([1])))], lr: 0.1)
        let schedule = try StepLR(optimizer, stepSize: 3, gamma: 0.5)
        var rates = [optimizer.learningRate]
        for _ in 1...9 {
            schedule.step()
            rates.append(optimizer.learningRate)
        }
        let expected: [Double] = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
        expectClose(rates, expected, atol: 0, rtol: 1e-7, "StepLR rates")
        #expect(schedule.lastEpoch == 9)
        #expect(try StepLR(optimizer, stepSize: 1).gamma == 0.1)
    }

    @Test func cosineAnnealingFollowsClosedForm() throws {
        let optimizer = try Adam([("w", Parameter(Tensor([1])))], lr: 0.1)
        let schedule = try CosineAnnealingLR(optimizer, tMax: 4, etaMin: 0.01)
        var rates = [optimizer.learningRate]
        for _ in 1...6 {
            schedule.step()
            rates.append(optimizer.learningRate)
        }
        // 0.01 + 0.09·(1 + cos(πe/4))/2; past tMax the cosine climbs again, as PyTorch's closed form.
        let expected: [Double] = [0.1, 0.01 + 0.09 * (1 + 0.5.squareRoot()) / 2, 0.055, 0.01 + 0.09 * (1 - 0.5.squareRoot()) / 2,
                                  0.01, 0.01 + 0.09 * (1 - 0.5.squareRoot()) / 2, 0.055]
        expectClose(rates, expected, atol: 0, rtol: 1e-6, "CosineAnnealingLR rates")
        #expect(try CosineAnnealingLR(optimizer, tMax: 2).etaMin == 0)
    }

    @Test func schedulesResumeFromSavedEpoch() throws {
        for make in [{ (o: any Optimizer) throws -> any LearningRateSchedule in try StepLR(o, stepSize: 2, gamma: 0.3) },
                     { (o: any Optimizer) throws -> any LearningRateSchedule in try CosineAnnealingLR(o, tMax: 7, etaMin: 1e-3) }] {
            let original = try SGD([("w", Parameter(Tensor([1])))], lr: 0.2)
            let schedule = try make(original)
            for _ in 1...5 { schedule.step() }
            let saved = schedule.stateDict()
            #expect(saved == ["last_epoch": .int(IntTensor(5))])

            let fresh = try SGD([("w", Parameter(Tensor([1])))], lr: 0.2)
            let resumed = try make(fresh)
            try resumed.loadStateDict(saved)
            #expect(resumed.lastEpoch == 5 && fresh.learningRate == original.learningRate)
            for _ in 1...4 {
                schedule.step(); resumed.step()
                #expect(fresh.learningRate == original.learningRate)
            }
            expectInvalidArgument("missing last_epoch") { try resumed.loadStateDict([:]) }
            expectInvalidArgument("negative last_epoch") { try resumed.loadStateDict(["last_epoch": .int(IntTensor(-1))]) }
            expectInvalidArgument("float last_epoch") { try resumed.loadStateDict(["last_epoch": .float(Tensor(3))]) }
            #expect(resumed.lastEpoch == 9)
        }
    }

    // MARK: - Clipping

    @Test func clipGradNormReturnsPreClipNormAndRescales() throws {
        let w = Parameter(Tensor([0, 0])), b = Parameter(Tensor([0])), unused = Parameter(Tensor([5]))
        w.grad = Tensor([3, 4]); b.grad = Tensor([12])
        let storage = ObjectIdentifier(w.grad!.storage)
        // b listed twice (tied) counts once; `unused` has no gradient.
        let total = try clipGradNorm([w, b, b, unused], maxNorm: 1)
        #expect(total == 13)
        #expect(ObjectIdentifier(w.grad!.storage) == storage, "clipping must scale the gradient in place")
        let coefficient = Float(1 / (13 + 1e-6))
        #expect(w.grad!.scalars == [3 * coefficient, 4 * coefficient] && b.grad!.scalars == [12 * coefficient])
        let after = (w.grad!.scalars + b.grad!.scalars).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(Swift.abs(after - 1) < 1e-6)
        #expect(unused.grad == nil)

        // Below the limit nothing changes, bit for bit.
        w.grad = Tensor([3, 4]); b.grad = Tensor([12])
        #expect(try clipGradNorm([w, b], maxNorm: 20) == 13)
        #expect(w.grad!.scalars == [3, 4] && b.grad!.scalars == [12])

        // Other norms: ∞ is the largest |g|, 1 the sum of |g|, 3 the cube root of the sum of cubes.
        w.grad = Tensor([3, -4]); b.grad = Tensor([-12])
        #expect(try clipGradNorm([w, b], maxNorm: 100, normType: .infinity) == 12)
        #expect(try clipGradNorm([w, b], maxNorm: 100, normType: 1) == 19)
        let cubic = try clipGradNorm([w, b], maxNorm: 100, normType: 3)
        #expect(Swift.abs(Double(cubic) - Foundation.pow(27.0 + 64 + 1728, 1.0 / 3)) < 1e-4)
        #expect(try clipGradNorm([unused], maxNorm: 1) == 0)
    }

    /// One large element and many small ones: a float running sum drops the small squares
    /// (1e8 + 0.01 rounds back to 1e8), the double sum keeps them.
    @Test func clipGradNormAccumulatesInDouble() throws {
        let big = Parameter(Tensor([0])), small = Parameter(Tensor.zeros([1000]))
        big.grad = Tensor([1e4]); small.grad = Tensor(repeating: 0.1, shape: [1000])
        let total = try clipGradNorm([big, small], maxNorm: 1e9)
        #expect(total > 1e4)
        #expect(Swift.abs(Double(total) - (1e8 + 1000 * Double(Float(0.1)) * Double(Float(0.1))).squareRoot()) < 1e-3)
    }

    @Test func clipGradNormRejectsNonFiniteNorms() throws {
        let w = Parameter(Tensor([0, 0]))
        for bad: Float in [.nan, .infinity] {
            w.grad = Tensor([1, bad])
            let error = #expect(throws: NeuronError.self) { try clipGradNorm([w], maxNorm: 1) }
            if case .nonFinite = error {} else { Issue.record("norm over \(bad) threw \(String(describing: error))") }
            #expect(w.grad!.scalars[0] == 1, "the gradient must be untouched after the error")
            for norm: Float in [1, .infinity] {
                #expect(throws: NeuronError.self) { try clipGradNorm([w], maxNorm: 1, normType: norm) }
            }
        }
        w.grad = Tensor([1, .nan])
        #expect(try clipGradNorm([w], maxNorm: 1, errorIfNonfinite: false).isNaN)
        expectInvalidArgument("negative maxNorm") { try clipGradNorm([w], maxNorm: -1) }
        expectInvalidArgument("normType 0") { try clipGradNorm([w], maxNorm: 1, normType: 0) }
    }

    @Test func clipGradValueClamps() throws {
        let w = Parameter(Tensor([0, 0, 0, 0])), b = Parameter(Tensor([0]))
        w.grad = Tensor([-3, 0.5, 2, -0.25])
        try clipGradValue([w, b], clipValue: 1)
        #expect(w.grad!.scalars == [-1, 0.5, 1, -0.25])
        #expect(b.grad == nil)
        expectInvalidArgument("negative clipValue") { try clipGradValue([w], clipValue: -1) }
    }
}
