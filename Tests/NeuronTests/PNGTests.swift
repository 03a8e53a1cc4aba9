import Foundation
import Testing
@testable import Neuron

// MARK: - A PNG builder independent of libpng

/// Builds PNG files byte by byte (stored deflate blocks, CRC-32, Adler-32), so the reader is tested
/// on files libpng did not write, in colour types and bit depths our writer never produces.
private enum RawPNG {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]

    /// `rows` are the packed samples of each scanline (of each interlace pass) without the filter byte.
    static func file(width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8, interlaced: Bool = false,
                     chunks: [(String, [UInt8])] = [], rows: [[UInt8]]) -> [UInt8] {
        let ihdr = bigEndian(width) + bigEndian(height) + [bitDepth, colorType, 0, 0, interlaced ? 1 : 0]
        var bytes = signature + chunk("IHDR", ihdr)
        for (type, data) in chunks { bytes += chunk(type, data) }
        bytes += chunk("IDAT", zlibStored(rows.flatMap { [0] + $0 }))
        return bytes + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        precondition(data.count < 65536, "one stored block is enough for test images")
        let n = UInt16(data.count)
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + data + bigEndian(b << 16 | a)
    }
}

/// `values` (0...255) as the tensor reading them should give.
private func image(_ shape: [Int], _ values: [Int]) throws -> Tensor {
    try Tensor(shape: shape, scalars: values.map { Float($0) / 255 })
}

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-png-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The message of the `NeuronError.io` that `body` throws, or nil (recording an issue) if it throws none.
private func ioMessage(_ body: () throws -> Any, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    do {
        _ = try body()
        Issue.record("expected NeuronError.io, nothing was thrown", sourceLocation: sourceLocation)
    } catch NeuronError.io(let message) {
        return message
    } catch {
        Issue.record("expected NeuronError.io, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

// MARK: - Tests

@Suite struct PNGTests {
    @Test func greyRoundTripIsExactAndWritesAGreyHeader() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("grey.png")
        let original = try image([1, 1, 3, 5], Array(0..<15).map { $0 * 255 / 14 })
        try PNG.write(original, to: url)
        #expect(try PNG.read(contentsOf: url) == original)

        let bytes = [UInt8](try Data(contentsOf: url))
        #expect(Array(bytes.prefix(8)) == RawPNG.signature)
        #expect(Array(bytes[12..<16]) == Array("IHDR".utf8))
        #expect(Array(bytes[16..<24]) == RawPNG.bigEndian(5) + RawPNG.bigEndian(3))   // width, height
        #expect(bytes[24] == 8 && bytes[25] == 0)                                      // 8-bit grey
        // The writer leaves no temporary file behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["grey.png"])
    }

    @Test func rgbRoundTripIsExactFromRank3() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("rgb.png")
        var g = RandomGenerator(seed: 7)
        let values = (0..<(3 * 4 * 6)).map { _ in Int(g.next() % 256) }
        let original = try image([3, 4, 6], values)
        try PNG.write(original, to: url)
        let read = try PNG.read(contentsOf: url)
        #expect(read == (try original.reshaped([1, 3, 4, 6])))
        let bytes = [UInt8](try Data(contentsOf: url))
        #expect(Array(bytes[16..<24]) == RawPNG.bigEndian(6) + RawPNG.bigEndian(4))
        #expect(bytes[24] == 8 && bytes[25] == 2)                                      // 8-bit RGB
        // Pixel (y, x) = (2, 5) is interleaved in the file and planar in the tensor.
        #expect(read[0, 1, 2, 5] == Float(values[1 * 24 + 2 * 6 + 5]) / 255)
    }

    @Test func writeReplacesAnExistingFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("image.png")
        try PNG.write(Tensor.zeros([1, 1, 2, 2]), to: url)
        try PNG.write(Tensor.ones([1, 3, 3, 1]), to: url)
        #expect(try PNG.read(contentsOf: url) == Tensor.ones([1, 3, 3, 1]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["image.png"])
    }

    @Test func writeClampsAndRoundsHalfUp() throws {
        let values: [Float] = [-0.2, 0, 1 / 255, 0.25, 0.5, 0.75, 1, 1.5, .nan, .infinity, -.infinity]
        let read = try PNG.decode(PNG.encode(Tensor(shape: [1, 1, 1, values.count], scalars: values)))
        // floor(255 v + 0.5): 63.75 -> 64, 127.5 -> 128, 191.25 -> 191; NaN -> 0.
        #expect(read == (try image([1, 1, 1, values.count], [0, 0, 1, 64, 128, 191, 255, 255, 0, 255, 0])))
    }

    @Test func readsGreyDepthsAndInterlacing() throws {
        let grey8 = RawPNG.file(width: 2, height: 2, bitDepth: 8, colorType: 0, rows: [[0, 64], [128, 255]])
        #expect(try PNG.decode(Data(grey8)) == (try image([1, 1, 2, 2], [0, 64, 128, 255])))

        // 1-bit: 1 0 1 scales to 255 0 255.
        let grey1 = RawPNG.file(width: 3, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1010_0000]])
        #expect(try PNG.decode(Data(grey1)) == (try image([1, 1, 1, 3], [255, 0, 255])))

        // 16-bit keeps the high byte.
        let grey16 = RawPNG.file(width: 3, height: 1, bitDepth: 16, colorType: 0, rows: [[0x12, 0x34, 0xFF, 0xFF, 0x00, 0xFF]])
        #expect(try PNG.decode(Data(grey16)) == (try image([1, 1, 1, 3], [0x12, 255, 0])))

        // Adam7 on 2 x 2: pass 1 holds (0, 0), pass 6 holds (0, 1), pass 7 holds row 1.
        let interlaced = RawPNG.file(width: 2, height: 2, bitDepth: 8, colorType: 0, interlaced: true, rows: [[10], [20], [30, 40]])
        #expect(try PNG.decode(Data(interlaced)) == (try image([1, 1, 2, 2], [10, 20, 30, 40])))
    }

    @Test func dropsAlphaAndExpandsPalettes() throws {
        let rgba = RawPNG.file(width: 2, height: 1, bitDepth: 8, colorType: 6, rows: [[10, 20, 30, 0, 40, 50, 60, 255]])
        #expect(try PNG.decode(Data(rgba)) == (try image([1, 3, 1, 2], [10, 40, 20, 50, 30, 60])))

        let greyAlpha = RawPNG.file(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [[70, 0, 80, 128]])
        #expect(try PNG.decode(Data(greyAlpha)) == (try image([1, 1, 1, 2], [70, 80])))

        // 2-bit palette indices 2 0 1 with a tRNS chunk making entry 0 transparent.
        let palette = RawPNG.file(width: 3, height: 1, bitDepth: 2, colorType: 3,
                                  chunks: [("PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255]), ("tRNS", [0, 128])],
                                  rows: [[0b1000_0100]])
        #expect(try PNG.decode(Data(palette)) == (try image([1, 3, 1, 3], [0, 255, 0, 0, 0, 255, 255, 0, 0])))

        let rgb16 = RawPNG.file(width: 1, height: 1, bitDepth: 16, colorType: 2, rows: [[0xAB, 0xCD, 0x01, 0x02, 0xFF, 0x00]])
        #expect(try PNG.decode(Data(rgb16)) == (try image([1, 3, 1, 1], [0xAB, 0x01, 0xFF])))
    }

    @Test func convertsChannelsOnRequest() throws {
        // Pillow's convert("L") gives 76, 150, 29 for pure red, green, blue.
        let rgb = RawPNG.file(width: 4, height: 1, bitDepth: 8, colorType: 2,
                              rows: [[255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30]])
        let grey = try PNG.decode(Data(rgb), channels: .grey)
        #expect(grey == (try image([1, 1, 1, 4], [76, 150, 29, 124])))

        let greyFile = RawPNG.file(width: 2, height: 1, bitDepth: 8, colorType: 0, rows: [[5, 250]])
        #expect(try PNG.decode(Data(greyFile), channels: .rgb) == (try image([1, 3, 1, 2], [5, 250, 5, 250, 5, 250])))
        #expect(try PNG.decode(Data(greyFile), channels: .grey) == (try image([1, 1, 1, 2], [5, 250])))

        let palette = RawPNG.file(width: 1, height: 1, bitDepth: 8, colorType: 3, chunks: [("PLTE", [0, 255, 0])], rows: [[0]])
        #expect(try PNG.decode(Data(palette), channels: .grey) == (try image([1, 1, 1, 1], [150])))
    }

    @Test func missingFileDirectoryAndNonPNGThrow() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.png")
        let message = ioMessage { try PNG.read(contentsOf: missing) }
        #expect(message?.contains(missing.path) == true && message?.contains("no such file") == true, "\(message ?? "")")

        #expect(ioMessage { try PNG.read(contentsOf: dir) }?.contains("directory") == true)

        let text = dir.appendingPathComponent("text.png")
        try Data("hello, world\n".utf8).write(to: text)
        let notPNG = ioMessage { try PNG.read(contentsOf: text) }
        #expect(notPNG?.contains(text.path) == true && notPNG?.contains("not a PNG") == true, "\(notPNG ?? "")")

        let empty = dir.appendingPathComponent("empty.png")
        try Data().write(to: empty)
        #expect(ioMessage { try PNG.read(contentsOf: empty) }?.contains("empty file") == true)
    }

    @Test func everyTruncationThrows() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try PNG.encode(randomTensor([3, 8, 8], seed: 3, low: 0, high: 1))
        // Every proper prefix, including one that keeps all image data and loses only IEND.
        for length in 0..<bytes.count {
            let message = ioMessage { try PNG.decode(bytes.prefix(length)) }
            #expect(message != nil, "a PNG cut to \(length) of \(bytes.count) bytes was accepted")
        }
        let url = dir.appendingPathComponent("cut.png")
        try bytes.prefix(bytes.count / 2).write(to: url)
        let message = ioMessage { try PNG.read(contentsOf: url) }
        #expect(message?.contains(url.path) == true && message?.contains("truncated") == true, "\(message ?? "")")
    }

    @Test func corruptDataThrows() throws {
        let valid = [UInt8](try PNG.encode(randomTensor([1, 8, 8], seed: 4, low: 0, high: 1)))
        var header = valid
        header[19] ^= 0x01   // the width in IHDR: its CRC no longer matches
        let crc = ioMessage { try PNG.decode(Data(header)) }
        #expect(crc?.contains("corrupt") == true && crc?.contains("IHDR: CRC error") == true, "\(crc ?? "")")
        var data = valid
        data[data.count - 20] ^= 0xFF   // the zlib checksum at the end of IDAT
        let adler = ioMessage { try PNG.decode(Data(data)) }
        #expect(adler?.contains("corrupt") == true && adler?.contains("IDAT") == true, "\(adler ?? "")")

        // A valid-looking header claiming a million by a million pixels in a 70-byte file must fail
        // before anything the size of the image is allocated.
        let huge = RawPNG.file(width: 1_000_000, height: 1_000_000, bitDepth: 8, colorType: 2, rows: [[1, 2, 3]])
        let size = ioMessage { try PNG.decode(Data(huge)) }
        #expect(size?.contains("1000000 x 1000000") == true, "\(size ?? "")")

        // Row data shorter than the header promises: the zlib stream ends early.
        let short = RawPNG.file(width: 4, height: 4, bitDepth: 8, colorType: 0, rows: [[1, 2, 3, 4]])
        #expect(ioMessage { try PNG.decode(Data(short)) } != nil)

        // An unknown colour type (5) in IHDR.
        let badType = RawPNG.file(width: 1, height: 1, bitDepth: 8, colorType: 5, rows: [[0]])
        #expect(ioMessage { try PNG.decode(Data(badType)) }?.contains("corrupt") == true)
    }

    @Test func mutatedChunksWithValidCRCsThrowOrDecode() throws {
        // Flip bytes inside IHDR or IDAT and repair the CRC, so the damage reaches libpng's header
        // checks and zlib rather than stopping at the checksum. Any outcome but a crash or a
        // non-I/O error is acceptable; a crash fails the whole run.
        let valid = [UInt8](try PNG.encode(randomTensor([3, 6, 5], seed: 5, low: 0, high: 1)))
        var chunks: [(start: Int, length: Int)] = []   // start of the type field, data length
        var offset = 8
        while offset < valid.count {
            let length = valid[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            chunks.append((offset + 4, length))
            offset += 12 + length
        }
        var g = RandomGenerator(seed: 6)
        var failures = 0
        for _ in 0..<400 {
            var bytes = valid
            let chunk = chunks[Int(g.next() % 2)]   // IHDR, then the one IDAT
            for _ in 0..<(1 + Int(g.next() % 3)) {
                bytes[chunk.start + 4 + Int(g.next() % UInt64(chunk.length))] ^= UInt8(1 + g.next() % 255)
            }
            let body = Array(bytes[chunk.start..<(chunk.start + 4 + chunk.length)])
            bytes.replaceSubrange((chunk.start + 4 + chunk.length)..<(chunk.start + 8 + chunk.length), with: RawPNG.bigEndian(RawPNG.crc32(body)))
            do {
                let image = try PNG.decode(Data(bytes))
                #expect(image.rank == 4 && image.shape[0] == 1 && [1, 3].contains(image.shape[1]))
            } catch NeuronError.io {
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    @Test func writeRejectsNonImagesAndMissingDirectories() throws {
        for shape in [[2, 3, 4, 4], [4, 4], [1, 2, 4, 4], [4, 4, 4], [1, 3, 0, 4], [1, 1, 4, 4, 1], [1, 1, 1_000_001, 1]] {
            do {
                _ = try PNG.encode(Tensor.zeros(shape))
                Issue.record("shape \(shape) was accepted")
            } catch NeuronError.shapeMismatch(let message) {
                #expect(message.contains(shapeString(shape)), "\(message)")
            }
        }
        let nowhere = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/image.png")
        let message = ioMessage { try PNG.write(Tensor.zeros([1, 1, 1, 1]), to: nowhere) }
        #expect(message?.contains(nowhere.path) == true && message?.contains("does not exist") == true, "\(message ?? "")")
    }
}

@Suite struct ResizeTests {
    let square = Tensor([[1, 2], [3, 4]])

    @Test func upscalesWithHalfPixelCentres() throws {
        // PyTorch: F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False).
        let x = try square.reshaped([1, 1, 2, 2])
        let expected = try Tensor(shape: [1, 1, 4, 4], scalars: [1.0, 1.25, 1.75, 2.0,
                                                                  1.5, 1.75, 2.25, 2.5,
                                                                  2.5, 2.75, 3.25, 3.5,
                                                                  3.0, 3.25, 3.75, 4.0])
        expectClose(try x.resized(height: 4, width: 4), expected, atol: 1e-6, rtol: 1e-5, "2x2 -> 4x4")

        // Width 2 -> 5: sources clamp to 0 at the left and to the last pixel at the right.
        let row = try Tensor([0, 10]).reshaped([1, 1, 1, 2])
        expectClose(try row.resized(height: 1, width: 5), try Tensor([0, 1, 5, 9, 10]).reshaped([1, 1, 1, 5]),
                    atol: 1e-5, rtol: 1e-5, "2 -> 5")
    }

    @Test func alignCornersKeepsCornerPixels() throws {
        let x = try square.reshaped([1, 1, 2, 2])
        let expected = try Tensor(shape: [1, 1, 3, 3], scalars: [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4])
        expectClose(try x.resized(height: 3, width: 3, alignCorners: true), expected, "align corners 2x2 -> 3x3")
        #expect(try x.resized(height: 1, width: 1, alignCorners: true).scalars == [1])
        #expect(try x.resized(height: 1, width: 1).scalars == [2.5])
    }

    @Test func identitySizeIsExact() throws {
        let x = randomTensor([2, 3, 5, 7], seed: 11)
        #expect(try x.resized(height: 5, width: 7) == x)
        #expect(try x.resized(height: 5, width: 7, alignCorners: true) == x)
    }

    @Test func downscales() throws {
        // Halving samples the centre of each 2 x 2 block: its mean.
        let x = try Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init))
        expectClose(try x.resized(height: 2, width: 2), try Tensor(shape: [1, 1, 2, 2], scalars: [2.5, 4.5, 10.5, 12.5]), "4x4 -> 2x2")
        // 3 -> 2 samples 0.25 and 1.75.
        let row = try Tensor([0, 1, 2]).reshaped([1, 1, 1, 3])
        expectClose(try row.resized(height: 1, width: 2), try Tensor([0.25, 1.75]).reshaped([1, 1, 1, 2]), "3 -> 2")
    }

    @Test func resizesEveryPlaneAlone() throws {
        let x = randomTensor([2, 3, 4, 5], seed: 12)
        let y = try x.resized(height: 7, width: 3)
        #expect(y.shape == [2, 3, 7, 3])
        let planes = try (0..<6).map { p in
            try Tensor(shape: [1, 1, 4, 5], scalars: Array(x.scalars[(p * 20)..<(p * 20 + 20)])).resized(height: 7, width: 3).scalars
        }
        #expect(y.scalars == planes.flatMap { $0 })
    }

    @Test func rejectsBadArguments() throws {
        #expect(throws: NeuronError.shapeMismatch("resized(height:width:) needs [N, C, H, W] with H, W > 0, got [2, 2]")) {
            try square.resized(height: 4, width: 4)
        }
        #expect(throws: NeuronError.shapeMismatch("resized(height:width:) needs [N, C, H, W] with H, W > 0, got [1, 1, 0, 2]")) {
            try Tensor.zeros([1, 1, 0, 2]).resized(height: 4, width: 4)
        }
        let x = try square.reshaped([1, 1, 2, 2])
        #expect(throws: NeuronError.invalidArgument("resized(height:width:) needs a size of at least 1 x 1, got 0 x 3")) {
            try x.resized(height: 0, width: 3)
        }
        #expect(throws: NeuronError.invalidArgument("resized(height:width:) has no gradient; resize detached() values")) {
            try x.requiringGrad().resized(height: 3, width: 3)
        }
        #expect(try Tensor.zeros([0, 3, 2, 2]).resized(height: 3, width: 3).shape == [0, 3, 3, 3])
    }
}
