// swift-tools-version: 6.0
// A separate package that depends on Neuron the way a user's would: by version, from a git URL.
// `make consumer` clones Neuron into a temporary folder, tags it 0.1.0 and passes the clone's file URL in
// NEURON_PACKAGE_URL; without it (opening the folder by hand) the checkout two levels up is used by path.
import PackageDescription

let neuron: Package.Dependency = Context.environment["NEURON_PACKAGE_URL"].map { .package(url: $0, from: "0.1.0") }
    ?? .package(name: "Neuron", path: "../..")

let package = Package(
    name: "NeuronConsumer",
    dependencies: [neuron],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "Neuron", package: "Neuron")], path: "Sources/consumer"),
    ]
)
