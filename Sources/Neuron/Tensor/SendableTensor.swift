/// A tensor's values without gradient history, safe to pass between tasks and threads: what a
/// `Tensor` becomes to cross a concurrency boundary.
///
///     let batch = try x.sendable()                      // x has no history (or use x.detached())
///     let y = try await Task.detached { try model2(batch.tensor) }.value   // another task
///
/// Layout: `shape`, elements contiguous and row-major, as the `Tensor` it came from.
///
/// Why a separate type: a `Tensor` that requires gradients references its node on the autograd tape,
/// which the backward pass and gradient accumulation mutate without locks, so `Tensor` as a whole is
/// not `Sendable`. A `SendableTensor` holds only the shape and the shared element buffer. The buffer is
/// copy-on-write: every write into a tensor's elements first checks that no other value references the
/// buffer and copies it otherwise, so the sender and the receiver may keep using their values
/// concurrently (the same argument that makes `Array` `Sendable`). No copy of the elements is made
/// when converting either way.
///
/// What is safe to share across tasks: `SendableTensor`, `IntTensor`, `Size2D`, `Padding2D`,
/// `NeuronError`, `LoadReport` and the other value types marked `Sendable`. Not `Sendable`, to be used
/// from one task at a time: `Tensor` (convert it), `Parameter`, `Buffer`, modules, optimisers, data
/// loaders and trainers, which are reference types with mutable state. To run a model on several
/// tasks, build one model per task and load the same `stateDict()` into each.
public struct SendableTensor: Sendable, Equatable {
    /// The extent of each axis; `[]` for a scalar.
    public let shape: [Int]
    let storage: TensorStorage
    let offset: Int

    /// A `Tensor` with these values and no gradient history, sharing the elements until either side
    /// writes.
    public var tensor: Tensor { Tensor(shape: shape, storage: storage, offset: offset) }

    /// The elements in row-major order.
    public var scalars: [Float] { tensor.scalars }

    /// Equal shapes and elements.
    public static func == (a: SendableTensor, b: SendableTensor) -> Bool { a.tensor == b.tensor }
}

extension Tensor {
    /// These values as a `SendableTensor`, to hand to another task (a checked conversion).
    ///
    /// A tensor with gradient history cannot cross: its history is part of this task's autograd tape,
    /// and the gradients it would carry back could not reach this task's parameters safely. Call
    /// `detached()` first to send the values alone (the receiver gets a constant, as PyTorch's
    /// `detach()`); gradients stop at the boundary.
    /// - Throws: `NeuronError.invalidArgument` when the tensor requires gradients.
    public func sendable() throws -> SendableTensor {
        guard node == nil else {
            throw NeuronError.invalidArgument("a tensor of shape \(shapeString(shape)) with gradient history cannot be sent to another task; send detached() values (gradients stop at the boundary)")
        }
        return SendableTensor(shape: shape, storage: storage, offset: offset)
    }

    /// The values of a `SendableTensor`, with no gradient history.
    public init(_ sendable: SendableTensor) { self = sendable.tensor }
}
