import Foundation

extension History {
    /// Draws the training and validation loss per epoch (or a metric's curve) as a PNG at `path`: axes
    /// with ticks and numbers, light grid lines, the training curve in blue, the validation curve in
    /// orange (when there is one), a legend, and the x axis labelled "epoch". Written atomically.
    ///
    /// Non-finite values are left out (the curve breaks there). Look at the picture rather than read
    /// the numbers: the gap between the curves is over- or under-fitting at a glance.
    /// - Parameters:
    ///   - path: the PNG file to write.
    ///   - metric: a metric of `EpochRecord.metrics` to draw instead of the losses.
    ///   - logScale: a logarithmic y axis (for losses that fall by orders of magnitude).
    ///   - width: the image width in pixels, at least 240.
    ///   - height: the image height in pixels, at least 160.
    /// - Throws: `NeuronError.emptyInput` when there is no finite value to draw; `.invalidArgument` for
    ///   a size below the minimum, or a log scale with a value ≤ 0; `.io` when the file cannot be written.
    public func plot(to path: String, metric: String? = nil, logScale: Bool = false, width: Int = 800, height: Int = 500) throws {
        try plot(to: URL(fileURLWithPath: path), metric: metric, logScale: logScale, width: width, height: height)
    }

    /// Draws the curves to the PNG file at `url`; see `plot(to:metric:logScale:width:height:)` with a path.
    public func plot(to url: URL, metric: String? = nil, logScale: Bool = false, width: Int = 800, height: Int = 500) throws {
        try PNG.write(try plotImage(metric: metric, logScale: logScale, width: width, height: height), to: url)
    }

    /// The picture `plot(to:)` writes, as a [1, 3, height, width] image with values in [0, 1].
    public func plotImage(metric: String? = nil, logScale: Bool = false, width: Int = 800, height: Int = 500) throws -> Tensor {
        guard width >= 240, height >= 160, width <= 8192, height <= 8192 else {
            throw NeuronError.invalidArgument("plot size must be from 240 x 160 to 8192 x 8192 pixels, got \(width) x \(height)")
        }
        var curves: [(label: String, color: SIMD3<Float>, points: [(x: Double, y: Double)])]
        let title: String
        if let metric {
            let points = epochs.compactMap { r in r.metrics[metric].map { (Double(r.epoch), $0) } }
            curves = [(metric, PlotCanvas.blue, points)]
            title = metric
        } else {
            curves = [("training", PlotCanvas.blue, epochs.map { (Double($0.epoch), $0.trainLoss) })]
            let validation = epochs.compactMap { r in r.validationLoss.map { (Double(r.epoch), $0) } }
            if !validation.isEmpty { curves.append(("validation", PlotCanvas.orange, validation)) }
            title = "loss"
        }
        for i in curves.indices { curves[i].points = curves[i].points.filter { $0.y.isFinite } }
        let values = curves.flatMap { $0.points.map(\.y) }
        guard !values.isEmpty else {
            throw NeuronError.emptyInput("plot: the history has no finite \(metric.map { "values of \($0.debugDescription)" } ?? "losses") to draw")
        }
        if logScale, let bad = values.first(where: { $0 <= 0 }) {
            throw NeuronError.invalidArgument("plot: a log scale needs positive values, got \(bad)")
        }
        let xs = curves.flatMap { $0.points.map(\.x) }
        var canvas = PlotCanvas(width: width, height: height)
        canvas.draw(curves: curves, xRange: (xs.min()!, xs.max()!), yRange: (values.min()!, values.max()!),
                    logScale: logScale, title: title, xLabel: "epoch")
        return canvas.image()
    }
}

/// A white RGB raster with the few primitives a line plot needs: rectangles, thick lines and text in a
/// 5 x 7 bitmap font drawn at twice its size.
struct PlotCanvas {
    static let blue = SIMD3<Float>(31, 119, 180) / 255, orange = SIMD3<Float>(255, 127, 14) / 255
    static let black = SIMD3<Float>(repeating: 0.1), grid = SIMD3<Float>(repeating: 0.88), text = SIMD3<Float>(repeating: 0.15)
    /// Text is drawn at this multiple of the font's pixels.
    static let textScale = 2

