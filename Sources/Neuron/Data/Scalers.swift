// Per-column feature scaling fitted on training data. Both scalers are a per-column affine map
// y = (x - center) / scale + offset, so they share one fitted representation and the arithmetic runs
// as broadcast tensor ops (C kernels).

/// A per-feature transformation learnt from training data and then applied, unchanged, to new data
/// (scikit-learn's transformer API). Data is [samples, features].
public protocol FeatureScaler {
    /// Learns the per-column statistics of `x` [samples, features], replacing any earlier fit.
    mutating func fit(_ x: Tensor) throws
    /// Scales `x` [samples, features] with the statistics of the fit.
    func transform(_ x: Tensor) throws -> Tensor
    /// Undoes `transform`.
    func inverseTransform(_ x: Tensor) throws -> Tensor
}

extension FeatureScaler {
    /// `fit(x)` then `transform(x)`; for training data only: test data is transformed with the
    /// training statistics, never fitted.
    public mutating func fitTransform(_ x: Tensor) throws -> Tensor {
        try fit(x)
        return try transform(x)
    }
}

/// Standardisation to zero mean and unit variance per column: (x - mean) / std, for x [samples,
/// features] (scikit-learn's `StandardScaler`).
///
/// The standard deviation is the population one (divides by N, as scikit-learn; PyTorch's `std` divides
/// by N - 1). A column with zero variance gets scale 1, so it maps to 0 instead of NaN.
public struct StandardScaler: FeatureScaler {
    private var fitted: FittedColumns?

    /// An unfitted scaler; call `fit(_:)` on the training data.
    public init() {}

    /// The per-column means [features] of the training data, once fitted.
    public var mean: Tensor? { fitted?.center }
    /// The per-column divisors [features]: the population standard deviation, 1 where it is 0
    /// (scikit-learn's `scale_`).
    public var scale: Tensor? { fitted?.scale }

    /// - Throws: `NeuronError.shapeMismatch` unless `x` is [samples, features];
    ///   `.emptyInput` when it has no samples or no features.
    public mutating func fit(_ x: Tensor) throws {
        let x = try FittedColumns.trainingData(x, scaler: "StandardScaler")
        let mean = try x.mean(axis: 0)
        let std = try (x - mean).squared().mean(axis: 0).sqrt()
        fitted = FittedColumns(center: mean, scale: std.map { $0 == 0 ? 1 : $0 }, offset: 0, fittedShape: x.shape)
    }

    /// - Throws: `NeuronError.invalidArgument` before `fit`; `.shapeMismatch` (naming both shapes) when
    ///   `x` is not [samples, features] with the fitted number of features.
    public func transform(_ x: Tensor) throws -> Tensor {
        try FittedColumns.require(fitted, scaler: "StandardScaler", op: "transform").forward(x, scaler: "StandardScaler")
    }

    /// Maps scaled data [samples, features] back to the original units (scikit-learn's
    /// `inverse_transform`).
    /// - Throws: `NeuronError.invalidArgument` before `fit`; `.shapeMismatch` (naming both shapes) when
    ///   `x` is not [samples, features] with the fitted number of features.
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        try FittedColumns.require(fitted, scaler: "StandardScaler", op: "inverseTransform").inverse(x, scaler: "StandardScaler")
    }
}

/// Rescaling of each column to `range` (default 0...1): the training minimum maps to its lower and the
/// training maximum to its upper bound, for x [samples, features] (scikit-learn's `MinMaxScaler`).
///
/// New data outside the training range maps outside `range` (no clipping, scikit-learn's default). A
/// constant column maps to the lower bound.
public struct MinMaxScaler: FeatureScaler {
    /// The interval the training data's per-column minimum and maximum map to.
    public let range: ClosedRange<Float>
    private var fitted: FittedColumns?

    /// An unfitted scaler to `range`; call `fit(_:)` on the training data.
    public init(range: ClosedRange<Float> = 0...1) {
        self.range = range
    }

