// swift-tools-version: 6.2
// 6.2 is the first tools version whose packages may carry `unsafeFlags` and still be depended on by
// version (`from:`), so OpenMP and the kernels' optimisation live here and every consumer's plain
// `swift build` gets them. No `-march`: one build runs on every x86-64, and the hot kernels pick
// baseline, AVX2 or AVX-512 code at load time from CPUID (CKernels/README.md).
import PackageDescription

let package = Package(
    name: "Neuron",
    products: [
        .library(name: "Neuron", targets: ["Neuron"]),
        // Data-parallel training over Open MPI; separate, so `import Neuron` needs no MPI.
        .library(name: "NeuronDistributed", targets: ["NeuronDistributed"]),
        .executable(name: "neuron", targets: ["neuron"]),
        .executable(name: "neuron-bench", targets: ["NeuronBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            exclude: ["README.md"],
            cSettings: [
                .define("NDEBUG", .when(configuration: .release)),
                // -O2 in debug builds too: a consumer's `swift build` should not get -O0 kernels.
                // -fno-math-errno lets sqrtf and friends compile to instructions (and vectorise).
                .unsafeFlags(["-fopenmp", "-O2", "-fno-math-errno"]),
            ],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("omp5"), .linkedLibrary("m")]
        ),
        // PNG codec over libpng: C so libpng's setjmp/longjmp error handling never crosses into Swift.
        .target(name: "CPNG", path: "Sources/CPNG", linkerSettings: [.linkedLibrary("png16")]),
        .target(name: "Neuron", dependencies: ["CKernels", "CPNG"], path: "Sources/Neuron",
                // The style-transfer demo's images, the CO2 series and the fortunes excerpt (licences in Resources/).
                resources: [.copy("Resources")]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .target(name: "NeuronDistributed", dependencies: ["Neuron", "CKernels", "CMPI"], path: "Sources/NeuronDistributed"),
        .executableTarget(
            name: "neuron",
            dependencies: ["Neuron", "NeuronDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/neuron"
        ),
        .executableTarget(name: "neuron-fuzz", dependencies: ["Neuron"], path: "Sources/neuron-fuzz"),
        .executableTarget(
            name: "NeuronBench",
            dependencies: ["Neuron", "CKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/NeuronBench"
        ),
        // Data-parallel costs: all-reduce bandwidth, LeNet-5 images/s on ranks vs threads (make bench-mpi).
        .executableTarget(name: "neuron-mpi-bench", dependencies: ["Neuron", "NeuronDistributed"], path: "Benchmarks/MPIBench"),
        .testTarget(
            name: "NeuronTests",
            dependencies: ["Neuron", "CKernels"],
            path: "Tests/NeuronTests",
            resources: [.copy("../Fixtures")]
        ),
        // Run under `mpirun -np 2` by `make mpi-test`; skipped when not launched by MPI.
        .testTarget(name: "NeuronDistributedTests", dependencies: ["Neuron", "NeuronDistributed"],
                    path: "Tests/NeuronDistributedTests"),
    ]
)
