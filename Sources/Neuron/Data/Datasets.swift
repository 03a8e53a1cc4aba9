import Foundation

/// Real data sets shipped with Neuron (`Sources/Neuron/Resources/data`, sources and licences in the
/// README there), so tests and demos run from a clone without downloads.
public enum Datasets {
    /// Weekly mean atmospheric CO2 at Mauna Loa, 1958-03-29 to 2001-12-29 (2284 weeks; Scripps flask
    /// record as shipped by statsmodels): text column `date` (YYYY-MM-DD) and numeric column `co2_ppm`
    /// [2284], NaN in the 59 weeks without a measurement.
    public static func co2MaunaLoaWeekly() throws -> CSVTable {
        try CSVTable(contentsOf: try resource("co2_mauna_loa_weekly.csv"), hasHeader: true, textColumns: ["date"],
                     emptyCells: .nan)
    }

    /// The URL of a file in the shipped data folder.
    /// - Throws: `NeuronError.io` when it cannot be found.
    public static func resource(_ name: String) throws -> URL {
        guard let url = bundledResource("data/" + name) else {
            throw NeuronError.io("cannot find Neuron's data file \(name) in the resource bundle or the source tree")
        }
        return url
    }
}

/// The file at `path` inside `Sources/Neuron/Resources` (`data/co2_mauna_loa_weekly.csv`):
/// from SwiftPM's resource bundle beside the executable (an installed `neuron`, or the build folder), else
/// from the source tree this file was compiled from (tests, whose main bundle is the test runner); nil when
/// neither holds it. SwiftPM's generated `Bundle.module` would trap when the bundle is missing.
func bundledResource(_ path: String) -> URL? {
    let inBundle = "Neuron_Neuron.resources/Resources/" + path
    var candidates = [Bundle.main.bundleURL.appendingPathComponent(inBundle)]
    if let executable = Bundle.main.executableURL {
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent(inBundle))
    }
    candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Resources/" + path))
    return candidates.first { FileManager.default.isReadableFile(atPath: $0.path) }
}
