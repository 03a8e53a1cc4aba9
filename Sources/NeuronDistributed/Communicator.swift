import CKernels
import CMPI
import Foundation
import Neuron

/// How `Communicator.allReduce` combines the ranks' values element-wise.
public enum Reduction: Sendable {
    /// The sum over ranks (MPI_SUM).
    case sum
    /// The sum over ranks times 1 / size.
    case mean
}

/// The processes of an MPI job (`MPI_COMM_WORLD`, as `torch.distributed`'s default process group):
/// this process's rank, their number, and the collective operations on float buffers that data-parallel
/// training needs. Every operation is collective: each rank calls it in the same order with matching
/// sizes (MPI cannot check that for you: mismatched calls hang or corrupt); buffers are laid out the same
/// on every rank.
///
/// MPI is initialised on the first `world()` and finalised when the process exits. Failures throw
/// `NeuronError.communication` with MPI's own message (the job uses `MPI_ERRORS_RETURN` rather than
/// aborting), invalid arguments `NeuronError.invalidArgument` before any call. A rank that dies ends
/// the job: `mpirun` stops the others.
public final class Communicator {
    /// This process's index, 0..<size.
    public let rank: Int
    /// The number of processes.
    public let size: Int
    private let comm: MPI_Comm

    private init(comm: MPI_Comm) throws {
        self.comm = comm
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
    }

    /// All processes of the job. The first call initialises MPI (threads: serialized, the kernels' own
    /// OpenMP threads never call MPI); run the program under `mpirun -np N`, or alone as a job of one.
    /// - Throws: `NeuronError.communication` when MPI cannot start.
    public static func world() throws -> Communicator {
        try MPIRuntime.start.get()
        return try Communicator(comm: nmpi_comm_world())
    }

