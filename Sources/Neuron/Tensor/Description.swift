import Foundation

extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
    /// NumPy's `str` layout: nested brackets, elements right-aligned to a common width, integers
    /// printed as `1.`, and large tensors summarised with `...` (first and last 3 along each axis
    /// past 1000 elements).
    public var description: String {
        if rank == 0 { return Tensor.format(storage.pointer[offset], style: style) }
        let summarise = count > 1000
        let style = self.style
        let values = withUnsafeBufferPointer { Array($0) }
        let width = values.map { Tensor.format($0, style: style).count }.max() ?? 0
        let strides = contiguousStrides(shape)
        func render(_ axis: Int, _ base: Int, _ indent: String) -> String {
            let n = shape[axis]
            var indices = Array(0..<n)
            let elided = summarise && n > 6
            if elided { indices = Array(0..<3) + Array((n - 3)..<n) }
            var parts: [String] = []
            for (k, i) in indices.enumerated() {
                if elided && k == 3 { parts.append("...") }
                if axis == rank - 1 {
                    let s = Tensor.format(values[base + i], style: style)
                    parts.append(String(repeating: " ", count: width - s.count) + s)
                } else {
                    parts.append(render(axis + 1, base + i * strides[axis], indent + " "))
                }
            }
            if axis == rank - 1 { return "[" + parts.joined(separator: " ") + "]" }
            let separator = "\n" + String(repeating: "\n", count: rank - axis - 2) + indent + " "
            return "[" + parts.joined(separator: separator) + "]"
        }
        return render(0, 0, "")
    }

    /// The shape, then the elements as `description` prints them.
    public var debugDescription: String { "Tensor(shape: \(shapeString(shape)), \(description))" }

    private enum Style { case integral, fixed, scientific }

    private var style: Style {
        let finite = withUnsafeBufferPointer { $0.filter { $0.isFinite } }
        if finite.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 1e16 }) { return .integral }
        let magnitudes = finite.map { Swift.abs($0) }.filter { $0 > 0 }
        if let lo = magnitudes.min(), let hi = magnitudes.max(), hi >= 1e8 || lo < 1e-4 { return .scientific }
        return .fixed
    }

    private static func format(_ v: Float, style: Style) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        switch style {
        case .integral: return String(format: "%.0f.", Double(v))
        case .fixed:
            var s = String(format: "%.4f", Double(v))
            while s.hasSuffix("0") { s.removeLast() }
            return s
        case .scientific: return String(format: "%.4e", Double(v))
        }
    }
}
