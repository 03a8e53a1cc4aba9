// Index-based resampling: bootstrap samples and class balancing. Everything draws from a caller's
// `RandomGenerator` through the two helpers at the top, which are written out here rather than taken
// from the standard library (`shuffle(using:)`, `Int.random(in:using:)`) because the standard library
// does not promise the same draws across releases, and "same seed, same order" must hold everywhere.

/// A uniform integer in 0..<n (n > 0) by Lemire's multiply-and-reject method: unbiased, one draw on
/// almost every call.
func uniformIndex(below n: Int, using generator: inout RandomGenerator) -> Int {
    precondition(n > 0, "uniformIndex(below:) needs n > 0, got \(n)")
    let bound = UInt64(n)
    var product = generator.next().multipliedFullWidth(by: bound)
    if product.low < bound {
        let threshold = (0 &- bound) % bound
        while product.low < threshold { product = generator.next().multipliedFullWidth(by: bound) }
    }
    return Int(product.high)
}

/// 0..<n in an order drawn by Fisher–Yates from `generator` (NumPy's `rng.permutation(n)`, PyTorch's
/// `torch.randperm(n, generator=g)`, with this generator's own stream): the same seed gives the same order.
public func shuffledIndices(_ n: Int, using generator: inout RandomGenerator) -> [Int] {
    var order = Array(0..<n)
    var i = n - 1
    while i > 0 {
        order.swapAt(i, uniformIndex(below: i + 1, using: &generator))
        i -= 1
    }
    return order
}

/// A bootstrap sample of `count` indices drawn from 0..<count with replacement, and the indices never
/// drawn (the out-of-bag set, about 1/e ≈ 36.8% of them for large `count`), as used by bagging and
/// random forests (scikit-learn's `resample(..., replace=True)`).
///
/// - Returns: `sample` in draw order; `outOfBag` ascending.
/// - Throws: `NeuronError.emptyInput` when `count` is 0, `.invalidArgument` when it is negative.
public func bootstrapSample(count: Int, generator: inout RandomGenerator) throws -> (sample: [Int], outOfBag: [Int]) {
    try requireSampleCount(count, op: "bootstrapSample")
    var drawn = [Bool](repeating: false, count: count)
    let sample = (0..<count).map { _ in
        let i = uniformIndex(below: count, using: &generator)
        drawn[i] = true
        return i
    }
    return (sample, (0..<count).filter { !drawn[$0] })
}

/// Indices that balance the classes by duplicating minority-class samples (imbalanced-learn's
/// `RandomOverSampler`): every index of `labels` once, followed, class by class in ascending label
/// order, by indices drawn at random with replacement from that class until it has as many samples as
/// the largest class.
///
/// Gather the balanced data with `x.rows(at:)` and shuffle it (a shuffling `DataLoader`), since the
/// duplicates come last.
/// - Throws: `NeuronError.emptyInput` for no labels.
public func oversample(labels: some IntegerLabels, generator: inout RandomGenerator) throws -> [Int] {
    let labels = try labels.labelValues(op: "oversample")
    let classes = try indicesByClass(labels, op: "oversample")
    let majority = classes.map(\.indices.count).max()!
    var result = Array(labels.indices)
    for (_, members) in classes {
        for _ in members.count..<majority { result.append(members[uniformIndex(below: members.count, using: &generator)]) }
    }
    return result
}

/// Indices that balance the classes by dropping majority-class samples (imbalanced-learn's
/// `RandomUnderSampler`): from every class a random subset, without replacement, of the size of the
/// smallest class. The kept indices are returned in ascending order.
/// - Throws: `NeuronError.emptyInput` for no labels.
public func undersample(labels: some IntegerLabels, generator: inout RandomGenerator) throws -> [Int] {
    let labels = try labels.labelValues(op: "undersample")
    let classes = try indicesByClass(labels, op: "undersample")
    let minority = classes.map(\.indices.count).min()!
    var kept = [Int]()
    kept.reserveCapacity(minority * classes.count)
    for (_, members) in classes {
        kept += shuffledIndices(members.count, using: &generator).prefix(minority).map { members[$0] }
    }
    return kept.sorted()
}

/// The indices of each label present, classes in ascending label order (a fixed order keeps the draws
/// reproducible).
private func indicesByClass(_ labels: [Int], op: String) throws -> [(label: Int, indices: [Int])] {
    guard !labels.isEmpty else { throw NeuronError.emptyInput("\(op): no labels") }
    let groups = Dictionary(grouping: labels.indices, by: { labels[$0] })
    return groups.keys.sorted().map { ($0, groups[$0]!) }
}

/// Checks the number of samples an index-based routine draws from.
func requireSampleCount(_ count: Int, op: String) throws {
    guard count >= 0 else { throw NeuronError.invalidArgument("\(op): count must not be negative, got \(count)") }
    guard count > 0 else { throw NeuronError.emptyInput("\(op): count is 0, there is nothing to sample") }
    // The routines build index arrays of `count` Ints (two floats each) before anything else.
    try Sizes.checkAllocation(elements: 2 * Swift.min(count, Int.max / 2), "\(op): \(count) sample indices")
}
