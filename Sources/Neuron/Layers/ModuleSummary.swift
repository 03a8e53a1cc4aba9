import Synchronization

/// The outputs `summary` sees while it runs a module: each traced call's module and output shape, in
/// call order. Task-local, so a summary in one task does not see another task's layers.
enum ModuleTrace {
    struct Call: Sendable {
        let module: ObjectIdentifier
        let shape: [Int]
    }

    final class Recorder: Sendable {
        let calls = Mutex<[Call]>([])
    }

    @TaskLocal static var recorder: Recorder?
}

extension Module {
    /// Returns `output` unchanged, first reporting it as this module's output to a running `summary`.
    /// Built-in layers and `Sequential` call it on their results; a custom layer that computes on its
    /// own parameters can do the same (`return traced(y)`) to get its own row in `summary`. Outside a
    /// summary it costs one task-local read.
    public func traced(_ output: Tensor) -> Tensor {
        if let recorder = ModuleTrace.recorder {
            let id = ObjectIdentifier(self)
            recorder.calls.withLock { calls in
                // A layer inside a Sequential is reported by itself and then by the Sequential.
                if calls.last?.module != id { calls.append(.init(module: id, shape: output.shape)) }
            }
        }
        return output
    }

    /// A table of the layers with their output shapes and parameter counts, like Keras's
    /// `model.summary()` or torchinfo, computed by running one zero input of `inputShape` (batch
    /// included) through the module in evaluation mode without gradients (the mode is restored).
    ///
    /// Every call of a built-in layer or of a `Sequential`'s element is a row (a layer called twice
    /// is listed twice, its parameters counted once), named by its dotted path and type; descendants
    /// that were never called traceably (custom leaf layers that do not call `traced`) follow with
    /// their parameter counts and no shape.
    /// - Throws: what `checkParts()` and the forward pass throw; `NeuronError.invalidArgument` for a
    ///   negative dimension.
    public func summary(inputShape: [Int]) throws -> String {
        try checkParts()
        try Sizes.checkShape(inputShape, "summary input")
        let modules = namedModules
        var names = [ObjectIdentifier: (name: String, module: any Module)]()
        for (name, module) in modules where names[ObjectIdentifier(module)] == nil {
            names[ObjectIdentifier(module)] = (name, module)
        }
        let recorder = ModuleTrace.Recorder()
        let output = try withEvaluationMode {
            try ModuleTrace.$recorder.withValue(recorder) { try noGrad { try self(Tensor.zeros(inputShape)) } }
        }
        var rows: [(String, String, String)] = []
        var counted = Set<ObjectIdentifier>()
        let root = ObjectIdentifier(self)
        for call in recorder.calls.withLock({ $0 }) where call.module != root {
            guard let (name, module) = names[call.module] else { continue }
            let fresh = counted.insert(call.module).inserted
            rows.append(("\(name) (\(module.typeName))", shapeString(call.shape), fresh ? String(module.parameterCount) : "(shared)"))
        }
        // Parameters the trace did not reach (custom leaf layers): listed so the counts add up.
        for (name, module) in modules.dropFirst() where !counted.contains(ObjectIdentifier(module)) && module.parameterCount > 0 {
            let inside = module.namedModules.dropFirst().contains { counted.contains(ObjectIdentifier($0.module)) }
            guard !inside else { continue }
            counted.insert(ObjectIdentifier(module))
            rows.append(("\(name) (\(module.typeName))", "-", String(module.parameterCount)))
        }
        rows.append(("output", shapeString(output.shape), ""))
        let w0 = max(12, rows.map(\.0.count).max() ?? 0) + 2, w1 = max(14, rows.map(\.1.count).max() ?? 0) + 2
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        let trainable = namedParameters.filter { $0.parameter.requiresGrad }.reduce(0) { $0 + $1.parameter.count }
        var lines = [typeName + " (input " + shapeString(inputShape) + ")",
                     pad("Layer", w0) + pad("Output shape", w1) + "Params",
                     String(repeating: "-", count: w0 + w1 + 10)]
        lines += rows.map { pad($0.0, w0) + pad($0.1, w1) + $0.2 }
        lines.append(String(repeating: "-", count: w0 + w1 + 10))
        lines.append("Total parameters: \(parameterCount)")
        if trainable != parameterCount { lines.append("Trainable parameters: \(trainable)") }
        return lines.joined(separator: "\n")
    }

    /// Runs `body` in evaluation mode and restores each module's previous mode afterwards, also when
    /// `body` throws.
    func withEvaluationMode<R>(_ body: () throws -> R) rethrows -> R {
        let modes = namedModules.map { ($0.module, $0.module.isTraining) }
        eval()
        defer { for (module, mode) in modes { module.isTraining = mode } }
        return try body()
    }
}
