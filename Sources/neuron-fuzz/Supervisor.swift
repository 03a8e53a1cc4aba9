import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The parent process: runs ranges of cases in child processes so that a trap (a Swift precondition,
// a sanitizer report, a signal) ends only the child. The child prints `B <case>` before each case and
// `R <case> ...` after it; when it dies, the last `B` without an `R` names the case that trapped, and a
// new child continues from the next one.

/// Writes one protocol line to stdout unbuffered, so it is out before a crash.
func emitLine(_ line: String) {
    let bytes = Array((line.replacingOccurrences(of: "\n", with: " ") + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        offset += n
    }
}

/// The child: runs cases [from, to) and reports each with its time in milliseconds.
func runChild(seed: UInt64, from: Int, to: Int, memoryLimitMB: Int) {
    limitMemory(megabytes: memoryLimitMB)
    for i in from..<to {
        let start = DispatchTime.now().uptimeNanoseconds
        let outcome = runCase(seed: seed, index: i, emit: emitLine)
        let ms = (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
        switch outcome {
        case .correct: emitLine("R \(i) \(ms)\tC")
        case .thrown(let valid, let message): emitLine("R \(i) \(ms)\tT\t\(valid ? 1 : 0)\t\(message)")
        case .wrong(let message): emitLine("R \(i) \(ms)\tW\t\(message)")
        }
    }
    emitLine("E")
}

/// Caps the child's address space, so an absurd allocation that the library attempts fails at once
/// (a trap, counted) instead of paging gigabytes on a shared machine. AddressSanitizer reserves terabytes
/// of shadow memory, so under it the cap comes from ASAN_OPTIONS instead (see `childEnvironment`).
func limitMemory(megabytes: Int) {
    guard megabytes > 0, dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil else { return }
    var limit = rlimit(rlim_cur: rlim_t(megabytes) << 20, rlim_max: rlim_t(megabytes) << 20)
    _ = withUnsafePointer(to: &limit) { setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), $0) }
}

struct OpTally {
    var cases = 0, correct = 0, thrown = 0, thrownValid = 0, wrong = 0, traps = 0, preconditions = 0
    var milliseconds = 0
}

/// Counts and details of a run, filled from the children's reports.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    var correct = 0, thrown = 0, thrownValid = 0, wrong = 0, traps = 0, preconditions = 0, sanitizerReports = 0, done = 0
    var perOp: [String: OpTally] = [:]
    var details: [(index: Int, text: String)] = []
    var thrownValidExamples: [String: String] = [:]
    var slowest: [(ms: Int, text: String)] = []

    func record(_ body: (Tally) -> Void) {
        lock.lock()
        body(self)
        lock.unlock()
    }
}

