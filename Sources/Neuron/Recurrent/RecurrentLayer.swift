/// A recurrent layer's carried state: `Tensor` for `RNN` and `GRU` (h), `LSTMState` for `LSTM` (h and c).
public protocol RecurrentState {
    /// The same values cut off from the autograd tape, for carrying across truncated-BPTT windows.
    func detached() -> Self
}

extension Tensor: RecurrentState {}

/// The state of an `LSTM`: hidden state `h` and cell state `c`, each [layers·directions, N, hidden]
/// (PyTorch's `(h_n, c_n)` tuple); for an `LSTMCell`, each [N, hidden].
public struct LSTMState: RecurrentState {
    /// The hidden state (PyTorch's `h_n`).
    public var h: Tensor
    /// The cell state (PyTorch's `c_n`), the same shape as `h`.
    public var c: Tensor

    /// The state of hidden state `h` and cell state `c`.
    public init(h: Tensor, c: Tensor) {
        self.h = h
        self.c = c
    }

    /// Both tensors cut off from the autograd tape.
    public func detached() -> LSTMState { LSTMState(h: h.detached(), c: c.detached()) }
}

/// A layer that runs a whole sequence from an optional initial state and returns the output sequence
/// with the final state: `RNN`, `LSTM`, `GRU`.
public protocol RecurrentLayer: Module {
    /// What the layer carries between steps: `Tensor` (h) or `LSTMState` (h and c).
    associatedtype State: RecurrentState
    /// Runs `x` (layout as configured) from `state` (zeros when nil); `lengths` gives each sequence's
    /// valid steps for a padded batch. Returns the output sequence and the final state.
    func callAsFunction(_ x: Tensor, state: State?, lengths: [Int]?) throws -> (output: Tensor, state: State)
}

extension RecurrentLayer {
    /// The output sequence from a zero initial state, so the layer fits in a `Sequential`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try self(x, state: nil, lengths: nil).output) }
}

/// Carries a recurrent layer's final state into its next call, detached from the tape: truncated
/// backpropagation through time over a long stream cut into windows (Keras's `stateful=True`).
///
/// Each call runs the wrapped layer from the state the previous call ended in; gradients stop at the
/// window boundary. Call `resetState()` between independent streams (a new epoch). The batch size must
/// stay the same between resets: row n of every window continues row n of the previous one.
///
/// Parameters appear under the wrapped layer's own names (no extra prefix), so `Stateful(lstm)` in a
/// `Sequential` saves and loads like the bare layer. The equivalent hand-written loop:
///
///     var state: LSTMState? = nil
///     for window in windows {                      // [T, N, D] slices of the stream
///         let (out, last) = try lstm(window, state: state)
///         state = last.detached()                  // carry the values, not the graph
///         let loss = try lossOf(out); try loss.backward(); try optimizer.step(); optimizer.zeroGrad()
///     }
public final class Stateful<Layer: RecurrentLayer>: LayerWrapper {
    /// The recurrent layer run on each window; its parameters are this module's own.
    public let layer: Layer
    /// The state the next call starts from; nil before the first call and after `resetState()`.
    public private(set) var state: Layer.State?

    /// A wrapper carrying `layer`'s final state from one call to the next (Keras's `stateful=True`).
    /// - Parameter layer: the recurrent layer to run, e.g. an `LSTM`.
    public init(_ layer: Layer) { self.layer = layer }

    /// Runs the window `x` from the carried state and keeps its final state, detached.
    /// - Throws: what the layer throws, e.g. when the batch size differs from the carried state's.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (output, last) = try layer(x, state: state, lengths: nil)
        state = last.detached()
        return traced(output)
    }

    /// Forgets the carried state; the next call starts from zeros.
    public func resetState() { state = nil }

    /// The wrapped layer, whose parts and mode are this module's own.
    public var wrappedModule: any Module { layer }
    /// The wrapper's name, `Stateful` (PyTorch has no such module: state is passed by hand).
    public var typeName: String { "Stateful" }
}
