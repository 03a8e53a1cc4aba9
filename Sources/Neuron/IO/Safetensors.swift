import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes the safetensors format (Hugging Face's `safetensors.torch.load_file` /
/// `save_file`), the format of Neuron's checkpoints and golden test files.
///
/// Layout: an 8-byte little-endian `UInt64` header length N; N bytes of UTF-8 JSON mapping each tensor
/// name to `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` plus an optional
/// `"__metadata__"` object of strings; then the raw little-endian, row-major tensor bytes, with offsets
/// relative to the start of this data section. Ordered by offset, the tensors must tile the data
/// section exactly, from 0 to its end, with no hole, overlap or trailing byte (the reference
/// implementation's rule).
///
/// Reading converts F32, F16, BF16 and F64 to `StoredTensor.float` (F16 and BF16 widen exactly, F64
/// rounds to nearest) and I64, I32, I16, I8, U32, U16, U8 and BOOL to `StoredTensor.int`. Writing stores
/// `Tensor` as F32 and `IntTensor` as I64, keys sorted, data contiguous in key order, the header padded
/// with spaces to a multiple of 8 bytes and `__metadata__` holding `"format": "pt"` like files saved
/// from PyTorch. A malformed or truncated file throws `NeuronError.io` naming the problem and the key.
///
/// Integrity: files Neuron writes carry each tensor's CRC-32C in `__metadata__["neuron.crc32c"]`
/// (`checksumKey`), which reading verifies before building any tensor, so a flipped bit in the data
/// throws `NeuronError.io` naming the tensor (and the path, when reading a file) instead of loading
/// silently wrong weights; neither PyTorch nor the reference library checks data. Files without the key
/// (PyTorch's, Hugging Face's) load as before.
public enum Safetensors {
    /// The largest header accepted, as in the reference implementation: a corrupt length must not make
    /// the reader allocate gigabytes.
    public static let maximumHeaderLength = 100_000_000

    /// The tensors in the file at `url`.
    /// - Throws: `NeuronError.io` naming the path when the file cannot be read or is malformed.
    public static func read(contentsOf url: URL) throws -> [String: StoredTensor] {
        try naming(url) {
            let file = try InputFile(url)
            return try decode(file.read(at: 0, count: file.size))
        }
    }

    /// The `__metadata__` strings of the file at `url` (empty if it has none). Reads only the header,
    /// but still checks every entry against the file's size; the data and its checksums are not read.
    public static func metadata(contentsOf url: URL) throws -> [String: String] {
        try naming(url) {
            let file = try InputFile(url)
            let length = try headerLength(file.read(at: 0, count: min(8, file.size)), fileSize: UInt64(file.size))
            let header = try file.read(at: 8, count: length)
            return try Header(parsing: header, dataSize: file.size - 8 - length).metadata
        }
    }

    /// The tensors in safetensors bytes. When the header carries checksums (`neuron.crc32c`), every
    /// tensor's bytes are checked against its checksum before any tensor is built.
    /// - Throws: `NeuronError.io` when the bytes are truncated or malformed, or naming the first tensor
    ///   (by name) whose bytes fail their checksum.
    public static func decode(_ data: Data) throws -> [String: StoredTensor] {
        let length = try headerLength(data.prefix(8), fileSize: UInt64(data.count))
        let start = data.startIndex + 8 + length
        let header = try Header(parsing: data[(data.startIndex + 8)..<start], dataSize: data.count - 8 - length)
        return try data[start...].withUnsafeBytes { body in
            if let checksums = header.checksums {
                for entry in header.entries {
                    let computed = nn_crc32c(0, body.baseAddress.map { $0 + entry.offsets.lowerBound }, entry.offsets.count)
                    guard computed == checksums[entry.name] else {
                        throw NeuronError.io("tensor '\(entry.name)': its \(entry.offsets.count) bytes fail their checksum (CRC32C "
                            + "\(hex(computed)), \(metadataKey) \(jsonString(checksumKey)) records \(hex(checksums[entry.name] ?? 0))): "
                            + "the file is corrupt")
                    }
                }
            }
            return Dictionary(uniqueKeysWithValues: header.entries.map { entry in
                (entry.name, entry.decode(UnsafeRawBufferPointer(rebasing: body[entry.offsets])))
            })
        }
    }

    /// The `__metadata__` strings in safetensors bytes (empty if there are none).
    public static func decodeMetadata(_ data: Data) throws -> [String: String] {
        let length = try headerLength(data.prefix(8), fileSize: UInt64(data.count))
        return try Header(parsing: data.dropFirst(8).prefix(length), dataSize: data.count - 8 - length).metadata
    }

    /// Writes `tensors` to `url` atomically: the bytes go to a temporary file in the same directory,
    /// which is flushed to disk and then renamed over `url`, so a crash leaves either the old file or
    /// the new one, never a torn one. Temporary files that earlier saves of `url` left when killed are
    /// removed first (see `writeAtomically`).
    /// - Parameters:
    ///   - tensors: the tensors by name (`Module.stateDict()`, or any).
    ///   - url: the file to create or replace.
    ///   - metadata: strings stored in `__metadata__` next to `"format": "pt"` (a `format` given
    ///   here replaces `pt`) and the checksums (a `neuron.crc32c` given here is replaced by the checksums
    ///   of these tensors, so metadata read from another file can be passed on).
    /// - Throws: `NeuronError.io` naming the path when the file cannot be written;
    ///   `NeuronError.invalidArgument` for a tensor named `__metadata__`.
    public static func write(_ tensors: [String: StoredTensor], to url: URL, metadata: [String: String] = [:]) throws {
        let bytes = try encode(tensors, metadata: metadata)
        try naming(url) { try writeAtomically(bytes, to: url) }
    }

    /// The safetensors bytes of `tensors`: F32 for float tensors, I64 for integer tensors, keys sorted,
    /// each tensor's CRC32C in `__metadata__["neuron.crc32c"]`.
    /// - Throws: `NeuronError.invalidArgument` for a tensor named `__metadata__`.
    public static func encode(_ tensors: [String: StoredTensor], metadata: [String: String] = [:]) throws -> Data {
        guard tensors[metadataKey] == nil else {
            throw NeuronError.invalidArgument("a tensor cannot be named \(metadataKey), the key safetensors reserves for metadata")
        }
        let names = tensors.keys.sorted()
        var offsets: [Range<Int>] = []
        var dataSize = 0
        for name in names {
            let bytes = switch tensors[name]! {
            case .float(let t): t.count * 4
            case .int(let t): t.count * 8
            }
            offsets.append(dataSize..<(dataSize + bytes))
            dataSize += bytes
        }
        /// The header holding `checksums` (in `names` order), padded with spaces to a multiple of 8 bytes,
        /// which keeps the data section 8-byte aligned for readers that map the file.
        func header(checksums: [UInt32]) -> [UInt8] {
            let checksumJSON = "{" + zip(names, checksums).map { jsonString($0) + ":\"" + hex($1) + "\"" }.joined(separator: ",") + "}"
            let allMetadata = ["format": "pt"].merging(metadata) { $1 }.merging([checksumKey: checksumJSON]) { $1 }
            var json = "{" + jsonString(metadataKey) + ":{"
            json += allMetadata.keys.sorted().map { jsonString($0) + ":" + jsonString(allMetadata[$0]!) }.joined(separator: ",")
            json += "}"
            for (name, range) in zip(names, offsets) {
                let tensor = tensors[name]!
                let dtype: DType = if case .float = tensor { .f32 } else { .i64 }
                json += "," + jsonString(name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":["
                    + tensor.shape.map(String.init).joined(separator: ",")
                    + "],\"data_offsets\":[\(range.lowerBound),\(range.upperBound)]}"
            }
            json += "}"
            var bytes = Array(json.utf8)
            bytes += repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
            return bytes
        }
        // The checksums precede the data they cover, but each is 8 hex digits whatever its value, so a
        // header with zeros in their place has the final length: the data goes after it, and then the
        // header is written again with the checksums of the bytes in place.
        let headerLength = header(checksums: names.map { _ in 0 }).count
        let dataStart = 8 + headerLength
        var out = Data(count: dataStart + dataSize)
        out.withUnsafeMutableBytes { raw in
            for (name, range) in zip(names, offsets) {
                let offset = dataStart + range.lowerBound
                switch tensors[name]! {
                case .float(let t):
                    t.withUnsafeBufferPointer { values in
                        for (i, v) in values.enumerated() {
                            raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: offset + 4 * i, as: UInt32.self)
                        }
                    }
                case .int(let t):
                    for (i, v) in t.scalars.enumerated() {
                        raw.storeBytes(of: v.littleEndian, toByteOffset: offset + 8 * i, as: Int64.self)
                    }
                }
            }
            let checksums = offsets.map { nn_crc32c(0, raw.baseAddress! + dataStart + $0.lowerBound, $0.count) }
            let bytes = header(checksums: checksums)
            precondition(bytes.count == headerLength, "the checksums changed the header's length")
            raw.storeBytes(of: UInt64(headerLength).littleEndian, as: UInt64.self)
            raw.baseAddress!.advanced(by: 8).copyMemory(from: bytes, byteCount: headerLength)
        }
        return out
    }

    /// The `__metadata__` key of the checksums Neuron writes: a JSON object, stored as a string, that
    /// maps every tensor's name to the CRC-32C (Castagnoli) of its data bytes as 8 lowercase hex digits,
    /// e.g. `{"0.bias":"1c2a9d4e","0.weight":"0b7f5e21"}`.
    public static let checksumKey = "neuron.crc32c"

    /// `value` as 8 lowercase hex digits.
    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    static let metadataKey = "__metadata__"

    /// The header length stored in the first 8 bytes, checked against the file's size and the limit.
    static func headerLength(_ prefix: Data, fileSize: UInt64) throws -> Int {
        guard prefix.count == 8 else {
            throw NeuronError.io("file is \(fileSize) bytes, too short for the 8-byte header length")
        }
        let length = prefix.reduce(into: (value: UInt64(0), shift: UInt64(0))) { acc, byte in
            acc.value |= UInt64(byte) << acc.shift
            acc.shift += 8
        }.value
        guard length <= UInt64(maximumHeaderLength) else {
            throw NeuronError.io("header length \(length) exceeds the limit of \(maximumHeaderLength) bytes")
        }
        let following = fileSize - min(fileSize, 8)
        guard length <= following else {
            throw NeuronError.io("header length \(length) exceeds the \(following) bytes that follow it (truncated file?)")
        }
        return Int(length)
    }

    /// Runs `body`, turning any other error into `NeuronError.io` and prefixing every I/O
    /// message with the path, so the user knows which file is at fault.
    private static func naming<R>(_ url: URL, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch NeuronError.io(let message) {
            throw NeuronError.io("\(url.path): \(message)")
        } catch let error as NeuronError {
            throw error
        } catch {
            throw NeuronError.io("\(url.path): \(error.localizedDescription)")
        }
    }
}

// MARK: - Header

extension Safetensors {
    /// The element types a file may hold, by their safetensors names.
    enum DType: String {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
        case u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

        var size: Int {
            switch self {
            case .f64, .i64: 8
            case .f32, .i32, .u32: 4
            case .f16, .bf16, .i16, .u16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    /// One tensor's header entry, validated: `offsets` lie inside the data section and hold exactly
    /// `shape`'s elements.
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let offsets: Range<Int>

        /// The tensor from its bytes (`bytes.count == offsets.count`).
        func decode(_ bytes: UnsafeRawBufferPointer) -> StoredTensor {
            func float<Raw: FixedWidthInteger>(_: Raw.Type, _ convert: (Raw) -> Float) -> StoredTensor {
                var t = Tensor(uninitializedShape: shape)
                t.withUnsafeMutableBufferPointer { out in
                    for i in out.indices {
                        out[i] = convert(Raw(littleEndian: bytes.loadUnaligned(fromByteOffset: i * Raw.bitWidth / 8, as: Raw.self)))
                    }
                }
                return .float(t)
            }
            func int<Raw: FixedWidthInteger>(_: Raw.Type, _ convert: (Raw) -> Int64 = { Int64($0) }) -> StoredTensor {
                let count = bytes.count / (Raw.bitWidth / 8)
                let scalars = (0..<count).map { i in
                    convert(Raw(littleEndian: bytes.loadUnaligned(fromByteOffset: i * Raw.bitWidth / 8, as: Raw.self)))
                }
                return .int(try! IntTensor(shape: shape, scalars: scalars))
            }
            switch dtype {
            case .f32: return float(UInt32.self) { Float(bitPattern: $0) }
            case .f64: return float(UInt64.self) { Float(Double(bitPattern: $0)) }
            case .f16: return float(UInt16.self, Safetensors.floatFromHalf)
            // BF16 is the upper half of a float32.
            case .bf16: return float(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
            case .i64: return int(Int64.self)
            case .i32: return int(Int32.self)
            case .i16: return int(Int16.self)
            case .i8: return int(Int8.self)
            case .u32: return int(UInt32.self)
            case .u16: return int(UInt16.self)
            case .u8: return int(UInt8.self)
            case .bool: return int(UInt8.self) { $0 == 0 ? 0 : 1 }
            }
        }
    }

    /// A parsed and validated header.
    struct Header {
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        /// Each tensor's CRC32C by name, when the file carries `__metadata__["neuron.crc32c"]`.
        var checksums: [String: UInt32]?

        /// Parses the JSON header and checks every entry against a data section of `dataSize` bytes.
        init<Bytes: Collection<UInt8>>(parsing bytes: Bytes, dataSize: Int) throws {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw NeuronError.io("header is not valid UTF-8")
            }
            var parser = JSONParser(Array(text.utf8))
            guard case .object(let root) = try parser.parseDocument() else {
                throw NeuronError.io("header is not a JSON object")
            }
            for (key, value) in root.sorted(by: { $0.key < $1.key }) {
                if key == metadataKey {
                    metadata = try Self.metadata(value)
                } else {
                    entries.append(try Self.entry(key, value, dataSize: dataSize))
                }
            }
            try Self.checkLayout(entries, dataSize: dataSize)
            if let text = metadata[checksumKey] {
                checksums = try Self.checksums(text, entries: entries)
            }
        }

        /// The format's layout rule, as the reference implementation enforces it: ordered by offset, the
        /// tensors tile the data section exactly, from byte 0 to its end, with no hole, overlap or
        /// trailing byte. A zero-size tensor sits at a boundary between two others (or at either end).
        private static func checkLayout(_ entries: [Entry], dataSize: Int) throws {
            let ordered = entries.sorted {
                ($0.offsets.lowerBound, $0.offsets.upperBound) < ($1.offsets.lowerBound, $1.offsets.upperBound)
            }
            var end = 0
            var previous: Entry?
            for entry in ordered {
                let begin = entry.offsets.lowerBound
                if begin > end {
                    throw NeuronError.io("data section bytes \(end)..<\(begin) belong to no tensor: a \(begin - end)-byte hole before '\(entry.name)'")
                }
                if begin < end, let previous {
                    throw NeuronError.io("tensors '\(previous.name)' (data_offsets [\(previous.offsets.lowerBound), \(previous.offsets.upperBound)]) "
                        + "and '\(entry.name)' (data_offsets [\(begin), \(entry.offsets.upperBound)]) overlap")
                }
                end = entry.offsets.upperBound
                previous = entry
            }
            if end != dataSize {
                let after = previous.map { "after the last tensor '\($0.name)'" } ?? "and no tensor"
                throw NeuronError.io("data section bytes \(end)..<\(dataSize) belong to no tensor: \(dataSize - end) trailing bytes \(after)")
            }
        }

        /// The checksums in `__metadata__`: a JSON object giving every tensor's CRC32C as 8 hex digits.
        private static func checksums(_ text: String, entries: [Entry]) throws -> [String: UInt32] {
            func fail(_ problem: String) -> NeuronError {
                NeuronError.io("\(metadataKey) \(jsonString(checksumKey)) \(problem)")
            }
            var parser = JSONParser(Array(text.utf8))
            guard case .object(let fields)? = try? parser.parseDocument() else {
                throw fail("is not a JSON object of checksums")
            }
            let hexDigits = Set("0123456789abcdefABCDEF".utf8)
            var checksums: [String: UInt32] = [:]
            for (name, value) in fields {
                guard case .string(let hex) = value, hex.utf8.count == 8, hex.utf8.allSatisfy(hexDigits.contains),
                      let crc = UInt32(hex, radix: 16) else {
                    throw fail("gives tensor '\(name)' \(value), not 8 hex digits")
                }
                checksums[name] = crc
            }
            let names = Set(entries.map(\.name))
            if let extra = checksums.keys.filter({ !names.contains($0) }).min() {
                throw fail("has a checksum for tensor '\(extra)', which the file does not hold")
            }
            if let missing = entries.first(where: { checksums[$0.name] == nil }) {
                throw fail("has no checksum for tensor '\(missing.name)' (was the file changed after Neuron wrote it?)")
            }
            return checksums
        }

        private static func metadata(_ value: JSONValue) throws -> [String: String] {
            guard case .object(let fields) = value else {
                throw NeuronError.io("\(metadataKey) is not a JSON object")
            }
            return try fields.mapValues { field in
                guard case .string(let s) = field else {
                    throw NeuronError.io("\(metadataKey) holds a value that is not a string: \(field)")
                }
                return s
            }
        }

        private static func entry(_ name: String, _ value: JSONValue, dataSize: Int) throws -> Entry {
            func fail(_ problem: String) -> NeuronError { NeuronError.io("tensor '\(name)': \(problem)") }
            guard case .object(let fields) = value else { throw fail("entry is not a JSON object") }
            guard case .string(let dtypeName)? = fields["dtype"] else { throw fail("missing or non-string \"dtype\"") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("unsupported dtype \"\(dtypeName)\" (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U32, U16, U8, BOOL)")
            }
            guard case .array(let dims)? = fields["shape"] else { throw fail("missing or non-array \"shape\"") }
            let shape = try dims.map { dim in
                guard let n = dim.nonNegativeInt else { throw fail("shape \(JSONValue.array(dims)) has \(dim), not a non-negative integer") }
                return n
            }
            guard case .array(let bounds)? = fields["data_offsets"], bounds.count == 2,
                  let begin = bounds[0].nonNegativeInt, let end = bounds[1].nonNegativeInt else {
                throw fail("\"data_offsets\" must be two non-negative integers [begin, end], found \(fields["data_offsets"].map { "\($0)" } ?? "none")")
            }
            // The same left-to-right product as `Tensor.count`, so a shape accepted here cannot trap there.
            var count = 1
            for n in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow else { throw fail("shape \(shapeString(shape)) has too many elements") }
                count = product
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw fail("shape \(shapeString(shape)) has too many bytes") }
            guard begin <= end else { throw fail("data_offsets [\(begin), \(end)] end before they begin") }
            guard end <= dataSize else {
                throw fail("data_offsets [\(begin), \(end)] run past the \(dataSize)-byte data section (truncated file?)")
            }
            guard end - begin == byteCount else {
                throw fail("data_offsets [\(begin), \(end)] span \(end - begin) bytes but shape \(shapeString(shape)) of \(dtype.rawValue) needs \(byteCount)")
            }
            return Entry(name: name, dtype: dtype, shape: shape, offsets: begin..<end)
        }
    }
}

// MARK: - Files

extension Safetensors {
    /// A file open for reading. POSIX rather than `FileHandle` so failures carry the system's reason
    /// ("No such file or directory", "Is a directory", "Permission denied").
    final class InputFile {
        let descriptor: Int32
        let size: Int

        init(_ url: URL) throws {
            let fd = open(url.path, O_RDONLY)
            guard fd >= 0 else { throw NeuronError.io(String(cString: strerror(errno))) }
            var status = stat()
            // Reading a directory fails on some systems and returns nothing on others; say what it is.
            let problem = fstat(fd, &status) != 0 ? String(cString: strerror(errno))
                : status.st_mode & S_IFMT == S_IFDIR ? "is a directory" : nil
            if let problem {
                close(fd)
                throw NeuronError.io(problem)
            }
            descriptor = fd
            size = Int(status.st_size)
        }

        deinit { close(descriptor) }

        /// `count` bytes from `offset`; throws if the file ends sooner.
        func read(at offset: Int, count: Int) throws -> Data {
            var data = Data(count: count)
            try data.withUnsafeMutableBytes { raw in
                var done = 0
                while done < count {
                    let n = pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset + done))
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw NeuronError.io(String(cString: strerror(errno))) }
                    guard n > 0 else { throw NeuronError.io("file ended after \(offset + done) bytes, expected \(offset + count)") }
                    done += n
                }
            }
            return data
        }
    }
}