    /// Whether this process was started by an MPI launcher (`mpirun`, `srun`), so that
    /// `world()` joins a job of several ranks rather than running alone.
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// Waits until every rank has called it.
    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    /// Copies `root`'s buffer into every rank's (each rank passes a buffer of the same count).
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int = 0) throws {
        try checkRoot(root, "broadcast")
        try chunked(buffer.count) { start, count in
            try check(MPI_Bcast(buffer.baseAddress! + start, count, nmpi_float(), Int32(root), comm), "MPI_Bcast")
        }
    }

    /// Copies `root`'s values into every rank's `values` (the same count on every rank).
    public func broadcast(_ values: inout [Float], root: Int = 0) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Copies `root`'s tensor into every rank's (the same shape on every rank).
    public func broadcast(_ tensor: inout Tensor, root: Int = 0) throws {
        try tensor.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Copies `root`'s integers into every rank's `values` (the same count on every rank).
    public func broadcast(_ values: inout [Int64], root: Int = 0) throws {
        try checkRoot(root, "broadcast")
        try values.withUnsafeMutableBufferPointer { buffer in
            try chunked(buffer.count) { start, count in
                try check(MPI_Bcast(buffer.baseAddress! + start, count, nmpi_int64(), Int32(root), comm), "MPI_Bcast")
            }
        }
    }

    /// Replaces `buffer` on every rank with the element-wise sum (or mean) over ranks, in place. Every
    /// rank gets the same bits.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ reduction: Reduction = .sum) throws {
        try chunked(buffer.count) { start, count in
            try check(MPI_Allreduce(nmpi_in_place(), buffer.baseAddress! + start, count, nmpi_float(), nmpi_sum(), comm),
                      "MPI_Allreduce")
        }
        if reduction == .mean, size > 1, let base = buffer.baseAddress {
            nn_affine(base, base, Float(1) / Float(size), 0, buffer.count)
        }
    }

    /// The element-wise sum (or mean) of `values` over ranks.
    public func allReduce(_ values: [Float], _ reduction: Reduction = .sum) throws -> [Float] {
        var out = values
        try out.withUnsafeMutableBufferPointer { try allReduce($0, reduction) }
        return out
    }

    /// The element-wise sum (or mean) of `tensor` over ranks (the same shape on every rank).
    public func allReduce(_ tensor: Tensor, _ reduction: Reduction = .sum) throws -> Tensor {
        var out = tensor
        try out.withUnsafeMutableBufferPointer { try allReduce($0, reduction) }
        return out
    }

    /// The element-wise sum (or mean) of `values` over ranks, in double precision (losses, counts).
    public func allReduce(_ values: [Double], _ reduction: Reduction = .sum) throws -> [Double] {
        var out = values
        try out.withUnsafeMutableBufferPointer { buffer in
            try chunked(buffer.count) { start, count in
                try check(MPI_Allreduce(nmpi_in_place(), buffer.baseAddress! + start, count, nmpi_double(), nmpi_sum(), comm),
                          "MPI_Allreduce")
            }
        }
        return reduction == .mean ? out.map { $0 / Double(size) } : out
    }

    /// Every rank's `values` concatenated in rank order; ranks may pass different counts.
    /// - Throws: `NeuronError.invalidArgument` when all ranks together pass 2^31 values or more.
    public func allGather(_ values: [Float]) throws -> [Float] {
        try allGather(values, type: nmpi_float())
    }

    /// Every rank's integers concatenated in rank order; ranks may pass different counts.
    public func allGather(_ values: [UInt64]) throws -> [UInt64] {
        try allGather(values, type: nmpi_uint64())
    }

    /// Ends every process of the job with `code` (MPI_Abort): for an error after which the other ranks
    /// could wait for this one forever.
    public func abort(code: Int32 = 1) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    private func allGather<T: Numeric>(_ values: [T], type: MPI_Datatype) throws -> [T] {
        var counts = [UInt64](repeating: 0, count: size)
        var mine = UInt64(values.count)
        try check(MPI_Allgather(&mine, 1, nmpi_uint64(), &counts, 1, nmpi_uint64(), comm), "MPI_Allgather")
        let total = counts.reduce(0, +)
        guard total <= UInt64(Int32.max) else {
            throw NeuronError.invalidArgument("allGather: \(total) values in all (ranks: \(counts)) exceed MPI's limit of \(Int32.max)")
        }
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + counts32[r - 1] }
        // One spare element each way: MPI wants real buffers even for zero counts.
        var send = values
        send.append(0)
        var out = [T](repeating: 0, count: Int(total) + 1)
        try send.withUnsafeMutableBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { r in
                try check(MPI_Allgatherv(s.baseAddress!, Int32(values.count), type, r.baseAddress!, counts32, displacements, type, comm),
                          "MPI_Allgatherv")
            }
        }
        out.removeLast()
        return out
    }

    private func checkRoot(_ root: Int, _ operation: String) throws {
        guard (0..<size).contains(root) else {
            throw NeuronError.invalidArgument("\(operation): root \(root) is not a rank of this job of \(size)")
        }
    }

    /// Calls `body(start, count)` over pieces of at most 2^30 elements (MPI counts are 32-bit).
    private func chunked(_ total: Int, _ body: (Int, Int32) throws -> Void) throws {
        let piece = 1 << 30
        var start = 0
        while start < total {
            let count = min(piece, total - start)
            try body(start, Int32(count))
            start += count
        }
    }
}

/// MPI's process-wide start and finish.
enum MPIRuntime {
    /// Initialises MPI once, sets errors to return codes, and finalises at exit.
    static let start: Result<Void, NeuronError> = {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let code = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided)
            guard code == MPI_SUCCESS else { return .failure(.communication("MPI_Init_thread failed: \(errorString(code))")) }
            atexit {
                var finalized: Int32 = 0
                MPI_Finalized(&finalized)
                if finalized == 0 { MPI_Finalize() }
            }
        }
        let code = MPI_Comm_set_errhandler(nmpi_comm_world(), nmpi_errors_return())
        guard code == MPI_SUCCESS else { return .failure(.communication("MPI_Comm_set_errhandler failed: \(errorString(code))")) }
        return .success(())
    }()
}

/// MPI's description of an error code.
func errorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 1024)
    var length: Int32 = 0
    MPI_Error_string(code, &buffer, &length)
    let text = String(decoding: buffer.prefix(Int(max(0, min(length, 1023)))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text + " (MPI error \(code))"
}

/// Throws `NeuronError.communication` naming `operation` unless `code` is MPI_SUCCESS.
func check(_ code: Int32, _ operation: String) throws {
    guard code == MPI_SUCCESS else { throw NeuronError.communication("\(operation) failed: \(errorString(code))") }
}
