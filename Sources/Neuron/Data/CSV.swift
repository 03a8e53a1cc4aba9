import Foundation

/// A numeric CSV table: `values` [rows, columns], every cell a finite number, every row the same length
/// (what `numpy.loadtxt(path, delimiter=",", skiprows=1)` or `pandas.read_csv(path).to_numpy()` gives
/// for an all-numeric file).
///
/// The first line is the header when `hasHeader` is set. Blank lines are skipped, `\r\n` line ends and
/// a UTF-8 byte-order mark are accepted, and fields may be enclosed in double quotes (a quote inside
/// one is written twice). Each cell is parsed as a Double and rounded to Float, as
/// `numpy.loadtxt(..., dtype=np.float32)` does. Error messages count lines and columns from 1, as editors
/// do; column indices in the API count from 0.
///
/// Split off the targets with `separatingLabels(column:)` (class labels) or
/// `separatingTargets(columns:)` (regression targets).
public struct CSVTable {
    /// The header's column names, when the table was read with `hasHeader`.
    public let columnNames: [String]?
    /// The cells, [rows, columns].
    public let values: Tensor
    /// The source line (from 1) of each row, for messages about a row's cells.
    let lineNumbers: [Int]
    /// The file path or "CSV text", for messages.
    let source: String

    /// Reads the CSV file at `url`.
    /// - Parameters:
    ///   - hasHeader: whether the first line names the columns.
    ///   - delimiter: the one-byte ASCII character between fields, e.g. `","`, `";"` or `"\t"`.
    /// - Throws: `NeuronError.io` when the file cannot be read, a cell is empty or not a finite number
    ///   (naming the line and column), a quote is not closed, or a row has a different number of
    ///   columns than the first; `.emptyInput` when there are no data rows; `.invalidArgument` for an
    ///   unusable delimiter.
    public init(contentsOf url: URL, hasHeader: Bool = false, delimiter: Character = ",") throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read CSV file \(url.path): \(error.localizedDescription)")
        }
        try self.init(bytes: [UInt8](data), hasHeader: hasHeader, delimiter: delimiter, source: url.path)
    }

    /// Parses CSV text in memory; see `init(contentsOf:hasHeader:delimiter:)`.
    public init(parsing text: String, hasHeader: Bool = false, delimiter: Character = ",") throws {
        try self.init(bytes: Array(text.utf8), hasHeader: hasHeader, delimiter: delimiter, source: "CSV text")
    }

    init(bytes: [UInt8], hasHeader: Bool, delimiter: Character, source: String) throws {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != UInt8(ascii: "\n"), d != UInt8(ascii: "\r") else {
            throw NeuronError.invalidArgument("CSV delimiter must be one ASCII character other than a quote or a line break, got \(delimiter.debugDescription)")
        }
        let (names, cells, lines, columns) = try bytes.withUnsafeBufferPointer { buffer in
            var parser = CSVLineParser(bytes: buffer, delimiter: d, source: source)
            return try parser.table(hasHeader: hasHeader)
        }
        guard !lines.isEmpty else { throw NeuronError.emptyInput("\(source) has no data rows") }
        columnNames = names
        values = try Tensor(shape: [lines.count, columns], scalars: cells)
        lineNumbers = lines
        self.source = source
    }

    public var rowCount: Int { values.shape[0] }
    public var columnCount: Int { values.shape[1] }

    /// The index (from 0) of the first column called `name` in the header.
    /// - Throws: `NeuronError.invalidArgument` when there is no header or no such column.
    public func columnIndex(named name: String) throws -> Int {
        guard let columnNames else {
            throw NeuronError.invalidArgument("\(source) was read without a header, so its columns have no names (looking for \(name.debugDescription))")
        }
        guard let i = columnNames.firstIndex(of: name) else {
            throw NeuronError.invalidArgument("\(source) has no column \(name.debugDescription); its columns are \(columnNames)")
        }
        return i
    }

    /// The table split into features (the other columns, in order) [rows, columns - k] and the target
    /// columns [rows, k], in the order given.
    /// - Throws: `NeuronError.invalidArgument` for no target columns, a repeated or out-of-range index,
    ///   or targets that leave no feature column.
    public func separatingTargets(columns targetColumns: [Int]) throws -> (features: Tensor, targets: Tensor) {
        guard !targetColumns.isEmpty else { throw NeuronError.invalidArgument("separatingTargets: no target columns given") }
        if let bad = targetColumns.first(where: { $0 < 0 || $0 >= columnCount }) {
            throw NeuronError.invalidArgument("target column \(bad) is out of range for \(source) with \(columnCount) columns (0..<\(columnCount))")
        }
        guard Set(targetColumns).count == targetColumns.count else {
            throw NeuronError.invalidArgument("target columns \(targetColumns) repeat a column")
        }
        let featureColumns = (0..<columnCount).filter { !targetColumns.contains($0) }
        guard !featureColumns.isEmpty else {
            throw NeuronError.invalidArgument("target columns \(targetColumns) are every column of \(source); no features are left")
        }
        return (selecting(featureColumns), selecting(targetColumns))
    }

    /// The table split into features (every other column, in order) [rows, columns - 1] and the
    /// integer class labels of `column`.
    /// - Throws: as `separatingTargets(columns:)`, and `NeuronError.io` naming the line when a label is
    ///   not a whole number.
    public func separatingLabels(column: Int) throws -> (features: Tensor, labels: [Int]) {
        let (features, targets) = try separatingTargets(columns: [column])
        let labels = try targets.scalars.enumerated().map { row, value in
            // Floats hold every integer up to 2^24 exactly; beyond that a label may already be rounded.
            guard value == value.rounded(), Swift.abs(value) <= 16_777_216 else {
                throw NeuronError.io("\(source), line \(lineNumbers[row]), column \(column + 1): label \(value) is not a whole number")
            }
            return Int(value)
        }
        return (features, labels)
    }

    /// The given columns, in that order, [rows, columns.count].
    private func selecting(_ columns: [Int]) -> Tensor {
        let width = columnCount, picked = columns.count
        var out = Tensor.zeros([rowCount, picked])
        values.withUnsafeBufferPointer { all in
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<rowCount {
                    for (j, c) in columns.enumerated() { o[r * picked + j] = all[r * width + c] }
                }
            }
        }
        return out
    }
}

