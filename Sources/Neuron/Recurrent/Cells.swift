import CKernels

// Single-step cells for decoders and hand-written loops: x [N, input], states [N, hidden]. Keys are
// PyTorch's cell names without a layer suffix: weight_ih [G·hidden, input], weight_hh [G·hidden, hidden],
// bias_ih, bias_hh [G·hidden] (variants PyTorch lacks tag them: weight_ih_resetbefore; the peephole cell
// adds weight_ci, weight_cf, weight_co). Each step is one node on the tape, computed by the sequence
// kernels with T = 1.

extension RecurrentModule {
    /// One step: x [N, D], states [N, H] → the new h (and c for LSTM cells).
    func step(_ x: Tensor, h: Tensor?, c: Tensor?) throws -> (h: Tensor, c: Tensor?) {
        let name = stack.name
        guard x.rank == 2, x.shape[1] == stack.inputSize else {
            throw NeuronError.shapeMismatch("\(name) was built for input [N, \(stack.inputSize)], got \(shapeString(x.shape))")
        }
        let expected = [x.shape[0], stack.hiddenSize]
        for (label, state) in [("hidden state", h), ("cell state", c)] {
            if let state, state.shape != expected {
                throw NeuronError.shapeMismatch("\(name): \(label) \(shapeString(state.shape)) for input \(shapeString(x.shape)); expects [N, hidden] = \(shapeString(expected))")
            }
        }
        let r = try stack.run(try x.unsqueezed(axis: 0), h0: try h?.unsqueezed(axis: 0), c0: try c?.unsqueezed(axis: 0),
                              lengths: nil, training: false)
        return (try r.h.squeezed(axis: 0), try r.c?.squeezed(axis: 0))
    }
}

/// One step of an Elman RNN, h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (PyTorch's `nn.RNNCell`).
public final class RNNCell: RecurrentModule, Module {
    /// An RNN cell with PyTorch's initialisation, U(±1/√hidden).
    /// - Parameters:
    ///   - input: the feature size of x [N, input].
    ///   - hidden: the state size h [N, hidden].
    ///   - bias: whether to learn `bias_ih` and `bias_hh`.
    ///   - nonlinearity: tanh (the default) or relu.
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1.
    public init(input: Int, hidden: Int, bias: Bool = true, nonlinearity: RNNNonlinearity = .tanh) throws {
        super.init(try RecurrentStack(name: "RNNCell", cell: nonlinearity == .tanh ? NN_CELL_RNN_TANH : NN_CELL_RNN_RELU,
                                      keyTag: "", input: input, hidden: hidden, bias: bias, isCell: true))
    }

    /// x [N, input], state h [N, hidden] (zeros when nil) → h' [N, hidden].
    public func callAsFunction(_ x: Tensor, state: Tensor?) throws -> Tensor { try step(x, h: state, c: nil).h }

    /// x [N, input] -> h' [N, hidden] from a zero state, so the cell fits in a `Sequential`.
    /// - Throws: `NeuronError.shapeMismatch` for x that is not [N, input].
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try self(x, state: nil)) }
}

/// One LSTM step (PyTorch's `nn.LSTMCell`), in any `LSTMVariant`.
public final class LSTMCell: RecurrentModule, Module {
    /// The gate layout (standard, peephole or coupled); non-standard variants tag their keys.
    public let variant: LSTMVariant

    /// An LSTM cell with PyTorch's initialisation, U(±1/√hidden).
    /// - Parameters:
    ///   - input: the feature size of x [N, input].
    ///   - hidden: the state size h [N, hidden].
    ///   - bias: whether to learn `bias_ih` and `bias_hh`.
    ///   - variant: the gate layout, `.standard` as PyTorch.
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1.
    public init(input: Int, hidden: Int, bias: Bool = true, variant: LSTMVariant = .standard) throws {
        self.variant = variant
        super.init(try RecurrentStack(name: "LSTMCell", cell: variant.cell, keyTag: variant.keyTag, input: input,
                                      hidden: hidden, bias: bias, isCell: true))
    }

    /// x [N, input], state (h, c) each [N, hidden] (zeros when nil) → the new (h, c).
    public func callAsFunction(_ x: Tensor, state: LSTMState?) throws -> LSTMState {
        let r = try step(x, h: state?.h, c: state?.c)
        return LSTMState(h: r.h, c: r.c!)
    }

    /// h' from a zero state.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try self(x, state: nil).h) }
}

/// One GRU step (PyTorch's `nn.GRUCell`), in any `GRUVariant`.
public final class GRUCell: RecurrentModule, Module {
    /// The gate layout (PyTorch's reset-after, reset-before or simplified); non-default variants tag their keys.
    public let variant: GRUVariant

    /// A GRU cell with PyTorch's initialisation, U(±1/√hidden).
    /// - Parameters:
    ///   - input: the feature size of x [N, input].
    ///   - hidden: the state size h [N, hidden].
    ///   - bias: whether to learn `bias_ih` and `bias_hh`.
    ///   - variant: the gate layout, `.resetAfter` as PyTorch.
    /// - Throws: `NeuronError.invalidArgument` for sizes below 1.
    public init(input: Int, hidden: Int, bias: Bool = true, variant: GRUVariant = .resetAfter) throws {
        self.variant = variant
        super.init(try RecurrentStack(name: "GRUCell", cell: variant.cell, keyTag: variant.keyTag, input: input,
                                      hidden: hidden, bias: bias, isCell: true))
    }

    /// x [N, input], state h [N, hidden] (zeros when nil) → h' [N, hidden].
    public func callAsFunction(_ x: Tensor, state: Tensor?) throws -> Tensor { try step(x, h: state, c: nil).h }

    /// x [N, input] -> h' [N, hidden] from a zero state, so the cell fits in a `Sequential`.
    /// - Throws: `NeuronError.shapeMismatch` for x that is not [N, input].
    public func callAsFunction(_ x: Tensor) throws -> Tensor { traced(try self(x, state: nil)) }
}
