import Foundation
import Testing
@testable import Neuron

/// The golden fixtures directory (Tests/Fixtures/golden, bundled as a test resource).
private let goldenDirectory = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("golden")

private func golden(_ name: String) throws -> [String: StoredTensor] {
    try Safetensors.read(contentsOf: goldenDirectory.appendingPathComponent(name + ".safetensors"))
}

private func floatTensor(_ dict: [String: StoredTensor], _ key: String) throws -> Tensor {
    guard case .float(let t)? = dict[key] else {
        Issue.record("'\(key)' is missing or not a float tensor")
        throw NeuronError.invalidArgument("no float tensor '\(key)'")
    }
    return t
}

private func intTensor(_ dict: [String: StoredTensor], _ key: String) throws -> IntTensor {
    guard case .int(let t)? = dict[key] else {
        Issue.record("'\(key)' is missing or not an integer tensor")
        throw NeuronError.invalidArgument("no integer tensor '\(key)'")
    }
    return t
}

/// Expects |actual - expected| <= atol + rtol*|expected| elementwise; on failure reports the first
/// differing elements and the largest absolute and relative errors.
private func expectClose(_ actual: Tensor, _ expected: Tensor, atol: Float = 1e-6, rtol: Float = 1e-5,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("shape \(actual.shape) differs from expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    if actual.isClose(to: expected, atol: atol, rtol: rtol) { return }
    let pairs = Array(zip(actual.scalars, expected.scalars).enumerated())
    let bad = pairs.filter { abs($0.element.0 - $0.element.1) > atol + rtol * abs($0.element.1) }
    let maxAbs = pairs.map { abs($0.element.0 - $0.element.1) }.max() ?? 0
    let maxRel = pairs.map { abs($0.element.0 - $0.element.1) / max(abs($0.element.1), .leastNormalMagnitude) }.max() ?? 0
    let first = bad.prefix(5).map { "[\($0.offset)] \($0.element.0) vs \($0.element.1)" }.joined(separator: ", ")
    Issue.record("\(bad.count) elements differ: \(first); max abs error \(maxAbs), max rel error \(maxRel)",
                 sourceLocation: sourceLocation)
}

/// The message of the `NeuronError.io` that `body` throws; records an issue if it throws anything else
/// or nothing.
private func ioMessage(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> String {
    do {
        try body()
        Issue.record("expected NeuronError.io, nothing was thrown", sourceLocation: sourceLocation)
    } catch NeuronError.io(let message) {
        return message
    } catch {
        Issue.record("expected NeuronError.io, got \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

/// A safetensors file from a header string and data bytes; `declaredLength` overrides the stored
/// header length.
private func file(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let h = Array(header.utf8)
    let length = declaredLength ?? UInt64(h.count)
    return Data((0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + h + data)
}

/// A fresh empty directory, removed by the caller.
private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A 4 -> 3 -> 2 perceptron, the architecture of sequential_state_dict.safetensors.
private func perceptron(hidden: Int = 3, out: Int = 2) throws -> Sequential {
    try Sequential {
        try Linear(in: 4, out: hidden)
        ReLU()
        try Linear(in: hidden, out: out)
    }
}

/// A module with a float and an integer buffer, like batch norm's running statistics and counter.
private final class Tracker: Module {
    let scale = Parameter(Tensor([1, 2, 3]))
    let mean = Buffer(Tensor([0, 0, 0]))
    let steps = Buffer(.int(IntTensor(0)))
    var isTraining = true
    func callAsFunction(_ input: Tensor) throws -> Tensor { input }
    var localParameters: [(name: String, parameter: Parameter)] { [("scale", scale)] }
    var localBuffers: [(name: String, buffer: Buffer)] { [("running_mean", mean), ("num_batches_tracked", steps)] }
}

@Suite struct SafetensorsTests {
    // MARK: Reading the golden files

    @Test func readsEveryGoldenFile() throws {
        let files = try FileManager.default.contentsOfDirectory(at: goldenDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "safetensors" }
        #expect(files.count >= 30)
        for url in files {
            let tensors = try Safetensors.read(contentsOf: url)
            #expect(!tensors.isEmpty, "\(url.lastPathComponent) has no tensors")
            let metadata = try Safetensors.metadata(contentsOf: url)
            #expect(metadata["torch_version"] != nil, "\(url.lastPathComponent) metadata lacks torch_version")
            #expect(try Safetensors.decodeMetadata(Data(contentsOf: url)) == metadata)
        }
    }

    @Test func dtypesConvertExactly() throws {
        let d = try golden("dtypes")
        let expected: [Float] = [0, 1, 2, 3, 7, 64, 128, 255]
        for dtype in ["F32", "F16", "BF16", "F64"] {
            #expect(try floatTensor(d, "same." + dtype) == Tensor(shape: [2, 4], scalars: expected), "same.\(dtype)")
        }
        for dtype in ["I64", "U8"] {
            #expect(try intTensor(d, "same." + dtype) == IntTensor(shape: [2, 4], scalars: expected.map { Int64($0) }), "same.\(dtype)")
        }
        // Bit-exact widening (== on Tensor compares elements with ==, so -0.0 == 0.0; compare bits too).
        for dtype in ["F16", "BF16"] {
            let widened = try floatTensor(d, "frac." + dtype)
            let reference = try floatTensor(d, "frac.\(dtype)_as_F32")
            #expect(widened.scalars.map(\.bitPattern) == reference.scalars.map(\.bitPattern), "frac.\(dtype)")
            #expect(widened.shape == [2, 4])
        }
        #expect(try floatTensor(d, "frac.F64").scalars.map(\.bitPattern) == floatTensor(d, "frac.F32").scalars.map(\.bitPattern))
        let scalar = try floatTensor(d, "scalar")
        #expect(scalar.shape == [])
        #expect(try scalar.item() == 3.5)
        let empty = try floatTensor(d, "empty")
        #expect(empty.shape == [0, 3])
        #expect(empty.count == 0)
    }

    @Test func readsMetadata() throws {
        let url = goldenDirectory.appendingPathComponent("sequential_io.safetensors")
        let metadata = try Safetensors.metadata(contentsOf: url)
        #expect(metadata["seed"] == "130")
        #expect(metadata["torch_version"]?.hasPrefix("2.") == true)
    }

    @Test func convertsEveryDtype() throws {
        // F16 edge cases: smallest and largest subnormal, infinities, NaN, negative subnormal, one.
        let half: [UInt16] = [0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7E00, 0x8001, 0x3C00, 0x0400]
        let halfBytes = half.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let f64Bytes = [0.1, -1e300].flatMap { (v: Double) in (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt64($0))) } }
        let header = """
        {"h":{"dtype":"F16","shape":[8],"data_offsets":[0,16]},\
        "d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},\
        "i8":{"dtype":"I8","shape":[2],"data_offsets":[32,34]},\
        "u8":{"dtype":"U8","shape":[2],"data_offsets":[34,36]},\
        "i16":{"dtype":"I16","shape":[1],"data_offsets":[36,38]},\
        "u16":{"dtype":"U16","shape":[1],"data_offsets":[38,40]},\
        "i32":{"dtype":"I32","shape":[1],"data_offsets":[40,44]},\
        "u32":{"dtype":"U32","shape":[1],"data_offsets":[44,48]},\
        "b":{"dtype":"BOOL","shape":[3],"data_offsets":[48,51]}}
        """
        let data: [UInt8] = halfBytes + f64Bytes + [0xFF, 0x7F] + [0xFF, 0x7F] + [0xFF, 0xFF] + [0xFF, 0xFF]
            + [0xFE, 0xFF, 0xFF, 0xFF] + [0xFF, 0xFF, 0xFF, 0xFF] + [0, 1, 2]
        let t = try Safetensors.decode(file(header, data: data))
        let h = try floatTensor(t, "h").scalars
        #expect(h[0] == 0x1p-24 && h[1] == 1023 * 0x1p-24 && h[5] == -0x1p-24 && h[6] == 1 && h[7] == 0x1p-14)
        #expect(h[2] == .infinity && h[3] == -.infinity && h[4].isNaN)
        #expect(try floatTensor(t, "d").scalars == [Float(0.1), -.infinity])
        #expect(try intTensor(t, "i8").scalars == [-1, 127])
        #expect(try intTensor(t, "u8").scalars == [255, 127])
        #expect(try intTensor(t, "i16").scalars == [-1])
        #expect(try intTensor(t, "u16").scalars == [65535])
        #expect(try intTensor(t, "i32").scalars == [-2])
        #expect(try intTensor(t, "u32").scalars == [4_294_967_295])
        #expect(try intTensor(t, "b").scalars == [0, 1, 1])
    }

    // MARK: Writing

    @Test func roundTripsEveryKind() throws {
        let tensors: [String: StoredTensor] = [
            "weights": .float(try Tensor(shape: [2, 3], scalars: [1, -2.5, .pi, 1e-30, -0.0, 65504])),
            "labels": .int(try IntTensor(shape: [2, 2], scalars: [0, -1, .max, .min])),
            "scale": .float(Tensor(Float(3.5))),
            "count": .int(IntTensor(Int64(42))),
            "empty": .float(Tensor.zeros([0, 3])),
            "no.ints": .int(try IntTensor(shape: [4, 0], scalars: [])),
            "odd \"name\" ü\n": .float(Tensor([7])),
        ]
        let metadata = ["seed": "7", "note": "quotes \" backslash \\ tab \t ünïcödé"]
        let bytes = try Safetensors.encode(tensors, metadata: metadata)
        #expect(try Safetensors.decode(bytes) == tensors)
        var decodedMetadata = try Safetensors.decodeMetadata(bytes)
        #expect(decodedMetadata.removeValue(forKey: Safetensors.checksumKey) != nil)
        #expect(decodedMetadata == metadata.merging(["format": "pt"]) { a, _ in a })

        let length = Int(bytes.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        #expect(length % 8 == 0)
        let header = String(decoding: bytes.dropFirst(8).prefix(length), as: UTF8.self)
        #expect(header.contains("\"format\":\"pt\""))
        // Keys sorted, data contiguous in key order: 6 floats, 4 ints, 1 float, 1 int, then the one float.
        let data = bytes.count - 8 - length
        #expect(data == 6 * 4 + 4 * 8 + 4 + 8 + 4)
        #expect(header.contains("\"count\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}"))
        #expect(header.contains("\"weights\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[48,72]}"))
    }

    @Test func roundTripsWithoutData() throws {
        let onlyEmpty: [String: StoredTensor] = ["e": .float(Tensor.zeros([0])), "i": .int(try IntTensor(shape: [2, 0], scalars: []))]
        let bytes = try Safetensors.encode(onlyEmpty)
        #expect(try Safetensors.decode(bytes) == onlyEmpty)
        #expect(try Safetensors.decode(Safetensors.encode([:])).isEmpty)
    }

    @Test func userFormatReplacesPt() throws {
        let bytes = try Safetensors.encode(["x": .float(Tensor([1]))], metadata: ["format": "np"])
        #expect(try Safetensors.decodeMetadata(bytes)["format"] == "np")
    }

    @Test func rejectsReservedName() {
        #expect(throws: NeuronError.self) { try Safetensors.encode(["__metadata__": .float(Tensor([1]))]) }
    }

    @Test func writesAtomically() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        try Data("an old, shorter or longer file that must be replaced entirely".utf8).write(to: url)
        let tensors: [String: StoredTensor] = ["a": .float(Tensor([1, 2])), "b": .int(IntTensor([3]))]
        try Safetensors.write(tensors, to: url, metadata: ["epoch": "3"])
        #expect(try Safetensors.read(contentsOf: url) == tensors)
        #expect(try Safetensors.metadata(contentsOf: url).filter { $0.key != Safetensors.checksumKey } == ["format": "pt", "epoch": "3"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])

        // A write that cannot complete leaves nothing behind and names the path.
        let missing = dir.appendingPathComponent("no-such-dir/model.safetensors")
        let message = ioMessage { try Safetensors.write(tensors, to: missing) }
        #expect(message.contains(missing.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])
    }

    @Test func saveRemovesStaleTemporaryFilesButNotALiveWritersOrOthers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        let stale = [temporaryFileName(for: url, tag: 1), temporaryFileName(for: url, tag: 4_294_967_295)]
        let live = temporaryFileName(for: url, tag: 2)
        // Another target's temporary files and names that only resemble ours are never touched.
        let others = [temporaryFileName(for: dir.appendingPathComponent("model.safetensors.7"), tag: 3),
                      temporaryFileName(for: dir.appendingPathComponent("other.safetensors"), tag: 5),
                      ".model.safetensors..tmp", ".model.safetensors.12a.tmp", "model.safetensors.12.tmp",
                      ".model.safetensors.12.tmp.keep"]
        for name in stale + [live] + others {
            try Data(repeating: 7, count: 100).write(to: dir.appendingPathComponent(name))
        }
        // flock locks belong to an open file, so a lock taken through this descriptor conflicts with the
        // one the save tries to take through its own, exactly as a live writer's in another process would.
        let fd = open(dir.appendingPathComponent(live).path, O_RDONLY)
        try #require(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        let tensors: [String: StoredTensor] = ["a": .float(Tensor([1, 2]))]
        try Safetensors.write(tensors, to: url)
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: dir.path)) == Set(["model.safetensors", live] + others))
        #expect(try Safetensors.read(contentsOf: url) == tensors)

        // Once that writer is gone (its lock dropped with it), the next save removes its file.
        close(fd)
        try PNG.write(Tensor.zeros([1, 2, 2]), to: dir.appendingPathComponent("image.png"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(live).path), "a save of another target removed it")
        try Safetensors.write(tensors, to: url)
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: dir.path)) == Set(["model.safetensors", "image.png"] + others))
    }

    @Test func temporaryFileNamesMatchOnlyTheirTarget() {
        let url = URL(fileURLWithPath: "/tmp/a.b")
        #expect(temporaryFileName(for: url, tag: 42) == ".a.b.42.tmp")
        #expect(isTemporaryFileName(".a.b.42.tmp", of: url))
        #expect(isTemporaryFileName(".a.b.0.tmp", of: url))
        for name in [".a.b..tmp", ".a.b.4x.tmp", ".a.b.42.tmp2", "a.b.42.tmp", ".a.b.c.42.tmp", ".a.42.tmp", ".a.b.-1.tmp"] {
            #expect(!isTemporaryFileName(name, of: url), "\(name)")
        }
    }

    // MARK: Checksums

    @Test func writesEachTensorsCRC32C() throws {
        let bytes = try Safetensors.encode(["w": .float(Tensor([1, -2])), "n": .int(IntTensor(Int64(3)))])
        // CRC-32C of the little-endian bytes of [1.0, -2.0] and of Int64 3, computed independently.
        #expect(try Safetensors.decodeMetadata(bytes)[Safetensors.checksumKey] == #"{"n":"576c35e3","w":"aa36f2c9"}"#)
        // A checksum handed in with the metadata (read from another file, say) is replaced.
        let passedOn = try Safetensors.encode(["w": .float(Tensor([1, -2]))], metadata: [Safetensors.checksumKey: #"{"w":"00000000"}"#])
        #expect(try Safetensors.decodeMetadata(passedOn)[Safetensors.checksumKey] == #"{"w":"aa36f2c9"}"#)
        #expect(try Safetensors.decode(passedOn) == ["w": .float(Tensor([1, -2]))])
    }

    @Test func everyFlippedDataBitIsDetectedNamingTheTensor() throws {
        let tensors: [String: StoredTensor] = ["a": .float(Tensor([0.5, -3])), "b": .int(IntTensor([7])), "empty": .float(Tensor.zeros([0]))]
        let bytes = try Safetensors.encode(tensors)
        #expect(try Safetensors.decode(bytes) == tensors)
        let dataStart = bytes.count - 16
        for bit in 0..<(16 * 8) {
            var flipped = bytes
            flipped[dataStart + bit / 8] ^= UInt8(1 << (bit % 8))
            let message = ioMessage { _ = try Safetensors.decode(flipped) }
            let owner = bit < 64 ? "'a'" : "'b'"
            #expect(message.contains(owner) && message.contains("checksum") && message.contains("corrupt"), "bit \(bit): \(message)")
            // The header alone is intact, so the header-only reader still answers.
            #expect(try Safetensors.decodeMetadata(flipped) == Safetensors.decodeMetadata(bytes))
        }
    }

    @Test func flippedBitInASavedModelFailsTheLoadAndChangesNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        try perceptron().save(to: url)
        var bytes = try Data(contentsOf: url)
        let length = try Safetensors.headerLength(bytes.prefix(8), fileSize: UInt64(bytes.count))
        let header = try Safetensors.Header(parsing: bytes.dropFirst(8).prefix(length), dataSize: bytes.count - 8 - length)
        let target = try #require(header.entries.first { $0.name == "2.weight" })
        bytes[8 + length + target.offsets.lowerBound + 5] ^= 0x10
        try bytes.write(to: url)

        let model = try perceptron()
        let before = model.stateDict()
        let message = ioMessage { try model.load(from: url) }
        #expect(message.contains(url.path) && message.contains("'2.weight'") && message.contains("checksum"), "\(message)")
        #expect(model.stateDict() == before, "a failed load must change nothing")
    }

    @Test func filesWithoutChecksumsLoadAsBefore() throws {
        let url = goldenDirectory.appendingPathComponent("sequential_state_dict.safetensors")
        #expect(try Safetensors.metadata(contentsOf: url)[Safetensors.checksumKey] == nil)
        #expect(try perceptron().load(from: url).isComplete)
    }

    // MARK: Malformed input

    struct Corruption: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: Data
        /// Fragments the error message must contain.
        let mentions: [String]
        var testDescription: String { name }
    }

    static let corruptions: [Corruption] = {
        let ok = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        func entry(_ fields: String) -> String { #"{"t":{"# + fields + "}}" }
        let eight = [UInt8](repeating: 0, count: 8)
        return [
            Corruption(name: "empty file", bytes: Data(), mentions: ["too short"]),
            Corruption(name: "seven bytes", bytes: Data([1, 0, 0, 0, 0, 0, 0]), mentions: ["too short"]),
            Corruption(name: "header longer than file", bytes: file(ok, data: eight, declaredLength: 1000), mentions: ["header length 1000", "exceeds"]),
            Corruption(name: "huge header length", bytes: file(ok, declaredLength: .max), mentions: ["limit"]),
            Corruption(name: "header over 100 MB", bytes: file(ok, declaredLength: 100_000_001), mentions: ["limit"]),
            Corruption(name: "truncated data", bytes: file(ok, data: [0, 0, 0, 0]), mentions: ["'t'", "past", "truncated"]),
            Corruption(name: "invalid JSON", bytes: file(#"{"t": {"dtype": "F32",, }"#), mentions: ["invalid JSON"]),
            Corruption(name: "truncated JSON", bytes: file(#"{"t": {"dtype": "F3"#), mentions: ["invalid JSON"]),
            Corruption(name: "trailing garbage after JSON", bytes: file(#"{} x"#), mentions: ["invalid JSON"]),
            Corruption(name: "header not an object", bytes: file("[1, 2]"), mentions: ["not a JSON object"]),
            Corruption(name: "invalid UTF-8", bytes: file("{\"t\u{00e9}\":1}").replacingFirst(0xA9, with: 0xFF), mentions: ["UTF-8"]),
            Corruption(name: "deep nesting", bytes: file(String(repeating: "[", count: 100_000)), mentions: ["nested"]),
            Corruption(name: "duplicate key", bytes: file(#"{"t":{},"t":{}}"#), mentions: ["duplicate", "\"t\""]),
            Corruption(name: "entry not an object", bytes: file(#"{"t":[1]}"#), mentions: ["'t'", "not a JSON object"]),
            Corruption(name: "unknown dtype", bytes: file(entry(#""dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]"#), data: [0, 0]), mentions: ["'t'", "F8_E4M3"]),
            Corruption(name: "missing dtype", bytes: file(entry(#""shape":[2],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "dtype"]),
            Corruption(name: "negative dimension", bytes: file(entry(#""dtype":"F32","shape":[-1,2],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "-1", "not a non-negative integer"]),
            Corruption(name: "two negative dimensions", bytes: file(entry(#""dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "-2", "not a non-negative integer"]),
            Corruption(name: "fractional dimension", bytes: file(entry(#""dtype":"F32","shape":[1.5],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "1.5"]),
            Corruption(name: "integral float dimension", bytes: file(entry(#""dtype":"F32","shape":[2.0],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "2.0"]),
            Corruption(name: "exponent dimension", bytes: file(entry(#""dtype":"F32","shape":[2e0],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "2e0"]),
            Corruption(name: "boolean dimension", bytes: file(entry(#""dtype":"F32","shape":[true],"data_offsets":[0,4]"#), data: eight), mentions: ["'t'", "true"]),
            Corruption(name: "string dimension", bytes: file(entry(#""dtype":"F32","shape":["2"],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "\"2\""]),
            Corruption(name: "dimension beyond Int", bytes: file(entry(#""dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'"]),
            Corruption(name: "element count overflows", bytes: file(entry(#""dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "too many"]),
            Corruption(name: "byte count overflows", bytes: file(entry(#""dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]"#), data: eight), mentions: ["'t'", "too many bytes"]),
            Corruption(name: "overflow before a zero", bytes: file(entry(#""dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,0]"#)), mentions: ["'t'", "too many"]),
            Corruption(name: "offsets reversed", bytes: file(entry(#""dtype":"F32","shape":[0],"data_offsets":[8,0]"#), data: eight), mentions: ["'t'", "[8, 0]"]),
            Corruption(name: "offsets past the data", bytes: file(entry(#""dtype":"F32","shape":[2],"data_offsets":[8,16]"#), data: eight), mentions: ["'t'", "[8, 16]", "8-byte data section"]),
            Corruption(name: "offsets not matching the shape", bytes: file(entry(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#), data: eight + eight), mentions: ["'t'", "8 bytes", "needs 12"]),
            Corruption(name: "one offset", bytes: file(entry(#""dtype":"F32","shape":[2],"data_offsets":[0]"#), data: eight), mentions: ["'t'", "data_offsets"]),
            Corruption(name: "negative offset", bytes: file(entry(#""dtype":"F32","shape":[2],"data_offsets":[-8,0]"#), data: eight), mentions: ["'t'", "data_offsets"]),
            Corruption(name: "hole between tensors", bytes: file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: eight + [0, 0, 0, 0]), mentions: ["'b'", "hole", "4..<8"]),
            Corruption(name: "data not starting at 0", bytes: file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), mentions: ["'t'", "hole", "0..<4"]),
            Corruption(name: "trailing bytes", bytes: file(ok, data: eight + [1]), mentions: ["'t'", "1 trailing bytes", "8..<9"]),
            Corruption(name: "data without tensors", bytes: file("{}", data: eight), mentions: ["8 trailing bytes", "no tensor"]),
            Corruption(name: "zero-size tensor inside another", bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#, data: eight), mentions: ["'a'", "'e'", "overlap"]),
            Corruption(name: "two tensors on the same bytes", bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight), mentions: ["'a'", "'b'", "overlap"]),
            Corruption(name: "checksums not JSON", bytes: file(#"{"__metadata__":{"neuron.crc32c":"1234"},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight), mentions: ["neuron.crc32c", "not a JSON object"]),
            Corruption(name: "checksum not 8 hex digits", bytes: file(#"{"__metadata__":{"neuron.crc32c":"{\"t\":\"12g45678\"}"},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight), mentions: ["neuron.crc32c", "'t'", "8 hex digits"]),
            Corruption(name: "checksum for a tensor not in the file", bytes: file(#"{"__metadata__":{"neuron.crc32c":"{\"t\":\"00000000\",\"u\":\"00000000\"}"},"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#), mentions: ["neuron.crc32c", "'u'", "does not hold"]),
            Corruption(name: "tensor without a checksum", bytes: file(#"{"__metadata__":{"neuron.crc32c":"{}"},"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#), mentions: ["neuron.crc32c", "no checksum", "'t'"]),
            Corruption(name: "overlapping tensors", bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: eight + eight), mentions: ["'a'", "'b'", "overlap"]),
            Corruption(name: "metadata not strings", bytes: file(#"{"__metadata__":{"seed":130}}"#), mentions: ["__metadata__", "130"]),
            Corruption(name: "metadata not an object", bytes: file(#"{"__metadata__":"x"}"#), mentions: ["__metadata__"]),
            Corruption(name: "lone surrogate", bytes: file(#"{"\ud800":{}}"#), mentions: ["surrogate"]),
            Corruption(name: "bad escape", bytes: file(#"{"\x":{}}"#), mentions: ["escape"]),
            Corruption(name: "leading zero", bytes: file(entry(#""dtype":"F32","shape":[02],"data_offsets":[0,8]"#), data: eight), mentions: ["malformed number"]),
        ]
    }()

    @Test(arguments: corruptions)
    func rejectsCorruptInput(_ corruption: Corruption) {
        let message = ioMessage { _ = try Safetensors.decode(corruption.bytes) }
        for fragment in corruption.mentions {
            #expect(message.contains(fragment), "message \"\(message)\" does not mention \(fragment)")
        }
        // The header-only path validates the same things.
        _ = ioMessage { _ = try Safetensors.decodeMetadata(corruption.bytes) }
    }

    @Test func rejectsCorruptFilesNamingThePath() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        try #require(Self.corruptions.first { $0.name == "truncated data" }).bytes.write(to: url)
        #expect(ioMessage { _ = try Safetensors.read(contentsOf: url) }.contains(url.path))
        #expect(ioMessage { _ = try Safetensors.metadata(contentsOf: url) }.contains(url.path))
    }

    @Test func everyTruncationThrows() throws {
        let bytes = try Data(contentsOf: goldenDirectory.appendingPathComponent("dtypes.safetensors"))
        for n in 0..<bytes.count {
            _ = ioMessage { _ = try Safetensors.decode(bytes.prefix(n)) }
        }
    }

    @Test func corruptedHeaderBytesNeverCrash() throws {
        // Every single-byte change in the header either still parses or throws NeuronError.io.
        let bytes = try Data(contentsOf: goldenDirectory.appendingPathComponent("sequential_io.safetensors"))
        for i in 0..<min(bytes.count, 400) {
            for value: UInt8 in [0x00, 0x22, 0x2C, 0x39, 0x5D, 0x7D, 0xFF] {
                var changed = bytes
                changed[i] = value
                do { _ = try Safetensors.decode(changed) } catch NeuronError.io { } catch {
                    Issue.record("byte \(i) = \(value): \(error) is not NeuronError.io")
                }
            }
        }
    }

    @Test func missingFileNamesThePath() {
        let url = URL(fileURLWithPath: "/nonexistent/dir/weights.safetensors")
        #expect(ioMessage { _ = try Safetensors.read(contentsOf: url) }.contains(url.path))
        #expect(ioMessage { _ = try Safetensors.metadata(contentsOf: url) }.contains(url.path))
        let directory = FileManager.default.temporaryDirectory
        #expect(ioMessage { _ = try Safetensors.read(contentsOf: directory) }.contains(directory.path))
    }

    // MARK: Module state

    @Test func loadsPyTorchStateDict() throws {
        let model = try perceptron()
        let report = try model.load(from: goldenDirectory.appendingPathComponent("sequential_state_dict.safetensors"))
        #expect(report.isComplete)
        let io = try golden("sequential_io")
        let y = try noGrad { try model(try floatTensor(io, "x")) }
        expectClose(y, try floatTensor(io, "y"))
    }

    @Test func loadsUnderPrefix() throws {
        let data = try golden("linear_activations")
        let linear = try Linear(in: 7, out: 5)
        try linear.loadStateDict(data, prefix: "linear.param.")
        #expect(try linear.weight.value == floatTensor(data, "linear.param.weight"))
        expectClose(try linear(try floatTensor(data, "linear.x")), try floatTensor(data, "linear.y"))
    }

    @Test func strictLoadNamesMissingAndUnexpectedKeys() throws {
        var dict = try golden("sequential_state_dict")
        dict["0.bias"] = nil
        dict["3.weight"] = .float(Tensor([1]))
        let model = try perceptron()
        let before = model.stateDict()
        do {
            try model.loadStateDict(dict)
            Issue.record("strict load accepted a missing and an unexpected key")
        } catch NeuronError.invalidArgument(let message) {
            #expect(message.contains("'0.bias'") && message.contains("missing"))
            #expect(message.contains("'3.weight'") && message.contains("unexpected"))
        }
        #expect(model.stateDict() == before, "a failed load must change nothing")

        let report = try model.loadStateDict(dict, strict: false)
        #expect(report == LoadReport(missingKeys: ["0.bias"], unexpectedKeys: ["3.weight"]))
        #expect(model.stateDict()["0.weight"] == dict["0.weight"])
        #expect(model.stateDict()["0.bias"] == before["0.bias"])
    }

    @Test func shapeMismatchThrowsEvenWhenNotStrict() throws {
        let dict = try golden("sequential_state_dict")
        let model = try perceptron(out: 3)
        let before = model.stateDict()
        for strict in [true, false] {
            do {
                try model.loadStateDict(dict, strict: strict)
                Issue.record("loaded a [2, 3] weight into a [3, 3] one")
            } catch NeuronError.shapeMismatch(let message) {
                #expect(message.contains("'2.weight'") && message.contains("[2, 3]") && message.contains("[3, 3]"))
                #expect(message.contains("'2.bias'") && message.contains("[2]") && message.contains("[3]"))
            }
        }
        #expect(model.stateDict() == before)
    }

    @Test func floatIntegerMismatchNamesTheKey() throws {
        let tracker = Tracker()
        var dict = tracker.stateDict()
        dict["num_batches_tracked"] = .float(Tensor(Float(1)))
        let intoInteger = #expect(throws: NeuronError.self) { try tracker.loadStateDict(dict) }
        #expect(intoInteger == .invalidArgument("cannot load state dict: 'num_batches_tracked' holds float data but the module expects integer"))
        dict = tracker.stateDict()
        dict["scale"] = .int(IntTensor([1, 2, 3]))
        let intoParameter = #expect(throws: NeuronError.self) { try tracker.loadStateDict(dict) }
        #expect(intoParameter == .invalidArgument("cannot load state dict: 'scale' holds integer data but the module expects float"))
    }

    @Test func prefixSelectsAndStrips() throws {
        let source = Tracker()
        source.scale.value = Tensor([4, 5, 6])
        source.steps.value = .int(IntTensor(Int64(9)))
        var dict: [String: StoredTensor] = ["other.thing": .float(Tensor([0]))]
        for (key, value) in source.stateDict() { dict["bn." + key] = value }
        let target = Tracker()
        #expect(try target.loadStateDict(dict, prefix: "bn.").isComplete)
        #expect(target.stateDict() == source.stateDict())
        // An extra key under the prefix is unexpected; keys outside it are not.
        dict["bn.extra"] = .float(Tensor([0]))
        #expect(try target.loadStateDict(dict, prefix: "bn.", strict: false) == LoadReport(unexpectedKeys: ["bn.extra"]))
    }

    @Test func savesAndLoadsModules() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")

        let model = try perceptron()
        try model.save(to: url, metadata: ["epoch": "12"])
        let copy = try perceptron()
        #expect(copy.stateDict() != model.stateDict())
        #expect(try copy.load(from: url).isComplete)
        #expect(copy.stateDict() == model.stateDict())
        #expect(try Safetensors.metadata(contentsOf: url)["epoch"] == "12")

        let tracker = Tracker()
        tracker.mean.value = .float(Tensor([0.5, 1.5, 2.5]))
        tracker.steps.value = .int(IntTensor(Int64(7)))
        try tracker.save(to: url)
        let restored = Tracker()
        try restored.load(from: url)
        #expect(restored.stateDict() == tracker.stateDict())
        #expect(restored.steps.value == .int(IntTensor(Int64(7))))
    }

    @Test func stateDictIsASnapshot() throws {
        let linear = try Linear(in: 2, out: 2)
        let saved = linear.stateDict()
        let weight = try floatTensor(saved, "weight")
        linear.weight.update { $0[0] += 1 }
        #expect(try floatTensor(linear.stateDict(), "weight") != weight)
        #expect(try floatTensor(saved, "weight") == weight)
        #expect(Set(saved.keys) == ["weight", "bias"])
    }
}

private extension Data {
    /// A copy with the first `old` byte replaced by `new`.
    func replacingFirst(_ old: UInt8, with new: UInt8) -> Data {
        var copy = self
        if let i = copy.firstIndex(of: old) { copy[i] = new }
        return copy
    }
}
