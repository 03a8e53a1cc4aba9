// The crash test of atomic saves (`make savetest`): a child process saves a ~40 MB model over and over
// and is killed with SIGKILL, 50 times, half at a random moment and half while it is writing. After each kill the target must be a whole
// file from one of the saves (it loads, its checksums verify and every value matches the iteration its
// metadata names), never a torn one; the dead child's temporary file must be gone after the next save.
//
//   savekill [--kills 50] [--megabytes 40] [--directory DIR]   the test; prints the counts, exits 1 on failure
//   savekill save-loop PATH MEGABYTES                          the child: saves until killed
// Compiled together with Sources/Neuron into one module (see the Makefile), hence no `import Neuron`.
import Foundation

/// Tensors of `megabytes` MB in total, every value a function of `iteration`, so a file mixing two
/// saves (or holding stale bytes) fails `expectedValuesMatch`.
func model(iteration: Int, megabytes: Int) -> [String: StoredTensor] {
    let perTensor = megabytes * (1 << 20) / 4 / 8
    var tensors: [String: StoredTensor] = [:]
    for layer in 0..<8 {
        var t = Tensor(uninitializedShape: [perTensor])
        t.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = value(iteration: iteration, layer: layer, index: i) }
        }
        tensors["layer\(layer).weight"] = .float(t)
    }
    tensors["step"] = .int(IntTensor(Int64(iteration)))
    return tensors
}

func value(iteration: Int, layer: Int, index: Int) -> Float {
    Float((iteration &* 1_000_003 &+ layer &* 7919 &+ index) % 16_777_216)
}

/// Whether `tensors` is exactly what `model(iteration:megabytes:)` gave for the iteration it records.
func expectedValuesMatch(_ tensors: [String: StoredTensor], megabytes: Int) -> Bool {
    guard case .int(let step)? = tensors["step"], step.count == 1, tensors.count == 9 else { return false }
    let iteration = Int(step.scalars[0])
    for layer in 0..<8 {
        guard case .float(let t)? = tensors["layer\(layer).weight"], t.count == megabytes * (1 << 20) / 4 / 8 else { return false }
        let ok = t.withUnsafeBufferPointer { values in
            values.indices.allSatisfy { values[$0] == value(iteration: iteration, layer: layer, index: $0) }
        }
        if !ok { return false }
    }
    return true
}

func saveLoop(path: String, megabytes: Int) throws -> Never {
    let url = URL(fileURLWithPath: path)
    var iteration = Int(ProcessInfo.processInfo.processIdentifier) * 1000
    while true {
        iteration += 1
        try Safetensors.write(model(iteration: iteration, megabytes: megabytes), to: url, metadata: ["iteration": "\(iteration)"])
    }
}

func temporaryFileNames(of url: URL) throws -> Set<String> {
    Set(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path).filter { isTemporaryFileName($0, of: url) })
}

/// The temporary files of saves of `url` in its directory, with their total size in bytes.
func temporaryFiles(of url: URL) throws -> (count: Int, bytes: Int) {
    let directory = url.deletingLastPathComponent()
    var count = 0, bytes = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where isTemporaryFileName(name, of: url) {
        count += 1
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)
        bytes += (attributes[.size] as? Int) ?? 0
    }
    return (count, bytes)
}

func run(kills: Int, megabytes: Int, directory: URL) throws -> Bool {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent("model.safetensors")
    try? FileManager.default.removeItem(at: url)
    var generator = RandomGenerator(seed: 2024)
    var torn = 0, whole = 0, absent = 0, left = 0, leftBytes = 0, mostPresent = 0
    let started = Date()
    for kill in 1...kills {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = ["save-loop", url.path, String(megabytes)]
        let earlier = try temporaryFileNames(of: url)
        try child.run()
        // Odd kills at a random moment from 0.1 s to 2 s (in any phase of a save); even ones, the last
        // included, after a random wait and then as soon as the child has a temporary file of its own,
        // so they land while it writes, flushes or renames.
        usleep(UInt32(100_000 + Int(generator.next() % 1_900_000)))
        if kill % 2 == 0 {
            let deadline = Date().addingTimeInterval(20)
            while try temporaryFileNames(of: url).subtracting(earlier).isEmpty && Date() < deadline { usleep(200) }
        }
        Glibc.kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        guard child.terminationReason == .uncaughtSignal else {
            print("kill \(kill): the child exited by itself (status \(child.terminationStatus)) before the kill")
            return false
        }
        let temporaries = try temporaryFiles(of: url)
        left += temporaries.count
        leftBytes += temporaries.bytes
        mostPresent = max(mostPresent, temporaries.count)
        if !FileManager.default.fileExists(atPath: url.path) {
            absent += 1
        } else {
            do {
                if expectedValuesMatch(try Safetensors.read(contentsOf: url), megabytes: megabytes) { whole += 1 } else { torn += 1 }
            } catch {
                print("kill \(kill): \(error)")
                torn += 1
            }
        }
    }
    let before = try temporaryFiles(of: url)
    try Safetensors.write(model(iteration: 1, megabytes: megabytes), to: url)
    let after = try temporaryFiles(of: url)
    let final = expectedValuesMatch(try Safetensors.read(contentsOf: url), megabytes: megabytes)
    print("""
        savekill: \(kills) kill -9 during \(megabytes) MB saves in \(String(format: "%.0f", Date().timeIntervalSince(started))) s
          target after each kill: \(whole) whole, \(torn) torn, \(absent) absent (killed during the first save)
          temp files left by killed saves: \(left) (\(leftBytes / 1_000_000) MB in all), at most \(mostPresent) present at once \
        (each later save removes its dead predecessors')
          before one more save: \(before.count) temp files (\(before.bytes / 1_000_000) MB); after it: \(after.count); final file whole: \(final)
        """)
    return torn == 0 && after.count == 0 && final
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "save-loop", arguments.count == 3, let megabytes = Int(arguments[2]) {
    try saveLoop(path: arguments[1], megabytes: megabytes)
}
var kills = 50, megabytes = 40
var directory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-savekill-\(getpid())")
var rest = arguments[...]
while let flag = rest.popFirst() {
    guard let value = rest.popFirst() else { print("missing value after \(flag)"); exit(2) }
    switch flag {
    case "--kills": kills = Int(value) ?? kills
    case "--megabytes": megabytes = Int(value) ?? megabytes
    case "--directory": directory = URL(fileURLWithPath: value)
    default: print("unknown option \(flag)"); exit(2)
    }
}
let passed = try run(kills: kills, megabytes: megabytes, directory: directory)
try? FileManager.default.removeItem(at: directory)
exit(passed ? 0 : 1)
