import CKernels

// Views and rearrangements: reshape, transpose/permute, slicing and gathering along the first axis,
// concatenation and stacking. All differentiable.

extension Tensor {
    /// The same elements with a new shape (a view: no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw NeuronError.invalidArgument("reshape \(shapeString(shape)) to \(shapeString(newShape)): at most one -1 and no other negative sizes")
        }
        let mismatch = NeuronError.shapeMismatch("cannot reshape \(shapeString(shape)) (\(count) elements) to \(shapeString(newShape))")
        // A product that overflows cannot equal the element count of an existing tensor.
        guard let known = try? Sizes.product(newShape.filter { $0 != -1 }, "") else { throw mismatch }
        var target = newShape
        if let i = inferred.first {
            // With a zero among the known sizes, -1 could be anything (PyTorch refuses it too).
            guard known > 0, count % known == 0 else { throw mismatch }
            target[i] = count / known
        } else {
            guard known == count else { throw mismatch }
        }
        // A zero among the sizes makes any others multiply to 0; the others must still fit (see Sizes.sizesFit).
        guard Sizes.sizesFit(target) else { throw mismatch }
        let original = shape
        return Tensor(shape: target, storage: storage, offset: offset).recorded("reshape", inputs: [self]) { g in
            [Tensor(shape: original, storage: g.storage, offset: g.offset)]
        }
    }

    /// Collapses the axes from `startAxis` on into one (PyTorch's `torch.flatten(x, 1)` for a batch).
    public func flattened(startAxis: Int = 1) throws -> Tensor {
        guard rank > 0 else {
            // A scalar flattens to [1]; like PyTorch, only axis 0 or -1 names its one (implicit) axis.
            guard startAxis == 0 || startAxis == -1 else {
                throw NeuronError.invalidArgument("flatten: axis \(startAxis) is out of range for a scalar (0 or -1)")
            }
            return try reshaped([1])
        }
        let a = try normalizedAxis(startAxis, op: "flatten")
        return try reshaped(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    /// The axes reordered: axis i of the result is axis `axes[i]` of this tensor (a copy).
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard axes.count == rank, Set(axes) == Set(0..<rank) else {
            throw NeuronError.invalidArgument("permute \(axes) is not a permutation of the \(rank) axes of \(shapeString(shape))")
        }
        let strides = contiguousStrides(shape)
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitializedShape: outShape)
        if rank == 0 {
            out.pointer.update(from: pointer, count: 1)  // a scalar has no axes to gather along, but one value
        } else if count > 0 {
            nn_gather_strided(out.pointer, pointer, axes.map { strides[$0] }, outShape, Int32(rank))
        }
        var inverse = Array(repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return out.recorded("permute", inputs: [self]) { g in [try g.permuted(inverse)] }
    }

    /// The transpose of a matrix.
    public func transposed() throws -> Tensor {
        guard rank == 2 else { throw NeuronError.shapeMismatch("transposed() needs a matrix, shape is \(shapeString(shape))") }
        return try permuted([1, 0])
    }

    /// Rows `range` along the first axis (a view: no copy), like `x[a:b]` in PyTorch.
    public func slice(_ range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw NeuronError.invalidArgument("slice \(range) out of bounds for shape \(shapeString(shape))")
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        let fullShape = shape
        var outShape = shape
        outShape[0] = range.count
        return Tensor(shape: outShape, storage: storage, offset: offset + range.lowerBound * rowSize)
            .recorded("slice", inputs: [self]) { g in
                let dx = Tensor.zeros(fullShape)
                (dx.pointer + range.lowerBound * rowSize).update(from: g.pointer, count: g.count)
                return [dx]
            }
    }

    /// The rows at `indices` along the first axis, in that order (PyTorch's `x[indices]`); a copy.
    public func rows(at indices: [Int]) throws -> Tensor {
        guard rank >= 1 else { throw NeuronError.invalidArgument("rows(at:) needs rank >= 1, shape is []") }
        if let bad = indices.first(where: { $0 < 0 || $0 >= shape[0] }) {
            throw NeuronError.invalidArgument("row index \(bad) out of range for shape \(shapeString(shape))")
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        var outShape = shape
        outShape[0] = indices.count
        let out = try Tensor.allocated(outShape, op: "rows(at:)")
        for (i, r) in indices.enumerated() {
            (out.pointer + i * rowSize).update(from: pointer + r * rowSize, count: rowSize)
        }
        let fullShape = shape
        return out.recorded("rows", inputs: [self]) { g in
            let dx = Tensor.zeros(fullShape)
            for (i, r) in indices.enumerated() {
                // Repeated indices add up.
                nn_binary_broadcast(NN_BIN_ADD, dx.pointer + r * rowSize, dx.pointer + r * rowSize, [1],
                                    g.pointer + i * rowSize, [1], [rowSize], 1)
            }
            return [dx]
        }
    }

    /// Joins tensors along `axis`; every other axis must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw NeuronError.emptyInput("concatenate needs at least one tensor") }
        let a = try first.normalizedAxis(axis, op: "concatenate")
        for t in tensors where t.rank != first.rank || t.shape[..<a] != first.shape[..<a] || t.shape[(a + 1)...] != first.shape[(a + 1)...] {
            throw NeuronError.shapeMismatch("concatenate along axis \(a): \(shapeString(first.shape)) and \(shapeString(t.shape))")
        }
        var outShape = first.shape
        outShape[a] = try tensors.reduce(0) { try Sizes.add($0, $1.shape[a], "concatenate: length of axis \(a)") }
        let out = try Tensor.allocated(outShape, op: "concatenate")
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        let outRow = outShape[a] * inner
        var column = 0
        for t in tensors {
            let block = t.shape[a] * inner
            for o in 0..<outer { (out.pointer + o * outRow + column).update(from: t.pointer + o * block, count: block) }
            column += block
        }
        let sizes = tensors.map { $0.shape[a] }
        return out.recorded("concatenate", inputs: tensors) { g in
            var start = 0
            return sizes.map { size in
                var piece = first.shape
                piece[a] = size
                let dx = Tensor(uninitializedShape: piece)
                let block = size * inner
                for o in 0..<outer { (dx.pointer + o * block).update(from: g.pointer + o * outRow + start * inner, count: block) }
                start += size
                return dx
            }
        }
    }

    /// Stacks equally shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw NeuronError.emptyInput("stack needs at least one tensor") }
        let a = axis < 0 ? axis + first.rank + 1 : axis
        guard a >= 0 && a <= first.rank else { throw NeuronError.invalidArgument("stack: axis \(axis) out of range for rank \(first.rank)") }
        for t in tensors where t.shape != first.shape {
            throw NeuronError.shapeMismatch("stack: \(shapeString(first.shape)) and \(shapeString(t.shape))")
        }
        var expanded = first.shape
        expanded.insert(1, at: a)
        return try concatenate(tensors.map { try $0.reshaped(expanded) }, axis: a)
    }

    /// Inserts an axis of size 1 at `axis`.
    public func unsqueezed(axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        guard a >= 0 && a <= rank else { throw NeuronError.invalidArgument("unsqueeze: axis \(axis) out of range for rank \(rank)") }
        var s = shape
        s.insert(1, at: a)
        return try reshaped(s)
    }

    /// Removes the axis `axis`, which must have size 1.
    public func squeezed(axis: Int) throws -> Tensor {
        let a = try normalizedAxis(axis, op: "squeeze")
        guard shape[a] == 1 else { throw NeuronError.shapeMismatch("squeeze axis \(a) of \(shapeString(shape)): size is not 1") }
        var s = shape
        s.remove(at: a)
        return try reshaped(s)
    }
}
