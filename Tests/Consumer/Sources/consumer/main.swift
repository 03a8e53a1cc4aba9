import Foundation
import Neuron

// A two-layer network's forward and backward pass from another package. Exits non-zero on any
// mismatch, so `make consumer` fails loudly. Built by a plain `swift build -c release`, it must also get
// what the manifest promises: OpenMP threads and the best instruction level this CPU has.
// `consumer --lenet-step` then times a LeNet-5 training step (the `lenet_train_step` case of neuron-bench).
let model = try Sequential {
    try Linear(in: 3, out: 4)
    ReLU()
    try Linear(in: 4, out: 2)
}
let x = Tensor([[1, 2, 3], [4, 5, 6]])
let loss = try crossEntropy(try model(x), labels: [0, 1])
try loss.backward()
let names = model.namedParameters.map(\.name)
guard names == ["0.weight", "0.bias", "2.weight", "2.bias"], model.parameters.allSatisfy({ $0.grad != nil }) else {
    print("consumer: unexpected parameters \(names)")
    exit(1)
}
print("consumer: import Neuron works; loss \(try loss.item())")
print(Neuron.buildSummary)
guard Neuron.isOpenMPEnabled else {
    print("consumer: FAILED: Neuron's kernels were built without OpenMP")
    exit(1)
}
guard Neuron.cpuLevel == Neuron.bestCPULevel else {
    print("consumer: FAILED: kernels run at \(Neuron.cpuLevel), but this CPU supports \(Neuron.bestCPULevel)")
    exit(1)
}

if CommandLine.arguments.contains("--lenet-step") {
    // LeNet-5 on N64 1x28x28: forward, cross-entropy, backward, SGD step; median of 1 s of steps.
    var g = RandomGenerator(seed: 3)
    let net = try LeNet5()
    let optimizer = try SGD(net.namedParameters, lr: 0.01)
    let images = Tensor.normal([64, 1, 28, 28], using: &g)
    let labels = (0..<64).map { _ in Int(g.next() % 10) }
    func step() throws {
        optimizer.zeroGrad()
        let loss = try crossEntropy(try net(images), labels: labels)
        try loss.backward()
        try optimizer.step()
    }
    try step()
    var times: [Double] = []
    let start = DispatchTime.now().uptimeNanoseconds
    while times.count < 20 || Double(DispatchTime.now().uptimeNanoseconds - start) < 1e9 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try step()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    times.sort()
    print(String(format: "consumer: lenet_train_step median %.3f ms, min %.3f ms, %d reps", times[times.count / 2], times[0], times.count))
}
