import Neuron

// Shape ops: pure data movement, so forward and backward must be exact (one "rounding" of an exact
// value is the value itself; the tolerance is a formality).

/// A gather: out[i] = x[src[i]]; the gradient scatters back, repeated sources adding up.
private func movement(_ what: String, _ ctx: Ctx, _ y: Tensor, _ input: Tensor, _ inShape: [Int], _ values: [Float],
                      _ outShape: [Int], _ src: [Int], grad: Bool) throws {
    let x = values.map(Double.init)
    ctx.check(compare(what, y, Ref(shape: outShape, rounded: src.map { x[$0] }, ulps: 0)))
    guard grad else { return }
    let g = try ctx.backward(y)
    var dv = [Double](repeating: 0, count: values.count), sc = dv, k = [Int](repeating: 0, count: values.count)
    for (i, j) in src.enumerated() {
        dv[j] += g[i]
        sc[j] += mag(g[i])
        k[j] += 1
    }
    ctx.check(compareGrad("grad", input.grad, Ref(shape: inShape, v: dv, s: sc, terms: k.max() ?? 0, ulps: 0)))
}

/// A shape whose element count usually equals `count`, with a -1 or wild sizes sometimes.
private func reshapeTarget(_ r: inout FuzzRandom, count: Int, shape: [Int]) -> [Int] {
    var t: [Int]
    switch r.weighted([30, 25, 20, 25]) {
    case 0: t = shape.shuffledWith(&r)
    case 1:
        // Factor the count into a few axes.
        t = []
        var left = count
        for _ in 0..<r.int(0...3) where left > 1 {
            let divisors = (1...left).filter { left % $0 == 0 }
            let d = r.pick(divisors)
            t.append(d)
            left /= d
        }
        t.append(left)
        if count == 0 { t = t.map { _ in r.int(0...3) } + [0] }
    case 2: t = r.shape(rank: r.rank(0...4))
    default: t = (0..<r.int(1...4)).map { _ in r.wild(0...4, wildness: 0.5) }
    }
    if !t.isEmpty && r.chance(0.3) { t[r.int(0...(t.count - 1))] = -1 }
    if r.chance(0.05) { t = [1 << 62, 4, 0] }
    return t
}

extension Array {
    func shuffledWith(_ r: inout FuzzRandom) -> [Element] {
        var a = self
        if a.count > 1 { for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, r.int(0...i)) } }
        return a
    }
}

/// PyTorch's reshape rule: the inferred shape, or nil when torch.reshape raises.
func inferReshape(_ target: [Int], count: Int) -> [Int]? {
    guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 >= -1 }) else { return nil }
    guard let known = checkedProduct(target.filter { $0 != -1 }) else { return nil }
    if let i = target.firstIndex(of: -1) {
        guard known > 0, count % known == 0 else { return nil }
        var t = target
        t[i] = count / known
        return sizesFit(t) ? t : nil
    }
    return known == count && sizesFit(target) ? target : nil
}

/// A tensor input: a small shape, sometimes an empty one with a huge other axis.
private func inputShape(_ r: inout FuzzRandom, ranks: ClosedRange<Int> = 0...4) -> [Int] {
    var s = r.shape(rank: r.rank(ranks))
    if s.count >= 2 && r.chance(0.04) {
        s[0] = 0
        s[1] = r.pick([1 << 31, 1 << 40, 1 << 62])
    }
    return s
}

func reshapeCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = inputShape(&r)
    let count = checkedProduct(shape) ?? 0
    let target = reshapeTarget(&r, count: count, shape: shape)
    let regime = r.regime()
    let values = r.values(count, regime)
    let grad = r.chance(0.5)
    return FuzzCase(op: "reshaped", params: "x \(str(shape)) to \(str(target)) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let out = inferReshape(target, count: count)
        ctx.referenceValid = out != nil
        let y = try x.reshaped(target)
        guard let out else { return ctx.fail("returned \(str(y.shape)); PyTorch cannot reshape \(str(shape)) to \(str(target))") }
        try movement("forward", ctx, y, x, shape, values, out, Array(0..<count), grad: grad)
    }
}

func flattenCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = inputShape(&r)
    let axis = r.wild(-4...4)
    let values = r.values(checkedProduct(shape) ?? 0, r.regime())
    let grad = r.chance(0.5)
    let layer = r.chance(0.2)
    return FuzzCase(op: layer ? "Flatten" : "flattened", params: "x \(str(shape)) startAxis \(axis) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        // torch.flatten(x, start): a scalar becomes [1] for start 0 or -1; the tail collapses.
        var out: [Int]?
        if shape.isEmpty {
            out = axis == 0 || axis == -1 ? [1] : nil
        } else if let a = normalizeAxis(axis, rank: shape.count), let tail = checkedProduct(Array(shape[a...])) {
            out = Array(shape[..<a]) + [tail]
        }
        ctx.referenceValid = out != nil
        let y = try layer ? Flatten(startAxis: axis)(x) : x.flattened(startAxis: axis)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for flatten(\(str(shape)), \(axis)), which PyTorch rejects") }
        try movement("forward", ctx, y, x, shape, values, out, Array(0..<values.count), grad: grad)
    }
}

/// The gather indices of a permutation of a contiguous tensor.
func permutationSources(_ shape: [Int], _ axes: [Int]) -> (shape: [Int], src: [Int]) {
    let out = axes.map { shape[$0] }
    let strides = contiguousStrides(shape)
    let src = (0..<product(out)).map { i -> Int in
        let c = coordinates(i, out)
        return zip(c, axes).reduce(0) { $0 + $1.0 * strides[$1.1] }
    }
    return (out, src)
}

func permuteCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = r.shape(rank: r.rank(0...5), limit: 720)
    var axes = Array(0..<shape.count).shuffledWith(&r)
    switch r.weighted([75, 8, 8, 9]) {
    case 1: axes.append(axes.count)
    case 2: if !axes.isEmpty { axes[0] = axes.count > 1 ? axes[1] : 0 }
    case 3: if !axes.isEmpty { axes[r.int(0...(axes.count - 1))] = r.pick([-1, 1 << 31, Int.min]) }
    default: break
    }
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.5)
    return FuzzCase(op: "permuted", params: "x \(str(shape)) axes \(axes) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let valid = axes.count == shape.count && Set(axes) == Set(0..<shape.count)
        ctx.referenceValid = valid
        let y = try x.permuted(axes)
        guard valid else { return ctx.fail("returned \(str(y.shape)) for permute \(axes) of \(str(shape))") }
        let (out, src) = permutationSources(shape, axes)
        try movement("forward", ctx, y, x, shape, values, out, src, grad: grad)
    }
}

func transposeCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = r.shape(rank: r.pick([2, 2, 2, 0, 1, 3]))
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.5)
    return FuzzCase(op: "transposed", params: "x \(str(shape)) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        ctx.referenceValid = shape.count == 2
        let y = try x.transposed()
        guard shape.count == 2 else { return ctx.fail("returned \(str(y.shape)) for the transpose of \(str(shape))") }
        let (out, src) = permutationSources(shape, [1, 0])
        try movement("forward", ctx, y, x, shape, values, out, src, grad: grad)
    }
}

func sliceCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = r.shape(rank: r.rank(0...4))
    let n = shape.first ?? 0
    var lo = r.chance(0.85) ? r.int(0...n) : r.pick(wildInts)
    var hi = r.chance(0.85) ? r.int(0...n) : r.pick(wildInts)
    if lo > hi { swap(&lo, &hi) }
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.5)
    return FuzzCase(op: "slice", params: "x \(str(shape)) range \(lo)..<\(hi) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let valid = !shape.isEmpty && lo >= 0 && hi <= n
        ctx.referenceValid = valid
        let y = try x.slice(lo..<hi)
        guard valid else { return ctx.fail("returned \(str(y.shape)) for rows \(lo)..<\(hi) of \(str(shape))") }
        let row = product(Array(shape.dropFirst()))
        let out = [hi - lo] + shape.dropFirst()
        try movement("forward", ctx, y, x, shape, values, out, Array((lo * row)..<(hi * row)), grad: grad)
    }
}

