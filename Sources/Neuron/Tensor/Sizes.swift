import Foundation
import Synchronization

// Size arithmetic on shapes and parameters that come from the user. Products are overflow-checked,
// values handed to C as `int` are checked to fit, and allocations are checked against
// `Neuron.maximumAllocationBytes` before the allocator runs: an absurd size throws `NeuronError`
// naming it instead of trapping, wrapping around or paging the machine to death.

extension Neuron {
    /// The largest single tensor or workspace, in bytes, that a throwing op allocates; a larger
    /// request throws `NeuronError.invalidArgument` naming its size before anything is allocated.
    /// Defaults to half of physical memory. Factories that do not throw (`Tensor.zeros`, literals)
    /// are not checked: like `Array(repeating:count:)`, they trap when memory runs out.
    public static var maximumAllocationBytes: Int {
        get { allocationCap.load(ordering: .relaxed) }
        set { allocationCap.store(Swift.max(newValue, 0), ordering: .relaxed) }
    }

    private static let allocationCap = Atomic<Int>(Int(clamping: ProcessInfo.processInfo.physicalMemory / 2))
}

enum Sizes {
    /// a * b, or an error naming what was being computed when it overflows `Int`.
    static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw NeuronError.invalidArgument("\(what()): \(a) x \(b) overflows a 64-bit size") }
        return p
    }

    /// a + b, or an error naming what was being computed when it overflows `Int`.
    static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw NeuronError.invalidArgument("\(what()): \(a) + \(b) overflows a 64-bit size") }
        return s
    }

    /// The product of `values` (1 for none), checked for overflow.
    static func product(_ values: some Sequence<Int>, _ what: @autoclosure () -> String) throws -> Int {
        try values.reduce(1) { try multiply($0, $1, what()) }
    }

    /// The element count of `shape`: every dimension non-negative and the product within `Int`.
    static func count(of shape: [Int], op: String) throws -> Int {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw NeuronError.invalidArgument("\(op): negative dimension in shape \(shapeString(shape))")
        }
        guard sizesFit(shape) else {
            throw NeuronError.invalidArgument("\(op): the sizes of shape \(shapeString(shape)) multiply beyond a 64-bit size")
        }
        return shape.reduce(1, *)
    }

    /// Whether the sizes of `shape` multiply within `Int` with zeros counted as 1. PyTorch refuses other
    /// shapes even when a zero makes them empty ([0, 2^62, 4]: the strides overflow), and admitting only
    /// these means any partial product of a tensor's sizes (a row, the axes after one) fits.
    static func sizesFit(_ shape: [Int]) -> Bool {
        var p = 1
        for d in shape {
            let (q, overflow) = p.multipliedReportingOverflow(by: Swift.max(d, 1))
            if overflow { return false }
            p = q
        }
        return true
    }

    /// `value` as a C `int`, or an error naming the parameter when it does not fit in 32 bits.
    static func int32(_ value: Int, _ name: @autoclosure () -> String, op: String) throws -> Int32 {
        guard let v = Int32(exactly: value) else {
            throw NeuronError.invalidArgument("\(op): \(name()) = \(value) is outside the 32-bit range the kernels take")
        }
        return v
    }

    /// Throws unless `elements` floats fit under `Neuron.maximumAllocationBytes`.
    static func checkAllocation(elements: Int, _ what: @autoclosure () -> String) throws {
        let cap = Neuron.maximumAllocationBytes
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard elements >= 0, !overflow, bytes <= cap else {
            let size = overflow ? "more than \(Int.max) bytes" : "\(bytes) bytes"
            throw NeuronError.invalidArgument("\(what()) needs \(elements) floats (\(size)), over Neuron.maximumAllocationBytes = \(cap)")
        }
    }

    /// Checks that a tensor of `shape` is valid and fits under the cap (layer initialisers call this
    /// before filling their parameters through the non-throwing factories).
    static func checkShape(_ shape: [Int], _ what: @autoclosure () -> String) throws {
        let n = try count(of: shape, op: what())
        try checkAllocation(elements: n, "\(what()) \(shapeString(shape))")
    }

    /// `elements` reported by a C `_workspace_size` function, checked against the cap.
    static func workspace(_ elements: Int, op: String) throws -> TensorStorage {
        try checkAllocation(elements: elements, "\(op) workspace")
        return TensorStorage(count: elements)
    }
}

extension Tensor {
    /// An uninitialised tensor of `shape` for an op's result, after checking the shape (no negative
    /// dimension, no overflow) and the allocation cap; `op` names the op in the error.
    static func allocated(_ shape: [Int], op: String) throws -> Tensor {
        let n = try Sizes.count(of: shape, op: op)
        try Sizes.checkAllocation(elements: n, "\(op) output \(shapeString(shape))")
        return Tensor(uninitializedShape: shape)
    }
}
