import Foundation

/// What a non-strict `loadStateDict` left out, PyTorch's `_IncompatibleKeys`: keys the module has but the
/// dictionary lacks, and keys under the prefix that match nothing in the module. Both are full keys
/// (prefix included) in sorted order.
public struct LoadReport: Equatable, Sendable {
    /// Keys of the module's parameters and buffers that the dictionary did not hold.
    public var missingKeys: [String]
    /// Keys of the dictionary (under the prefix) that name nothing in the module.
    public var unexpectedKeys: [String]

    /// A report of these keys (empty: a complete load).
    public init(missingKeys: [String] = [], unexpectedKeys: [String] = []) {
        self.missingKeys = missingKeys
        self.unexpectedKeys = unexpectedKeys
    }

    /// Whether every parameter and buffer was loaded and nothing was left over.
    public var isComplete: Bool { missingKeys.isEmpty && unexpectedKeys.isEmpty }
}

extension Module {
    /// Every parameter (as `.float`) and buffer under its dotted name (`0.weight`, `bn.running_mean`),
    /// PyTorch's `state_dict()`. The tensors are snapshots: later training does not change them.
    public func stateDict() -> [String: StoredTensor] {
        var dict: [String: StoredTensor] = [:]
        for (name, parameter) in namedParameters { dict[name] = .float(parameter.withValue { $0 }) }
        for (name, buffer) in namedBuffers { dict[name] = buffer.value }
        return dict
    }

    /// Copies values from `dict` into this module's parameters and buffers, PyTorch's
    /// `load_state_dict(state_dict, strict)`.
    ///
    /// - Parameters:
    ///   - dict: tensors by key, e.g. from `Safetensors.read(contentsOf:)`.
    ///   - prefix: only keys starting with it are considered, with it removed (`"param."` reads
    ///     `param.weight` into `weight`); other keys are ignored.
    ///   - strict: when true (the default), a missing or unexpected key is an error; when false they
    ///     are returned in the report and everything that matches is loaded.
    /// - Returns: the missing and unexpected keys (both empty after a strict load).
    /// - Throws: what `checkParts()` throws; `NeuronError.shapeMismatch` naming the key and both shapes, or
    ///   `NeuronError.invalidArgument` for a float/integer mismatch or (when strict) missing and
    ///   unexpected keys; in either mode, before anything is assigned, so a failed load changes nothing.
    @discardableResult
    public func loadStateDict(_ dict: [String: StoredTensor], prefix: String = "", strict: Bool = true) throws -> LoadReport {
        try checkParts()
        let targets = namedParameters.map { ($0.name, LoadTarget.parameter($0.parameter)) }
            + namedBuffers.map { ($0.name, LoadTarget.buffer($0.buffer)) }
        var assignments: [(LoadTarget, StoredTensor)] = []
        var missing: [String] = [], wrongKind: [String] = [], wrongShape: [String] = []
        for (name, target) in targets {
            let key = prefix + name
            guard let stored = dict[key] else {
                missing.append(key)
                continue
            }
            let (expectedShape, expectsFloat): ([Int], Bool) = switch target {
            case .parameter(let p): (p.shape, true)
            case .buffer(let b): (b.value.shape, b.value.holdsFloats)
            }
            if stored.holdsFloats != expectsFloat {
                wrongKind.append("'\(key)' holds \(stored.kindName) data but the module expects \(expectsFloat ? "float" : "integer")")
            } else if stored.shape != expectedShape {
                wrongShape.append("'\(key)' has shape \(shapeString(stored.shape)) but the module expects \(shapeString(expectedShape))")
            } else {
                assignments.append((target, stored))
            }
        }
        let expectedKeys = Set(targets.map { prefix + $0.0 })
        let unexpected = dict.keys.filter { $0.hasPrefix(prefix) && !expectedKeys.contains($0) }.sorted()

        if !wrongKind.isEmpty {
            throw NeuronError.invalidArgument("cannot load state dict: " + wrongKind.joined(separator: "; "))
        }
        if !wrongShape.isEmpty {
            throw NeuronError.shapeMismatch("cannot load state dict: " + wrongShape.joined(separator: "; "))
        }
        let report = LoadReport(missingKeys: missing.sorted(), unexpectedKeys: unexpected)
        if strict && !report.isComplete {
            var problems: [String] = []
            if !report.missingKeys.isEmpty { problems.append("missing keys " + report.missingKeys.map { "'\($0)'" }.joined(separator: ", ")) }
            if !report.unexpectedKeys.isEmpty { problems.append("unexpected keys " + report.unexpectedKeys.map { "'\($0)'" }.joined(separator: ", ")) }
            throw NeuronError.invalidArgument("cannot load state dict strictly: " + problems.joined(separator: "; ")
                + (prefix.isEmpty ? "" : " (prefix '\(prefix)')"))
        }
        for (target, stored) in assignments {
            switch (target, stored) {
            case (.parameter(let p), .float(let t)): p.value = t
            case (.buffer(let b), _): b.value = stored
            case (.parameter, .int): preconditionFailure("integer tensors were rejected above")
            }
        }
        return report
    }

    /// Writes `stateDict()` to a safetensors file at `url`, atomically (PyTorch's
    /// `save_file(model.state_dict(), path)`).
    /// - Throws: what `checkParts()` throws (a part the module does not reach), then I/O errors.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        try checkParts()
        try Safetensors.write(stateDict(), to: url, metadata: metadata)
    }

    /// Reads a safetensors file and loads it with `loadStateDict(_:prefix:strict:)`.
    @discardableResult
    public func load(from url: URL, prefix: String = "", strict: Bool = true) throws -> LoadReport {
        try loadStateDict(Safetensors.read(contentsOf: url), prefix: prefix, strict: strict)
    }
}

/// Where a loaded tensor goes.
private enum LoadTarget {
    case parameter(Parameter)
    case buffer(Buffer)
}

private extension StoredTensor {
    var holdsFloats: Bool { floatTensor != nil }
}