/// Splits CSV bytes into lines and fields and parses the cells. A field is a byte range of the input,
/// so nothing is copied until a cell's number or a header name is read.
struct CSVLineParser {
    struct Field {
        /// The field's text: inside the quotes for a quoted field, else with surrounding blanks trimmed.
        let content: Range<Int>
        let isQuoted: Bool
    }

    /// Valid while the parser is used (the caller's `withUnsafeBufferPointer`).
    let bytes: UnsafeBufferPointer<UInt8>
    let delimiter: UInt8
    let source: String
    private var position: Int
    private var lineNumber = 0
    private static let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

    init(bytes: UnsafeBufferPointer<UInt8>, delimiter: UInt8, source: String) {
        self.bytes = bytes
        self.delimiter = delimiter
        self.source = source
        position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    }

    /// Parses every remaining line: the header's names (when `hasHeader`), the cells row by row, the
    /// line number of each data row and the column count (0 when there are no lines).
    mutating func table(hasHeader: Bool) throws -> (names: [String]?, cells: [Float], lines: [Int], columns: Int) {
        var names: [String]?
        var cells = [Float]()
        var lines = [Int]()
        // The column count and the line that set it (0 for the header), for messages about ragged rows.
        var width: (columns: Int, line: Int)?
        var fields = [Field]()
        while let lineNumber = try nextLine(into: &fields) {
            if hasHeader && names == nil {
                names = fields.map(text(of:))
                width = (fields.count, 0)
                continue
            }
            if let width, fields.count != width.columns {
                let reference = width.line == 0 ? "the header" : "line \(width.line)"
                throw NeuronError.io("\(source), line \(lineNumber) has \(fields.count) columns but \(reference) has \(width.columns)")
            }
            if width == nil {
                width = (fields.count, lineNumber)
                // As many rows as lines like those read so far would fill the input (a guess that saves
                // most of the regrowth on large files).
                cells.reserveCapacity(fields.count * (bytes.count / Swift.max(position, 1) + 1))
            }
            for (c, field) in fields.enumerated() {
                func location() -> String {
                    "\(source), line \(lineNumber), column \(c + 1)" + (names.map { " (\($0[c].debugDescription))" } ?? "")
                }
                guard !field.content.isEmpty else {
                    throw NeuronError.io("\(location()): empty cell (missing values are not supported)")
                }
                guard let value = number(in: field), value.isFinite else {
                    throw NeuronError.io("\(location()): \(text(of: field).debugDescription) is not a finite number")
                }
                cells.append(value)
            }
            lines.append(lineNumber)
        }
        return (names, cells, lines, width?.columns ?? 0)
    }