    let width: Int
    let height: Int
    /// Planar RGB, [3, height, width].
    private var pixels: [Float]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [Float](repeating: 1, count: 3 * width * height)
    }

    func image() -> Tensor { try! Tensor(shape: [1, 3, height, width], scalars: pixels) }

    mutating func set(_ x: Int, _ y: Int, _ color: SIMD3<Float>) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        for c in 0..<3 { pixels[(c * height + y) * width + x] = color[c] }
    }

    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: SIMD3<Float>) {
        for yy in y..<(y + h) { for xx in x..<(x + w) { set(xx, yy, color) } }
    }

    /// A line `thickness` pixels wide from (x0, y0) to (x1, y1), as squares stamped every half pixel.
    mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, thickness: Int, _ color: SIMD3<Float>) {
        let steps = Swift.max(1, Int((Swift.max(Swift.abs(x1 - x0), Swift.abs(y1 - y0)) * 2).rounded(.up)))
        let half = Double(thickness - 1) / 2
        for i in 0...steps {
            let t = Double(i) / Double(steps)
            let x = Int((x0 + (x1 - x0) * t - half).rounded()), y = Int((y0 + (y1 - y0) * t - half).rounded())
            fill(x: x, y: y, width: thickness, height: thickness, color)
        }
    }

    /// The width in pixels of `text` drawn by `text(_:x:y:)`.
    static func textWidth(_ text: String) -> Int { Swift.max(0, text.count * 6 * textScale - textScale) }
    static var textHeight: Int { 7 * textScale }

    /// Draws `text` with its top-left corner at (x, y). Capitals are drawn as small letters; characters
    /// the font lacks as "?".
    mutating func text(_ text: String, x: Int, y: Int, _ color: SIMD3<Float> = PlotCanvas.text) {
        let s = Self.textScale
        for (i, character) in text.enumerated() {
            let rows = plotFont[Character(character.lowercased())] ?? plotFont["?"]!
            for (r, bits) in rows.enumerated() {
                for c in 0..<5 where bits & (0b10000 >> c) != 0 {
                    fill(x: x + (i * 6 + c) * s, y: y + r * s, width: s, height: s, color)
                }
            }
        }
    }

    /// The whole plot: frame, grid, ticks, curves, legend and labels.
    mutating func draw(curves: [(label: String, color: SIMD3<Float>, points: [(x: Double, y: Double)])],
                       xRange: (Double, Double), yRange: (Double, Double), logScale: Bool, title: String, xLabel: String) {
        let transform: (Double) -> Double = logScale ? { Foundation.log10($0) } : { $0 }
        let yTicks = logScale ? logTicks(transform(yRange.0), transform(yRange.1)) : niceTicks(yRange.0, yRange.1, count: 6)
        let xTicks = niceTicks(xRange.0, xRange.1, count: 8, integers: true)
        let yLow = Swift.min(transform(yRange.0), yTicks.first!.value), yHigh = Swift.max(transform(yRange.1), yTicks.last!.value)
        let xLow = Swift.min(xRange.0, xTicks.first!.value), xHigh = Swift.max(xRange.1, xTicks.last!.value)
        let labelWidth = yTicks.map { Self.textWidth($0.label) }.max()!
        let left = labelWidth + 24, right = width - 24, top = 2 * Self.textHeight + 8
        let bottom = height - 2 * Self.textHeight - 24
        func px(_ x: Double) -> Double {
            xHigh > xLow ? Double(left) + (x - xLow) / (xHigh - xLow) * Double(right - left) : Double(left + right) / 2
        }
        func py(_ y: Double) -> Double {
            let v = transform(y)
            return yHigh > yLow ? Double(bottom) - (v - yLow) / (yHigh - yLow) * Double(bottom - top) : Double(top + bottom) / 2
        }
        // Grid lines and tick labels.
        for tick in yTicks {
            let y = Int((yHigh > yLow ? Double(bottom) - (tick.value - yLow) / (yHigh - yLow) * Double(bottom - top) : Double(top + bottom) / 2).rounded())
            fill(x: left, y: y, width: right - left, height: 1, Self.grid)
            fill(x: left - 6, y: y, width: 6, height: 1, Self.black)
            text(tick.label, x: left - 10 - Self.textWidth(tick.label), y: y - Self.textHeight / 2)
        }
        for tick in xTicks {
            let x = Int(px(tick.value).rounded())
            fill(x: x, y: top, width: 1, height: bottom - top, Self.grid)
            fill(x: x, y: bottom, width: 1, height: 6, Self.black)
            text(tick.label, x: x - Self.textWidth(tick.label) / 2, y: bottom + 10)
        }
        // Frame.
        fill(x: left, y: top, width: right - left + 1, height: 1, Self.black)
        fill(x: left, y: bottom, width: right - left + 1, height: 1, Self.black)
        fill(x: left, y: top, width: 1, height: bottom - top + 1, Self.black)
        fill(x: right, y: top, width: 1, height: bottom - top + 1, Self.black)
        // Curves: consecutive epochs joined; a dot on each point when there are few.
        for curve in curves {
            let points = curve.points.map { (px($0.x), py($0.y), $0.x) }
            for (a, b) in zip(points, points.dropFirst()) where b.2 - a.2 <= 1 {
                line(a.0, a.1, b.0, b.1, thickness: 3, curve.color)
            }
            if points.count <= 40 || points.count == 1 {
                for p in points { fill(x: Int(p.0.rounded()) - 3, y: Int(p.1.rounded()) - 3, width: 7, height: 7, curve.color) }
            }
        }
        // Title, axis label, legend (top right, inside the frame).
        text(title, x: (left + right - Self.textWidth(title)) / 2, y: 6)
        text(xLabel, x: (left + right - Self.textWidth(xLabel)) / 2, y: height - Self.textHeight - 6)
        let legendWidth = curves.map { Self.textWidth($0.label) }.max()! + 48
        let legendHeight = curves.count * (Self.textHeight + 8) + 8
        let lx = right - legendWidth - 10, ly = top + 10
        fill(x: lx, y: ly, width: legendWidth, height: legendHeight, SIMD3(repeating: 1))
        fill(x: lx, y: ly, width: legendWidth, height: 1, Self.grid)
        fill(x: lx, y: ly + legendHeight - 1, width: legendWidth, height: 1, Self.grid)
        fill(x: lx, y: ly, width: 1, height: legendHeight, Self.grid)
        fill(x: lx + legendWidth - 1, y: ly, width: 1, height: legendHeight, Self.grid)
        for (i, curve) in curves.enumerated() {
            let y = ly + 8 + i * (Self.textHeight + 8)
            fill(x: lx + 8, y: y + Self.textHeight / 2 - 1, width: 24, height: 3, curve.color)
            text(curve.label, x: lx + 40, y: y)
        }
    }
}

