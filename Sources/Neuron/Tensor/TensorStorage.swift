import Foundation
import Synchronization

/// A reference-counted, 64-byte aligned float buffer. Tensors share one until a write (copy-on-write).
///
/// Freed buffers go back to a small size-keyed cache, so a training loop that allocates the same
/// activation shapes every step reuses memory instead of paging fresh buffers in (PyTorch's CPU
/// allocator relies on the C allocator for the same; large `malloc`s here would be fresh `mmap`s).
///
/// `@unchecked Sendable` because the elements behind `pointer` are written only by the value that
/// holds the one reference (a freshly allocated output, or after `Tensor.makeUnique()` copied a shared
/// buffer): once a second `Tensor` or `SendableTensor` references a buffer, nobody writes it again. The
/// reference count is atomic, so that check is sound across threads, as for `Array`'s buffer.
final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// Uninitialised storage for `count` floats.
    init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        self.pointer = BufferCache.shared.take(count: count)
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: value, count: count)
    }

    deinit { BufferCache.shared.give(pointer, count: count) }

    func copy() -> TensorStorage {
        let s = TensorStorage(count: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}

/// The cache behind `TensorStorage`: free lists keyed by exact element count, bounded in bytes.
final class BufferCache: Sendable {
    static let shared = BufferCache()
    /// Buffers smaller than this go straight to malloc/free, which handles them well.
    private static let minimumCachedBytes = 64 * 1024
    private static let capacityBytes = 1 << 30
    /// Buffers of at least this size start on a 2 MiB boundary and are advised as huge pages.
    private static let hugePageBytes = 2 << 20

    private struct State: ~Copyable {
        // Addresses as integers: raw pointers are not Sendable, and the mutex hands values across threads.
        var free: [Int: [UInt]] = [:]
        var cachedBytes = 0
    }
    private let state = Mutex(State())

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.minimumCachedBytes {
            let reused: UInt? = state.withLock { s in
                guard let p = s.free[count]?.popLast() else { return nil }
                s.cachedBytes -= bytes
                return p
            }
            if let reused, let p = UnsafeMutablePointer<Float>(bitPattern: reused) { return p }
        }
        let huge = bytes >= Self.hugePageBytes
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, huge ? Self.hugePageBytes : 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        #if os(Linux)
        // Large buffers on 2 MiB pages where the kernel allows it (transparent huge pages in `madvise`
        // mode, Debian's default): one TLB entry then covers what 512 did. The recurrent kernels stream
        // their saved activations and gate gradients (tens of MB) through each step loop, and under a
        // hypervisor a TLB miss is a two-level page walk. Measured in C on the LSTM bench's buffers, both
        // kinds in one process, alternating: backward 34.9 ms median against 35.7 in a busy phase of the
        // host, 29.4 against 29.6 in a quiet one; inference forward 9.09 against 9.22. Only whole 2 MiB
        // pages inside the buffer are advised, so no memory is added.
        if huge { _ = madvise(raw, bytes / Self.hugePageBytes * Self.hugePageBytes, MADV_HUGEPAGE) }
        #endif
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= Self.minimumCachedBytes {
            let address = UInt(bitPattern: pointer)
            let kept = state.withLock { s -> Bool in
                guard s.cachedBytes + bytes <= Self.capacityBytes else { return false }
                s.free[count, default: []].append(address)
                s.cachedBytes += bytes
                return true
            }
            if kept { return }
        }
        free(pointer)
    }

    /// Returns every cached buffer to the system.
    func purge() {
        let all = state.withLock { s -> [UInt] in
            let all = s.free.values.flatMap { $0 }
            s.free = [:]
            s.cachedBytes = 0
            return all
        }
        for p in all { free(UnsafeMutableRawPointer(bitPattern: p)) }
    }
}
