import CPNG
import Foundation

/// Reads and writes PNG images as `[1, C, H, W]` float tensors (NCHW, C = 1 for grey or 3 for RGB)
/// with values in [0, 1]: what torchvision's `transforms.ToTensor()(Image.open(path).convert(mode))`
/// gives, with a batch axis in front.
///
/// Reading accepts every PNG colour type and bit depth and converts as Pillow and torchvision do:
/// - palette images become RGB;
/// - alpha (an alpha channel or a `tRNS` chunk) is dropped, not composited: a fully transparent pixel
///   keeps its stored colour, as with Pillow's `convert("RGB")`;
/// - 16-bit samples keep their high byte, 1-, 2- and 4-bit grey is scaled to 0...255;
/// - `gAMA`, `sRGB` and `iCCP` chunks are ignored: values are the stored samples divided by 255.
///
/// Writing produces an 8-bit grey or RGB PNG. libpng does the coding; its errors (bad CRC, a broken
/// zlib stream, a file cut short) come back as `NeuronError.io` naming the file, never as a crash.
public enum PNG {
    /// The channels an image is read as; the raw value is the channel count.
    public enum Channels: Int, Sendable {
        /// One channel. Colour images are converted with Pillow's `convert("L")` luma,
        /// L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 on 8-bit values (ITU-R 601-2 weights).
        case grey = 1
        /// Three channels. Grey images have their one channel repeated.
        case rgb = 3
    }

    /// The image in the PNG file at `url` as a `[1, C, H, W]` tensor of values in [0, 1].
    /// - Parameters:
    ///   - url: the file to read.
    ///   - channels: the channels to convert to; `nil` keeps the file's own (grey files, with or
    ///     without alpha, give one channel; palette and colour files three).
    /// - Throws: `NeuronError.io` naming the path when the file is missing, is not a PNG, or is
    ///   truncated or corrupt.
    public static func read(contentsOf url: URL, channels: Channels? = nil) throws -> Tensor {
        do {
            return try decode(contents(of: url), channels: channels)
        } catch NeuronError.io(let message) {
            throw NeuronError.io("\(url.path): \(message)")
        }
    }

    /// The image in the PNG bytes `data`; see `read(contentsOf:channels:)`.
    /// - Throws: `NeuronError.io` when the bytes are not a PNG or are truncated or corrupt.
    public static func decode(_ data: Data, channels: Channels? = nil) throws -> Tensor {
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var header = npng_header()
            try check { npng_read_header(&header, bytes.baseAddress, bytes.count, $0, $1) }
            let stored = Int(header.channels), height = Int(header.height), width = Int(header.width)
            var pixels = [UInt8](repeating: 0, count: height * width * stored)
            try check { message, size in
                pixels.withUnsafeMutableBufferPointer { npng_decode($0.baseAddress, bytes.baseAddress, bytes.count, message, size) }
            }
            let count = channels?.rawValue ?? stored
            var image = Tensor(uninitializedShape: [1, count, height, width])
            image.withUnsafeMutableBufferPointer { out in
                npng_unpack(out.baseAddress, Int32(count), pixels, Int32(stored), height * width)
            }
            return image
        }
    }

    /// Writes `image` to `url` as an 8-bit PNG, atomically (`writeAtomically`: temporary file, flush,
    /// rename), so a failure never leaves half a file.
    ///
    /// `image` is `[1, C, H, W]` or `[C, H, W]` with C = 1 (grey) or 3 (RGB). Values are clamped to
    /// [0, 1] (NaN becomes 0) and rounded to floor(255 v + 0.5), as torchvision's `save_image` does,
    /// so an image read by `read(contentsOf:channels:)` is written back byte for byte.
    /// - Throws: `NeuronError.shapeMismatch` naming the shape when it is not an image of that
    ///   layout; `NeuronError.io` naming the path when the file cannot be written.
    public static func write(_ image: Tensor, to url: URL) throws {
        let data = try encode(image)
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw NeuronError.io("\(url.path): directory \(directory.path) does not exist")
        }
        do {
            try writeAtomically(data, to: url)
        } catch NeuronError.io(let reason) {
            throw NeuronError.io("\(url.path): \(reason)")
        }
    }

    /// The PNG bytes of `image`; see `write(_:to:)`.
    /// - Throws: `NeuronError.shapeMismatch` naming the shape when it is not `[1, C, H, W]` or
    ///   `[C, H, W]` with C = 1 or 3 and H, W in 1...1_000_000 (libpng's limit).
    public static func encode(_ image: Tensor) throws -> Data {
        let shape = image.shape
        let chw = shape.count == 4 && shape[0] == 1 ? Array(shape.dropFirst()) : shape
        guard chw.count == 3, chw[0] == 1 || chw[0] == 3, chw.dropFirst().allSatisfy({ (1...maximumSide).contains($0) }) else {
            throw NeuronError.shapeMismatch(
                "a PNG image must be [1, C, H, W] or [C, H, W] with C = 1 or 3 and 1 <= H, W <= \(maximumSide), got \(shapeString(shape))")
        }
        let (channels, height, width) = (chw[0], chw[1], chw[2])
        var pixels = [UInt8](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { values in
            pixels.withUnsafeMutableBufferPointer { npng_pack($0.baseAddress, values.baseAddress, Int32(channels), height * width) }
        }
        var buffer = npng_buffer()
        defer { npng_buffer_free(&buffer) }
        try check { npng_encode(&buffer, pixels, UInt32(width), UInt32(height), Int32(channels), $0, $1) }
        return Data(bytes: buffer.bytes, count: buffer.count)
    }

    /// The largest height and width libpng accepts by default, in reading and in writing.
    static let maximumSide = 1_000_000

    /// The whole file, with a plain message for the common failures (Foundation's name the wrong thing).
    private static func contents(of url: URL) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw NeuronError.io("no such file")
        }
        guard !isDirectory.boolValue else { throw NeuronError.io("is a directory, not a PNG file") }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read: \(systemReason(error))")
        }
    }

    /// The POSIX reason under a Foundation error ("Permission denied"), which says more than its own.
    private static func systemReason(_ error: Error) -> String {
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? Error,
           (underlying as NSError).domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32((underlying as NSError).code)))
        }
        return error.localizedDescription
    }

    /// Runs a CPNG call, which returns nonzero and fills the message buffer it is given on failure.
    private static func check(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var message = [CChar](repeating: 0, count: 256)
        let failure: String? = message.withUnsafeMutableBufferPointer { buffer in
            call(buffer.baseAddress!, buffer.count) == 0 ? nil : String(cString: buffer.baseAddress!)
        }
        if let failure { throw NeuronError.io(failure) }
    }
}