    /// Spaces and tabs, unless that is the delimiter.
    private func isBlank(_ b: UInt8) -> Bool { (b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")) && b != delimiter }

    /// Reads the next non-blank line into `fields` and returns its number (from 1), or nil at the end.
    mutating func nextLine(into fields: inout [Field]) throws -> Int? {
        while position < bytes.count {
            lineNumber += 1
            var end = position
            while end < bytes.count && bytes[end] != Self.newline { end += 1 }
            var stop = end
            if stop > position && bytes[stop - 1] == Self.carriageReturn { stop -= 1 }
            let line = position..<stop
            position = end + 1
            if line.allSatisfy({ isBlank(bytes[$0]) }) { continue }
            try split(line, into: &fields)
            return lineNumber
        }
        return nil
    }

    private func split(_ line: Range<Int>, into fields: inout [Field]) throws {
        fields.removeAll(keepingCapacity: true)
        var i = line.lowerBound
        while true {
            while i < line.upperBound && isBlank(bytes[i]) { i += 1 }
            if i < line.upperBound && bytes[i] == Self.quote {
                let start = i + 1
                var j = start
                while true {
                    guard j < line.upperBound else {
                        throw NeuronError.io("\(source), line \(lineNumber), column \(fields.count + 1): a quoted field is not closed")
                    }
                    if bytes[j] == Self.quote {
                        if j + 1 < line.upperBound && bytes[j + 1] == Self.quote { j += 2; continue }
                        break
                    }
                    j += 1
                }
                fields.append(Field(content: start..<j, isQuoted: true))
                i = j + 1
                while i < line.upperBound && isBlank(bytes[i]) { i += 1 }
                if i < line.upperBound && bytes[i] != delimiter {
                    throw NeuronError.io("\(source), line \(lineNumber), column \(fields.count): text after the closing quote")
                }
            } else {
                var j = i
                while j < line.upperBound && bytes[j] != delimiter { j += 1 }
                var k = j
                while k > i && isBlank(bytes[k - 1]) { k -= 1 }
                fields.append(Field(content: i..<k, isQuoted: false))
                i = j
            }
            if i >= line.upperBound { return }
            i += 1  // past the delimiter; one at the end of the line leaves one more, empty, field
        }
    }

    /// A field's number, parsed as a Double and rounded to Float (as `numpy.loadtxt(dtype=np.float32)`
    /// does); nil when the text is not a number.
    ///
    /// Plain decimals with at most 15 significant digits and a decimal exponent within ±22 take a fast
    /// path (Clinger's): the digits and the power of ten are exact Doubles, so one multiplication or
    /// division rounds correctly, exactly as `Double(String)` would. Anything else goes to `Double(String)`.
    func number(in field: Field) -> Float? {
        if let value = fastNumber(field.content) { return value }
        return Double(text(of: field)).map { Float($0) }
    }

    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The value of `[+-]digits[.digits][(e|E)[+-]digits]` within the fast path's limits, else nil.
    private func fastNumber(_ range: Range<Int>) -> Float? {
        var i = range.lowerBound
        let end = range.upperBound
        let zero = UInt8(ascii: "0")
        func isDigit(_ at: Int) -> Bool { at < end && bytes[at] &- zero < 10 }
        var negative = false
        if i < end && (bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+")) {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        }
        // Leading zeros are not significant; more than 15 significant digits leave the fast path.
        var mantissa: UInt64 = 0, significant = 0, exponent = 0
        let integerStart = i
        while isDigit(i) {
            let d = UInt64(bytes[i] &- zero)
            if mantissa != 0 || d != 0 { significant += 1; mantissa = mantissa &* 10 &+ d }
            i += 1
        }
        var digitCount = i - integerStart
        if i < end && bytes[i] == UInt8(ascii: ".") {
            i += 1
            let fractionStart = i
            while isDigit(i) {
                let d = UInt64(bytes[i] &- zero)
                if mantissa != 0 || d != 0 { significant += 1; mantissa = mantissa &* 10 &+ d }
                exponent -= 1
                i += 1
            }
            digitCount += i - fractionStart
        }
        guard digitCount > 0, significant <= 15 else { return nil }
        if i < end && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            var negativeExponent = false
            if i < end && (bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+")) {
                negativeExponent = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            let exponentStart = i
            var written = 0
            while isDigit(i) && i - exponentStart < 4 { written = written * 10 + Int(bytes[i] &- zero); i += 1 }
            guard i > exponentStart else { return nil }
            exponent += negativeExponent ? -written : written
        }
        guard i == end else { return nil }
        if mantissa == 0 { return negative ? -0.0 : 0 }
        guard Swift.abs(exponent) <= 22 else { return nil }
        let magnitude = exponent < 0 ? Double(mantissa) / Self.powersOfTen[-exponent] : Double(mantissa) * Self.powersOfTen[exponent]
        return Float(negative ? -magnitude : magnitude)
    }

    /// A field's text, with a quoted field's doubled quotes undone.
    func text(of field: Field) -> String {
        let raw = String(decoding: UnsafeBufferPointer(rebasing: bytes[field.content]), as: UTF8.self)
        return field.isQuoted ? raw.replacingOccurrences(of: "\"\"", with: "\"") : raw
    }
}
