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
        try layers.reduce(x) { try $1($0) }
    }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    public func append(_ layer: any Module) { layers.append(layer) }
}

extension Module {
    /// A table of the layers with their output shapes and parameter counts, like Keras's
    /// `model.summary()`, computed by running a zero input of `inputShape` (batch included) in eval
    /// mode without gradients. Sequential models list each layer; other modules list their children
    /// with parameter counts and the overall output shape.
    public func summary(inputShape: [Int]) throws -> String {
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        var rows: [(String, String, Int)] = []
        try Sizes.checkShape(inputShape, "summary input")
        var x = Tensor.zeros(inputShape)
        try noGrad {
            if let seq = self as? Sequential {
                for (name, layer) in seq.children {
                    x = try layer(x)
                    rows.append(("\(name) (\(layer.typeName))", shapeString(x.shape), layer.parameterCount))
                }
            } else {
                for (name, child) in children { rows.append(("\(name) (\(child.typeName))", "", child.parameterCount)) }
                x = try self(x)
                rows.append(("output", shapeString(x.shape), 0))
            }
        }
        let w0 = max(12, rows.map(\.0.count).max() ?? 0) + 2, w1 = max(14, rows.map(\.1.count).max() ?? 0) + 2
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var lines = [typeName + " (input " + shapeString(inputShape) + ")",
                     pad("Layer", w0) + pad("Output shape", w1) + "Params",
                     String(repeating: "-", count: w0 + w1 + 10)]
        lines += rows.map { pad($0.0, w0) + pad($0.1, w1) + String($0.2) }
        lines.append(String(repeating: "-", count: w0 + w1 + 10))
        lines.append("Total parameters: \(parameterCount)")
        return lines.joined(separator: "\n")
    }
}