// MARK: - Half floats and JSON

extension Safetensors {
    /// IEEE half (1 sign, 5 exponent, 10 mantissa bits) to float, exactly, including subnormals, infinities
    /// and NaN. Written out rather than through `Float16`, which some platforms (macOS on Intel) lack.
    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa * 2^-24, exact in float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
    }

    /// A JSON value. Numbers keep their literal text so integers convert exactly: `JSONSerialization`'s
    /// `NSNumber` would turn `true` into 1 and lose precision above 2^53.
    indirect enum JSONValue: CustomStringConvertible {
        case object([String: JSONValue])
        case array([JSONValue])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        /// The value as an `Int` when it is an integer literal in 0...Int.max (no fraction, exponent or sign).
        var nonNegativeInt: Int? {
            guard case .number(let text) = self, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            return Int(text)
        }

        var description: String {
            switch self {
            case .object(let fields): "{" + fields.keys.sorted().map { Safetensors.jsonString($0) + ": " + fields[$0]!.description }.joined(separator: ", ") + "}"
            case .array(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
            case .string(let s): Safetensors.jsonString(s)
            case .number(let text): text
            case .bool(let b): String(b)
            case .null: "null"
            }
        }
    }

    /// `s` as a quoted JSON string.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A strict RFC 8259 parser for safetensors headers. Throws `NeuronError.io` naming the byte offset of
    /// the first error; duplicate keys are an error (two tensors under one name would be ambiguous) and
    /// nesting is limited, so a hostile header cannot exhaust the stack.
    struct JSONParser {
        private let bytes: [UInt8]
        private var position = 0
        private var depth = 0
        private static let maximumDepth = 64

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// One value followed only by whitespace (safetensors pads headers with spaces).
        mutating func parseDocument() throws -> JSONValue {
            let value = try parseValue()
            skipWhitespace()
            guard position == bytes.count else { throw error("unexpected characters after the JSON value") }
            return value
        }

        private func error(_ problem: String) -> NeuronError {
            NeuronError.io("invalid JSON in header at byte \(position): \(problem)")
        }

        private mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        private mutating func expect(_ byte: UInt8) throws {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else {
                throw error("expected '\(Character(Unicode.Scalar(byte)))'")
            }
            position += 1
        }

        /// Consumes `byte` (after whitespace) if it is next.
        private mutating func consume(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        private mutating func parseValue() throws -> JSONValue {
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of header") }
            switch bytes[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                defer { depth -= 1 }
                guard depth <= Self.maximumDepth else { throw error("nested deeper than \(Self.maximumDepth) levels") }
                return bytes[position] == UInt8(ascii: "{") ? try parseObject() : try parseArray()
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try parseLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
            }
        }

        private mutating func parseObject() throws -> JSONValue {
            try expect(UInt8(ascii: "{"))
            var fields: [String: JSONValue] = [:]
            if consume(UInt8(ascii: "}")) { return .object(fields) }
            repeat {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                try expect(UInt8(ascii: ":"))
                let value = try parseValue()
                guard fields.updateValue(value, forKey: key) == nil else { throw error("duplicate key \(Safetensors.jsonString(key))") }
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            return .object(fields)
        }

        private mutating func parseArray() throws -> JSONValue {
            try expect(UInt8(ascii: "["))
            var items: [JSONValue] = []
            if consume(UInt8(ascii: "]")) { return .array(items) }
            repeat { items.append(try parseValue()) } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
            return .array(items)
        }

        private mutating func parseLiteral(_ word: String) throws {
            let w = Array(word.utf8)
            guard bytes.count - position >= w.count, bytes[position..<(position + w.count)].elementsEqual(w) else {
                throw error("invalid literal")
            }
            position += w.count
        }

        /// The literal text of a number, checked against JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        private mutating func parseNumber() throws -> String {
            let start = position
            func digits() -> Int {
                let from = position
                while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
                return position - from
            }
            func next(_ allowed: String) -> Bool {
                guard position < bytes.count, allowed.utf8.contains(bytes[position]) else { return false }
                position += 1
                return true
            }
            _ = next("-")
            let leadingZero = position < bytes.count && bytes[position] == UInt8(ascii: "0")
            let integerDigits = digits()
            guard integerDigits > 0, !(leadingZero && integerDigits > 1) else { throw error("malformed number") }
            if next("."), digits() == 0 { throw error("malformed number") }
            if next("eE") {
                _ = next("+-")
                if digits() == 0 { throw error("malformed number") }
            }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        private mutating func parseString() throws -> String {
            position += 1 // the opening quote
            var out: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard position < bytes.count else { throw error("unterminated string") }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var code = try parseHex4()
                        if (0xD800..<0xDC00).contains(code) {
                            guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                                throw error("unpaired surrogate in \\u escape")
                            }
                            position += 2
                            let low = try parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("unpaired surrogate in \\u escape") }
                        out += Array(String(Character(scalar)).utf8)
                    default:
                        throw error("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
                    }
                case 0..<0x20:
                    throw error("control character in string")
                default:
                    out.append(byte)
                }
            }
        }

        private mutating func parseHex4() throws -> UInt32 {
            guard bytes.count - position >= 4,
                  let code = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) else {
                throw error("\\u needs four hex digits")
            }
            // UInt32(_:radix:) accepts a sign; JSON does not.
            guard !bytes[position..<(position + 4)].contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }) else {
                throw error("\\u needs four hex digits")
            }
            position += 4
            return code
        }
    }
}
