// neuron-mpi-bench: what data-parallel training costs (make bench-mpi).
//   allreduce  under mpirun: in-place float all-reduce (sum) of LeNet-5's gradient (61,706 floats) and
//              of a 10M-float buffer; median time, algorithm bandwidth (bytes / time) and bus bandwidth
//              (algorithm bandwidth x 2(n-1)/n, the bytes each rank sends and receives, as nccl-tests report).
//   lenet      LeNet-5 training steps on 28 x 28 images, global batch 64, through Trainer: under mpirun
//              each rank takes its 64 / n images and the gradients are all-reduced (DataParallel);
//              alone, one process takes the whole batch on OMP_NUM_THREADS threads. Images per second.
// Rank 0 prints; every number is the median of several rounds (noisy on a shared machine).
import Foundation
import Neuron
import NeuronDistributed

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func allReduceBench(_ communicator: Communicator) throws {
    let lenet = try LeNet5().parameterCount
    for (name, count) in [("LeNet-5 gradient", lenet), ("10M floats", 10_000_000)] {
        var buffer = [Float](repeating: 1, count: count)
        let rounds = count > 1_000_000 ? 20 : 500
        var times: [Double] = []
        try buffer.withUnsafeMutableBufferPointer { b in
            for round in 0..<(rounds + 3) {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try communicator.allReduce(b, .mean)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if round >= 3 { times.append(seconds) }  // the first rounds set up connections
            }
        }
        // Every rank's time of a round is the same collective; take rank 0's.
        let t = median(times)
        let bytes = Double(count * 4)
        let n = Double(communicator.size)
        if communicator.rank == 0 {
            print(String(format: "allreduce %@ (%d floats, %.2f MB) on %d ranks: median %.3f ms, algorithm bandwidth %.2f GB/s, bus bandwidth %.2f GB/s",
                         name, count, bytes / 1e6, communicator.size, t * 1e3, bytes / t / 1e9, bytes / t / 1e9 * 2 * (n - 1) / n))
        }
    }
}

func leNetBench(_ parallel: DataParallel?) throws {
    let steps = 50, batch = 64, rounds = 5
    var generator = RandomGenerator(seed: 1)
    let x = Tensor.uniform([steps * batch, 1, 28, 28], using: &generator)
    let y = (0..<(steps * batch)).map { $0 % 10 }
    Random.seed(2)
    let model = try LeNet5()
    let loader = try DataLoader(x: x, y: y, batchSize: batch, generator: RandomGenerator(seed: 3))
    let trainer = Trainer(model: model, optimizer: try SGD(model.namedParameters, lr: 0.01, momentum: 0.9),
                          trainData: loader) { try crossEntropy($0, labels: $1) }
    trainer.progress = .silent
    trainer.reducer = parallel
    var rates: [Double] = []
    for round in 1...(rounds + 1) {
        let history = try trainer.fit(epochs: round)
        if round > 1 { rates.append(Double(steps * batch) / history.epochs[round - 1].seconds) }  // round 1 warms up
    }
    if (parallel?.rank ?? 0) == 0 {
        let setting = parallel.map { "\($0.replicaCount) ranks x \(Neuron.threads) thread(s)" } ?? "1 process x \(Neuron.threads) thread(s)"
        print(String(format: "lenet train step (global batch %d), %@: %.0f images/s (median of %d epochs of %d steps; min %.0f, max %.0f)",
                     batch, setting, median(rates), rounds, steps, rates.min()!, rates.max()!))
    }
}

let mode = CommandLine.arguments.dropFirst().first ?? "lenet"
do {
    switch mode {
    case "allreduce":
        try allReduceBench(try Communicator.world())
    case "lenet":
        try leNetBench(Communicator.isLaunchedByMPI ? try DataParallel() : nil)
    default:
        print("usage: neuron-mpi-bench allreduce|lenet (allreduce under mpirun)")
        exit(2)
    }
} catch {
    print("neuron-mpi-bench: \(error)")
    exit(1)
}
