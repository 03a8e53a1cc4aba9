import CKernels
import Foundation

// Checkpoints: one safetensors file (written atomically) holding everything a resumed run needs to
// continue exactly as if it had not stopped:
//   model.<state_dict name>      parameters and buffers
//   optimizer.<key>              optimiser state (moments, step counters)
//   schedule.<key>               learning-rate schedule position
//   plateau.<key>                ReduceLROnPlateau's best value, counters and the rate it set
//   best.<state_dict name>       the best epoch's weights (early stopping with restoreBestWeights)
//   trainer.epoch, trainer.epochs_without_improvement, trainer.best_loss (Double bits)
//   rng.loader, rng.default      generator states (the minibatch order, dropout and init draws)
// and the history as JSON in the metadata.

extension Trainer {
    /// Writes a checkpoint of the whole training state to `url` (atomically: write, then rename).
    /// - Throws: `NeuronError.nonFinite` naming the parameter, without writing anything, when a
    ///   parameter (or one kept as the best epoch's) is NaN or infinite: such a file would only spread
    ///   a diverged run.
    public func saveCheckpoint(to url: URL) throws {
        if let name = firstNonFiniteParameter(model.namedParameters) {
            throw NeuronError.nonFinite("checkpoint \(url.path) not written: parameter '\(name)' is NaN or infinite")
        }
        for (name, _) in model.namedParameters {
            if case .float(let t)? = bestStateForCheckpoint?[name], nn_all_finite(t.pointer, t.count) == 0 {
                throw NeuronError.nonFinite("checkpoint \(url.path) not written: the best epoch's '\(name)' is NaN or infinite")
            }
        }
        var tensors: [String: StoredTensor] = [:]
        for (key, value) in model.stateDict() { tensors["model." + key] = value }
        for (key, value) in optimizer.stateDict() { tensors["optimizer." + key] = value }
        for (key, value) in schedule?.stateDict() ?? [:] { tensors["schedule." + key] = value }
        for (key, value) in plateau?.stateDict() ?? [:] { tensors["plateau." + key] = value }
        for (key, value) in bestStateForCheckpoint ?? [:] { tensors["best." + key] = value }
        tensors["trainer.epoch"] = .int(IntTensor(Int64(epoch)))
        tensors["trainer.epochs_without_improvement"] = .int(IntTensor(Int64(stalledEpochs)))
        tensors["trainer.best_loss"] = .int(IntTensor(Int64(bitPattern: bestLossForCheckpoint.bitPattern)))
        tensors["rng.loader"] = .int(Self.encode(trainData.generator))
        tensors["rng.default"] = .int(Self.encode(Random.generator))
        let historyJSON = String(decoding: try JSONEncoder().encode(history), as: UTF8.self)
        try Safetensors.write(tensors, to: url, metadata: ["history": historyJSON, "kind": "neuron-checkpoint"])
    }

    /// Restores the state written by `saveCheckpoint` into this trainer, whose model, optimiser,
    /// schedule and plateau reducer must have the same structure. Call `fit(epochs:)` afterwards to continue.
    /// - Throws: I/O errors, or what the parts' `loadStateDict` throw for a checkpoint of another
    ///   structure; either way the trainer is left as it was, never half-restored.
    public func resume(from url: URL) throws {
        let tensors = try Safetensors.read(contentsOf: url)
        let metadata = try Safetensors.metadata(contentsOf: url)
        func section(_ prefix: String) -> [String: StoredTensor] {
            var out: [String: StoredTensor] = [:]
            for (key, value) in tensors where key.hasPrefix(prefix) { out[String(key.dropFirst(prefix.count))] = value }
            return out
        }
        func integer(_ key: String) throws -> Int64 {
            guard case .int(let t)? = tensors[key], t.count == 1 else {
                throw NeuronError.io("checkpoint \(url.path): missing or malformed '\(key)'")
            }
            return t.scalars[0]
        }
        // Everything that can be checked without changing the trainer is checked first.
        let best = section("best.")
        let restoredEpoch = Int(try integer("trainer.epoch"))
        let stalled = Int(try integer("trainer.epochs_without_improvement"))
        let bestLoss = Double(bitPattern: UInt64(bitPattern: try integer("trainer.best_loss")))
        let loader = try Self.decode(tensors["rng.loader"], key: "rng.loader", url: url)
        let global = try Self.decode(tensors["rng.default"], key: "rng.default", url: url)
        guard let json = metadata["history"], let restored = try? JSONDecoder().decode(History.self, from: Data(json.utf8)) else {
            throw NeuronError.io("checkpoint \(url.path): missing or malformed history metadata")
        }
        // Each part's load is all-or-nothing, so a later part's failure puts the earlier parts back.
        let before = (model: model.stateDict(), optimizer: optimizer.stateDict(),
                      schedule: schedule?.stateDict(), plateau: plateau?.stateDict())
        do {
            try model.loadStateDict(section("model."))
            try optimizer.loadStateDict(section("optimizer."))
            if let schedule { try schedule.loadStateDict(section("schedule.")) }
            if let plateau { try plateau.loadStateDict(section("plateau.")) }
        } catch {
            try model.loadStateDict(before.model)
            try optimizer.loadStateDict(before.optimizer)
            if let schedule, let state = before.schedule { try schedule.loadStateDict(state) }
            if let plateau, let state = before.plateau { try plateau.loadStateDict(state) }
            throw error
        }
        restoreTrainingState(epoch: restoredEpoch, history: restored, bestLoss: bestLoss, stalledEpochs: stalled,
                             bestState: best.isEmpty ? nil : best)
        trainData.generator = loader
        Random.generator = global
    }

    private static func encode(_ g: RandomGenerator) -> IntTensor {
        try! IntTensor(shape: [4], scalars: g.state.map { Int64(bitPattern: $0) })
    }

    private static func decode(_ stored: StoredTensor?, key: String, url: URL) throws -> RandomGenerator {
        guard case .int(let t)? = stored, t.shape == [4] else {
            throw NeuronError.io("checkpoint \(url.path): missing or malformed '\(key)'")
        }
        return try RandomGenerator(state: t.scalars.map { UInt64(bitPattern: $0) })
    }
}
