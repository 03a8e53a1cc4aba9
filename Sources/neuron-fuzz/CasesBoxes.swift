import Foundation
import Neuron

// Box IoU, generalized IoU and (batched) non-maximum suppression on corner boxes, against torchvision's
// definitions with Neuron's documented rules for degenerate boxes (an inverted axis has zero extent, two
// zero-area boxes have IoU 0, a NaN coordinate makes every IoU of its box NaN).

/// IoU of corner boxes a and b (x1, y1, x2, y2) in double, with the scale of its rounding:
/// inter / union, where union = area_a + area_b - inter may cancel.
func iouReference(_ a: [Double], _ b: [Double]) -> (v: Double, s: Double, union: Double, areas: Double) {
    if (a + b).contains(where: { $0.isNaN }) { return (.nan, 0, .nan, .nan) }
    let areaA = Swift.max(a[2] - a[0], 0) * Swift.max(a[3] - a[1], 0)
    let areaB = Swift.max(b[2] - b[0], 0) * Swift.max(b[3] - b[1], 0)
    let w = Swift.max(Swift.min(a[2], b[2]) - Swift.max(a[0], b[0]), 0)
    let h = Swift.max(Swift.min(a[3], b[3]) - Swift.max(a[1], b[1]), 0)
    let inter = w * h, union = areaA + areaB - inter
    guard union > 0 else { return (0, 0, 0, areaA + areaB) }
    let iou = inter / union
    return (iou, iou * (1 + (areaA + areaB + inter) / union) + (areaA + areaB) / union, union, areaA + areaB)
}

func boxesCase(_ r: inout FuzzRandom) -> FuzzCase {
    let op = r.pick(["boxIoU", "generalizedBoxIoU", "nonMaxSuppression", "batchedNonMaxSuppression"])
    let (n, m) = (r.int(0...8), r.int(0...6))
    let regime: ValueRegime = r.chance(0.4) ? .integers : .normal
    // Mostly well-formed boxes (x2 >= x1, y2 >= y1), sometimes inverted ones and NaN coordinates.
    func boxes(_ count: Int, _ r: inout FuzzRandom) -> [Float] {
        (0..<count).flatMap { _ -> [Float] in
            var b = (0..<4).map { _ in r.value(regime) * 4 }
            if r.chance(0.85) { b = [Swift.min(b[0], b[2]), Swift.min(b[1], b[3]), Swift.max(b[0], b[2]), Swift.max(b[1], b[3])] }
            if r.chance(0.03) { b[r.int(0...3)] = .nan }
            return b
        }
    }
    let a = boxes(n, &r), b = boxes(m, &r)
    let scores = (0..<n).map { _ in r.chance(0.05) ? Float.nan : r.value(regime) }
    let labels = (0..<n).map { _ in r.int(0...2) }
    let threshold: Double = r.chance(0.9) ? r.pick([0, 0.3, 0.5, 0.7, 1]) : r.pick([-0.1, 1.5, .nan])
    let scoreThreshold: Float? = r.chance(0.3) ? r.value(.normal) : nil
    let maxKeep: Int? = r.chance(0.3) ? r.pick([0, 1, 3, -1]) : nil
    let params = "boxes \(n)\(op.hasSuffix("IoU") ? " x \(m)" : "") \(regime) iou threshold \(threshold) score threshold \(scoreThreshold.map { "\($0)" } ?? "nil") maxKeep \(maxKeep.map { "\($0)" } ?? "nil")"
    return FuzzCase(op: op, params: params) { ctx in
        let ba = try Boxes<Corners, Pixels>(try ctx.tensor([n, 4], a)), bb = try Boxes<Corners, Pixels>(try ctx.tensor([m, 4], b))
        let box = { (v: [Float], i: Int) in (0..<4).map { Double(v[4 * i + $0]) } }
        if op.hasSuffix("IoU") {
            ctx.referenceValid = true
            let generalized = op == "generalizedBoxIoU"
            let y = generalized ? generalizedBoxIoU(ba, bb) : boxIoU(ba, bb)
            var v = [Double](), s = [Double](), lenient = [Bool]()
            for i in 0..<n {
                for j in 0..<m {
                    let (p, q) = (box(a, i), box(b, j))
                    let parts = iouReference(p, q)
                    var (iou, scale) = (parts.v, parts.s)
                    var unchecked = false
                    if generalized {
                        // torchvision's generalized IoU on well-formed boxes; for inverted ones only the range is checked.
                        let wellFormed = p[2] >= p[0] && p[3] >= p[1] && q[2] >= q[0] && q[3] >= q[1]
                        let c = (Swift.max(p[2], q[2]) - Swift.min(p[0], q[0])) * (Swift.max(p[3], q[3]) - Swift.min(p[1], q[1]))
                        if !iou.isNaN && wellFormed && c > 0 {
                            iou -= (c - parts.union) / c
                            scale += (c + parts.union + parts.areas) / c
                        }
                        unchecked = !wellFormed && !iou.isNaN
                    }
                    v.append(iou)
                    s.append(scale)
                    lenient.append(unchecked)
                }
            }
            var ref = Ref(shape: [n, m], v: v, s: s, terms: 8)
            ref.bound = lenient.map { $0 ? .infinity : 0 }
            ctx.check(compare(op, y, ref))
            if generalized, let bad = y.scalars.first(where: { !($0 >= -1 && $0 <= 1) && !$0.isNaN }) { ctx.fail("generalized IoU \(bad) outside [-1, 1]") }
            return
        }
        let batched = op == "batchedNonMaxSuppression"
        ctx.referenceValid = threshold >= 0 && threshold <= 1 && (maxKeep ?? 0) >= 0 && !(scoreThreshold?.isNaN ?? false)
        let scoreTensor = try ctx.tensor([n], scores)
        let kept = batched
            ? try batchedNonMaxSuppression(ba, scores: scoreTensor, labels: labels, iouThreshold: threshold, scoreThreshold: scoreThreshold, maxKeep: maxKeep)
            : try nonMaxSuppression(ba, scores: scoreTensor, iouThreshold: threshold, scoreThreshold: scoreThreshold, maxKeep: maxKeep)
        guard ctx.referenceValid == true else { return ctx.fail("kept \(kept) with IoU threshold \(threshold), maxKeep \(maxKeep ?? 0)") }
        // torchvision: visit by decreasing score (stable; NaN first), keep unless a kept box of the same
        // label overlaps with IoU > threshold; only scores above the score threshold take part.
        let order = (0..<n).sorted { i, j in
            let (si, sj) = (scores[i], scores[j])
            if si.isNaN != sj.isNaN { return si.isNaN }
            return si > sj || (si == sj && i < j) || (si.isNaN && sj.isNaN && i < j)
        }
        var result: [Int] = []
        var ambiguous = false
        for i in order {
            if let t = scoreThreshold, !(scores[i] > t) { continue }
            var suppressed = false
            for k in result where !batched || labels[k] == labels[i] {
                let iou = iouReference(box(a, i), box(a, k)).v
                // An IoU within rounding of the threshold can go either way in float32.
                if Swift.abs(iou - threshold) <= 1e-5 * Swift.max(threshold, 1e-3) { ambiguous = true }
                if iou > threshold { suppressed = true; break }
            }
            if !suppressed { result.append(i) }
        }
        if let maxKeep { result = Array(result.prefix(maxKeep)) }
        if !ambiguous { ctx.check(compareInts("kept", kept, result)) }
    }
}
