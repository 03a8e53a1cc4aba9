import CKernels

/// Library-wide settings.
public enum Neuron {
    /// Threads used by the C kernels, matrix products included (OpenBLAS itself runs single-threaded on
    /// blocks these threads hand it). Setting 0 restores the default (`OMP_NUM_THREADS`, else the number
    /// of cores). Results do not depend on it.
    public static var threads: Int {
        get { Int(nn_get_num_threads()) }
        set { nn_set_num_threads(Int32(clamping: newValue)) }
    }

    /// Whether the kernels were compiled with OpenMP (Package.swift passes `-fopenmp`). Without it
    /// every kernel runs on one thread.
    public static var isOpenMPEnabled: Bool { nn_openmp_enabled() != 0 }

    /// A line for start-up logs: whether kernels run in parallel, and on how many threads.
    public static var threadingSummary: String {
        isOpenMPEnabled
            ? "Neuron kernels: OpenMP on, \(threads) threads"
            : "Neuron kernels: built without OpenMP (-fopenmp), kernels run on one thread"
    }

    /// The instruction level the kernels run on the calling thread: the best the CPU and OS support
    /// (`bestCPULevel`), unless the environment variable `NEURON_CPU` lowered it.
    public static var cpuLevel: CPULevel { CPULevel(rawValue: Int(nn_cpu_level())) ?? .baseline }

    /// The best level this CPU and OS support (CPUID and the OS-saved vector state).
    public static var bestCPULevel: CPULevel { CPULevel(rawValue: Int(nn_cpu_best_level())) ?? .baseline }

    /// Every level this machine can run, the baseline first.
    public static var supportedCPULevels: [CPULevel] { CPULevel.allCases.filter { $0 <= bestCPULevel } }

    /// Why `NEURON_CPU` was not honoured (not a level's name, or a level this CPU lacks), or nil.
    public static var cpuLevelNote: String? { nn_cpu_level_note().map { String(cString: $0) } }

    /// Runs `body` with the kernels at `level` on the calling thread (their worker threads follow), then
    /// restores the thread's previous level. For comparing levels; `body` must not suspend.
    /// - Throws: `NeuronError.invalidArgument` for a level above `bestCPULevel`.
    public static func withCPULevel<T>(_ level: CPULevel, _ body: () throws -> T) throws -> T {
        guard level <= bestCPULevel else {
            throw NeuronError.invalidArgument("CPU level \(level) is above what this CPU supports (\(bestCPULevel))")
        }
        let previous = nn_cpu_level()
        nn_set_thread_cpu_level(Int32(level.rawValue))
        defer { nn_set_thread_cpu_level(previous) }
        return try body()
    }

    /// OpenBLAS's name for the core it chose its GEMM kernels for ("SkylakeX", "Zen", "Haswell").
    public static var blasCoreName: String { String(cString: nn_blas_core_name()) }

    /// Lines for `neuron info`: threads, the instruction level in use, OpenBLAS's core.
    public static var buildSummary: String {
        var lines = [threadingSummary,
                     "CPU level: \(cpuLevel) (best this CPU supports: \(bestCPULevel); NEURON_CPU=baseline|avx2|avx512 lowers it)",
                     "OpenBLAS core: \(blasCoreName)"]
        if let note = cpuLevelNote { lines.append("note: \(note)") }
        return lines.joined(separator: "\n")
    }
}

/// An instruction level the C kernels are built for; one binary holds all of them and runs the best the
/// CPU supports (CKernels/README.md). AArch64 has the baseline only.
public enum CPULevel: Int, CaseIterable, Comparable, Sendable, CustomStringConvertible {
    /// x86-64 without AVX (SSE2), or the portable code elsewhere.
    case baseline = 0
    /// AVX2 with FMA.
    case avx2 = 1
    /// AVX-512 F, DQ, BW and VL.
    case avx512 = 2

    /// The name `NEURON_CPU` accepts: `baseline`, `avx2` or `avx512`.
    public var description: String { String(cString: nn_cpu_level_name(Int32(rawValue))) }

    /// Whether `a` is a lower level than `b` (baseline < AVX2 < AVX-512).
    public static func < (a: CPULevel, b: CPULevel) -> Bool { a.rawValue < b.rawValue }
}
