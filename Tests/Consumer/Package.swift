// swift-tools-version: 6.0
// A separate package that depends on Neuron, proving that `import Neuron` works from outside.
import PackageDescription

let package = Package(
    name: "NeuronConsumer",
    dependencies: [.package(name: "Neuron", path: "../..")],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "Neuron", package: "Neuron")], path: "Sources/consumer"),
    ]
)
