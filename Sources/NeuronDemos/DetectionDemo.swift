import Foundation
import Neuron

/// The detection demo: a small YOLO-style network learns to find circles, squares and triangles in
/// generated 64 x 64 scenes (`SyntheticData.detectionScenes`), is scored by mAP on separately generated
/// scenes, and draws its detections on some of them into a PNG.
public enum DetectionDemo {
    public struct Result: Sendable {
        /// mAP at IoU 0.5 on the held-out scenes (COCO 101-point interpolation).
        public var meanAveragePrecision50: Double
        /// mAP averaged over IoU 0.5:0.95.
        public var meanAveragePrecision: Double
        /// AP per class at IoU 0.5.
        public var perClass: [Double?]
        public var epochs: Int
        public var history: History
        /// The anchors k-means chose from the training boxes, in pixels.
        public var anchors: [SIMD2<Float>]
        /// The PNG with the detections drawn.
        public var imageURL: URL
    }

    /// The scenes' side in pixels, and the grid: 8 x 8 cells of 8 pixels.
    public static let imageSize = 64
    public static let gridSize = 8

    /// Four 3x3 convolutions with batch norm and ReLU, three 2x2 max-pools (64 → 8, one output per grid
    /// cell), and a 1x1 convolution giving anchors · (5 + classes) channels: about 40k parameters.
    public static func makeModel(grid: YOLOGrid) throws -> Sequential {
        try Sequential {
            try Conv2D(in: 1, out: 16, kernel: 3, padding: 1)
            try BatchNorm2D(16)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 16, out: 32, kernel: 3, padding: 1)
            try BatchNorm2D(32)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 32, out: 48, kernel: 3, padding: 1)
            try BatchNorm2D(48)
            ReLU()
            try MaxPool2D(kernel: 2)
            try Conv2D(in: 48, out: 48, kernel: 3, padding: 1)
            try BatchNorm2D(48)
            ReLU()
            try Conv2D(in: 48, out: grid.outputChannels, kernel: 1)
        }
    }

    /// Generates `trainCount` training and `testCount` test scenes, clusters `anchors` anchors from the
    /// training boxes (k-means, 1 − IoU), trains `makeModel` with Adam on the YOLO loss for `epochs`
    /// epochs, reports mAP on the test scenes and writes the detections on eight of them to `imageURL`
    /// (default: `neuron-detections.png` in the temporary directory).
    ///
    /// - Throws: `NeuronError.invalidArgument` for fewer than 1 training or test scene, fewer than 1 epoch
    ///   or anchor; `NeuronError.io` when the PNG cannot be written.
    public static func run(trainCount: Int = 2000, testCount: Int = 400, epochs: Int = 6, anchors: Int = 2, seed: UInt64 = 42,
                           imageURL: URL? = nil, progress: ProgressStyle = .automatic,
                           log: (String) -> Void = { print($0) }) throws -> Result {
        guard trainCount >= 1, testCount >= 1 else {
            throw NeuronError.invalidArgument("DetectionDemo needs at least 1 training and 1 test scene, got \(trainCount) and \(testCount)")
        }
        guard epochs >= 1, anchors >= 1 else {
            throw NeuronError.invalidArgument("DetectionDemo needs at least 1 epoch and 1 anchor, got \(epochs) and \(anchors)")
        }
        return try Random.withGenerator(seed: seed) {
            try train(trainCount: trainCount, testCount: testCount, epochs: epochs, anchorCount: anchors, seed: seed,
                      imageURL: imageURL, progress: progress, log: log)
        }
    }

    private static func train(trainCount: Int, testCount: Int, epochs: Int, anchorCount: Int, seed: UInt64, imageURL: URL?,
                              progress: ProgressStyle, log: (String) -> Void) throws -> Result {
        let start = Date()
        var generator = RandomGenerator(seed: seed)
        let (trainX, trainObjects) = try SyntheticData.detectionScenes(count: trainCount, size: imageSize, using: &generator)
        let (testX, testObjects) = try SyntheticData.detectionScenes(count: testCount, size: imageSize, using: &generator)
        let classes = SyntheticData.detectionClassNames.count
        let sizes = trainObjects.flatMap { $0 }.map { SIMD2($0.box.x2 - $0.box.x1, $0.box.y2 - $0.box.y1) }
        let anchors = try YOLOGrid.anchors(clustering: sizes, count: min(anchorCount, sizes.count), seed: seed)
        let grid = try YOLOGrid(imageSize: Size2D(imageSize, imageSize), grid: Size2D(gridSize, gridSize), anchors: anchors, classes: classes)
        log(String(format: "generated %d training and %d test scenes (%d objects) in %.2fs; classes: %@; anchors (w x h px): %@",
                   trainCount, testCount, sizes.count + testObjects.joined().count, Date().timeIntervalSince(start),
                   SyntheticData.detectionClassNames.joined(separator: ", "),
                   anchors.map { String(format: "%.1f x %.1f", $0.x, $0.y) }.joined(separator: ", ")))

        let model = try makeModel(grid: grid)
        log(try model.summary(inputShape: [1, 1, imageSize, imageSize]))
        let optimizer = try Adam(model.namedParameters, lr: 0.003)
        let loader = try DataLoader(x: trainX, y: try grid.encode(trainObjects), batchSize: 32, generator: RandomGenerator(seed: seed &+ 1))
        let map50 = Metric<Tensor>("mAP@0.5") { output, _ in
            try meanAveragePrecision(detections: try grid.detections(in: output, scoreThreshold: 0.01), groundTruth: testObjects,
                                     classes: classes).value
        }
        let trainer = Trainer(model: model, optimizer: optimizer, trainData: loader, validationData: (testX, try grid.encode(testObjects)),
                              metrics: [map50]) { output, targets in try grid.loss(output, targets) }
        trainer.schedule = try CosineAnnealingLR(optimizer, tMax: epochs, etaMin: 1e-4)
        trainer.progress = progress
        let history = try trainer.fit(epochs: epochs)

        let output = try predict(model, testX, batchSize: loader.batchSize)
        let found = try grid.detections(in: output, scoreThreshold: 0.01)
        let at50 = try meanAveragePrecision(detections: found, groundTruth: testObjects, classes: classes)
        let overIoUs = try meanAveragePrecisionOverIoUs(detections: found, groundTruth: testObjects, classes: classes)
        log(String(format: "detection: mAP@0.5 %.3f, mAP@[.5:.95] %.3f on %d held-out scenes after %d epochs (%.1fs); AP@0.5 %@",
                   at50.value, overIoUs, testCount, history.epochs.count, Date().timeIntervalSince(start),
                   zip(SyntheticData.detectionClassNames, at50.perClass).map { "\($0) \($1.map { String(format: "%.3f", $0) } ?? "-")" }
                       .joined(separator: ", ")))

        let url = imageURL ?? FileManager.default.temporaryDirectory.appendingPathComponent("neuron-detections.png")
        let confident = try grid.detections(in: try output.slice(0..<min(8, testCount)), scoreThreshold: 0.3)
        try PNG.write(try mosaic(testX, confident), to: url)
        log("wrote the detections on \(confident.count) test scenes to \(url.path) (red circle, green square, blue triangle)")
        return Result(meanAveragePrecision50: at50.value, meanAveragePrecision: overIoUs, perClass: at50.perClass,
                      epochs: history.epochs.count, history: history, anchors: anchors, imageURL: url)
    }

    /// The network's raw output for every image, in evaluation mode without gradients.
    static func predict(_ model: any Module, _ x: Tensor, batchSize: Int) throws -> Tensor {
        model.eval()
        defer { model.train() }
        return try noGrad {
            let n = try x.sampleCount()
            return try Tensor.concatenate(try stride(from: 0, to: n, by: batchSize).map {
                try model(try x.slice($0..<min($0 + batchSize, n)))
            }, axis: 0)
        }
    }

    /// The first scenes enlarged 4 times, each with its detections outlined in its class's colour: two rows
    /// of four for eight scenes, else one row.
    static func mosaic(_ images: Tensor, _ detections: [[Detection<Corners, Pixels>]]) throws -> Tensor {
        let colors: [SIMD3<Float>] = [SIMD3(1, 0.2, 0.2), SIMD3(0.2, 1, 0.2), SIMD3(0.3, 0.5, 1)]
        let tiles = try detections.enumerated().map { i, found in
            try drawingBoxes(found.map { ($0.box, colors[$0.label % colors.count]) }, on: try images.slice(i..<(i + 1)), scale: 4, thickness: 2)
        }
        let rows = tiles.count == 8 ? [Array(tiles[..<4]), Array(tiles[4...])] : [tiles]
        return try Tensor.concatenate(try rows.map { try Tensor.concatenate($0, axis: 3) }, axis: 2)
    }
}