func rowsCase(_ r: inout FuzzRandom) -> FuzzCase {
    let shape = r.shape(rank: r.rank(0...4))
    let n = shape.first ?? 0
    var indices = (0..<r.int(0...6)).map { _ in n > 0 ? r.int(0...(n - 1)) : 0 }
    if r.chance(0.15) && !indices.isEmpty { indices[0] = r.pick([-1, n, Int.max, Int.min]) }
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.5)
    return FuzzCase(op: "rows(at:)", params: "x \(str(shape)) indices \(indices) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        let valid = !shape.isEmpty && indices.allSatisfy { $0 >= 0 && $0 < n }
        ctx.referenceValid = valid
        let y = try x.rows(at: indices)
        guard valid else { return ctx.fail("returned \(str(y.shape)) for rows \(indices) of \(str(shape))") }
        let row = product(Array(shape.dropFirst()))
        let src = indices.flatMap { i in (i * row)..<((i + 1) * row) }
        try movement("forward", ctx, y, x, shape, values, [indices.count] + shape.dropFirst(), src, grad: grad)
    }
}

/// Shapes that usually agree except along `axis`.
private func partners(_ r: inout FuzzRandom, _ base: [Int], axis: Int, count: Int, sameShape: Bool) -> [[Int]] {
    (0..<count).map { _ in
        var s = base
        if !sameShape, axis >= 0, axis < s.count { s[axis] = r.dim() }
        if r.chance(0.1) { s = r.shape(rank: r.rank(0...3)) }
        return s
    }
}

func concatenateCase(_ r: inout FuzzRandom) -> FuzzCase {
    let base = r.shape(rank: r.rank(0...4), limit: 256)
    let axis = r.wild(-4...3, wildness: 0.1)
    let shapes = partners(&r, base, axis: axis < 0 ? axis + base.count : axis, count: r.int(0...4), sameShape: false)
    let values = shapes.map { r.values(product($0), r.regime()) }
    let grad = r.chance(0.5)
    return FuzzCase(op: "concatenate", params: "shapes \(shapes.map(str)) axis \(axis) grad \(grad)") { ctx in
        let xs = try zip(shapes, values).map { try ctx.tensor($0, $1, grad: grad) }
        var out: [Int]?
        if let first = shapes.first, let a = normalizeAxis(axis, rank: first.count),
           shapes.allSatisfy({ $0.count == first.count && $0[..<a] == first[..<a] && $0[(a + 1)...] == first[(a + 1)...] }) {
            out = first
            out![a] = shapes.map { $0[a] }.reduce(0, +)
        }
        ctx.referenceValid = out != nil
        let y = try Tensor.concatenate(xs, axis: axis)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for concatenating \(shapes.map(str)) along \(axis)") }
        // Concatenation of flat inputs: element (o, j, i) of the output comes from the input owning column j.
        let a = normalizeAxis(axis, rank: out.count)!
        let (outer, _, inner) = splitAxis(out, a)
        var flat: [Double] = []
        var owner: [(t: Int, e: Int)] = []
        for o in 0..<outer {
            for (t, s) in shapes.enumerated() {
                let block = s[a] * inner
                for e in 0..<block {
                    flat.append(Double(values[t][o * block + e]))
                    owner.append((t, o * block + e))
                }
            }
        }
        ctx.check(compare("forward", y, Ref(shape: out, rounded: flat, ulps: 0)))
        guard grad else { return }
        let g = try ctx.backward(y)
        var grads = shapes.map { [Double](repeating: 0, count: product($0)) }
        for (i, (t, e)) in owner.enumerated() { grads[t][e] = g[i] }
        for (t, x) in xs.enumerated() {
            ctx.check(compareGrad("grad \(t)", x.grad, Ref(shape: shapes[t], rounded: grads[t], ulps: 0)))
        }
    }
}

