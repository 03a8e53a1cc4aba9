import Foundation
import Neuron

// Layer initialisers (sizes from configuration, often invalid) and forwards, containers, models and
// the tensor factories.

/// Largest parameter count a layer case lets the reference check (PyTorch would allocate more; the
/// library may throw for it, which is acceptable).
let layerParameterLimit = 1 << 22

/// Checks every element of `t` lies in [-bound, bound] (PyTorch's uniform initialisers).
func checkBound(_ ctx: Ctx, _ what: String, _ t: Tensor, _ bound: Double) {
    if let bad = t.scalars.first(where: { !(Swift.abs(Double($0)) <= bound * (1 + 1e-6)) }) {
        ctx.fail("\(what): value \(bad) outside ±\(bound)")
    }
}

func linearLayerCase(_ r: inout FuzzRandom) -> FuzzCase {
    let inF = r.wild(0...8, wildness: 0.12), outF = r.wild(0...8, wildness: 0.12)
    let bias = r.chance(0.7)
    let n = r.dim()
    let xShape = r.chance(0.9) ? [n, Swift.max(0, Swift.min(inF, 64))] : r.shape(rank: r.rank(0...3))
    let x = r.values(product(xShape), r.regime())
    return FuzzCase(op: "Linear", params: "Linear(in: \(inF), out: \(outF), bias: \(bias)) on x \(str(xShape))") { ctx in
        let count = checkedProduct([inF, outF])
        let valid = inF >= 0 && outF >= 0 && count != nil && count! <= layerParameterLimit
        ctx.referenceValid = valid
        let layer = try Linear(in: inF, out: outF, bias: bias)
        guard inF >= 0 && outF >= 0 else { return ctx.fail("Linear(in: \(inF), out: \(outF)) was created") }
        guard valid else { return }
        let weight = layer.weight.withValue { $0 }
        guard weight.shape == [outF, inF] else { return ctx.fail("weight \(str(weight.shape)), expected \(str([outF, inF]))") }
        // PyTorch: kaiming_uniform(a = √5) gives U(±1/√in); the bias U(±1/√in), zero for in = 0.
        let bound = inF > 0 ? 1 / Double(inF).squareRoot() : 0
        checkBound(ctx, "weight", weight, bound)
        if let b = layer.bias {
            let bt = b.withValue { $0 }
            if bt.shape != [outF] { ctx.fail("bias \(str(bt.shape)), expected [\(outF)]") }
            checkBound(ctx, "bias", bt, bound)
        }
        let names = layer.namedParameters.map(\.name)
        if names != (bias ? ["weight", "bias"] : ["weight"]) { ctx.fail("parameter names \(names)") }
        let xt = try ctx.tensor(xShape, x)
        let fits = xShape.count == 2 && xShape[1] == inF
        ctx.referenceValid = fits
        let y = try layer(xt)
        guard fits else { return ctx.fail("returned \(str(y.shape)) for input \(str(xShape)) to Linear(in: \(inF))") }
        let p = linearRef(x.map(Double.init), weight.scalars.map(Double.init), layer.bias.map { $0.withValue { $0.scalars.map(Double.init) } },
                          n: xShape[0], inF: inF, outF: outF)
        ctx.check(compare("forward", y, Ref(shape: [xShape[0], outF], v: p.v, s: p.s, terms: inF + 1)))
    }
}

