import CKernels

// Whole-sequence recurrent layers with PyTorch's semantics and state-dict names. Shapes, for all three:
//   input   [T, N, input] time-major (PyTorch's default), or [N, T, input] with `batchFirst`;
//   output  [T, N, W] or [N, T, W], W = hidden (2·hidden when bidirectional and concatenated);
//   states  [layers·directions, N, hidden], ordered layer 0 forward, layer 0 reverse, layer 1 forward...
// Keys per layer l: weight_ih_l<l> [G·hidden, in_l], weight_hh_l<l> [G·hidden, hidden], bias_ih_l<l>,
// bias_hh_l<l> [G·hidden], with `_reverse` for the second direction; in_0 = input, in_l = hidden·directions.
// Variants PyTorch lacks put their name in every key (weight_ih_resetbefore_l0...), so no PyTorch file loads
// into them by accident; the peephole LSTM keeps PyTorch's keys and adds weight_ci/cf/co_l<l> [hidden].
//
// Variable-length batches: pass `lengths` (one per sequence, in 1...T, any order). Sequence n then runs
// its first lengths[n] steps (the reverse direction starts at its own last step), its output is exactly 0
// at the padded steps, the final state is the one after its own last step, and padded inputs get zero
// gradient: PyTorch's pack_padded_sequence / pad_packed_sequence round trip, without the packing.
//
// Each call is one node on the autograd tape (the whole stack, both directions, dropout between layers).

/// What `RNN`, `LSTM`, `GRU` and the cells share: the configuration, the parameters under PyTorch's
/// keys, and the train/eval mode (dropout between layers is active in training mode only).
public class RecurrentModule {
    let stack: RecurrentStack
    /// Training mode (dropout between layers active) versus evaluation.
    public var isTraining = true

    init(_ stack: RecurrentStack) { self.stack = stack }

    /// The weights and biases under PyTorch's keys (`weight_ih_l0`, `bias_hh_l1_reverse`…).
    public var localParameters: [(name: String, parameter: Parameter)] { stack.namedParameters }
    /// The input feature size, PyTorch's `input_size`.
    public var inputSize: Int { stack.inputSize }
    /// The hidden state size per direction, PyTorch's `hidden_size`.
    public var hiddenSize: Int { stack.hiddenSize }
    /// The number of stacked layers, PyTorch's `num_layers` (1 for a cell).
    public var layers: Int { stack.layerCount }
    /// Whether each layer also runs backwards over the sequence, the two directions merged by `merge`.
    public var bidirectional: Bool { stack.bidirectional }
    /// Whether sequences are [N, T, F] (true) or [T, N, F] (false, PyTorch's default).
    public var batchFirst: Bool { stack.batchFirst }
    /// The dropout probability between layers.
    public var dropout: Float { stack.dropout }

    /// PyTorch's repr: `10, 20, num_layers=2, batch_first=True, bidirectional=True`, defaults left out.
    public var configurationDescription: String {
        var parts = ["\(inputSize), \(hiddenSize)"]
        if !stack.isCell && layers != 1 { parts.append("num_layers=\(layers)") }
        if !stack.hasBias { parts.append("bias=False") }
        if batchFirst { parts.append("batch_first=True") }
        if dropout != 0 { parts.append("dropout=\(dropout.reprValue)") }
        if bidirectional { parts.append("bidirectional=True") }
        return parts.joined(separator: ", ")
    }
}

/// The nonlinearity of a vanilla `RNN`.
public enum RNNNonlinearity: Sendable {
    /// `tanh` (PyTorch's default) or `relu` (PyTorch's `nonlinearity='relu'`), applied to the new hidden state.
    case tanh, relu
}

