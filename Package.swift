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
        .executableTarget(
            name: "neuron",
            dependencies: ["Neuron", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/neuron"
        ),
        .executableTarget(name: "neuron-fuzz", dependencies: ["Neuron"], path: "Sources/neuron-fuzz"),
        .executableTarget(
            name: "NeuronBench",
            dependencies: ["Neuron", "CKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/NeuronBench"
        ),
        .testTarget(
            name: "NeuronTests",
            dependencies: ["Neuron", "CKernels"],
            path: "Tests/NeuronTests",
            resources: [.copy("../Fixtures")]
        ),
    ]
)

// `swift package generate-documentation` (make docs). A command plugin that no target uses: SwiftPM resolves
// it for this package's own commands only, so a package that depends on Neuron neither fetches nor compiles it.
package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
