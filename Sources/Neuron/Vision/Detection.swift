import CKernels
import Foundation

/// An object in an image: where it is and which class it belongs to (ground truth, or a detector's
/// output without its score).
public struct LabeledBox<Format: BoxFormat, Units: BoxUnits>: Hashable, Sendable {
    /// Where the object is, in the layout and units of the type.
    public var box: Box<Format, Units>
    /// The class index, from 0.
    public var label: Int

    /// The object of class `label` at `box`.
    public init(_ box: Box<Format, Units>, label: Int) {
        self.box = box
        self.label = label
    }
}

/// A detector's output: a box, its class and its confidence.
public struct Detection<Format: BoxFormat, Units: BoxUnits>: Hashable, Sendable {
    /// Where the detector places the object, in the layout and units of the type.
    public var box: Box<Format, Units>
    /// The class index, from 0.
    public var label: Int
    /// The confidence, in [0, 1] for the detectors here (objectness times class probability).
    public var score: Float

    /// A detection of class `label` at `box` with confidence `score`.
    public init(_ box: Box<Format, Units>, label: Int, score: Float) {
        self.box = box
        self.label = label
        self.score = score
    }
}

/// How the objectness and class parts of a detection vector are scored (the coordinates always by
/// squared error).
public enum LocalizationLoss: Sendable {
    /// Squared error on every component: Σ (ŷᵢ − yᵢ)² when pc = 1, only (p̂c − pc)² when pc = 0. The
    /// network's pc and class outputs are read as they are (no sigmoid or softmax).
    case squaredError
    /// Logistic loss (binary cross-entropy on the logit) for pc, softmax cross-entropy for the classes,
    /// squared error for the coordinates: the better-behaved variant. The network's pc and class outputs
    /// are logits.
    case logistic
}

/// The loss of rows [rows, 1 + P + C] of predictions against targets under `params`, reduced over rows.
/// Targets must hold pc = 0 or 1 in column 0.
func detectionLoss(_ name: String, _ prediction: Tensor, _ target: Tensor, params: nn_detection_loss_params,
                   reduction: Reduction) throws -> Tensor {
    let width = 1 + Int(params.coords) + Int(params.classes)
    guard prediction.rank == 2, prediction.shape[1] == width, target.shape == prediction.shape else {
        throw NeuronError.shapeMismatch("\(name): predictions \(shapeString(prediction.shape)) and targets \(shapeString(target.shape)) must both be [N, \(width)]")
    }
    let rows = prediction.shape[0]
    if reduction == .mean, rows == 0 { throw NeuronError.emptyInput("\(name): mean over an empty batch") }
    let t = target.detached()
    try t.withUnsafeBufferPointer { values in
        for r in 0..<rows where values[r * width] != 0 && values[r * width] != 1 {
            throw NeuronError.invalidArgument("\(name): target row \(r) has pc = \(values[r * width]); it must be 0 (no object) or 1")
        }
    }
    var p = params
    let perRow = Tensor(uninitializedShape: [rows])
    nn_detection_loss_forward(perRow.pointer, prediction.pointer, t.pointer, rows, &p)
    let (out, scale) = try reduced(perRow, reduction, name)
    return out.recorded(name, inputs: [prediction]) { g in
        let dx = Tensor(uninitializedShape: prediction.shape)
        if reduction == .none {
            nn_detection_loss_backward(dx.pointer, g.pointer, prediction.pointer, t.pointer, 1, rows, &p)
        } else {
            nn_detection_loss_backward(dx.pointer, nil, prediction.pointer, t.pointer, scale * g.pointer[0], rows, &p)
        }
        return [dx]
    }
}

/// The kernel parameters of a localisation loss over P coordinates and C classes, all weights 1.
func localizationParams(_ loss: LocalizationLoss, coords: Int, classes: Int) -> nn_detection_loss_params {
    nn_detection_loss_params(coords: Int32(coords), classes: Int32(classes), sigmoid_coords: 0,
                             objectness: loss == .logistic ? NN_OBJECTNESS_LOGISTIC : NN_OBJECTNESS_SQUARED,
                             class_loss: loss == .logistic ? NN_CLASSES_SOFTMAX : NN_CLASSES_SQUARED,
                             coord_weight: 1, object_weight: 1, no_object_weight: 1, class_weight: 1)
}

/// The logistic function, stable for large |x| (the kernels' formula).
func sigmoid(_ x: Float) -> Float { x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x)) }
