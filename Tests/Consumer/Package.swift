// swift-tools-version: 6.0
// A separate package that depends on Neuron the way a user's would: by version, from a git URL.
// `make consumer` clones Neuron into a temporary folder, tags it with the README's version (passed in
// NEURON_VERSION) and passes the clone's file URL in NEURON_PACKAGE_URL; without them (opening the folder
// by hand) the checkout two levels up is used by path. `make consumer` also writes the README's example
// to Sources/readme/main.swift, which becomes the `readme` executable.
import Foundation
import PackageDescription

let version = Context.environment["NEURON_VERSION"].flatMap { Version($0) } ?? "0.1.0"
let neuron: Package.Dependency = Context.environment["NEURON_PACKAGE_URL"].map { .package(url: $0, from: version) }
    ?? .package(name: "Neuron", path: "../..")
let readme = FileManager.default.fileExists(atPath: Context.packageDirectory + "/Sources/readme/main.swift")

let package = Package(
    name: "NeuronConsumer",
    dependencies: [neuron],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "Neuron", package: "Neuron")], path: "Sources/consumer"),
    ] + (readme ? [.executableTarget(name: "readme", dependencies: [.product(name: "Neuron", package: "Neuron")], path: "Sources/readme")] : [])
)
