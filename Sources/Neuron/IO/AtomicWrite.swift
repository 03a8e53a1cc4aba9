import Foundation

/// Writes `data` to `url` atomically: the bytes go to a temporary file in the same directory, which is
/// flushed to disk and then renamed over `url`, so a crash leaves either the old file or the new one,
/// never a torn one. Every file Neuron saves (safetensors, checkpoints, PNG) goes through here.
func writeAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: .min ... .max)).tmp")
    func failure(_ what: String, _ path: String) -> NeuronError {
        NeuronError.io("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { throw failure("create", temporary.path) }
    var renamed = false
    defer { if !renamed { unlink(temporary.path) } }
    do {
        defer { close(fd) }
        try data.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", temporary.path)
                }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw failure("flush", temporary.path) }
    }
    guard rename(temporary.path, url.path) == 0 else { throw failure("rename to", url.path) }
    renamed = true
    // Flushing the directory makes the rename itself durable; failing to is not worth an error.
    let dirfd = open(directory.path, O_RDONLY)
    if dirfd >= 0 { fsync(dirfd); close(dirfd) }
}