func conv2dLayerCase(_ r: inout FuzzRandom) -> FuzzCase {
    var setup = ConvSetup.generate(&r)
    let inC = r.chance(0.9) ? (setup.x.count == 4 ? setup.x[1] : 1) : r.wild(0...4, wildness: 0.5)
    let outC = r.chance(0.9) ? (setup.w.count == 4 ? setup.w[0] : 1) : r.wild(0...4, wildness: 0.5)
    let kernel = r.chance(0.9) && setup.w.count == 4 ? Size2D(setup.w[2], setup.w[3]) : r.size2D(0...3, wildness: 0.3)
    let bias = r.chance(0.7)
    let x = r.values(checkedProduct(setup.x) ?? 0, r.regime())
    let params = "Conv2D(in: \(inC), out: \(outC), kernel: \(kernel), stride: \(setup.stride), padding: \(setup.padding), dilation: \(setup.dilation), groups: \(setup.groups), bias: \(bias)) on x \(str(setup.x))"
    return FuzzCase(op: "Conv2D", params: params) { ctx in
        let g = setup.groups
        let shape = [outC, g >= 1 ? inC / g : 0, kernel.height, kernel.width]
        // PyTorch's Conv2d checks groups and divisibility when built; sizes must not be negative.
        let initValid = g >= 1 && inC >= 0 && outC >= 0 && kernel.height >= 0 && kernel.width >= 0 && inC % g == 0 && outC % g == 0
        let count = initValid ? checkedProduct(shape) : nil
        ctx.referenceValid = initValid && count != nil && count! <= layerParameterLimit
        let layer = try Conv2D(in: inC, out: outC, kernel: kernel, stride: setup.stride, padding: setup.padding,
                               dilation: setup.dilation, groups: g, bias: bias)
        guard initValid else { return ctx.fail("Conv2D was created where PyTorch raises") }
        guard let count, count <= layerParameterLimit else { return }
        let weight = layer.weight.withValue { $0 }
        guard weight.shape == shape else { return ctx.fail("weight \(str(weight.shape)), expected \(str(shape))") }
        let fanIn = shape[1] * kernel.height * kernel.width
        let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
        checkBound(ctx, "weight", weight, bound)
        let biasValues = layer.bias.map { $0.withValue { $0 } }
        if let bt = biasValues {
            if bt.shape != [outC] { ctx.fail("bias \(str(bt.shape)), expected [\(outC)]") }
            checkBound(ctx, "bias", bt, bound)
        }
        setup.w = shape
        setup.b = bias ? [outC] : nil
        let out = setup.outputShape
        let xt = try ctx.tensor(setup.x, x)
        ctx.referenceValid = out != nil
        let y = try layer(xt)
        guard let out else { return ctx.fail("returned \(str(y.shape)) for input \(str(setup.x)) where PyTorch raises") }
        guard y.shape == out else { return ctx.fail("shape \(str(y.shape)), expected \(str(out))") }
        guard product(out) <= referenceOutputLimit, let work = checkedProduct([product(out), shape[1], shape[2], shape[3]]),
              work <= referenceWorkLimit else { return }
        let ref = ConvReference(s: setup, oh: out[2], ow: out[3], x: x.map(Double.init), w: weight.scalars.map(Double.init),
                                b: biasValues?.scalars.map(Double.init))
        ctx.check(compare("forward", y, ref.forward()))
    }
}

/// A random small stack of layers that keeps a [N, features] activation.
func sequentialCase(_ r: inout FuzzRandom) -> FuzzCase {
    var plan: [String] = []
    var width = r.int(0...6)
    let inWidth = width
    for _ in 0..<r.int(0...5) {
        switch r.int(0...7) {
        case 0, 1:
            let next = r.int(0...6)
            plan.append("Linear \(width) \(next) \(r.chance(0.8))")
            width = next
        case 2: plan.append("ReLU")
        case 3: plan.append("Tanh")
        case 4: plan.append("Sigmoid")
        case 5: plan.append("LeakyReLU")
        case 6: plan.append("Flatten")
        default: plan.append("Dropout")
        }
    }
    let n = r.dim()
    let xShape = r.chance(0.9) ? [n, inWidth] : r.shape(rank: r.rank(0...3))
    let x = r.values(product(xShape), r.regime())
    let summaryShape = r.chance(0.5) ? xShape : (0..<r.int(0...3)).map { _ in r.wild(0...4, wildness: 0.1) }
    return FuzzCase(op: "Sequential", params: "layers \(plan) on x \(str(xShape)), summary of \(str(summaryShape))") { ctx in
        var layers: [any Module] = []
        for step in plan {
            let parts = step.split(separator: " ")
            switch parts[0] {
            case "Linear": layers.append(try Linear(in: Int(parts[1])!, out: Int(parts[2])!, bias: parts[3] == "true"))
            case "ReLU": layers.append(ReLU())
            case "Tanh": layers.append(Tanh())
            case "Sigmoid": layers.append(Sigmoid())
            case "LeakyReLU": layers.append(LeakyReLU())
            case "Flatten": layers.append(Flatten())
            default: layers.append(try Dropout(p: 0.5))
            }
        }
        let model = Sequential(layers)
        model.eval()
        // PyTorch's state_dict names: the position of each layer that owns parameters.
        var expected: [String] = []
        for (i, step) in plan.enumerated() where step.hasPrefix("Linear") {
            expected += ["\(i).weight"] + (step.hasSuffix("true") ? ["\(i).bias"] : [])
        }
        let names = model.namedParameters.map(\.name)
        if names != expected { ctx.fail("parameter names \(names), expected \(expected)") }
        // The container adds nothing to its layers: the same calls one by one give the same bits.
        let xt = try ctx.tensor(xShape, x)
        ctx.referenceValid = nil
        let y = try model(xt)
        var z = xt
        for layer in layers { z = try layer(z) }
        if !(y.shape == z.shape && zip(y.scalars, z.scalars).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }) {
            ctx.fail("Sequential gives \(str(y.shape)), its layers one by one \(str(z.shape)) or other values")
        }
        _ = try? model.summary(inputShape: summaryShape.allSatisfy { $0 >= 0 && $0 <= 64 } ? summaryShape : [0])
    }
}

