// libFuzzer target for the safetensors reader, compiled into the Neuron module itself (see the
// Makefile's fuzz-safetensors target: swiftc -sanitize=fuzzer,address over Sources/Neuron and this
// file), so it reaches the internal parser as well as the public entry points.
//
// Beyond "no crash", each input must satisfy the reader's contract:
// - decode and decodeMetadata either succeed or throw NeuronError.io, nothing else;
// - whatever decode accepts, decodeMetadata accepts too (it checks a subset);
// - what decode accepts survives a round trip: encode, then decode, gives the same shapes and bits
//   (F32 as read; the other dtypes were already converted to F32 or I64 on the way in), and the
//   checksums that encode writes verify.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensorsReader(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    let tensors: [String: StoredTensor]
    do {
        tensors = try Safetensors.decode(data)
    } catch NeuronError.io {
        _ = onlyIOErrors { try Safetensors.decodeMetadata(data) }
        return 0
    } catch {
        fatalError("decode threw \(error), which is not NeuronError.io")
    }
    guard let metadata = onlyIOErrors({ try Safetensors.decodeMetadata(data) }) else {
        fatalError("decode accepted a file whose header decodeMetadata rejects")
    }
    let again: [String: StoredTensor]
    do {
        again = try Safetensors.decode(Safetensors.encode(tensors, metadata: metadata))
    } catch {
        fatalError("re-encoding what decode accepted failed: \(error)")
    }
    guard again.count == tensors.count else { fatalError("round trip changed the tensor count") }
    for (name, tensor) in tensors {
        guard let copy = again[name], sameBits(tensor, copy) else { fatalError("round trip changed tensor '\(name)'") }
    }
    return 0
}

/// The value `body` returns, or nil when it throws NeuronError.io; any other error is a finding.
private func onlyIOErrors<T>(_ body: () throws -> T) -> T? {
    do {
        return try body()
    } catch NeuronError.io {
        return nil
    } catch {
        fatalError("threw \(error), which is not NeuronError.io")
    }
}

/// Same kind, shape and bit patterns (so NaN payloads and -0 count, unlike ==).
private func sameBits(_ a: StoredTensor, _ b: StoredTensor) -> Bool {
    switch (a, b) {
    case (.float(let x), .float(let y)): x.shape == y.shape && x.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern)
    case (.int(let x), .int(let y)): x.shape == y.shape && x.scalars == y.scalars
    default: false
    }
}
