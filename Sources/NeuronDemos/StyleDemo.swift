import Foundation
import Neuron

/// The style-transfer demo: the photograph of a cat (`chelsea.png`) painted in the colours and texture of
/// stained tissue (`immunohistochemistry.png`), or any two PNG files, through `StyleTransfer` with the
/// default random-filter extractor (no download). Images are resized so their longer side is `size`; the
/// result has the content image's aspect ratio and is written as a PNG.
public enum StyleDemo {
    public struct Result: Sendable {
        public var outputURL: URL
        /// Height and width of the written image.
        public var height: Int, width: Int
        public var history: [StyleTransfer.Progress]
        /// Style cost of the first step over that of the last.
        public var styleReduction: Float { history.first!.style / max(history.last!.style, .leastNonzeroMagnitude) }
    }

    /// The shipped image `name` (`chelsea.png`, `immunohistochemistry.png`, `brick.png`): from the demos'
    /// resource bundle beside the executable, or from the source tree.
    /// - Throws: `NeuronError.io` when neither holds it.
    public static func bundledImage(_ name: String) throws -> URL {
        guard let found = demoResource(name) else {
            throw NeuronError.io("the demo image \(name) is neither in the resource bundle nor in the source tree; pass --content and --style")
        }
        return found
    }

    /// Reads a PNG as `[1, C, H, W]` and resizes it so its longer side is `size` pixels.
    static func load(_ url: URL, size: Int) throws -> Tensor {
        let image = try PNG.read(contentsOf: url)
        let (h, w) = (image.shape[2], image.shape[3])
        let scale = Double(size) / Double(max(h, w))
        return try image.resized(height: max(Int((Double(h) * scale).rounded()), 1), width: max(Int((Double(w) * scale).rounded()), 1))
    }

    /// Paints `contentURL` (default `chelsea.png`) in the style of `styleURL` (default
    /// `immunohistochemistry.png`) and writes the result to `outputURL` (default `neuron-style.png` in the
    /// temporary directory), logging the costs every tenth of the run.
    /// - Throws: `NeuronError.io` for an unreadable or non-PNG file; `NeuronError.invalidArgument` for a size
    ///   below 16 or any `StyleTransfer` error (images that are not grey or RGB, bad settings).
    public static func run(contentURL: URL? = nil, styleURL: URL? = nil, outputURL: URL? = nil, size: Int = 192,
                           transfer: StyleTransfer = StyleDemo.defaultTransfer, log: (String) -> Void = { print($0) }) throws -> Result {
        guard size >= 16 else { throw NeuronError.invalidArgument("StyleDemo: size must be at least 16 pixels, got \(size)") }
        let start = Date()
        let contentFile = try contentURL ?? bundledImage("chelsea.png"), styleFile = try styleURL ?? bundledImage("immunohistochemistry.png")
        let content = try load(contentFile, size: size), style = try load(styleFile, size: size)
        log("content \(contentFile.lastPathComponent) as \(content.shape), style \(styleFile.lastPathComponent) as \(style.shape)"
            + (style.shape[1] == 1 ? " (grey, expanded to three channels)" : ""))
        let extractor = try StyleFeatureExtractor.randomFilters()
        let every = max(transfer.steps / 10, 1)
        let (image, history) = try transfer.run(content: content, style: style, extractor: extractor) { p in
            if p.step == 1 || p.step % every == 0 {
                log(String(format: "step %4d/%d  style %.4e  content %.4e  total %.4e  (%.1fs)", p.step, transfer.steps, p.style, p.content,
                           p.total, Date().timeIntervalSince(start)))
            }
        }
        let url = outputURL ?? FileManager.default.temporaryDirectory.appendingPathComponent("neuron-style.png")
        try PNG.write(image, to: url)
        let result = Result(outputURL: url, height: image.shape[2], width: image.shape[3], history: history)
        log(String(format: "the style cost fell %.0fx in %d steps (%.1fs); wrote %dx%d %@", result.styleReduction, transfer.steps,
                   Date().timeIntervalSince(start), result.width, result.height, url.path))
        return result
    }

    /// The demo's settings: `StyleTransfer`'s defaults (300 Adam steps at learning rate 0.05, α = 50,
    /// β = 1e5, no total variation), chosen by eye on the default images with the random-filter extractor.
    public static var defaultTransfer: StyleTransfer {
        var t = StyleTransfer()
        t.steps = 300
        return t
    }
}

/// The file `name` of `Sources/NeuronDemos/Resources`: from SwiftPM's resource bundle of this target
/// (`Neuron_NeuronDemos.resources`) beside the executable or the main bundle, else from the source tree this
/// file was compiled from (tests); nil when neither holds it. SwiftPM's generated `Bundle.module` would trap
/// when the bundle is missing (an executable copied elsewhere).
func demoResource(_ name: String) -> URL? {
    let inBundle = "Neuron_NeuronDemos.resources/Resources/" + name
    let folders = [Bundle.main.bundleURL, Bundle.main.executableURL?.deletingLastPathComponent()].compactMap { $0 }
    let sourceTree = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/" + name)
    return (folders.map { $0.appendingPathComponent(inBundle) } + [sourceTree])
        .first { FileManager.default.isReadableFile(atPath: $0.path) }
}
