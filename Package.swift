// swift-tools-version: 6.0
// The manifest stays free of unsafe flags so other packages can depend on Neuron by version
// (SwiftPM refuses that for targets with `unsafeFlags`). OpenMP is switched on from the command
// line (`-Xcc -fopenmp`, see the Makefile); without it the kernels build serial and say so at run time.
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
            
            cSettings: [.define("NDEBUG", .when(configuration: .release))],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("omp5"), .linkedLibrary("m")]
        ),
        // PNG codec over libpng: C so libpng's setjmp/longjmp error handling never crosses into Swift.
        .target(name: "CPNG", path: "Sources/CPNG", linkerSettings: [.linkedLibrary("png16")]),
        // Resources: the CO2 series and the fortunes excerpt the tests and demos read (Resources/data/README.md).
        .target(name: "Neuron", dependencies: ["CKernels", "CPNG"], path: "Sources/Neuron", resources: [.copy("Resources")]),
        .executableTarget(
            name: "neuron",
            dependencies: ["Neuron", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/neuron"
        ),
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
