import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `url` atomically: the bytes go to a temporary file `.<name>.<random>.tmp` in the same
/// directory, which is flushed to disk and then renamed over `url`, so a crash leaves either the old
/// file or the new one, never a torn one. Every file Neuron saves (safetensors, checkpoints, PNG) goes
/// through here.
///
/// The writer holds an exclusive `flock` on its temporary file from creation to rename. A writer killed
/// mid-save leaves its temporary file behind, but the kernel drops the lock with the process, which is
/// how the next save of the same target tells the dead writer's file (lock free: removed) from a live
/// writer's (lock held: kept) before writing its own. Locks are advisory and per open file, so this holds
/// between processes and between threads of one process alike.
func writeAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    removeStaleTemporaryFiles(of: url)
    let (fd, temporary) = try createLockedTemporaryFile(for: url)
    // Closing drops the lock, so it comes last, after the rename or the unlink of a failed write.
    defer { close(fd) }
    do {
        try data.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw systemFailure("write", temporary.path)
                }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw systemFailure("flush", temporary.path) }
        guard rename(temporary.path, url.path) == 0 else { throw systemFailure("rename to", url.path) }
    } catch {
        unlink(temporary.path)
        throw error
    }
    // Flushing the directory makes the rename itself durable; failing to is not worth an error.
    let dirfd = open(directory.path, O_RDONLY | O_CLOEXEC)
    if dirfd >= 0 { fsync(dirfd); close(dirfd) }
}

/// The temporary file a save of `url` writes to first: `.<name>.<decimal UInt32>.tmp`.
func temporaryFileName(for url: URL, tag: UInt32) -> String {
    ".\(url.lastPathComponent).\(tag).tmp"
}

/// Whether `name` is one of the temporary files `temporaryFileName(for: url, tag:)` makes, for any tag.
func isTemporaryFileName(_ name: String, of url: URL) -> Bool {
    // Bytes, not characters: file names are bytes, and String comparison would equate canonically
    // equivalent names that are different files.
    let name = Array(name.utf8), prefix = Array(".\(url.lastPathComponent).".utf8), suffix = Array(".tmp".utf8)
    guard name.count > prefix.count + suffix.count, name.starts(with: prefix), name.reversed().starts(with: suffix.reversed()) else {
        return false
    }
    return name[prefix.count..<(name.count - suffix.count)].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
}

/// A new temporary file for a save of `url`, open for writing and exclusively locked, with its path.
///
/// Creating the file and locking it are two steps, so another save's cleanup may find the file unlocked
/// in between and remove it. The lock is therefore taken without waiting, and the file still at the
/// path afterwards must be the one this descriptor has open; otherwise this one is abandoned for a new
/// name. Cleanup only removes a file while holding its lock, so a file that passed both checks is safe.
private func createLockedTemporaryFile(for url: URL) throws -> (Int32, URL) {
    let directory = url.deletingLastPathComponent()
    for _ in 0..<16 {
        let temporary = directory.appendingPathComponent(temporaryFileName(for: url, tag: .random(in: .min ... .max)))
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            if errno == EEXIST || errno == EINTR { continue }
            throw systemFailure("create", temporary.path)
        }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 && isOpen(fd, at: temporary.path) {
            return (fd, temporary)
        }
        // Another save's cleanup holds or has removed the file; it removes it (or has), not us.
        close(fd)
    }
    throw NeuronError.io("cannot create a temporary file for \(url.path): every attempt was taken or removed by another save")
}

/// Removes the temporary files of earlier saves of `url` whose writer is gone: those whose lock can be
/// taken. Best effort: a file that cannot be opened, locked or removed is left alone.
private func removeStaleTemporaryFiles(of url: URL) {
    let directory = url.deletingLastPathComponent()
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
    for name in names where isTemporaryFileName(name, of: url) {
        let path = directory.appendingPathComponent(name).path
        // O_RDONLY suffices for flock, and O_NOFOLLOW keeps a planted symlink from being followed.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { continue }
        // The lock is held until after the unlink, so no writer can claim the file in between.
        if flock(fd, LOCK_EX | LOCK_NB) == 0 && isOpen(fd, at: path) {
            unlink(path)
        }
        close(fd)
    }
}

/// Whether `path` still names the file that `fd` has open (same device and inode).
private func isOpen(_ fd: Int32, at path: String) -> Bool {
    var opened = stat(), named = stat()
    guard fstat(fd, &opened) == 0, lstat(path, &named) == 0 else { return false }
    return opened.st_dev == named.st_dev && opened.st_ino == named.st_ino
}

private func systemFailure(_ what: String, _ path: String) -> NeuronError {
    NeuronError.io("cannot \(what) \(path): \(String(cString: strerror(errno)))")
}
