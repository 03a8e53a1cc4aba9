/// Builds the layer list of a `Sequential` from a block: `try Sequential { try Linear(in: 2, out: 16); ReLU() }`
/// (layer initialisers that validate their configuration throw, so the block may `try`).
@resultBuilder
public enum ModuleBuilder {
    public static func buildExpression(_ module: any Module) -> [any Module] { [module] }
    public static func buildExpression(_ modules: [any Module]) -> [any Module] { modules }
    public static func buildBlock(_ parts: [any Module]...) -> [any Module] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Module]?) -> [any Module] { part ?? [] }
    public static func buildEither(first: [any Module]) -> [any Module] { first }
    public static func buildEither(second: [any Module]) -> [any Module] { second }
    public static func buildArray(_ parts: [[any Module]]) -> [any Module] { parts.flatMap { $0 } }
}

/// Layers applied in order (PyTorch's `nn.Sequential`). Children are named by position, so the
/// parameters are `0.weight`, `2.bias`... exactly as PyTorch names them.
public final class Sequential: Module {
    public private(set) var layers: [any Module]
    public var isTraining = true

    public init(_ layers: [any Module]) { self.layers = layers }
    public init(@ModuleBuilder _ build: () throws -> [any Module]) rethrows { layers = try build() }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1.traced($1($0)) }
    }

    /// The layers by position: `0`, `1`… (declared, as reflection would name them `layers.0`).
    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    public func append(_ layer: any Module) { layers.append(layer) }
}
