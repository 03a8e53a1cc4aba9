/// Helpers for forecasting from a univariate series: filling gaps and cutting sliding windows.
public enum TimeSeries {
    /// The series with every NaN replaced by linear interpolation between the nearest known values on
    /// either side (pandas's `interpolate(method="linear", limit_direction="both")`); NaNs before the first
    /// or after the last known value take that value.
    /// - Throws: `NeuronError.emptyInput` when no value is known (including an empty series).
    public static func interpolatingMissing(_ values: [Float]) throws -> [Float] {
        let known = values.indices.filter { !values[$0].isNaN }
        guard let first = known.first, let last = known.last else {
            throw NeuronError.emptyInput("interpolatingMissing: the series of \(values.count) values has no known value")
        }
        var out = values
        for i in 0..<first { out[i] = values[first] }
        for i in (last + 1)..<values.count { out[i] = values[last] }
        for (a, b) in zip(known, known.dropFirst()) where b > a + 1 {
            let (va, vb) = (Double(values[a]), Double(values[b]))
            for i in (a + 1)..<b { out[i] = Float(va + (vb - va) * Double(i - a) / Double(b - a)) }
        }
        return out
    }

    /// Sliding windows for one-step-ahead forecasting: window i holds `series[i ..< i + length]` as inputs
    /// [count, length, 1] (batch-first, one feature) and `series[i + length + horizon - 1]` as its target
    /// [count, 1]; count = series.count - length - horizon + 1.
    /// - Throws: `NeuronError.invalidArgument` for `length` or `horizon` below 1; `.emptyInput` when the
    ///   series is too short for one window.
    public static func windows(_ series: [Float], length: Int, horizon: Int = 1) throws -> (inputs: Tensor, targets: Tensor) {
        guard length >= 1, horizon >= 1 else {
            throw NeuronError.invalidArgument("windows: length and horizon must be at least 1, got \(length) and \(horizon)")
        }
        let count = series.count - length - horizon + 1
        guard count >= 1 else {
            throw NeuronError.emptyInput("windows: a series of \(series.count) values has no window of \(length) with a target \(horizon) ahead")
        }
        var inputs = [Float]()
        inputs.reserveCapacity(count * length)
        for i in 0..<count { inputs += series[i..<(i + length)] }
        let targets = (0..<count).map { series[$0 + length + horizon - 1] }
        return (try Tensor(shape: [count, length, 1], scalars: inputs), try Tensor(shape: [count, 1], scalars: targets))
    }
}
