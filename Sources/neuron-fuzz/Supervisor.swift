import Foundation
import Neuron
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
    // Throwing ops refuse single allocations over an eighth of the child's memory (a case holds a few
    // tensors at once), so an absurd size is a thrown error, never an out-of-memory trap.
    Neuron.maximumAllocationBytes = memoryLimitMB << 17
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

/// Whether a child's report is a sanitizer finding. AddressSanitizer also reports the illegal
/// instruction of a Swift trap ("ILL"), which is a trap but not a memory error.
func isSanitizerFinding(_ report: String) -> Bool {
    let asanTrap = report.contains("AddressSanitizer: ILL") || report.contains("AddressSanitizer: TRAP")
    return sanitizerMarkers.contains { report.contains($0) && !($0 == "ERROR: AddressSanitizer" && asanTrap) }
}

/// Whether this process runs under AddressSanitizer (its children are the same binary).
let underAddressSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

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
        // The fuzzer's settings first, so that the user's (later in the string) win.
        let asan = "detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:handle_sigill=1:handle_sigtrap=1"
            + ":max_allocation_size_mb=\(memoryLimitMB):hard_rss_limit_mb=\(memoryLimitMB * 2)"
        env["ASAN_OPTIONS"] = asan + (env["ASAN_OPTIONS"].map { ":" + $0 } ?? "")
        // Swift's backtracer reads the crashed process's memory in ways AddressSanitizer reports as
        // overflows; under it, AddressSanitizer prints the trap's stack instead.
        if underAddressSanitizer && env["SWIFT_BACKTRACE"] == nil { env["SWIFT_BACKTRACE"] = "enable=no" }
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1" + (env["UBSAN_OPTIONS"].map { ":" + $0 } ?? "")
        return env
    }

    /// Runs cases [from, to), restarting a child after each trap.
    func runRange(_ from: Int, _ to: Int, worker: Int) {
        var next = from
        let errPath = NSTemporaryDirectory() + "neuron-fuzz-\(getpid())-\(worker).err"
        while next < to {
            let arguments = ["--child", "--seed", "\(seed)", "--from", "\(next)", "--to", "\(to)", "--memory-mb", "\(memoryLimitMB)"]
            var child: ChildProcess
            do { child = try ChildProcess(executable, arguments, environment: childEnvironment, stderrPath: errPath) } catch {
                fatalError("cannot start \(executable): \(error)")
            }
            var current: (index: Int, op: String, params: String)?
            var expected: String?
            var finished = false
            var reader = LineReader(fd: child.output)
            let timedOut = !child.readLines(&reader, timeout: timeout) { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                let head = fields[0].split(separator: " ")
                guard let tag = head.first else { return }
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
            let (status, signalled) = child.finish()
            let stderrText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            if let c = current {
                // The child died (or hung) inside case c.
                let how = timedOut ? "timed out after \(Int(timeout)) s" : signalled ? "signal \(status)" : "exit status \(status)"
                let report = excerpt(stderrText)
                // An optimised build prints no precondition message, only that one failed (Swift's
                // backtracer) or an illegal instruction (AddressSanitizer): the child's announcement (`P`)
                // plus such a stop, or the announced message itself, is what counts.
                let documented = expected.map { e in
                    !timedOut && !isSanitizerFinding(report)
                        && (report.contains(e) || report.contains("precondition failure") || report.contains("AddressSanitizer: ILL"))
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
                        if isSanitizerFinding(report) { t.sanitizerReports += 1 }
                        t.details.append((c.index, "case \(c.index) TRAP [\(c.op)] \(c.params)\n    \(how): \(report)"))
                    }
                    t.perOp[c.op] = op
                }
                next = c.index + 1
            } else if !finished || status != 0 || signalled || isSanitizerFinding(stderrText) {
                // Died between cases or at exit (a leak report, a crash in teardown).
                let report = excerpt(stderrText)
                tally.record { t in
                    t.traps += 1
                    if isSanitizerFinding(report) { t.sanitizerReports += 1 }
                    t.details.append((next, "after case \(next - 1): child ended with \(signalled ? "signal" : "status") \(status): \(report)"))
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
            } else if l.range(of: #"^\s+#[0-5] "#, options: .regularExpression) != nil {
                keep.append(l.trimmingCharacters(in: .whitespaces))
            }
        }
        if keep.isEmpty { keep = Array(lines.suffix(4)) }
        return keep.prefix(12).joined(separator: "\n      ")
    }
}

/// A child in a process group of its own (so that helpers it starts, such as Swift's backtracer, are
/// killed with it), its stdout on a pipe and its stderr in a file.
struct ChildProcess {
    let pid: pid_t
    let output: Int32
    private var exitStatus: Int32?

    /// Pipe creation and spawning are serialised, so no child inherits another's pipe before its
    /// close-on-exec flag is set.
    private static let spawnLock = NSLock()

    init(_ executable: String, _ arguments: [String], environment: [String: String], stderrPath: String) throws {
        ChildProcess.spawnLock.lock()
        defer { ChildProcess.spawnLock.unlock() }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw NSError(domain: "pipe", code: Int(errno)) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let errFd = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard errFd >= 0 else { throw NSError(domain: "open \(stderrPath)", code: Int(errno)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFd, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
            close(fds[1])
            close(errFd)
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { close(fds[0]); throw NSError(domain: "posix_spawn", code: Int(rc)) }
        self.pid = pid
        output = fds[0]
    }

    /// Feeds each line to `body` until the output ends or the child exits (helpers it started may keep
    /// the pipe open); false when no line came for `timeout` seconds (the group is then killed).
    mutating func readLines(_ reader: inout LineReader, timeout: Double, _ body: (String) -> Void) -> Bool {
        var idle = 0.0
        while true {
            switch reader.next(timeout: 1) {
            case .line(let line):
                idle = 0
                body(line)
            case .end:
                return true
            case .idle:
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    exitStatus = status
                    // What the child wrote before it ended is still in the pipe.
                    while case .line(let line) = reader.next(timeout: 0) { body(line) }
                    return true
                }
                idle += 1
                if idle >= timeout {
                    kill(-pid, SIGKILL)
                    return false
                }
            }
        }
    }

    /// Reaps the child, kills what is left of its process group and returns (status, signalled).
    mutating func finish() -> (Int32, Bool) {
        var status: Int32 = exitStatus ?? 0
        if exitStatus == nil { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        kill(-pid, SIGKILL)
        close(output)
        let signal = status & 0x7f
        return signal == 0 ? ((status >> 8) & 0xff, false) : (signal, true)
    }
}

/// Reads lines from a pipe, waiting at most a given time for each.
struct LineReader {
    enum Event { case line(String), idle, end }
    let fd: Int32
    private var buffer: [UInt8] = []
    private var eof = false

    init(fd: Int32) { self.fd = fd }

    mutating func next(timeout: Double) -> Event {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return .line(line)
            }
            if eof { return .end }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(timeout * 1000))
            if ready == 0 { return .idle }
            if ready < 0 { if errno == EINTR { continue }; eof = true; continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n <= 0 { eof = true; continue }
            buffer += chunk[0..<n]
        }
    }
}
