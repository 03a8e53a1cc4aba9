import CKernels

/// NumPy broadcasting: shapes are aligned at their last axis; an axis of size 1 stretches to match.
enum Broadcast {
    static func shape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var out = [Int]()
        out.reserveCapacity(rank)
        for (x, y) in zip(pa, pb) {
            if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else {
                throw NeuronError.shapeMismatch("\(op): shapes \(shapeString(a)) and \(shapeString(b)) do not broadcast")
            }
        }
        return out
    }

    /// Element strides for reading a contiguous tensor of `shape` as if it had `target`'s shape
    /// (0 on stretched and missing leading axes).
    static func strides(of shape: [Int], to target: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: target.count - shape.count) + shape
        var strides = Array(repeating: 0, count: target.count)
        var s = 1
        for d in stride(from: target.count - 1, through: 0, by: -1) {
            strides[d] = padded[d] == target[d] && padded[d] != 1 ? s : 0
            s *= padded[d]
        }
        return strides
    }
}

/// Contiguous row-major strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = Array(repeating: 1, count: shape.count)
    var s = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[d] = s
        s *= shape[d]
    }
    return strides
}

extension Tensor {
    /// Normalises a possibly negative axis (`-1` is the last) and checks its range.
    func normalizedAxis(_ axis: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw NeuronError.invalidArgument("\(op): axis \(axis) is out of range for a tensor of shape \(shapeString(shape))")
        }
        return a
    }

    /// (outer, n, inner) sizes of this tensor seen around `axis`.
    func split(at axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Sums a gradient of a broadcast result back down to `target` (the shape before broadcasting).
    func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        var g = self
        while g.rank > target.count { g = g.sumAxisNoGrad(0, keepingDims: false) }
        for d in 0..<target.count where target[d] == 1 && g.shape[d] != 1 {
            g = g.sumAxisNoGrad(d, keepingDims: true)
        }
        return g
    }

    /// A view with `shape` over a broadcast copy of this tensor.
    func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let out = Tensor(uninitializedShape: target)
        let cShape = target.isEmpty ? [1] : target
        let strides = target.isEmpty ? [0] : Broadcast.strides(of: shape, to: target)
        nn_gather_strided(out.pointer, pointer, strides, cShape, Int32(cShape.count))
        return out
    }
}
