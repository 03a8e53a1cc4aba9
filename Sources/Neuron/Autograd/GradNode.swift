/// A node on the autograd tape: one recorded op (or a leaf), its inputs, and how to push a gradient
/// of its output back to them. Ops are coarse (a whole convolution, a whole LSTM sequence), so the
/// tape stays short.
final class GradNode {
    /// The nodes of the op's inputs, in the order `backwardFunction` returns their gradients
    /// (`nil` for an input that does not require gradients).
    private(set) var inputs: [GradNode?]
    /// Maps the gradient of this node's output to the gradients of its inputs; `nil` for leaves and
    /// after the graph has been released by `backward()`.
    private(set) var backwardFunction: ((Tensor) throws -> [Tensor?])?
    /// The shape of this node's output.
    let shape: [Int]
    /// Accumulated gradient: kept on leaves (parameters and `requiringGrad()` tensors); on interior
    /// nodes it lives only during a backward pass.
    var grad: Tensor?
    let isLeaf: Bool
    /// A name for messages (the op or the parameter).
    let name: String

    init(leafShape: [Int], name: String = "leaf") {
        inputs = []
        backwardFunction = nil
        shape = leafShape
        isLeaf = true
        self.name = name
    }

    init(op name: String, shape: [Int], inputs: [GradNode?], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.inputs = inputs
        self.backwardFunction = backward
        self.shape = shape
        self.isLeaf = false
        self.name = name
    }

    /// Adds `g` to the accumulated gradient, in place when the buffer is not shared.
    func accumulate(_ g: Tensor) {
        precondition(g.shape == shape, "\(name): gradient of shape \(shapeString(g.shape)) for an output of shape \(shapeString(shape))")
        if grad == nil {
            grad = g.detached()
        } else {
            grad!.addInPlace(g)
        }
    }

    /// Drops the closure and the input references so saved tensors are freed (PyTorch frees the graph
    /// after backward unless `retain_graph=True`).
    func release() {
        backwardFunction = nil
        inputs = []
    }
}

/// Whether ops record themselves on the tape. Task-local, like PyTorch's thread-local grad mode, so
/// `noGrad` in one test or task does not affect another.
enum GradMode {
    @TaskLocal static var isEnabled = true
}

/// Runs `body` without recording ops for autograd (PyTorch's `torch.no_grad()`), e.g. for inference.
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

/// Whether ops currently record themselves for autograd.
public var isGradEnabled: Bool { GradMode.isEnabled }

extension Tensor {
    /// Records `output` as the result of an op on `inputs` when gradients are enabled and some input
    /// requires them; `backward` maps the output's gradient to one gradient (or nil) per input.
    func recorded(_ op: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.node != nil }) else { return self }
        var out = self
        out.node = GradNode(op: op, shape: shape, inputs: inputs.map(\.node), backward: backward)
        return out
    }

    /// Back-propagates from this tensor: fills `grad` of every leaf it depends on.
    ///
    /// A scalar (one element) starts from 1; any other shape needs `gradient` of its own shape.
    /// Gradients accumulate into leaves across calls until zeroed. The graph is released afterwards
    /// (`retainGraph: false`, PyTorch's default), so its saved activations are freed.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard let root = node else {
            throw NeuronError.invalidArgument("backward() on a tensor that does not require gradients")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw NeuronError.shapeMismatch("backward gradient \(shapeString(gradient.shape)) for a tensor of shape \(shapeString(shape))")
            }
            seed = gradient.detached()
        } else {
            guard count == 1 else {
                throw NeuronError.invalidArgument("backward() without a gradient needs a one-element tensor, shape is \(shapeString(shape))")
            }
            seed = Tensor.ones(shape)
        }
        if root.isLeaf {
            root.accumulate(seed)
            return
        }
        let order = GradNode.topologicalOrder(from: root)
        root.accumulate(seed)
        try noGrad {
            for node in order.reversed() {
                guard !node.isLeaf else { continue }
                defer { if !retainGraph { node.release() } }
                guard let g = node.grad else { continue }
                guard let fn = node.backwardFunction else {
                    throw NeuronError.invalidArgument("backward through \(node.name) a second time: its graph was released (use retainGraph: true)")
                }
                let grads = try fn(g)
                precondition(grads.count == node.inputs.count, "\(node.name) returned \(grads.count) gradients for \(node.inputs.count) inputs")
                for (input, ig) in zip(node.inputs, grads) {
                    if let input, let ig { input.accumulate(ig) }
                }
                node.grad = nil
            }
        }
    }
}

extension GradNode {
    /// Nodes reachable from `root`, each after all of its inputs (iterative DFS: deep tapes such as
    /// long unrolled sequences must not overflow the stack).
    static func topologicalOrder(from root: GradNode) -> [GradNode] {
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (node, next) = stack.popLast() {
            if next < node.inputs.count {
                stack.append((node, next + 1))
                if let child = node.inputs[next], visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
            }
        }
        return order
    }
}