/// About `count` tick positions at 1, 2 or 5 times a power of ten covering [low, high], with labels
/// that show just enough decimals; whole numbers only when `integers`.
func niceTicks(_ low: Double, _ high: Double, count: Int, integers: Bool = false) -> [(value: Double, label: String)] {
    var (low, high) = (low, high)
    if high <= low {  // one value: a small range around it
        let pad = integers ? 1 : Swift.max(Swift.abs(low) * 0.05, 1e-6)
        (low, high) = (low - pad, high + pad)
    }
    let raw = (high - low) / Double(Swift.max(count - 1, 1))
    let power = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
    var step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
    if integers { step = Swift.max(1, step.rounded()) }
    let first = Foundation.floor(low / step + 1e-9) * step, last = Foundation.ceil(high / step - 1e-9) * step
    let decimals = Swift.max(0, -Int(Foundation.floor(Foundation.log10(step) + 1e-9)))
    let magnitude = Swift.max(Swift.abs(first), Swift.abs(last))
    let scientific = !integers && (magnitude >= 1e6 || magnitude < 1e-3)
    var ticks: [(Double, String)] = []
    for i in 0...Swift.min(100, Int(((last - first) / step).rounded())) {
        var value = first + Double(i) * step
        if Swift.abs(value) < step / 1e6 { value = 0 }
        ticks.append((value, scientific ? String(format: "%.2g", value) : String(format: "%.\(decimals)f", value)))
    }
    return ticks
}

/// Ticks on a log10 axis: each power of ten between the bounds (values are log10s, labels the powers),
/// with 2 and 5 between them when the range spans less than three decades.
func logTicks(_ low: Double, _ high: Double) -> [(value: Double, label: String)] {
    let first = Foundation.floor(low), last = Foundation.ceil(high)
    let multiples: [Double] = last - first < 3 ? [1, 2, 5] : [1]
    var ticks: [(Double, String)] = []
    var exponent = first
    while exponent <= last {
        for m in multiples {
            let value = exponent + Foundation.log10(m)
            guard value <= last + 1e-9 else { break }
            ticks.append((value, String(format: "%g", m * Foundation.pow(10, exponent))))
        }
        exponent += 1
    }
    return ticks
}

/// A 5 x 7 bitmap font: per character seven rows, top first, each five bits with the leftmost pixel in
/// the highest bit. Small letters, digits and the punctuation numbers and metric names use.
let plotFont: [Character: [UInt8]] = [
    " ": [0, 0, 0, 0, 0, 0, 0],
    "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
    "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
    "3": [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
    "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
    "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
    "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
    "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
    "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
    "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
    ".": [0, 0, 0, 0, 0, 0b01100, 0b01100],
    ",": [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
    "-": [0, 0, 0, 0b01110, 0, 0, 0],
    "+": [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0],
    ":": [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
    "_": [0, 0, 0, 0, 0, 0, 0b11111],
    "=": [0, 0, 0b11111, 0, 0b11111, 0, 0],
    "(": [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
    ")": [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
    "/": [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0],
    "%": [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011],
    "?": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100],
    "a": [0, 0, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111],
    "b": [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110],
    "c": [0, 0, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110],
    "d": [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111],
    "e": [0, 0, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110],
    "f": [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000],
    "g": [0, 0, 0b01111, 0b10001, 0b01111, 0b00001, 0b01110],
    "h": [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
    "i": [0b00100, 0, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110],
    "j": [0b00010, 0, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100],
    "k": [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010],
    "l": [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    "m": [0, 0, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001],
    "n": [0, 0, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
    "o": [0, 0, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110],
    "p": [0, 0, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000],
    "q": [0, 0, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001],
    "r": [0, 0, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000],
    "s": [0, 0, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110],
    "t": [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110],
    "u": [0, 0, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101],
    "v": [0, 0, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
    "w": [0, 0, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010],
    "x": [0, 0, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001],
    "y": [0, 0, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
    "z": [0, 0, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111],
]
