import Foundation

/// Enrolled people and their face encodings, for one-shot verification and identification (FaceNet's
/// use of an embedding, as in deeplearning.ai's face recognition exercise): each person is enrolled from one
/// or a few images whose encodings are stored, so verifying or identifying a new image needs only that
/// image's encoding, never the enrolled images again.
///
/// Distances are Euclidean, ‖e − e'‖₂, and a person's distance is the smallest over their stored encodings.
/// Saved as safetensors: `encodings` F32 `[M, D]` (every stored encoding), `person` I64 `[M]` (the index of
/// its person) and the metadata `people`, the names joined by newlines in enrolment order.
public struct EncodingDatabase: Sendable {
    /// The length D of every encoding.
    public let dimension: Int
    /// The enrolled names, in enrolment order.
    public private(set) var people: [String] = []
    /// Each person's encodings, `[k, D]`, in the order of `people`.
    private var encodings: [[Float]] = []

    /// An empty database of D-dimensional encodings.
    /// - Throws: `NeuronError.invalidArgument` for D < 1.
    public init(dimension: Int) throws {
        guard dimension >= 1 else { throw NeuronError.invalidArgument("EncodingDatabase: dimension must be >= 1, got \(dimension)") }
        self.dimension = dimension
    }

    /// The result of identifying an encoding.
    public enum Identity: Equatable, Sendable {
        /// The nearest enrolled person, within the threshold.
        case person(String, distance: Float)
        /// Nobody within the threshold; `nearest` is the closest person and their distance, if anyone is enrolled.
        case unknown(nearest: String?, distance: Float)
    }

    /// Adds `encodings` `[k, D]` (k >= 1; or one `[D]`) for `name`; a name already enrolled gets them added
    /// to its own.
    /// - Throws: `NeuronError.emptyInput` for no encodings or an empty name; `NeuronError.shapeMismatch` when
    ///   the encodings are not `[k, D]`; `NeuronError.invalidArgument` for a non-finite value or a name with a
    ///   line break (names are stored one per line).
    public mutating func enrol(_ name: String, encodings batch: Tensor) throws {
        guard !name.isEmpty else { throw NeuronError.emptyInput("EncodingDatabase: enrolment needs a name") }
        guard !name.contains(where: \.isNewline) else { throw NeuronError.invalidArgument("EncodingDatabase: the name \(name.debugDescription) contains a line break") }
        let rows = batch.rank == 1 ? try batch.reshaped([1, batch.count]) : batch
        guard rows.rank == 2, rows.shape[1] == dimension else {
            throw NeuronError.shapeMismatch("EncodingDatabase: encodings for \(name) are \(shapeString(batch.shape)), expected [k, \(dimension)]")
        }
        guard rows.shape[0] > 0 else { throw NeuronError.emptyInput("EncodingDatabase: no encodings to enrol \(name) with (an empty enrolment set)") }
        let values = rows.scalars
        guard values.allSatisfy(\.isFinite) else { throw NeuronError.invalidArgument("EncodingDatabase: an encoding of \(name) is not finite") }
        if let i = people.firstIndex(of: name) {
            encodings[i] += values
        } else {
            people.append(name)
            encodings.append(values)
        }
    }

    /// Enrols `name` from `images` (a batch, `[k, ...]`, k >= 1), encoded once by `encoder` in evaluation mode
    /// without gradients.
    public mutating func enrol(_ name: String, images: Tensor, encoder: any Module) throws {
        guard images.rank >= 1, images.shape[0] > 0 else {
            throw NeuronError.emptyInput("EncodingDatabase: no images to enrol \(name) with (an empty enrolment set), shape \(shapeString(images.shape))")
        }
        try enrol(name, encodings: try EncodingDatabase.encode(images, with: encoder))
    }

    /// The encodings of `images` by `encoder` in evaluation mode, without gradients (the mode is restored).
    public static func encode(_ images: Tensor, with encoder: any Module) throws -> Tensor {
        let wasTraining = encoder.isTraining
        encoder.eval()
        defer { encoder.train(wasTraining) }
        return try noGrad { try encoder(images) }
    }

    /// How many encodings `name` has (0 when not enrolled).
    public func encodingCount(of name: String) -> Int {
        people.firstIndex(of: name).map { encodings[$0].count / dimension } ?? 0
    }