    /// The per-column minimum [features] of the training data, once fitted.
    public var dataMin: Tensor? { fitted?.center }
    /// The per-column maximum [features] of the training data, once fitted.
    public private(set) var dataMax: Tensor?

    /// - Throws: `NeuronError.shapeMismatch` unless `x` is [samples, features]; `.emptyInput` when it
    ///   has no samples or no features; `.invalidArgument` when `range` is a single point.
    public mutating func fit(_ x: Tensor) throws {
        guard range.lowerBound < range.upperBound else {
            throw NeuronError.invalidArgument("MinMaxScaler: range \(range) is a single point; its lower bound must be below its upper bound")
        }
        let x = try FittedColumns.trainingData(x, scaler: "MinMaxScaler")
        let high = try x.max(axis: 0).values
        let low = try -(-x).max(axis: 0).values
        let width = range.upperBound - range.lowerBound
        // A constant column keeps scikit-learn's data range of 1 rather than dividing by 0.
        let scale = try (high - low).map { ($0 == 0 ? 1 : $0) / width }
        fitted = FittedColumns(center: low, scale: scale, offset: range.lowerBound, fittedShape: x.shape)
        dataMax = high
    }

    /// - Throws: `NeuronError.invalidArgument` before `fit`; `.shapeMismatch` (naming both shapes) when
    ///   `x` is not [samples, features] with the fitted number of features.
    public func transform(_ x: Tensor) throws -> Tensor {
        try FittedColumns.require(fitted, scaler: "MinMaxScaler", op: "transform").forward(x, scaler: "MinMaxScaler")
    }

    /// Maps scaled data [samples, features] back to the original units (scikit-learn's
    /// `inverse_transform`).
    /// - Throws: `NeuronError.invalidArgument` before `fit`; `.shapeMismatch` (naming both shapes) when
    ///   `x` is not [samples, features] with the fitted number of features.
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        try FittedColumns.require(fitted, scaler: "MinMaxScaler", op: "inverseTransform").inverse(x, scaler: "MinMaxScaler")
    }
}

/// The fitted per-column map y = (x - center) / scale + offset; `center` and `scale` are [features].
struct FittedColumns {
    let center: Tensor
    let scale: Tensor
    let offset: Float
    /// The shape of the training data, for messages.
    let fittedShape: [Int]

    /// Checks training data and detaches it: the statistics are constants, not part of any graph.
    static func trainingData(_ x: Tensor, scaler: String) throws -> Tensor {
        guard x.rank == 2 else {
            throw NeuronError.shapeMismatch("\(scaler).fit needs [samples, features], got \(shapeString(x.shape))")
        }
        guard x.count > 0 else {
            throw NeuronError.emptyInput("\(scaler).fit on \(shapeString(x.shape)): no samples or no features to fit")
        }
        return x.detached()
    }

    static func require(_ fitted: FittedColumns?, scaler: String, op: String) throws -> FittedColumns {
        guard let fitted else {
            throw NeuronError.invalidArgument("\(scaler).\(op) before fit: fit the scaler on training data first")
        }
        return fitted
    }

    func forward(_ x: Tensor, scaler: String) throws -> Tensor {
        try checkShape(x, scaler: scaler, op: "transform")
        let y = try (x - center) / scale
        return offset == 0 ? y : y + offset
    }

    func inverse(_ y: Tensor, scaler: String) throws -> Tensor {
        try checkShape(y, scaler: scaler, op: "inverseTransform")
        return try (offset == 0 ? y : y - offset) * scale + center
    }

    private func checkShape(_ x: Tensor, scaler: String, op: String) throws {
        guard x.rank == 2 && x.shape[1] == fittedShape[1] else {
            throw NeuronError.shapeMismatch(
                "\(scaler).\(op): input \(shapeString(x.shape)) does not match the \(shapeString(fittedShape)) it was fitted on (\(fittedShape[1]) features)")
        }
    }
}
