import Foundation
import Neuron

// neuron-fuzz: a seeded fuzzer over Neuron's public ops. Every call must either throw `NeuronError`
// or match a double-precision reference (Reference.swift states the tolerance). Cases run in child
// processes, so traps are survived, counted and attributed.
//
//   neuron-fuzz --seed 1 --cases 100000 [--start 0] [--jobs 2] [--batch 2000] [--timeout 120] [--memory-mb 4096]
//   neuron-fuzz --seed 1 --case 1234          # rerun one case in this process, verbosely
//   neuron-fuzz --seed 1 --cases 50 --in-process
//
// The exit status is 1 when any case was wrong, trapped, hung or drew a sanitizer report.

struct Options {
    var seed: UInt64 = 1
    var start = 0
    var cases = 1000
    var jobs = 1
    var batch = 2000
    var timeout = 120.0
    var single: Int?
    var child = false, inProcess = false, verbose = false
    var from = 0, to = 0
    var maxDetails = 200
    var memoryMB = 4096

    init(_ args: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < args.count else { usage("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--seed": seed = UInt64(value()) ?? { usage("bad seed") }()
            case "--start": start = Int(value()) ?? 0
            case "--cases": cases = Int(value()) ?? 0
            case "--jobs": jobs = Swift.max(1, Int(value()) ?? 1)
            case "--batch": batch = Swift.max(1, Int(value()) ?? 1)
            case "--timeout": timeout = Double(value()) ?? 120
            case "--case": single = Int(value())
            case "--max-details": maxDetails = Int(value()) ?? 200
            case "--memory-mb": memoryMB = Int(value()) ?? 4096
            case "--child": child = true
            case "--from": from = Int(value()) ?? 0
            case "--to": to = Int(value()) ?? 0
            case "--in-process": inProcess = true
            case "--verbose", "-v": verbose = true
            case "--help", "-h": usage(nil)
            default: usage("unknown argument \(args[i])")
            }
            i += 1
        }
    }
}

func usage(_ problem: String?) -> Never {
    if let problem { FileHandle.standardError.write(Data("neuron-fuzz: \(problem)\n".utf8)) }
    print("""
    usage: neuron-fuzz [--seed S] [--cases N] [--start I] [--jobs J] [--batch B] [--timeout SECONDS] [--max-details K] [--memory-mb M]
           neuron-fuzz [--seed S] --case I          rerun case I in this process and print its outcome
           neuron-fuzz [--seed S] --cases N --in-process
    """)
    exit(problem == nil ? 0 : 2)
}

let options = Options(CommandLine.arguments)

if options.child {
    runChild(seed: options.seed, from: options.from, to: options.to, memoryLimitMB: options.memoryMB)
    exit(0)
}

if let index = options.single {
    let outcome = runCase(seed: options.seed, index: index) { print($0) }
    switch outcome {
    case .correct: print("correct")
    case .thrown(let valid, let message): print("threw NeuronError\(valid ? " (PyTorch would answer)" : ""): \(message)")
    case .wrong(let message): print("WRONG: \(message)")
    }
    exit(0)
}

if options.inProcess {
    var counts = [String: Int]()
    for i in options.start..<(options.start + options.cases) {
        let outcome = runCase(seed: options.seed, index: i) { if options.verbose { print($0) } }
        switch outcome {
        case .correct: counts["correct", default: 0] += 1
        case .thrown: counts["thrown", default: 0] += 1
        case .wrong(let m):
            counts["wrong", default: 0] += 1
            print("case \(i) WRONG: \(m)")
        }
    }
    print(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    exit(counts["wrong", default: 0] == 0 ? 0 : 1)
}

// Supervised run: batches of cases spread over `jobs` children at a time.
let supervisor = Supervisor(seed: options.seed, timeout: options.timeout, memoryLimitMB: options.memoryMB)
let end = options.start + options.cases
let batches: [(Int, Int)] = stride(from: options.start, to: end, by: options.batch).map { ($0, Swift.min(end, $0 + options.batch)) }
let queue = NSLock()
nonisolated(unsafe) var nextBatch = 0
let startTime = Date()
let progress = Thread {
    while true {
        Thread.sleep(forTimeInterval: 30)
        let t = supervisor.tally
        t.record { t in
            FileHandle.standardError.write(Data(String(format: "neuron-fuzz: %d/%d cases, %d wrong, %d traps, %.0f s\n",
                                                       t.done, options.cases, t.wrong, t.traps, Date().timeIntervalSince(startTime)).utf8))
        }
    }
}
progress.start()
DispatchQueue.concurrentPerform(iterations: options.jobs) { worker in
    while true {
        queue.lock()
        let mine = nextBatch < batches.count ? batches[nextBatch] : nil
        nextBatch += 1
        queue.unlock()
        guard let (from, to) = mine else { return }
        supervisor.runRange(from, to, worker: worker)
    }
}
let wall = Date().timeIntervalSince(startTime)
let t = supervisor.tally
print("neuron-fuzz: seed \(options.seed), cases \(options.start)..<\(end), jobs \(options.jobs), batch \(options.batch), wall \(String(format: "%.1f", wall)) s")
print("  correct                   \(t.correct)")
print("  thrown NeuronError        \(t.thrown)  (of which PyTorch would have answered: \(t.thrownValid))")
print("  wrong                     \(t.wrong)")
print("  traps                     \(t.traps)  (sanitizer reports among them: \(t.sanitizerReports))")
print("  documented preconditions  \(t.preconditions)")
print("per op (cases / correct / thrown / thrown-valid / wrong / traps / preconditions, seconds):")
for (op, o) in t.perOp.sorted(by: { $0.key < $1.key }) {
    print("  " + op.padding(toLength: 26, withPad: " ", startingAt: 0)
          + "\(o.cases) / \(o.correct) / \(o.thrown) / \(o.thrownValid) / \(o.wrong) / \(o.traps) / \(o.preconditions), "
          + String(format: "%.1f s", Double(o.milliseconds) / 1000))
}
print("slowest cases: " + t.slowest.map { "\($0.ms) ms \($0.text)" }.joined(separator: "\n  "))
if !t.thrownValidExamples.isEmpty {
    print("thrown where PyTorch answers (acceptable; one example per op):")
    for (op, e) in t.thrownValidExamples.sorted(by: { $0.key < $1.key }) { print("  [\(op)] \(e)") }
}
if !t.details.isEmpty {
    print("wrong results and traps (\(t.details.count); rerun one with: neuron-fuzz --seed \(options.seed) --case N):")
    for d in t.details.sorted(by: { $0.index < $1.index }).prefix(options.maxDetails) { print("  " + d.text) }
    if t.details.count > options.maxDetails { print("  ... \(t.details.count - options.maxDetails) more (--max-details)") }
}
exit(t.wrong == 0 && t.traps == 0 && t.sanitizerReports == 0 ? 0 : 1)
