/// Builds the layer list of a `Sequential` from a block: `try Sequential { try Linear(in: 2, out: 16); ReLU() }`
/// (layer initialisers that validate their configuration throw, so the block may `try`).
@resultBuilder
public enum ModuleBuilder {
    /// One layer as a one-element list.
    public static func buildExpression(_ module: any Module) -> [any Module] { [module] }
    /// An array of layers (built in a loop beforehand) spliced in place.
    public static func buildExpression(_ modules: [any Module]) -> [any Module] { modules }
    /// The lines of the block, concatenated in order.
    public static func buildBlock(_ parts: [any Module]...) -> [any Module] { parts.flatMap { $0 } }
    /// An `if` without `else`: its layers when the condition holds, else none.
    public static func buildOptional(_ part: [any Module]?) -> [any Module] { part ?? [] }
    /// The `if` branch of an `if`/`else`.
    public static func buildEither(first: [any Module]) -> [any Module] { first }
    /// The `else` branch of an `if`/`else`.
    public static func buildEither(second: [any Module]) -> [any Module] { second }
    /// A `for` loop's layers, concatenated in iteration order.
    public static func buildArray(_ parts: [[any Module]]) -> [any Module] { parts.flatMap { $0 } }
}

/// Layers applied in order (PyTorch's `nn.Sequential`). Children are named by position, so the
/// parameters are `0.weight`, `2.bias`... exactly as PyTorch names them.
public final class Sequential: Module {
    /// The layers in application order; their positions are their `state_dict` names.
    public private(set) var layers: [any Module]
    /// This container's own mode; `train(_:)` and `eval()` also set every layer's.
    public var isTraining = true

    /// The layers in `layers`, applied in order.
    /// - Parameter layers: the layers, named `0`, `1`… by position.
    public init(_ layers: [any Module]) { self.layers = layers }
    /// The layers a `ModuleBuilder` block lists, applied in order.
    /// - Parameter build: the block; it may `try` throwing layer initialisers.
    /// - Throws: what `build` throws.
    public init(@ModuleBuilder _ build: () throws -> [any Module]) rethrows { layers = try build() }

    /// x -> `layers[k-1](...layers[0](x))`, each layer's output shape the next one's input.
    /// - Throws: what a layer throws (often a shape mismatch, naming that layer).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1.traced($1($0)) }
    }

    /// The layers by position: `0`, `1`… (declared, as reflection would name them `layers.0`).
    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    /// Adds `layer` at the end, under the next position's name.
    /// - Parameter layer: the layer to apply after the current last one.
    public func append(_ layer: any Module) { layers.append(layer) }
}