func modelCase(_ r: inout FuzzRandom) -> FuzzCase {
    let lenet = r.chance(0.5)
    let inC = r.wild(1...3, wildness: 0.1), classes = r.wild(1...5, wildness: 0.1)
    let widths = (0..<r.int(0...3)).map { _ in r.wild(1...4, wildness: 0.1) }
    // The number of layers is not a size the allocation cap can see: a billion of them exhausts memory in
    // any framework, so the wild values here are the invalid ones.
    let convs = r.chance(0.9) ? r.int(1...2) : r.pick([0, -1, Int.min])
    let n = r.int(0...2)
    let side = lenet ? (r.chance(0.85) ? 28 : r.int(0...32)) : r.int(0...12)
    let xShape = [n, r.chance(0.9) ? Swift.max(0, Swift.min(inC, 4)) : r.int(0...4), side, side]
    let x = r.values(product(xShape), .normal)
    let desc = lenet ? "LeNet5(inChannels: \(inC), classes: \(classes))" : "VGG.small(inChannels: \(inC), widths: \(widths), convsPerBlock: \(convs), classes: \(classes))"
    return FuzzCase(op: lenet ? "LeNet5" : "VGG", params: desc + " on x \(str(xShape))") { ctx in
        let sizesValid = inC >= 1 && classes >= 1 && widths.allSatisfy { $0 >= 1 } && convs >= 1
            && [inC, classes, convs] + widths == ([inC, classes, convs] + widths).map { Swift.min($0, 64) }
        ctx.referenceValid = sizesValid
        let model: any Module = try lenet ? LeNet5(inChannels: inC, classes: classes)
            : VGG.small(inChannels: inC, widths: widths, convsPerBlock: convs, classes: classes)
        guard sizesValid else { return }
        let xt = try ctx.tensor(xShape, x)
        ctx.referenceValid = nil
        model.eval()
        let y = try model(xt)
        if y.shape != [n, classes] { ctx.fail("output \(str(y.shape)), expected \(str([n, classes]))") }
        if lenet, let m = model as? LeNet5 {
            // The model is its layers in sequence (each checked against the reference elsewhere).
            let p1 = try Tensor.maxPool2d(try m.conv1(xt).relu(), kernel: 2)
            let p2 = try Tensor.maxPool2d(try m.conv2(p1).relu(), kernel: 2)
            let z = try m.fc3(try m.fc2(try m.fc1(try p2.flattened(startAxis: 1)).relu()).relu())
            if !(y.shape == z.shape && zip(y.scalars, z.scalars).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }) {
                ctx.fail("LeNet5 differs from its layers applied in order")
            }
        }
        if y.scalars.contains(where: { !$0.isFinite }) { ctx.fail("non-finite output from finite input") }
    }
}