/// A stack of Elman RNN layers, h_t = act(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh) (PyTorch's `nn.RNN`,
/// Keras's `SimpleRNN`).
///
/// Layout, keys and lengths: see the top of `RecurrentLayers.swift`; G = 1. Parameters U(±1/√hidden).
/// - Parameters (in order): input and hidden sizes; `layers` stacked; `nonlinearity` tanh (default) or
///   relu; `bias`; `batchFirst` for [N, T, input] input and output; `dropout` applied to the output of
///   every layer but the last in training mode; `bidirectional`; `merge` for the two directions.
public final class RNN: RecurrentModule, RecurrentLayer {
    /// The activation of the new hidden state, tanh or relu (PyTorch's `nonlinearity`).
    public let nonlinearity: RNNNonlinearity

    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or a dropout outside [0, 1].
    public init(input: Int, hidden: Int, layers: Int = 1, nonlinearity: RNNNonlinearity = .tanh, bias: Bool = true,
                batchFirst: Bool = false, dropout: Float = 0, bidirectional: Bool = false,
                merge: BidirectionalMerge = .concatenate) throws {
        self.nonlinearity = nonlinearity
        super.init(try RecurrentStack(name: "RNN", cell: nonlinearity == .tanh ? NN_CELL_RNN_TANH : NN_CELL_RNN_RELU, keyTag: "",
                                   input: input, hidden: hidden, layers: layers, bias: bias, batchFirst: batchFirst,
                                   dropout: dropout, bidirectional: bidirectional, merge: merge))
    }

    /// Runs the sequence from `state` h0 [layers·directions, N, hidden] (zeros when nil).
    /// - Returns: the output sequence and h_n [layers·directions, N, hidden].
    /// - Throws: `NeuronError.shapeMismatch` for an input of the wrong rank or width or a state of the
    ///   wrong shape; `.invalidArgument` for lengths that do not fit the batch.
    public func callAsFunction(_ x: Tensor, state: Tensor? = nil, lengths: [Int]? = nil) throws -> (output: Tensor, state: Tensor) {
        let r = try stack.run(x, h0: state, c0: nil, lengths: lengths, training: isTraining)
        return (r.output, r.h)
    }
}

/// The gate structure of an `LSTM` or `LSTMCell`.
public enum LSTMVariant: Sendable {
    /// Gates i, f, g, o (PyTorch's `nn.LSTM`, Keras's `LSTM`): c = f·c_prev + i·g, h = o·tanh(c).
    case standard
    /// Gers & Schmidhuber's peepholes: i and f also see c_prev, o sees the new c, through diagonal weights
    /// `weight_ci`, `weight_cf`, `weight_co` [hidden] (extra keys; the rest are PyTorch's).
    case peephole
    /// Coupled input and forget gates, i = 1 − f: gates f, g, o (G = 3), c = f·c_prev + (1 − f)·g.
    /// Keys carry `_coupled` (weight_ih_coupled_l0).
    case coupled

    var cell: nn_rnn_cell {
        switch self {
        case .standard: NN_CELL_LSTM
        case .peephole: NN_CELL_LSTM_PEEPHOLE
        case .coupled: NN_CELL_LSTM_COUPLED
        }
    }
    var keyTag: String { self == .coupled ? "_coupled" : "" }
}

/// A stack of LSTM layers (PyTorch's `nn.LSTM`): gates i, f, g, o in blocks of `hidden` rows (G = 4),
/// i, f, o = σ(·), g = tanh(·) of x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh; c_t = f·c_{t−1} + i·g,
/// h_t = o·tanh(c_t).
///
/// Layout, keys and lengths: see the top of `RecurrentLayers.swift`. Parameters U(±1/√hidden) (PyTorch's
/// init; Keras uses Glorot/orthogonal and a forget bias of 1). The state is `LSTMState` (h and c).
/// - Parameters (in order): input and hidden sizes; `layers`; `bias`; `batchFirst`; `dropout` between
///   layers (training mode only); `bidirectional`; `merge`; `variant` (standard, peephole, coupled).
public final class LSTM: RecurrentModule, RecurrentLayer {
    /// The gate layout (standard, peephole or coupled); non-standard variants tag their keys.
    public let variant: LSTMVariant

    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or a dropout outside [0, 1].
    public init(input: Int, hidden: Int, layers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Float = 0, bidirectional: Bool = false, merge: BidirectionalMerge = .concatenate,
                variant: LSTMVariant = .standard) throws {
        self.variant = variant
        super.init(try RecurrentStack(name: "LSTM", cell: variant.cell, keyTag: variant.keyTag, input: input, hidden: hidden,
                                   layers: layers, bias: bias, batchFirst: batchFirst, dropout: dropout,
                                   bidirectional: bidirectional, merge: merge))
    }

