import Foundation
import Neuron

// A two-layer network's forward and backward pass from another package. Exits non-zero on any
// mismatch, so `make consumer` fails loudly.
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
print("consumer: import Neuron works; loss \(try loss.item()); \(Neuron.threadingSummary)")
