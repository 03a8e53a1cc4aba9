// Values as PyTorch's module reprs print them, for `Module.configurationDescription`.

extension Bool {
    /// `True` or `False`, as Python prints them.
    var reprValue: String { self ? "True" : "False" }
}

extension Float {
    /// The shortest form that reads back to the same value (`0.1`, `1e-05`), as Python prints floats.
    var reprValue: String { description }
}

extension Size2D {
    /// One number when height and width agree (PyTorch keeps an int argument an int: `kernel_size=2`),
    /// else `(h, w)`.
    var reprValue: String { height == width ? String(height) : description }
}

extension Padding2D {
    /// One number when every side agrees, else the tuple.
    var reprValue: String { isSymmetric && top == left ? String(top) : description }
}
