import ArgumentParser
import Foundation
import Neuron

/// Neuron's Swift benchmark runner: the cases of ../shared/bench/README.md through the public API.
/// Contract (compare.py): `neuron-bench --cases a,b --threads N` prints one JSON line per case,
/// `{"case": ..., "median_ms": ..., "min_ms": ...}`, after a warm-up, from at least 20 timed
/// repetitions and at least one second per case.
@main
struct NeuronBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "neuron-bench", abstract: "Time Neuron on the shared benchmark cases.")

    @Option(help: "Comma-separated case names (default: every case).")
    var cases: String = ""

    @Option(help: "Threads for the kernels and OpenBLAS (0: default).")
    var threads: Int = 0

    @Flag(help: "List the case names and exit.")
    var list = false

    func run() throws {
        Neuron.threads = threads
        let all = BenchmarkCase.all
        if list {
            all.forEach { print($0.name) }
            return
        }
        let wanted = cases.split(separator: ",").map(String.init)
        if let unknown = wanted.first(where: { name in !all.contains { $0.name == name } }) {
            throw ValidationError("unknown case \(unknown); --list shows the cases")
        }
        FileHandle.standardError.write(Data((Neuron.buildSummary + "\n").utf8))
        for bench in all where wanted.isEmpty || wanted.contains(bench.name) {
            let body = try bench.prepare()
            try body()  // warm-up
            var times: [Double] = []
            let start = DispatchTime.now().uptimeNanoseconds
            while times.count < 20 || Double(DispatchTime.now().uptimeNanoseconds - start) < 1e9 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                if times.count >= 10_000 { break }
            }
            times.sort()
            var fields = [String(format: "\"case\": \"%@\"", bench.name),
                          String(format: "\"median_ms\": %.4f", times[times.count / 2]),
                          String(format: "\"min_ms\": %.4f", times[0]),
                          "\"reps\": \(times.count)"]
            if let flops = bench.flops { fields.append(String(format: "\"gflops\": %.1f", flops / (times[times.count / 2] * 1e6))) }
            print("{" + fields.joined(separator: ", ") + "}")
            fflush(nil)
        }
    }
}

/// A named case: `prepare` builds its inputs once and returns the body to time.
struct BenchmarkCase {
    let name: String
    var flops: Double? = nil
    let prepare: () throws -> () throws -> Void
}