    /// Runs the sequence from `state` (h0 and c0, each [layers·directions, N, hidden]; zeros when nil).
    /// - Returns: the output sequence and the final (h_n, c_n).
    /// - Throws: `NeuronError.shapeMismatch` for an input of the wrong rank or width or a state of the
    ///   wrong shape; `.invalidArgument` for lengths that do not fit the batch.
    public func callAsFunction(_ x: Tensor, state: LSTMState? = nil, lengths: [Int]? = nil) throws -> (output: Tensor, state: LSTMState) {
        let r = try stack.run(x, h0: state?.h, c0: state?.c, lengths: lengths, training: isTraining)
        return (r.output, LSTMState(h: r.h, c: r.c!))
    }
}

/// The gate structure of a `GRU` or `GRUCell`. Update-gate convention: in both full forms z is the share
/// of the old state kept, h = (1 − z)·n + z·h_prev (PyTorch, Cho et al.); the classic course notation's
/// Γu is 1 − z. The simplified form is written in that notation: its gate u is the share of the new candidate.
public enum GRUVariant: Sendable {
    /// PyTorch's and cuDNN's form (the default): r, z = σ(·), n = tanh(x W_inᵀ + b_in + r·(h W_hnᵀ + b_hn)),
    /// the reset applied after the recurrent product. Gates r, z, n (G = 3); PyTorch's keys.
    case resetAfter
    /// Cho et al. 2014's form: n = tanh(x W_inᵀ + b_in + (r·h_prev) W_hnᵀ + b_hn), the reset applied to the
    /// state before the product. Same shapes as PyTorch's but different maths, so its keys carry
    /// `_resetbefore` (weight_ih_resetbefore_l0) and a PyTorch `nn.GRU` file never loads into it.
    case resetBefore
    /// The GRU with only an update gate: u = σ(·), n = tanh(x W_nᵀ + h_prev U_nᵀ + b), h = u·n + (1 − u)·h_prev.
    /// Gates u, n (G = 2); keys carry `_simplified`.
    case simplified

    var cell: nn_rnn_cell {
        switch self {
        case .resetAfter: NN_CELL_GRU
        case .resetBefore: NN_CELL_GRU_RESET_BEFORE
        case .simplified: NN_CELL_GRU_SIMPLE
        }
    }
    var keyTag: String {
        switch self {
        case .resetAfter: ""
        case .resetBefore: "_resetbefore"
        case .simplified: "_simplified"
        }
    }
}

/// A stack of GRU layers (PyTorch's `nn.GRU`): gates r, z, n in blocks of `hidden` rows (G = 3),
/// r, z = σ(x W_i·ᵀ + b_i· + h W_h·ᵀ + b_h·), n = tanh(x W_inᵀ + b_in + r·(h W_hnᵀ + b_hn)),
/// h_t = (1 − z)·n + z·h_{t−1}.
///
/// Layout, keys and lengths: see the top of `RecurrentLayers.swift`; variants in `GRUVariant`.
/// Parameters U(±1/√hidden).
/// - Parameters (in order): input and hidden sizes; `layers`; `bias`; `batchFirst`; `dropout` between
///   layers (training mode only); `bidirectional`; `merge`; `variant` (resetAfter, resetBefore, simplified).
public final class GRU: RecurrentModule, RecurrentLayer {
    /// The gate layout (PyTorch's reset-after, reset-before or simplified); non-default variants tag their keys.
    public let variant: GRUVariant

    /// - Throws: `NeuronError.invalidArgument` for sizes below 1 or a dropout outside [0, 1].
    public init(input: Int, hidden: Int, layers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Float = 0, bidirectional: Bool = false, merge: BidirectionalMerge = .concatenate,
                variant: GRUVariant = .resetAfter) throws {
        self.variant = variant
        super.init(try RecurrentStack(name: "GRU", cell: variant.cell, keyTag: variant.keyTag, input: input, hidden: hidden,
                                   layers: layers, bias: bias, batchFirst: batchFirst, dropout: dropout,
                                   bidirectional: bidirectional, merge: merge))
    }

    /// Runs the sequence from `state` h0 [layers·directions, N, hidden] (zeros when nil).
    /// - Returns: the output sequence and h_n [layers·directions, N, hidden].
    /// - Throws: `NeuronError.shapeMismatch` for an input of the wrong rank or width or a state of the
    ///   wrong shape; `.invalidArgument` for lengths that do not fit the batch.
    public func callAsFunction(_ x: Tensor, state: Tensor? = nil, lengths: [Int]? = nil) throws -> (output: Tensor, state: Tensor) {
        let r = try stack.run(x, h0: state, c0: nil, lengths: lengths, training: isTraining)
        return (r.output, r.h)
    }
}