/// Where the sanitizers and the Swift runtime report.
let reportMarkers = ["ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                     "Fatal error", "ERROR: ThreadSanitizer"]
let sanitizerMarkers = ["ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "UndefinedBehaviorSanitizer", "ThreadSanitizer"]

final class Supervisor: @unchecked Sendable {
    let seed: UInt64
    let executable: String
    let timeout: Double
    let tally = Tally()
    let memoryLimitMB: Int

    init(seed: UInt64, timeout: Double, memoryLimitMB: Int) {
        self.seed = seed
        self.timeout = timeout
        self.memoryLimitMB = memoryLimitMB
        executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Children inherit the environment; sanitizers are told to stop at the first report, so every
    /// report becomes a trap attributed to the case that caused it.
    var childEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        if env["ASAN_OPTIONS"] == nil {
            env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:allocator_may_return_null=1"
                + ":max_allocation_size_mb=\(memoryLimitMB):hard_rss_limit_mb=\(memoryLimitMB * 2)"
        }
        if env["UBSAN_OPTIONS"] == nil { env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1" }
        return env
    }

    /// Runs cases [from, to), restarting a child after each trap.
    func runRange(_ from: Int, _ to: Int, worker: Int) {
        var next = from
        let errPath = NSTemporaryDirectory() + "neuron-fuzz-\(getpid())-\(worker).err"
        while next < to {
            FileManager.default.createFile(atPath: errPath, contents: nil)
            guard let errHandle = FileHandle(forWritingAtPath: errPath) else { fatalError("cannot write \(errPath)") }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["--child", "--seed", "\(seed)", "--from", "\(next)", "--to", "\(to)", "--memory-mb", "\(memoryLimitMB)"]
            process.environment = childEnvironment
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = errHandle
            do { try process.run() } catch { fatalError("cannot start \(executable): \(error)") }
            var current: (index: Int, op: String, params: String)?
            var expected: String?
            var finished = false, timedOut = false
            var reader = LineReader(fd: pipe.fileHandleForReading.fileDescriptor)
            while let line = reader.next(timeout: timeout) {
                if line == LineReader.timeoutMarker { timedOut = true; kill(process.processIdentifier, SIGKILL); break }
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                let head = fields[0].split(separator: " ")
                guard let tag = head.first else { continue }
                switch tag {
                case "B":
                    current = (Int(head[1])!, fields.count > 1 ? fields[1] : "?", fields.count > 2 ? fields[2] : "")
                    expected = nil
                case "P":
                    expected = fields.count > 1 ? fields[1] : ""
                case "R":
                    let i = Int(head[1])!
                    let ms = head.count > 2 ? Int(head[2]) ?? 0 : 0
                    record(result: fields, index: i, op: current?.op ?? "?", params: current?.params ?? "", ms: ms)
                    current = nil
                    next = i + 1
                case "E":
                    finished = true
                default: break
                }
            }
            process.waitUntilExit()
            try? errHandle.close()
            let stderrText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            let status = process.terminationStatus, signalled = process.terminationReason == .uncaughtSignal
            if let c = current {
                // The child died (or hung) inside case c.
                let how = timedOut ? "timed out after \(Int(timeout)) s" : signalled ? "signal \(status)" : "exit status \(status)"
                let report = excerpt(stderrText)
                // A release build prints no precondition message, only that one failed: the child's
                // announcement (`P`) plus a precondition stop (or the announced message) is what counts.
                let documented = expected.map { e in
                    !timedOut && (report.contains(e) || report.contains("precondition failure"))
                        && !sanitizerMarkers.contains(where: report.contains)
                } ?? false
                tally.record { t in
                    t.done += 1
                    var op = t.perOp[c.op, default: OpTally()]
                    op.cases += 1
                    if documented {
                        t.preconditions += 1
                        op.preconditions += 1
                    } else {
                        t.traps += 1
                        op.traps += 1
                        if sanitizerMarkers.contains(where: report.contains) { t.sanitizerReports += 1 }
                        t.details.append((c.index, "case \(c.index) TRAP [\(c.op)] \(c.params)\n    \(how): \(report)"))
                    }
                    t.perOp[c.op] = op
                }
                next = c.index + 1
            } else if !finished || status != 0 || sanitizerMarkers.contains(where: stderrText.contains) {
                // Died between cases or at exit (a leak report, a crash in teardown).
                let report = excerpt(stderrText)
                tally.record { t in
                    t.traps += 1
                    if sanitizerMarkers.contains(where: report.contains) { t.sanitizerReports += 1 }
                    t.details.append((next, "after case \(next - 1): child ended with status \(status)\(signalled ? " (signal)" : ""): \(report)"))
                }
                if !finished && next < to { next += 1 }
            }
        }
        try? FileManager.default.removeItem(atPath: errPath)
    }

    private func record(result fields: [String], index: Int, op: String, params: String, ms: Int) {
        tally.record { t in
            t.done += 1
            var o = t.perOp[op, default: OpTally()]
            o.cases += 1
            o.milliseconds += ms
            if t.slowest.count < 5 || ms > t.slowest.last!.ms {
                t.slowest.append((ms, "case \(index) [\(op)] \(params)"))
                t.slowest.sort { $0.ms > $1.ms }
                if t.slowest.count > 5 { t.slowest.removeLast() }
            }
            switch fields.count > 1 ? fields[1] : "" {
            case "C":
                t.correct += 1
                o.correct += 1
            case "T":
                t.thrown += 1
                o.thrown += 1
                if fields.count > 2 && fields[2] == "1" {
                    t.thrownValid += 1
                    o.thrownValid += 1
                    if t.thrownValidExamples[op] == nil {
                        t.thrownValidExamples[op] = "case \(index): \(params): \(fields.count > 3 ? fields[3] : "")"
                    }
                }
            default:
                t.wrong += 1
                o.wrong += 1
                t.details.append((index, "case \(index) WRONG [\(op)] \(params)\n    \(fields.dropFirst(2).joined(separator: " "))"))
            }
            t.perOp[op] = o
        }
    }

    /// The lines of a child's stderr that say what went wrong: the report and the first frames of
    /// the crashed thread (Swift's backtracer or the sanitizers').
    func excerpt(_ text: String) -> String {
        let lines = text.split(separator: "\n").map(String.init)
        var keep: [String] = []
        var frames = -1
        for l in lines {
            if reportMarkers.contains(where: l.contains) || l.contains("Swift runtime failure") && !l.contains(" in ") {
                keep.append(l.trimmingCharacters(in: .whitespaces))
            } else if l.contains("crashed:") {
                frames = 0
            } else if frames >= 0 && frames < 4, l.range(of: #"^\s+\d+ "#, options: .regularExpression) != nil, !l.contains("[thunk]") {
                keep.append(l.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression))
                frames += 1
            } else if l.range(of: #"^\s+#[0-3] "#, options: .regularExpression) != nil {
                keep.append(l.trimmingCharacters(in: .whitespaces))
            }
        }
        if keep.isEmpty { keep = Array(lines.suffix(4)) }
        return keep.prefix(12).joined(separator: "\n      ")
    }
}

/// Reads lines from a pipe with a timeout per line.
struct LineReader {
    static let timeoutMarker = "\u{0}timeout"
    let fd: Int32
    private var buffer: [UInt8] = []
    private var eof = false

    init(fd: Int32) { self.fd = fd }

    mutating func next(timeout: Double) -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            if eof { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(timeout * 1000))
            if ready == 0 { return LineReader.timeoutMarker }
            if ready < 0 { if errno == EINTR { continue }; eof = true; continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n <= 0 { eof = true; continue }
            buffer += chunk[0..<n]
        }
    }
}
