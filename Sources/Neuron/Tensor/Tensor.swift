import CKernels

/// An n-dimensional array of `Float`: contiguous, row-major, with value semantics.
///
/// Identity model: a `Tensor` is a value. Copies share storage until one of them is written
/// (copy-on-write), so passing tensors around is cheap and never aliases. Trainable state lives in
/// `Parameter`, a reference type that owns a tensor and its gradient; the autograd tape and the
/// optimisers share parameters by reference and update them in place. A tensor produced by an op on
/// tensors that require gradients carries a reference to its node on the tape (`requiresGrad`).
///
/// Empty tensors (a zero in the shape) and rank-0 scalars (shape `[]`, one element) are valid values.
public struct Tensor {
    /// The extent of each axis; `[]` for a scalar.
    public internal(set) var shape: [Int]
    var storage: TensorStorage
    /// Offset in elements of this tensor's first element within `storage` (views share storage).
    var offset: Int
    /// This tensor's node on the autograd tape, if it requires gradients.
    var node: GradNode?

    /// Wraps existing storage; `storage` must hold `offset + shape.product` elements.
    init(shape: [Int], storage: TensorStorage, offset: Int = 0, node: GradNode? = nil) {
        self.shape = shape
        self.storage = storage
        self.offset = offset
        self.node = node
    }

    /// A tensor of the given shape whose elements are not initialised; for kernels that write every element.
    /// Throwing ops check user-supplied shapes first (`Tensor.allocated(_:op:)`).
    init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shapeString(shape))")
        precondition(Sizes.sizesFit(shape), "the sizes of shape \(shapeString(shape)) multiply beyond Int")
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)))
    }

    /// A tensor with the given shape and elements in row-major order.
    /// - Throws: `NeuronError.shapeMismatch` when the element count does not match the shape.
    public init(shape: [Int], scalars: [Float]) throws {
        let n = try Sizes.count(of: shape, op: "Tensor(shape:scalars:)")
        guard n == scalars.count else {
            throw NeuronError.shapeMismatch("\(scalars.count) values cannot fill shape \(shapeString(shape)) (\(n) elements)")
        }
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: n) }
    }

    /// A rank-1 tensor.
    public init(_ scalars: [Float]) {
        try! self.init(shape: [scalars.count], scalars: scalars)
    }

    /// A rank-2 tensor from rows of equal length.
    /// - Precondition: every row has the length of the first (as for a literal).
    public init(_ rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "rows of a matrix must have equal lengths")
        try! self.init(shape: [rows.count, cols], scalars: rows.flatMap { $0 })
    }

    /// A rank-0 scalar.
    public init(_ value: Float) {
        self.init(uninitializedShape: [])
        storage.pointer[0] = value
    }

    /// A tensor of `shape` with every element `value`.
    ///
    /// - Precondition: no dimension is negative and the elements fit in memory. Like
    ///   `Array(repeating:count:)`, this factory traps otherwise; shapes from untrusted input are
    ///   checked by the throwing `Tensor(shape:scalars:)` and by every throwing op.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    /// Zeros of `shape`; the precondition of `init(repeating:shape:)` applies.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    /// Ones of `shape`; the precondition of `init(repeating:shape:)` applies.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }
    /// Zeros of `t`'s shape, without its gradient history (`torch.zeros_like`).
    public static func zeros(like t: Tensor) -> Tensor { zeros(t.shape) }
    /// Ones of `t`'s shape, without its gradient history (`torch.ones_like`).
    public static func ones(like t: Tensor) -> Tensor { ones(t.shape) }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// The number of axes.
    public var rank: Int { shape.count }
    /// Whether some axis has size 0 (no elements); empty tensors are valid operands.
    public var isEmpty: Bool { count == 0 }

    /// The elements in row-major order.
    public var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The single element of a one-element tensor.
    /// - Throws: when the tensor does not hold exactly one element.
    public func item() throws -> Float {
        guard count == 1 else { throw NeuronError.invalidArgument("item() needs exactly one element, shape is \(shapeString(shape))") }
        return storage.pointer[offset]
    }

    /// Element access by full index, e.g. `t[1, 2]`.
    public subscript(index: Int...) -> Float {
        get { storage.pointer[offset + flatIndex(index)] }
        set {
            let i = flatIndex(index)
            makeUnique()
            storage.pointer[offset + i] = newValue
        }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "index \(index) has \(index.count) components for a tensor of rank \(rank)")
        var flat = 0
        for (i, (k, n)) in zip(index, shape).enumerated() {
            precondition(k >= 0 && k < n, "index \(k) out of range for axis \(i) of size \(n)")
            flat = flat * n + k
        }
        return flat
    }

    /// Read access to the elements (contiguous, row-major).
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Write access to the elements; copies the storage first if it is shared (copy-on-write).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Gives this tensor storage of its own, exactly its size, if the current one is shared.
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) || offset != 0 || storage.count != count {
            let fresh = TensorStorage(count: count)
            fresh.pointer.update(from: storage.pointer + offset, count: count)
            storage = fresh
            offset = 0
        }
    }

    /// Raw pointer for kernels that read (valid while `self` is alive).
    var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// The same values without a place on the autograd tape (PyTorch's `detach()`).
    public func detached() -> Tensor {
        var t = self
        t.node = nil
        return t
    }

    /// Whether gradients flow back through this tensor.
    public var requiresGrad: Bool { node != nil }

    /// A leaf that requires gradients: after `backward()` its gradient is in `grad`.
    public func requiringGrad() -> Tensor {
        var t = self
        t.node = GradNode(leafShape: shape)
        return t
    }

    /// The gradient accumulated into this tensor's leaf node by `backward()`, if any.
    public var grad: Tensor? { node?.grad }
}

extension Tensor: Equatable {
    /// Equal shapes and elements (gradient state is not compared).
    public static func == (a: Tensor, b: Tensor) -> Bool {
        a.shape == b.shape && a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in pa.elementsEqual(pb) } }
    }
}

extension Tensor {
    /// Whether every element is within `atol + rtol * |b|` of `other` (shapes must match).
    public func isClose(to other: Tensor, atol: Float = 1e-6, rtol: Float = 1e-5) -> Bool {
        guard shape == other.shape else { return false }
        return withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                zip(a, b).allSatisfy { x, y in Swift.abs(x - y) <= atol + rtol * Swift.abs(y) || (x.isNaN && y.isNaN) || x == y }
            }
        }
    }
}