func factoryCase(_ r: inout FuzzRandom) -> FuzzCase {
    let kind = r.pick(["Tensor(shape:scalars:)", "zeros", "ones", "repeating", "uniform", "normal", "IntTensor", "item", "rows literal",
                       "glorotUniform", "heNormal", "kaimingUniform"])
    var shape = r.shape(rank: r.rank(0...4), limit: 512)
    switch r.weighted([80, 8, 6, 5, 1]) {
    case 1: if !shape.isEmpty { shape[r.int(0...(shape.count - 1))] = r.pick([-1, -2, Int.min]) }
    case 2: shape = [0, r.pick([1 << 31, 1 << 62, Int.max])] + shape
    case 3: shape = [r.pick([1 << 31, 1 << 62]), r.pick([4, 1 << 33]), 0]
    case 4: shape = [1 << 40, r.int(1...4)]
    default: break
    }
    let count = checkedProduct(shape)
    let scalarCount = Swift.max(0, (count ?? 0) + (r.chance(0.1) ? r.pick([-1, 1]) : 0))
    let values = r.values(Swift.min(scalarCount, 4096), r.regime())
    let fanIn = r.wild(1...20, wildness: 0.1), fanOut = r.wild(1...20, wildness: 0.1)
    let rows = (0..<r.int(0...4)).map { _ in r.values(r.chance(0.9) ? 3 : r.int(0...4), .normal) }
    return FuzzCase(op: kind, params: kind == "rows literal" ? "rows of lengths \(rows.map(\.count))" : "shape \(str(shape)) scalars \(values.count) fanIn \(fanIn) fanOut \(fanOut)") { ctx in
        let negative = shape.contains { $0 < 0 }
        switch kind {
        case "Tensor(shape:scalars:)":
            ctx.referenceValid = count != nil && count == values.count && sizesFit(shape)
            let t = try Tensor(shape: shape, scalars: values)
            guard count != nil && count == values.count else { return ctx.fail("built \(str(t.shape)) from \(values.count) values") }
            if t.shape != shape || t.scalars.map(\.bitPattern) != values.map(\.bitPattern) { ctx.fail("shape or values changed") }
        case "IntTensor":
            let ints = values.map { Int64($0.isFinite ? Swift.max(-1e6, Swift.min(1e6, $0)) : 0) }
            ctx.referenceValid = count != nil && count == ints.count && sizesFit(shape)
            let t = try IntTensor(shape: shape, scalars: ints)
            guard count != nil && count == ints.count else { return ctx.fail("built \(str(t.shape)) from \(ints.count) integers") }
            if t.shape != shape || t.scalars != ints { ctx.fail("shape or values changed") }
        case "item":
            guard !negative, let count, count <= 4096 else { return }
            let t = try ctx.tensor(shape, Array(values.prefix(count)) + Array(repeating: 0, count: Swift.max(0, count - values.count)))
            ctx.referenceValid = count == 1
            let v = try t.item()
            guard count == 1 else { return ctx.fail("item() of \(count) elements returned \(v)") }
            if v.bitPattern != t.scalars[0].bitPattern { ctx.fail("item() = \(v), expected \(t.scalars[0])") }
        case "rows literal":
            let ragged = Set(rows.map(\.count)).count > 1
            if ragged { ctx.expectPrecondition("rows of a matrix must have equal lengths") }
            let t = Tensor(rows)
            guard !ragged else { return ctx.fail("built \(str(t.shape)) from ragged rows") }
            if t.shape != [rows.count, rows.first?.count ?? 0] || t.scalars != rows.flatMap({ $0 }) { ctx.fail("matrix literal \(str(t.shape))") }
        default:
            // Non-throwing factories stop on a documented precondition for a negative size, an element
            // count that overflows Int, or more memory than there is (as Array(repeating:count:) does).
            // PyTorch refuses a shape whose sizes overflow even when another is 0 ([0, 2^62, 4]); an empty
            // tensor is also accepted there.
            let overflow = !negative && checkedProduct(shape.map { $0 == 0 ? 1 : $0 }) == nil, huge = (count ?? 0) > 1 << 28
            if negative { ctx.expectPrecondition("negative dimension") }
            if overflow { ctx.expectPrecondition("overflows") }
            if huge { ctx.expectPrecondition("out of memory") }
            let t: Tensor
            switch kind {
            case "zeros": t = Tensor.zeros(shape)
            case "ones": t = Tensor.ones(shape)
            case "repeating": t = Tensor(repeating: values.first ?? 2, shape: shape)
            case "uniform": t = Tensor.uniform(shape, low: -3, high: 5)
            case "normal": t = Tensor.normal(shape, mean: 1, std: 2)
            case "glorotUniform": t = Tensor.glorotUniform(shape, fanIn: fanIn, fanOut: fanOut)
            case "heNormal": t = Tensor.heNormal(shape, fanIn: fanIn)
            default: t = Tensor.kaimingUniform(shape, fanIn: fanIn)
            }
            guard !negative && !huge && (!overflow || count == 0) else { return ctx.fail("\(kind)(\(str(shape))) returned \(str(t.shape))") }
            if t.shape != shape { return ctx.fail("shape \(str(t.shape)), expected \(str(shape))") }
            let s = t.scalars
            switch kind {
            case "zeros": if s.contains(where: { $0 != 0 }) { ctx.fail("zeros has a non-zero element") }
            case "ones": if s.contains(where: { $0 != 1 }) { ctx.fail("ones has an element other than 1") }
            case "repeating": if s.contains(where: { $0.bitPattern != (values.first ?? 2).bitPattern }) { ctx.fail("repeating has another element") }
            case "uniform": if s.contains(where: { !($0 >= -3 && $0 < 5) }) { ctx.fail("uniform(-3, 5) gave a value outside [-3, 5)") }
            case "normal": if s.contains(where: { !$0.isFinite }) { ctx.fail("normal gave a non-finite value") }
            case "glorotUniform":
                // PyTorch's xavier_uniform_: U(±sqrt(6 / (fan_in + fan_out))), no error for sizes it can compute.
                let fans = Double(fanIn) + Double(fanOut)
                guard fans > 0 else { return }
                checkBound(ctx, "glorotUniform", t, (6 / fans).squareRoot())
            case "heNormal": if fanIn > 0, s.contains(where: { !$0.isFinite }) { ctx.fail("heNormal gave a non-finite value") }
            default:
                guard fanIn > 0 else { return }
                checkBound(ctx, "kaimingUniform", t, (1 / Double(fanIn)).squareRoot())
            }
        }
    }
}
