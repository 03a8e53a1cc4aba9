import Foundation

extension SyntheticData {
    /// Grey-scale images of generated identities, for face-verification demos and tests: images
    /// `[count · samplesPerIdentity, 1, size, size]` in [0, 1] and labels (the identity, 0..<count), identity
    /// by identity.
    ///
    /// Each identity is a random prototype: a mid-grey field with eight Gaussian blobs, each with its own
    /// centre (20–80 % of the side), width (σ 6–16 % of the side) and signed strength (0.25–0.5), so two
    /// identities differ in their arrangement as two faces do. Each sample of it is the prototype scaled
    /// about the centre by 0.9–1.1, shifted by up to ±8 % of the side in each direction, with its contrast
    /// scaled by 0.8–1.2 and its brightness moved by ±0.1, plus Gaussian noise of standard deviation `noise`,
    /// clamped to [0, 1]. A model must learn to ignore those variations to tell identities apart. The same
    /// generator state gives the same images; identities from different draws are different people, so a
    /// second call gives identities never seen in training (the one-shot setting).
    ///
    /// - Throws: `NeuronError.invalidArgument` for `count` or `samplesPerIdentity` < 1, `size` < 8, or a
    ///   negative or non-finite `noise`.
    public static func identities(count: Int, samplesPerIdentity: Int, size: Int = 32, noise: Float = 0.05,
                                  using generator: inout RandomGenerator) throws -> (images: Tensor, labels: [Int]) {
        guard count >= 1, samplesPerIdentity >= 1 else {
            throw NeuronError.invalidArgument("identities needs at least 1 identity and 1 sample each, got \(count) and \(samplesPerIdentity)")
        }
        guard size >= 8 else { throw NeuronError.invalidArgument("identities needs images of at least 8 x 8 pixels, got \(size)") }
        guard noise >= 0, noise.isFinite else {
            throw NeuronError.invalidArgument("identities: noise must be a finite standard deviation >= 0, got \(noise)")
        }
        let pixels = size * size
        var values = [Float](repeating: 0, count: count * samplesPerIdentity * pixels)
        var labels: [Int] = []
        labels.reserveCapacity(count * samplesPerIdentity)
        for identity in 0..<count {
            let prototype = IdentityPrototype(size: size, using: &generator)
            for sample in 0..<samplesPerIdentity {
                let start = (identity * samplesPerIdentity + sample) * pixels
                values.withUnsafeMutableBufferPointer { buffer in
                    prototype.drawSample(into: UnsafeMutableBufferPointer(rebasing: buffer[start..<(start + pixels)]),
                                         noise: noise, using: &generator)
                }
                labels.append(identity)
            }
        }
        return (try Tensor(shape: [count * samplesPerIdentity, 1, size, size], scalars: values), labels)
    }
}

/// Splits sample indices by identity, so no identity has samples on both sides: `testFraction` of the
/// distinct labels (rounded, at least one, leaving at least one) go to the test set, drawn from `generator`.
/// Both index lists are ascending.
/// - Throws: `NeuronError.invalidArgument` for fewer than two identities or `testFraction` outside (0, 1).
public func splitByIdentity(labels: some IntegerLabels, testFraction: Double,
                            generator: inout RandomGenerator) throws -> (train: [Int], test: [Int]) {
    let labels = try labels.labelValues(op: "splitByIdentity")
    let identities = Array(Set(labels)).sorted()
    guard identities.count >= 2 else {
        throw NeuronError.invalidArgument("splitByIdentity needs at least 2 identities, got \(identities.count)")
    }
    guard testFraction > 0 && testFraction < 1 else {
        throw NeuronError.invalidArgument("splitByIdentity: testFraction must be in (0, 1), got \(testFraction)")
    }
    let testCount = min(max(Int((testFraction * Double(identities.count)).rounded()), 1), identities.count - 1)
    let order = shuffledIndices(identities.count, using: &generator)
    let testIdentities = Set(order.prefix(testCount).map { identities[$0] })
    let indices = Array(labels.indices)
    return (indices.filter { !testIdentities.contains(labels[$0]) }, indices.filter { testIdentities.contains(labels[$0]) })
}

/// One identity: Gaussian blobs on grey, evaluated at continuous positions so samples can be scaled and
/// shifted exactly.
private struct IdentityPrototype {
    struct Blob { var x: Float, y: Float, inverseTwoSigmaSquared: Float, strength: Float }
    let size: Int
    let blobs: [Blob]

    init(size: Int, using generator: inout RandomGenerator) {
        self.size = size
        let side = Float(size)
        blobs = (0..<8).map { _ in
            let x = side * (0.2 + 0.6 * generator.nextUniform()), y = side * (0.2 + 0.6 * generator.nextUniform())
            let sigma = side * (0.06 + 0.10 * generator.nextUniform())
            let strength = (0.25 + 0.25 * generator.nextUniform()) * (generator.nextUniform() < 0.5 ? -1 : 1)
            return Blob(x: x, y: y, inverseTwoSigmaSquared: 1 / (2 * sigma * sigma), strength: strength)
        }
    }

    func value(_ x: Float, _ y: Float) -> Float {
        blobs.reduce(0.5) { v, b in
            let dx = x - b.x, dy = y - b.y
            return v + b.strength * Float(Foundation.exp(Double(-(dx * dx + dy * dy) * b.inverseTwoSigmaSquared)))
        }
    }

    /// One sample: the variation parameters are drawn first, then one noise value per pixel in row-major order.
    func drawSample(into image: UnsafeMutableBufferPointer<Float>, noise: Float, using generator: inout RandomGenerator) {
        let side = Float(size), centre = side / 2
        let scale = 0.9 + 0.2 * generator.nextUniform()
        let shiftX = side * 0.16 * (generator.nextUniform() - 0.5), shiftY = side * 0.16 * (generator.nextUniform() - 0.5)
        let contrast = 0.8 + 0.4 * generator.nextUniform(), brightness = 0.2 * (generator.nextUniform() - 0.5)
        for row in 0..<size {
            for column in 0..<size {
                // The prototype point that lands on this pixel's centre.
                let x = (Float(column) + 0.5 - centre - shiftX) / scale + centre
                let y = (Float(row) + 0.5 - centre - shiftY) / scale + centre
                let v = 0.5 + contrast * (value(x, y) - 0.5) + brightness + noise * generator.nextNormal()
                image[row * size + column] = min(max(v, 0), 1)
            }
        }
    }
}
