extension StoredTensor {
    /// The float tensor, or nil for integer data.
    public var floatTensor: Tensor? {
        if case .float(let t) = self { return t }
        return nil
    }

    /// The integer tensor, or nil for float data.
    public var intTensor: IntTensor? {
        if case .int(let t) = self { return t }
        return nil
    }

    /// "float" or "integer", for messages.
    var kindName: String { floatTensor != nil ? "float" : "integer" }
}

/// Typed access to a loaded state dict (`Safetensors.read(contentsOf:)`), naming the key and the kind found in errors.
extension Dictionary where Key == String, Value == StoredTensor {
    /// The float tensor under `key` of a loaded file (`Safetensors.read(contentsOf:)`), so
    /// `let w = try file.tensor("fc1.weight")` replaces matching on `StoredTensor`.
    /// - Throws: `NeuronError.invalidArgument` when the key is missing (naming a few that exist) or
    ///   holds integer data.
    public func tensor(_ key: String) throws -> Tensor {
        guard let t = try stored(key).floatTensor else {
            throw NeuronError.invalidArgument("'\(key)' holds integer data (shape \(shapeString(self[key]!.shape))); read it with intTensor(_:)")
        }
        return t
    }

    /// The integer tensor under `key` (labels, indices, counters: I64, I32, U8… in the file).
    /// - Throws: `NeuronError.invalidArgument` when the key is missing or holds float data.
    public func intTensor(_ key: String) throws -> IntTensor {
        guard let t = try stored(key).intTensor else {
            throw NeuronError.invalidArgument("'\(key)' holds float data (shape \(shapeString(self[key]!.shape))); read it with tensor(_:)")
        }
        return t
    }

    private func stored(_ key: String) throws -> StoredTensor {
        guard let value = self[key] else {
            let known = keys.sorted()
            throw NeuronError.invalidArgument("no tensor named '\(key)'; the file has \(known.count) keys: \(known.prefix(8).map { "'\($0)'" }.joined(separator: ", "))\(known.count > 8 ? ", …" : "")")
        }
        return value
    }
}