func stackCase(_ r: inout FuzzRandom) -> FuzzCase {
    let base = r.shape(rank: r.rank(0...3), limit: 256)
    let axis = r.wild(-4...3, wildness: 0.1)
    let shapes = partners(&r, base, axis: -1, count: r.int(0...4), sameShape: true)
    let values = shapes.map { r.values(product($0), r.regime()) }
    let grad = r.chance(0.5)
    return FuzzCase(op: "stack", params: "shapes \(shapes.map(str)) axis \(axis) grad \(grad)") { ctx in
        let xs = try zip(shapes, values).map { try ctx.tensor($0, $1, grad: grad) }
        var out: [Int]?
        var a = 0
        if let first = shapes.first, shapes.allSatisfy({ $0 == first }), let na = normalizeAxis(axis, rank: first.count + 1) {
            a = na
            out = first
            out!.insert(shapes.count, at: a)
        }
        ctx.referenceValid = out != nil
        let y = try Tensor.stack(xs, axis: axis)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for stacking \(shapes.map(str)) along \(axis)") }
        let (outer, n, inner) = splitAxis(out, a)
        var v = [Double](repeating: 0, count: product(out))
        var owner = [(Int, Int)](repeating: (0, 0), count: v.count)
        for o in 0..<outer { for t in 0..<n { for i in 0..<inner {
            let k = (o * n + t) * inner + i
            v[k] = Double(values[t][o * inner + i])
            owner[k] = (t, o * inner + i)
        } } }
        ctx.check(compare("forward", y, Ref(shape: out, rounded: v, ulps: 0)))
        guard grad else { return }
        let g = try ctx.backward(y)
        var grads = shapes.map { [Double](repeating: 0, count: product($0)) }
        for (k, (t, e)) in owner.enumerated() { grads[t][e] = g[k] }
        for (t, x) in xs.enumerated() {
            ctx.check(compareGrad("grad \(t)", x.grad, Ref(shape: shapes[t], rounded: grads[t], ulps: 0)))
        }
    }
}

func squeezeCase(_ r: inout FuzzRandom) -> FuzzCase {
    let unsqueeze = r.chance(0.5)
    var shape = r.shape(rank: r.rank(0...4))
    if !unsqueeze && !shape.isEmpty && r.chance(0.7) { shape[r.int(0...(shape.count - 1))] = 1 }
    let axis = r.wild(-5...4, wildness: 0.1)
    let values = r.values(product(shape), r.regime())
    let grad = r.chance(0.5)
    return FuzzCase(op: unsqueeze ? "unsqueezed" : "squeezed", params: "x \(str(shape)) axis \(axis) grad \(grad)") { ctx in
        let x = try ctx.tensor(shape, values, grad: grad)
        var out: [Int]?
        if unsqueeze, let a = normalizeAxis(axis, rank: shape.count + 1) {
            out = shape
            out!.insert(1, at: a)
        } else if !unsqueeze, let a = normalizeAxis(axis, rank: shape.count), shape[a] == 1 {
            // PyTorch leaves a size-other-than-1 axis alone; Neuron throws there (either is acceptable).
            out = shape
            out!.remove(at: a)
        }
        ctx.referenceValid = out != nil
        let y = try unsqueeze ? x.unsqueezed(axis: axis) : x.squeezed(axis: axis)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for \(unsqueeze ? "unsqueeze" : "squeeze") \(axis) of \(str(shape))") }
        try movement("forward", ctx, y, x, shape, values, out, Array(0..<values.count), grad: grad)
    }
}
