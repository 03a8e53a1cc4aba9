/// A height and width: kernel sizes, strides, dilations. An integer literal means the same value for
/// both (`kernel: 3`), an array literal gives them apart (`kernel: [3, 1]`).
public struct Size2D: Equatable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The size along the rows (H).
    public var height: Int
    /// The size along the columns (W).
    public var width: Int
    /// A size of `height` rows by `width` columns.
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    /// The same size along both axes (`kernel: 3` is 3 × 3).
    public init(integerLiteral value: Int) { self.init(value, value) }
    /// `[height, width]`; any other count of elements is a programming error and traps.
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 2, "a 2-D size is [height, width], got \(elements)")
        self.init(elements[0], elements[1])
    }
    /// `(height, width)`, as PyTorch prints a pair.
    public var description: String { "(\(height), \(width))" }
}

/// Zero padding per side. An integer pads every side equally, `[h, w]` pads top and bottom by h and
/// left and right by w (PyTorch's `padding=(h, w)`), `[top, bottom, left, right]` sets each side.
public struct Padding2D: Equatable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Rows or columns of zeros added on each side.
    public var top: Int, bottom: Int, left: Int, right: Int
    /// Padding set side by side (PyTorch's `F.pad` order for the last two axes is left, right, top,
    /// bottom; here the labels say which is which).
    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }
    /// The same padding on all four sides (`padding: 1`).
    public init(integerLiteral value: Int) { self.init(top: value, bottom: value, left: value, right: value) }
    /// `[h, w]` (top and bottom h, left and right w) or `[top, bottom, left, right]`; any other count of
    /// elements is a programming error and traps.
    public init(arrayLiteral elements: Int...) {
        switch elements.count {
        case 2: self.init(top: elements[0], bottom: elements[0], left: elements[1], right: elements[1])
        case 4: self.init(top: elements[0], bottom: elements[1], left: elements[2], right: elements[3])
        default: preconditionFailure("padding is [h, w] or [top, bottom, left, right], got \(elements)")
        }
    }
    var isSymmetric: Bool { top == bottom && left == right }
    /// `(h, w)` when symmetric, as PyTorch prints `padding`, else `(top, bottom, left, right)`.
    public var description: String { isSymmetric ? "(\(top), \(left))" : "(\(top), \(bottom), \(left), \(right))" }
}

/// The output length of a convolution or pooling window along one axis:
/// floor((n + padBefore + padAfter - dilation (kernel - 1) - 1) / stride) + 1, or with `ceilMode`
/// PyTorch's pooling rule (round up, but drop a last window that would start in the right padding).
/// Returns a value < 1 when the window does not fit. Computed in 128 bits, so sizes near `Int.max`
/// give the true answer (clamped to `Int.max`) rather than a wrapped one.
public func outputSize(input n: Int, kernel: Int, stride: Int = 1, padding: Int = 0, paddingAfter: Int? = nil,
                       dilation: Int = 1, ceilMode: Bool = false) -> Int {
    let span = Int128(n) + Int128(padding) + Int128(paddingAfter ?? padding) - Int128(dilation) * (Int128(kernel) - 1) - 1
    guard span >= 0, stride >= 1 else { return 0 }
    let s = Int128(stride)
    guard ceilMode else { return Int(clamping: span / s + 1) }
    var out = (span + s - 1) / s + 1
    if (out - 1) * s >= Int128(n) + Int128(padding) { out -= 1 }
    return Int(clamping: out)
}
