import Foundation

/// Real English text for language models: the data files of BSD `fortune(6)` as Debian's `fortunes`
/// package installs them (about 2.5 MB of quotations, poems, definitions and jokes under
/// `/usr/share/games/fortunes/`), and an 86 KB excerpt shipped with Neuron (the `wisdom` and `fortunes`
/// files) for tests and as a fallback.
///
/// A fortune file holds entries separated by lines holding a single `%`; the `.dat` files beside them are
/// binary indexes and the `.u8` files symbolic links to the same text, so both are skipped.
public enum Fortunes {
    /// Where Debian installs the corpus.
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/games/fortunes")

    /// The entries of fortune-file text, each without its final line break; empty entries are dropped.
    public static func entries(parsing text: String) -> [String] {
        var entries: [String] = []
        var current: [Substring] = []
        func finish() {
            let entry = current.joined(separator: "\n")
            if !entry.allSatisfy(\.isWhitespace) { entries.append(entry) }
            current.removeAll()
        }
        // "\r\n" is one Character in Swift, so both line ends are separators of their own.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if line == "%" { finish() } else { current.append(line) }
        }
        finish()
        return entries
    }

    /// Every entry of the fortune files in `directory` (sorted by file name, so the order is fixed).
    /// - Throws: `NeuronError.io` when the directory cannot be listed or a file read or decoded as UTF-8;
    ///   `.emptyInput` when it holds no entries (is the Debian package `fortunes` installed?).
    public static func read(directory: URL = defaultDirectory) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        } catch {
            throw NeuronError.io("cannot list the fortunes directory \(directory.path) (install the Debian package fortunes): \(error.localizedDescription)")
        }
        var entries: [String] = []
        for name in names where !name.hasPrefix(".") && !name.hasSuffix(".dat") && !name.hasSuffix(".u8") {
            entries += try Fortunes.entries(parsing: readText(directory.appendingPathComponent(name)))
        }
        guard !entries.isEmpty else {
            throw NeuronError.emptyInput("no fortunes in \(directory.path) (install the Debian package fortunes)")
        }
        return entries
    }

    /// The 856 entries of the excerpt shipped with Neuron.
    public static func excerpt() throws -> [String] {
        try entries(parsing: readText(try Datasets.resource("fortunes-excerpt.txt")))
    }

    /// The contents of a UTF-8 text file.
    /// - Throws: `NeuronError.io` when it cannot be read or is not UTF-8.
    public static func readText(_ url: URL) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read \(url.path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NeuronError.io("\(url.path) is not UTF-8 text")
        }
        return text
    }
}
