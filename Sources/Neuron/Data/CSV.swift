import Foundation

/// A CSV table: the numeric columns in `values` [rows, columns], every cell a finite number (or NaN for
/// an empty cell when asked), every row the same length (what `numpy.loadtxt(path, delimiter=",",
/// skiprows=1)` or `pandas.read_csv(path).to_numpy()` gives for an all-numeric file), and the columns
/// named in `textColumns` as strings in `texts` (a date, a name, a label spelled out).
///
/// Missing values: by default an empty numeric cell is an error; with `emptyCells: .nan` it reads as
/// NaN, as pandas reads it (fill or drop the NaNs before training: `Tensor` arithmetic propagates them).
/// A text column's empty cell is the empty string. Dates stay text; `days(inColumn:)` turns an ISO
/// `YYYY-MM-DD` column into day numbers.
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
    /// What an empty numeric cell means.
    public enum EmptyCells: Sendable {
        /// An empty cell is an error naming its line and column.
        case reject
        /// An empty cell is a missing value, read as NaN.
        case nan
    }

    /// The header's names of the numeric columns (the columns of `values`), when the table was read
    /// with `hasHeader`.
    public let columnNames: [String]?
    /// The numeric cells, [rows, columns].
    public let values: Tensor
    /// The text columns by name, one string per row.
    public let texts: [String: [String]]
    /// The source line (from 1) of each row, for messages about a row's cells.
    let lineNumbers: [Int]
    /// The file path or "CSV text", for messages.
    let source: String

    /// Reads the CSV file at `url`.
    /// - Parameters:
    ///   - url: the file, UTF-8 text.
    ///   - hasHeader: whether the first line names the columns.
    ///   - delimiter: the one-byte ASCII character between fields, e.g. `","`, `";"` or `"\t"`.
    ///   - textColumns: header names of the columns kept as text (needs `hasHeader`).
    ///   - emptyCells: whether an empty numeric cell is an error or NaN.
    /// - Throws: `NeuronError.io` when the file cannot be read, a numeric cell is not a finite number or
    ///   is empty (unless `emptyCells` is `.nan`), naming the line and column, a quote is not closed, or a
    ///   row has a different number of columns than the first; `.emptyInput` when there are no data rows;
    ///   `.invalidArgument` for an unusable delimiter, or text columns without a header or missing from it.
    public init(contentsOf url: URL, hasHeader: Bool = false, delimiter: Character = ",",
                textColumns: [String] = [], emptyCells: EmptyCells = .reject) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read CSV file \(url.path): \(error.localizedDescription)")
        }
        try self.init(bytes: [UInt8](data), hasHeader: hasHeader, delimiter: delimiter, textColumns: textColumns,
                      emptyCells: emptyCells, source: url.path)
    }

    /// Parses CSV text in memory; see `init(contentsOf:hasHeader:delimiter:textColumns:emptyCells:)`.
    public init(parsing text: String, hasHeader: Bool = false, delimiter: Character = ",",
                textColumns: [String] = [], emptyCells: EmptyCells = .reject) throws {
        try self.init(bytes: Array(text.utf8), hasHeader: hasHeader, delimiter: delimiter, textColumns: textColumns,
                      emptyCells: emptyCells, source: "CSV text")
    }

    init(bytes: [UInt8], hasHeader: Bool, delimiter: Character, textColumns: [String] = [],
         emptyCells: EmptyCells = .reject, source: String) throws {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != UInt8(ascii: "\n"), d != UInt8(ascii: "\r") else {
            throw NeuronError.invalidArgument("CSV delimiter must be one ASCII character other than a quote or a line break, got \(delimiter.debugDescription)")
        }
        guard textColumns.isEmpty || hasHeader else {
            throw NeuronError.invalidArgument("\(source): text columns \(textColumns) are named by the header, but the table is read without one")
        }
        let table = try bytes.withUnsafeBufferPointer { buffer in
            var parser = CSVLineParser(bytes: buffer, delimiter: d, source: source)
            return try parser.table(hasHeader: hasHeader, textColumns: Set(textColumns), emptyAsNaN: emptyCells == .nan)
        }
        if let names = table.allNames, let absent = textColumns.first(where: { !names.contains($0) }) {
            throw NeuronError.invalidArgument("\(source) has no column \(absent.debugDescription) to read as text; its columns are \(names)")
        }
        guard !table.lines.isEmpty else { throw NeuronError.emptyInput("\(source) has no data rows") }
        columnNames = table.names
        values = try Tensor(shape: [table.lines.count, table.columns], scalars: table.cells)
        texts = table.texts
        lineNumbers = table.lines
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

    /// The numeric column called `name`, [rows].
    /// - Throws: as `columnIndex(named:)`.
    public func column(named name: String) throws -> Tensor {
        try selecting([try columnIndex(named: name)]).reshaped([rowCount])
    }

    /// The ISO dates (`YYYY-MM-DD`) of text column `name` as day numbers (days since 1970-01-01, the
    /// proleptic Gregorian calendar), for spacing and ordering checks on a time series.
    /// - Throws: `NeuronError.invalidArgument` when `name` is not a text column; `.io` naming the line
    ///   for a cell that is not such a date.
    public func days(inColumn name: String) throws -> [Int] {
        guard let cells = texts[name] else {
            throw NeuronError.invalidArgument("\(source): \(name.debugDescription) is not a text column (text columns: \(texts.keys.sorted()))")
        }
        return try cells.enumerated().map { row, cell in
            guard let day = isoDayNumber(cell) else {
                throw NeuronError.io("\(source), line \(lineNumbers[row]) (\(name.debugDescription)): \(cell.debugDescription) is not a date YYYY-MM-DD")
            }
            return day
        }
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

    /// What `table` parsed: the numeric columns' names (when there is a header) and every column's, the
    /// numeric cells row by row, the text columns, the line number of each data row and the numeric
    /// column count (0 when there are no lines).
    struct Table {
        var names: [String]?
        var allNames: [String]?
        var cells: [Float] = []
        var texts: [String: [String]] = [:]
        var lines: [Int] = []
        var columns = 0
    }

    /// Parses every remaining line: the header (when `hasHeader`), then the data rows. Columns whose
    /// header name is in `textColumns` are kept as strings; an empty numeric cell is NaN when
    /// `emptyAsNaN`, else an error.
    mutating func table(hasHeader: Bool, textColumns: Set<String> = [], emptyAsNaN: Bool = false) throws -> Table {
        var result = Table()
        var names: [String]?
        var isText: [Bool] = []
        var textNames: [String] = []
        var cells = [Float]()
        var lines = [Int]()
        // The column count and the line that set it (0 for the header), for messages about ragged rows.
        var width: (columns: Int, line: Int)?
        var fields = [Field]()
        var textCells: [[String]] = []
        while let lineNumber = try nextLine(into: &fields) {
            if hasHeader && names == nil {
                names = fields.map(text(of:))
                isText = names!.map(textColumns.contains)
                textNames = names!.filter(textColumns.contains)
                textCells = Array(repeating: [], count: textNames.count)
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
            var textIndex = 0
            for (c, field) in fields.enumerated() {
                if c < isText.count && isText[c] {
                    textCells[textIndex].append(text(of: field))
                    textIndex += 1
                    continue
                }
                func location() -> String {
                    "\(source), line \(lineNumber), column \(c + 1)" + (names.map { " (\($0[c].debugDescription))" } ?? "")
                }
                guard !field.content.isEmpty else {
                    if emptyAsNaN { cells.append(.nan); continue }
                    throw NeuronError.io("\(location()): empty cell (read with emptyCells: .nan to take it as a missing value)")
                }
                guard let value = number(in: field), value.isFinite else {
                    throw NeuronError.io("\(location()): \(text(of: field).debugDescription) is not a finite number")
                }
                cells.append(value)
            }
            lines.append(lineNumber)
        }
        result.allNames = names
        result.names = names.map { all in all.indices.filter { !isText[$0] }.map { all[$0] } }
        result.cells = cells
        result.texts = Dictionary(uniqueKeysWithValues: zip(textNames, textCells))
        result.lines = lines
        result.columns = (width?.columns ?? 0) - textNames.count
        return result
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

/// Days since 1970-01-01 of an ISO date `YYYY-MM-DD` (proleptic Gregorian), or nil when the text is not
/// one (wrong shape, month outside 1...12, day outside the month). Howard Hinnant's days_from_civil.
func isoDayNumber(_ text: String) -> Int? {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
          parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
          let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
          (1...12).contains(month), day >= 1 else { return nil }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard day <= monthDays[month - 1] else { return nil }
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}
