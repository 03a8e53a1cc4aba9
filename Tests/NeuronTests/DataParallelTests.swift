import Foundation
import Testing
@testable import Neuron

/// The parts of data-parallel training that need no second process: how the loader shards a global
/// batch, and how `Trainer` drives a `GradientReducer` (here in-process stand-ins; the MPI
/// implementation is tested under mpirun in Tests/NeuronDistributedTests).
@Suite(.serialized) struct DataParallelTests {
    @Test func shardsCutEachGlobalBatchIntoContiguousNearEqualParts() throws {
        let x = try Tensor(shape: [10, 1], scalars: (0..<10).map { Float($0) * 1.5 })
        var loader = try DataLoader(x: x, y: Array(0..<10), batchSize: 4, generator: RandomGenerator(seed: 3))
        let epoch = loader.epoch()
        #expect(epoch.count == 3)
        for batch in epoch.indices {
            let whole = Array(epoch.sampleIndices(ofBatch: batch))
            let parts = (0..<3).map { Array(epoch.sampleIndices(ofBatch: batch, rank: $0, of: 3)) }
            #expect(parts.flatMap { $0 } == whole)
            #expect(parts.map(\.count).max()! - parts.map(\.count).min()! <= 1)
            for rank in 0..<3 {
                let (sx, sy) = epoch.shard(batch, rank: rank, of: 3)
                #expect(sy == parts[rank])
                #expect(sx.shape == [parts[rank].count, 1])
                #expect(sx.scalars == parts[rank].map { x.scalars[$0] })
            }
        }
        // The last batch holds 2 samples: with 3 replicas the first gets none.
        #expect(epoch.sampleIndices(ofBatch: 2, rank: 0, of: 3).isEmpty)
        #expect(epoch.sampleIndices(ofBatch: 0, rank: 0, of: 1) == epoch.sampleIndices(ofBatch: 0))
    }

    struct Setup {
        let model: Sequential
        let trainer: Trainer<[Int]>

        init(reducer: (any GradientReducer)?) throws {
            var g = RandomGenerator(seed: 1)
            let (x, labels) = try SyntheticData.twoSpirals(count: 120, using: &g)
            // A generator of this task's own: suites run in parallel, and one seeding the shared
            // default generator between the two Setups gave the two models different weights.
            model = try Random.withGenerator(seed: 5) {
                try Sequential {
                    try Linear(in: 2, out: 8)
                    Tanh()
                    try Linear(in: 8, out: 2)
                }
            }
            let loader = try DataLoader(x: x, y: labels, batchSize: 32, generator: RandomGenerator(seed: 2))
            trainer = Trainer(model: model, optimizer: try Adam(model.namedParameters, lr: 0.02), trainData: loader,
                              validationData: (x, labels), metrics: [.accuracy]) { try crossEntropy($0, labels: $1) }
            trainer.progress = .silent
            trainer.reducer = reducer
        }
    }

    /// With one replica the data-parallel path (shards, combined losses, reduced gradients, gathered
    /// validation outputs) must train exactly as the plain loop does.
    @Test func oneReplicaTrainsExactlyAsNoReducer() throws {
        let reducer = StandIn()
        let parallel = try Setup(reducer: reducer), plain = try Setup(reducer: nil)
        try parallel.trainer.fit(epochs: 3)
        try plain.trainer.fit(epochs: 3)
        #expect(parallel.trainer.history.epochs.map(\.trainLoss) == plain.trainer.history.epochs.map(\.trainLoss))
        #expect(parallel.trainer.history.epochs.map(\.validationLoss) == plain.trainer.history.epochs.map(\.validationLoss))
        #expect(parallel.trainer.history.epochs.map(\.metrics) == plain.trainer.history.epochs.map(\.metrics))
        for (a, b) in zip(parallel.model.parameters, plain.model.parameters) { #expect(a.value.scalars == b.value.scalars) }
        #expect(reducer.synchronized == 1)
        #expect(reducer.reductions == 3 * 4)  // 120 samples in batches of 32: 4 steps an epoch
        #expect(reducer.gathers == 3)
    }

    /// A non-finite loss or a failure on another replica reaches this one through the summed loss, so
    /// every replica stops at the same step instead of waiting for the others.
    @Test func otherReplicasFailuresStopThisOne() throws {
        let nan = StandIn()
        nan.added = [.nan, 0, 0]
        let setup = try Setup(reducer: nan)
        #expect(throws: NeuronError.nonFinite("epoch 1, batch 1: the loss is nan (check the data for NaN, and the learning rate)")) {
            try setup.trainer.fit(epochs: 1)
        }
        let failed = StandIn()
        failed.added = [0, 0, 1]
        let other = try Setup(reducer: failed)
        #expect(throws: NeuronError.communication("epoch 1, batch 1: another replica failed computing its loss (its own error says why)")) {
            try other.trainer.fit(epochs: 1)
        }
        #expect(failed.reductions == 0)
    }
}

/// One replica in-process: sums are identities (plus `added`, what other replicas would contribute),
/// gradients are scaled by their weight.
private final class StandIn: GradientReducer {
    let rank = 0
    let replicaCount = 1
    var added: [Double]?
    var synchronized = 0, reductions = 0, gathers = 0

    func synchronize(_ model: any Module) throws { synchronized += 1 }

    func reduceGradients(_ parameters: [Parameter], weight: Float) throws {
        reductions += 1
        for p in parameters { p.updateGrad { g in for i in g.indices { g[i] *= weight } } }
    }

    func broadcastBuffers(of model: any Module) throws {}

    func sum(_ values: [Double]) throws -> [Double] {
        guard let added, added.count == values.count else { return values }
        return zip(values, added).map { $0 + $1 }
    }

    func gatherRows(_ rows: Tensor) throws -> Tensor {
        gathers += 1
        return rows
    }
}
