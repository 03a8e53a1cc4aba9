// swift-tools-version: 6.2
// 6.2 is the first tools version whose packages may carry `unsafeFlags` and still be depended on by
// version (`from:`), so OpenMP and the kernels' optimisation live here and every consumer's plain
// `swift build` gets them. No `-march`: one build runs on every x86-64, and the hot kernels pick
// baseline, AVX2 or AVX-512 code at load time from CPUID (CKernels/README.md).
import PackageDescription

// The command-line tools (`neuron`, `neuron-bench`, `neuron-fuzz`) and swift-argument-parser are declared
// only when Neuron is built on its own. As another package's dependency the package is the `Neuron` library
// and its C targets, so a dependent neither fetches nor compiles swift-argument-parser or its plugins.
// SwiftPM evaluates a dependency's manifest at "/" while resolving versions (a view of the tagged tree) and
// then in its checkout (`.build/checkouts/`; Xcode's `SourcePackages/checkouts/`). NEURON_TOOLS=1 or
// NEURON_TOOLS=0 overrides the guess.
let isDependency = Context.packageDirectory == "/" || Context.packageDirectory.contains("/checkouts/")
let buildsTools = Context.environment["NEURON_TOOLS"].map { $0 == "1" } ?? !isDependency
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "Neuron",
    products: [
        .library(name: "Neuron", targets: ["Neuron"]),
        // Data-parallel training over Open MPI; separate, so `import Neuron` needs no MPI.
        .library(name: "NeuronDistributed", targets: ["NeuronDistributed"]),
    ] + (buildsTools ? [
        .executable(name: "neuron", targets: ["neuron"]),
        .executable(name: "neuron-bench", targets: ["NeuronBench"]),
    ] : []),
    dependencies: buildsTools ? [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ] : [],
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
                // The CO2 series and the fortunes excerpt that `Datasets` and `Fortunes` read (licences in Resources/data).
                resources: [.copy("Resources")]),
        // The demos, with the style-transfer images they read: not part of the `Neuron` product, so a package
        // that depends on Neuron compiles neither them nor swift-argument-parser.
        .target(name: "NeuronDemos", dependencies: ["Neuron"], path: "Sources/NeuronDemos", resources: [.copy("Resources")]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .target(name: "NeuronDistributed", dependencies: ["Neuron", "CKernels", "CMPI"], path: "Sources/NeuronDistributed"),
        .testTarget(
            name: "NeuronTests",
            dependencies: ["Neuron", "NeuronDemos", "CKernels"],
            path: "Tests/NeuronTests",
            resources: [.copy("../Fixtures")]
        ),
        // Run under `mpirun -np 2` by `make mpi-test`; skipped when not launched by MPI.
        .testTarget(name: "NeuronDistributedTests", dependencies: ["Neuron", "NeuronDistributed"],
                    path: "Tests/NeuronDistributedTests"),
    ] + (buildsTools ? [
        .executableTarget(name: "neuron", dependencies: ["Neuron", "NeuronDemos", "NeuronDistributed", argumentParser],
                          path: "Sources/neuron"),
        .executableTarget(name: "neuron-fuzz", dependencies: ["Neuron"], path: "Sources/neuron-fuzz"),
        .executableTarget(name: "NeuronBench", dependencies: ["Neuron", "CKernels", argumentParser], path: "Benchmarks/NeuronBench"),
        // Data-parallel costs: all-reduce bandwidth, LeNet-5 images/s on ranks vs threads (make bench-mpi).
        .executableTarget(name: "neuron-mpi-bench", dependencies: ["Neuron", "NeuronDistributed"], path: "Benchmarks/MPIBench"),
    ] : [])
)

// `swift package generate-documentation` (make docs): a command plugin for this package's own commands, declared
// with the tools, so a package that depends on Neuron neither fetches nor compiles it.
if buildsTools {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}