    /// The Euclidean distance from `encoding` (`[D]` or `[1, D]`) to the nearest stored encoding of `name`.
    /// - Throws: `NeuronError.invalidArgument` when `name` is not enrolled; `NeuronError.shapeMismatch` for
    ///   an encoding of another size.
    public func distance(_ encoding: Tensor, to name: String) throws -> Float {
        guard let i = people.firstIndex(of: name) else { throw NeuronError.invalidArgument("EncodingDatabase: \(name) is not enrolled") }
        return nearest(try query(encoding), in: encodings[i])
    }

    /// Whether `encoding` is `name`: the distance to `name` is at most `threshold`.
    public func verify(_ encoding: Tensor, is name: String, threshold: Float) throws -> (accepted: Bool, distance: Float) {
        let d = try distance(encoding, to: name)
        return (d <= threshold, d)
    }

    /// The nearest enrolled person if within `threshold`, else `.unknown`.
    public func identify(_ encoding: Tensor, threshold: Float) throws -> Identity {
        let q = try query(encoding)
        var best: (name: String, distance: Float)?
        for (name, stored) in zip(people, encodings) {
            let d = nearest(q, in: stored)
            if best == nil || d < best!.distance { best = (name, d) }
        }
        guard let best else { return .unknown(nearest: nil, distance: .infinity) }
        return best.distance <= threshold ? .person(best.name, distance: best.distance) : .unknown(nearest: best.name, distance: best.distance)
    }

    private func query(_ encoding: Tensor) throws -> [Float] {
        guard encoding.count == dimension, encoding.rank == 1 || (encoding.rank == 2 && encoding.shape[0] == 1) else {
            throw NeuronError.shapeMismatch("EncodingDatabase: a query encoding must be [\(dimension)] or [1, \(dimension)], got \(shapeString(encoding.shape))")
        }
        return encoding.scalars
    }

    private func nearest(_ q: [Float], in stored: [Float]) -> Float {
        var best = Float.infinity
        for start in stride(from: 0, to: stored.count, by: dimension) {
            var s: Float = 0
            for k in 0..<dimension { let d = stored[start + k] - q[k]; s += d * d }
            best = min(best, s.squareRoot())
        }
        return best
    }

    /// Saves the database to a safetensors file, atomically (temporary file, flush, rename).
    /// - Throws: `NeuronError.emptyInput` when nobody is enrolled; `NeuronError.io` when the file cannot be written.
    public func save(to url: URL) throws {
        guard !people.isEmpty else { throw NeuronError.emptyInput("EncodingDatabase: nothing to save, nobody is enrolled") }
        let all = encodings.flatMap { $0 }
        let owner = encodings.enumerated().flatMap { i, e in Array(repeating: Int64(i), count: e.count / dimension) }
        try Safetensors.write(["encodings": .float(try Tensor(shape: [owner.count, dimension], scalars: all)),
                               "person": .int(try IntTensor(shape: [owner.count], scalars: owner))],
                              to: url, metadata: ["people": people.joined(separator: "\n")])
    }

    /// Loads a database saved by `save(to:)`.
    /// - Throws: `NeuronError.io` naming the file when it cannot be read, lacks a key, or its keys disagree.
    public init(contentsOf url: URL) throws {
        let tensors = try Safetensors.read(contentsOf: url)
        let names = try Safetensors.metadata(contentsOf: url)["people"].map { $0.components(separatedBy: "\n") }
        guard case .float(let all)? = tensors["encodings"], case .int(let owner)? = tensors["person"], let names else {
            throw NeuronError.io("\(url.path): not an encoding database (needs F32 'encodings', I64 'person' and the metadata 'people')")
        }
        guard all.rank == 2, all.shape[1] >= 1, owner.shape == [all.shape[0]],
              owner.scalars.allSatisfy({ $0 >= 0 && $0 < Int64(names.count) }),
              Set(owner.scalars).count == names.count, Set(names).count == names.count else {
            throw NeuronError.io("\(url.path): encodings \(shapeString(all.shape)), person \(shapeString(owner.shape)) and \(names.count) names do not fit together")
        }
        try self.init(dimension: all.shape[1])
        let rows = all.scalars
        for (name, i) in zip(names, 0...) {
            let mine = owner.scalars.indices.filter { owner.scalars[$0] == Int64(i) }
            try enrol(name, encodings: try Tensor(shape: [mine.count, dimension],
                                                  scalars: mine.flatMap { rows[($0 * dimension)..<(($0 + 1) * dimension)] }))
        }
    }
}
