import CKernels

/// Library-wide settings.
public enum Neuron {
    /// Threads used by the C kernels and OpenBLAS. Setting 0 restores the default
    /// (`OMP_NUM_THREADS`, else the number of cores). Results of Neuron's own kernels do not depend on it.
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
}
