import Foundation

/// A CSV table: the numeric columns in `values` [rows, columns] and the text columns as strings in
/// `texts`, read from RFC 4180 CSV (what `pandas.read_csv(path)` reads, with the numeric columns as
/// float32 and the others as strings).
///
/// Column types: every column is numeric unless `textColumns` names it (a date, a name, a label spelled
/// out) or `textColumns` is `.inferred`, which keeps as text every column with a cell that is neither a
/// number nor missing (pandas' `dtype` inference, without dates). Text columns need a header to name
/// them. `categories(inColumn:)` turns a text column into class indices or one-hot rows.
///
/// Missing values: by default an empty numeric cell is an error; with `emptyCells: .nan` it reads as
/// NaN, as pandas reads it (fill or drop the NaNs before training: `Tensor` arithmetic propagates them),
/// and so does a cell equal to one of `missingMarkers` (pandas' `na_values`, e.g. `["NA", "?"]`).
/// A text column keeps its cells as written (the empty string for an empty cell).
///
/// The first line is the header when `hasHeader` is set. Blank lines are skipped, `\r\n` line ends and
/// a UTF-8 byte-order mark are accepted, and fields may be enclosed in double quotes: a quoted field
/// may hold the delimiter and line breaks, and a quote inside one is written twice. Unquoted fields
/// lose their surrounding spaces and tabs. Each numeric cell is parsed as a Double and rounded to
/// Float, as `numpy.loadtxt(..., dtype=np.float32)` does. Error messages count lines and columns from 1,
/// as editors do (a row's line is the line it starts on); column indices in the API count from 0.
///
/// `csvText()` and `write(to:)` write the table back in its column order, so a table read, written and
/// read again with the same options is the same table.
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

    /// Which columns are read as text; an array literal of header names is `.named`.
    public enum TextColumns: Sendable, Equatable, ExpressibleByArrayLiteral {
        /// The columns with these header names; every other column is numeric.
        case named([String])
        /// Every column with a cell that is neither a number nor missing (needs a header).
        case inferred

        /// `.named(names)`: `textColumns: ["date", "name"]`.
        public init(arrayLiteral names: String...) { self = .named(names) }
    }

    /// The header's names of the numeric columns (the columns of `values`), when the table was read
    /// with `hasHeader`.
    public let columnNames: [String]?
    /// The numeric cells, [rows, columns].
    public let values: Tensor
    /// The text columns by name, one string per row.
    public let texts: [String: [String]]
    /// The names of the text columns, in file order.
    public let textColumnNames: [String]
    /// Every column in file order: a numeric column by its index in `values`, a text column by name.
    let layout: [Slot]
    /// The source line (from 1) on which each row starts, for messages about a row's cells.
    let lineNumbers: [Int]
    /// The file path or "CSV text", for messages.
    let source: String
    /// The cells of a text column that count as missing for `categories(inColumn:)`, besides the empty one.
    let missingMarkers: Set<String>

    enum Slot: Sendable, Equatable {
        case numeric(Int)
        case text(String)
    }

    /// Reads the CSV file at `url`.
    /// - Parameters:
    ///   - url: the file, UTF-8 text.
    ///   - hasHeader: whether the first line names the columns.
    ///   - delimiter: the one-byte ASCII character between fields, e.g. `","`, `";"` or `"\t"`.
    ///   - textColumns: header names of the columns kept as text, or `.inferred` (both need `hasHeader`).
    ///   - emptyCells: whether an empty numeric cell is an error or NaN.
    ///   - missingMarkers: cells that mean "missing" as an empty cell does (pandas' `na_values`).
    /// - Throws: `NeuronError.io` when the file cannot be read, a numeric cell is not a finite number or
    ///   is missing (unless `emptyCells` is `.nan`), naming the line and column, a quote is not closed, or
    ///   a row has a different number of columns than the first; `.emptyInput` when there are no data
    ///   rows; `.invalidArgument` for an unusable delimiter, or text columns without a header or missing
    ///   from it.
    public init(contentsOf url: URL, hasHeader: Bool = false, delimiter: Character = ",",
                textColumns: TextColumns = [], emptyCells: EmptyCells = .reject, missingMarkers: [String] = []) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeuronError.io("cannot read CSV file \(url.path): \(error.localizedDescription)")
        }
        try self.init(bytes: [UInt8](data), hasHeader: hasHeader, delimiter: delimiter, textColumns: textColumns,
                      emptyCells: emptyCells, missingMarkers: missingMarkers, source: url.path)
    }

    /// Parses CSV text in memory; see `init(contentsOf:hasHeader:delimiter:textColumns:emptyCells:missingMarkers:)`.
    public init(parsing text: String, hasHeader: Bool = false, delimiter: Character = ",",
                textColumns: TextColumns = [], emptyCells: EmptyCells = .reject, missingMarkers: [String] = []) throws {
        try self.init(bytes: Array(text.utf8), hasHeader: hasHeader, delimiter: delimiter, textColumns: textColumns,
                      emptyCells: emptyCells, missingMarkers: missingMarkers, source: "CSV text")
    }

    init(bytes: [UInt8], hasHeader: Bool, delimiter: Character, textColumns: TextColumns = [],
         emptyCells: EmptyCells = .reject, missingMarkers: [String] = [], source: String) throws {
        let d = try Self.delimiterByte(delimiter)
        var named: [String] = []
        let inferring: Bool
        switch textColumns {
        case .named(let names): named = names; inferring = false
        case .inferred: inferring = true
        }
        guard named.isEmpty && !inferring || hasHeader else {
            throw NeuronError.invalidArgument("\(source): text columns are named by the header, but the table is read without one")
        }
        let options = CSVRecordParser.Options(emptyAsNaN: emptyCells == .nan, missingMarkers: Set(missingMarkers),
                                              inferring: inferring)
        // Inference parses as numbers first; a column with a cell that is not one turns to text and the
        // parse starts again (at most once per such column, and never for all-numeric files).
        var text = Set(named)
        var table: CSVRecordParser.Table
        while true {
            do {
                table = try bytes.withUnsafeBufferPointer { buffer in
                    var parser = CSVRecordParser(bytes: buffer, delimiter: d, source: source)
                    return try parser.table(hasHeader: hasHeader, textColumns: text, options: options)
                }
                break
            } catch let notNumeric as CSVRecordParser.NotNumeric {
                text.insert(notNumeric.column)
            }
        }
        if let names = table.allNames, let absent = named.first(where: { !names.contains($0) }) {
            throw NeuronError.invalidArgument("\(source) has no column \(absent.debugDescription) to read as text; its columns are \(names)")
        }
        guard !table.lines.isEmpty else { throw NeuronError.emptyInput("\(source) has no data rows") }
        columnNames = table.names
        values = try Tensor(shape: [table.lines.count, table.columns], scalars: table.cells)
        texts = table.texts
        textColumnNames = table.layout.compactMap { if case .text(let name) = $0 { return name } else { return nil } }
        layout = table.layout
        lineNumbers = table.lines
        self.source = source
        self.missingMarkers = Set(missingMarkers)
    }

    /// A table to write: numeric columns `values` [rows, columns] named `columnNames` (or no header),
    /// after the text columns `textColumns` (name and one cell per row, in this order).
    /// - Throws: `NeuronError.shapeMismatch` when `values` is not [rows, columns] with a name per column
    ///   and a text cell per row; `.invalidArgument` for text columns without numeric column names to
    ///   go with them in a header, or for a repeated name.
    public init(values: Tensor, columnNames: [String]?, textColumns: [(name: String, cells: [String])] = []) throws {
        guard values.rank == 2 else {
            throw NeuronError.shapeMismatch("a CSV table's values must be [rows, columns], got \(shapeString(values.shape))")
        }
        if let columnNames, columnNames.count != values.shape[1] {
            throw NeuronError.shapeMismatch("\(columnNames.count) column names for values \(shapeString(values.shape))")
        }
        if let bad = textColumns.first(where: { $0.cells.count != values.shape[0] }) {
            throw NeuronError.shapeMismatch("text column \(bad.name.debugDescription) has \(bad.cells.count) cells for \(values.shape[0]) rows")
        }
        guard textColumns.isEmpty || columnNames != nil else {
            throw NeuronError.invalidArgument("text columns are named in the header, so the numeric columns need names too")
        }
        let all = textColumns.map(\.name) + (columnNames ?? [])
        guard Set(all).count == all.count else { throw NeuronError.invalidArgument("CSV column names \(all) repeat a name") }
        self.columnNames = columnNames
        self.values = values
        texts = Dictionary(uniqueKeysWithValues: textColumns.map { ($0.name, $0.cells) })
        textColumnNames = textColumns.map(\.name)
        layout = textColumns.map { .text($0.name) } + (0..<values.shape[1]).map { .numeric($0) }
        lineNumbers = Array(0..<values.shape[0]).map { $0 + (columnNames == nil ? 1 : 2) }
        source = "CSV table"
        missingMarkers = []
    }

    static func delimiterByte(_ delimiter: Character) throws -> UInt8 {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != UInt8(ascii: "\n"), d != UInt8(ascii: "\r") else {
            throw NeuronError.invalidArgument("CSV delimiter must be one ASCII character other than a quote or a line break, got \(delimiter.debugDescription)")
        }
        return d
    }

    /// The number of data rows (the header not counted).
    public var rowCount: Int { values.shape[0] }
    /// The number of numeric columns (the columns of `values`).
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

    /// The cells of text column `name`.
    private func textCells(_ name: String) throws -> [String] {
        guard let cells = texts[name] else {
            throw NeuronError.invalidArgument("\(source): \(name.debugDescription) is not a text column (text columns: \(textColumnNames))")
        }
        return cells
    }

    /// The ISO dates (`YYYY-MM-DD`) of text column `name` as day numbers (days since 1970-01-01, the
    /// proleptic Gregorian calendar), for spacing and ordering checks on a time series.
    /// - Throws: `NeuronError.invalidArgument` when `name` is not a text column; `.io` naming the line
    ///   for a cell that is not such a date.
    public func days(inColumn name: String) throws -> [Int] {
        try textCells(name).enumerated().map { row, cell in
            guard let day = isoDayNumber(cell) else {
                throw NeuronError.io("\(source), line \(lineNumbers[row]) (\(name.debugDescription)): \(cell.debugDescription) is not a date YYYY-MM-DD")
            }
            return day
        }
    }

    /// Text column `name` as a categorical variable: its distinct values (the levels) and each row's
    /// index among them, what scikit-learn's `LabelEncoder` / `OneHotEncoder` and pandas'
    /// `Categorical` give. `oneHot()` on the result is pandas' `get_dummies` for that column.
    ///
    /// An empty cell, or one equal to a missing marker of the read, is missing: index -1 (pandas'
    /// code for NaN) and a row of zeros in one-hot form.
    /// - Parameters:
    ///   - name: the text column's name in the header.
    ///   - levels: the levels to use, in order (those found on a training set, so a test set
    ///     encodes the same way); `nil` takes the distinct values present, sorted by Unicode code points
    ///     as Python's `sorted` does.
    /// - Throws: `NeuronError.invalidArgument` when `name` is not a text column, or `levels` repeats a
    ///   value; `.io` naming the line for a value that is not among the given `levels`.
    public func categories(inColumn name: String, levels: [String]? = nil) throws -> CategoricalColumn {
        let cells = try textCells(name)
        let isMissing = { (cell: String) in cell.isEmpty || missingMarkers.contains(cell) }
        let found = levels ?? Set(cells.filter { !isMissing($0) }).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        var index: [String: Int] = [:]
        for (i, level) in found.enumerated() where index.updateValue(i, forKey: level) != nil {
            throw NeuronError.invalidArgument("categories of \(name.debugDescription): level \(level.debugDescription) is given twice")
        }
        let indices = try cells.enumerated().map { row, cell in
            if isMissing(cell) { return -1 }
            guard let i = index[cell] else {
                throw NeuronError.io("\(source), line \(lineNumbers[row]) (\(name.debugDescription)): \(cell.debugDescription) is not one of the levels \(found)")
            }
            return i
        }
        return CategoricalColumn(levels: found, indices: indices)
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

    // MARK: Writing

    /// The table as CSV text: the header (when the table has names), then one line per row, columns in
    /// file order, lines ending in `\n`. Numbers are written in the shortest form that reads back as
    /// the same Float (whole numbers below 2^24 without a decimal point), NaN as an empty cell; a field
    /// holding the delimiter, a quote, a line break or surrounding blanks is quoted, as is the empty
    /// cell of a row that would otherwise be a blank line (which reading skips).
    /// - Throws: `NeuronError.invalidArgument` for an unusable delimiter; `.nonFinite` naming the row
    ///   and column for an infinite value (reading accepts none).
    public func csvText(delimiter: Character = ",") throws -> String {
        let d = try Self.delimiterByte(delimiter)
        let separator = String(Character(Unicode.Scalar(d)))
        var out = ""
        out.reserveCapacity(rowCount * (layout.count * 8 + 1))
        func appendLine(_ cells: [String]) {
            if cells.allSatisfy(\.isEmpty) {
                out += "\"\"" + String(repeating: separator, count: cells.count - 1) + "\n"
            } else {
                out += cells.joined(separator: separator) + "\n"
            }
        }
        var names: [String] = []
        if let columnNames {
            names = layout.map { slot in
                switch slot {
                case .numeric(let c): return columnNames[c]
                case .text(let name): return name
                }
            }
            appendLine(names.map { Self.quotedIfNeeded($0, delimiter: d) })
        }
        let width = columnCount
        try values.withUnsafeBufferPointer { all in
            for row in 0..<rowCount {
                appendLine(try layout.enumerated().map { position, slot in
                    switch slot {
                    case .text(let name):
                        return Self.quotedIfNeeded(texts[name]![row], delimiter: d)
                    case .numeric(let c):
                        let value = all[row * width + c]
                        guard !value.isInfinite else {
                            let name = names.isEmpty ? "" : " (\(names[position].debugDescription))"
                            throw NeuronError.nonFinite("CSV row \(row + 1), column \(position + 1)\(name) is \(value); CSV numbers must be finite or missing")
                        }
                        return Self.numberText(value)
                    }
                })
            }
        }
        return out
    }

    /// Writes `csvText(delimiter:)` to `url` atomically (temporary file, flush, rename).
    /// - Throws: as `csvText(delimiter:)`; `NeuronError.io` when the file cannot be written.
    public func write(to url: URL, delimiter: Character = ",") throws {
        let text = try csvText(delimiter: delimiter)
        do {
            try writeAtomically(Data(text.utf8), to: url)
        } catch NeuronError.io(let reason) {
            throw NeuronError.io("\(url.path): \(reason)")
        }
    }

    /// `value` as the reader reads it back: "" for NaN, an integer without ".0" when exact, else
    /// Swift's shortest round-trip form ("0.1", "1e-05").
    static func numberText(_ value: Float) -> String {
        if value.isNaN { return "" }
        if value == value.rounded(), Swift.abs(value) < 16_777_216 { return String(Int(value)) }
        return value.description
    }

    /// `field` quoted (quotes doubled) when reading it unquoted would change it.
    static func quotedIfNeeded(_ field: String, delimiter: UInt8) -> String {
        let utf8 = field.utf8
        let blank = { (b: UInt8) in b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        let needs = utf8.contains { $0 == delimiter || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
            || utf8.first.map(blank) == true || utf8.last.map(blank) == true
        return needs ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }
}

/// A categorical text column encoded as class indices (see `CSVTable.categories(inColumn:levels:)`).
public struct CategoricalColumn: Sendable, Equatable {
    /// The distinct values; index i stands for `levels[i]`.
    public let levels: [String]
    /// Each row's index into `levels`, or -1 for a missing cell.
    public let indices: [Int]

    /// One row per cell, [rows, levels.count]: a 1 at the cell's level, all zeros for a missing cell
    /// (pandas' `get_dummies`, scikit-learn's `OneHotEncoder(handle_unknown="ignore")`).
    public func oneHot() -> Tensor {
        var out = Tensor.zeros([indices.count, levels.count])
        out.withUnsafeMutableBufferPointer { p in
            for (row, i) in indices.enumerated() where i >= 0 { p[row * levels.count + i] = 1 }
        }
        return out
    }
}

/// Splits CSV bytes into records and fields and parses the cells. A field is a byte range of the input,
/// so nothing is copied until a cell's number or a text is read.
struct CSVRecordParser {
    struct Field {
        /// The field's text: inside the quotes for a quoted field, else with surrounding blanks trimmed.
        let content: Range<Int>
        let isQuoted: Bool
    }

    /// How cells are read: empty and marker cells as NaN or an error; when `inferring`, a numeric
    /// cell that is no number ends the parse with `NotNumeric` naming its column.
    struct Options {
        var emptyAsNaN = false
        var missingMarkers: Set<String> = []
        var inferring = false
    }

    /// Thrown when inferring: column `column` (a header name) holds text, so the parse starts again.
    struct NotNumeric: Error { let column: String }

    /// Valid while the parser is used (the caller's `withUnsafeBufferPointer`).
    let bytes: UnsafeBufferPointer<UInt8>
    let delimiter: UInt8
    let source: String
    private var position: Int
    /// The line the parser is on (from 1 once a record has begun).
    private var lineNumber = 0
    private static let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

    init(bytes: UnsafeBufferPointer<UInt8>, delimiter: UInt8, source: String) {
        self.bytes = bytes
        self.delimiter = delimiter
        self.source = source
        position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    }

    /// What `table` parsed: the numeric columns' names (when there is a header) and every column's, the
    /// numeric cells row by row, the text columns, the line number of each data row, the numeric
    /// column count (0 when there are no lines) and every column's slot in file order.
    struct Table {
        var names: [String]?
        var allNames: [String]?
        var cells: [Float] = []
        var texts: [String: [String]] = [:]
        var lines: [Int] = []
        var columns = 0
        var layout: [CSVTable.Slot] = []
    }

    /// Parses every remaining record: the header (when `hasHeader`), then the data rows. Columns whose
    /// header name is in `textColumns` are kept as strings; the others are numbers, read per `options`.
    mutating func table(hasHeader: Bool, textColumns: Set<String> = [], options: Options = Options()) throws -> Table {
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
        while let lineNumber = try nextRecord(into: &fields) {
            if hasHeader && names == nil {
                names = fields.map(text(of:))
                isText = names!.map(textColumns.contains)
                textNames = names!.filter(textColumns.contains)
                if let twice = textNames.first(where: { name in textNames.filter { $0 == name }.count > 1 }) {
                    throw NeuronError.invalidArgument("\(source): the header names column \(twice.debugDescription) twice, so it cannot be read as text by name")
                }
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
                isText = Array(repeating: false, count: fields.count)
                // As many rows as records like those read so far would fill the input (a guess that saves
                // most of the regrowth on large files).
                cells.reserveCapacity(fields.count * (bytes.count / Swift.max(position, 1) + 1))
            }
            var textIndex = 0
            for c in fields.indices {
                let field = fields[c]
                if isText[c] {
                    textCells[textIndex].append(text(of: field))
                    textIndex += 1
                    continue
                }
                if let value = fastNumber(field.content) {
                    cells.append(value)
                    continue
                }
                func location() -> String {
                    "\(source), line \(lineNumber), column \(c + 1)" + (names.map { " (\($0[c].debugDescription))" } ?? "")
                }
                let written = text(of: field)
                if written.isEmpty || options.missingMarkers.contains(written) {
                    if options.emptyAsNaN { cells.append(.nan); continue }
                    let what = written.isEmpty ? "empty cell" : "missing value \(written.debugDescription)"
                    throw NeuronError.io("\(location()): \(what) (read with emptyCells: .nan to take it as a missing value)")
                }
                guard let value = Double(written).map({ Float($0) }), value.isFinite else {
                    if options.inferring, let names { throw NotNumeric(column: names[c]) }
                    throw NeuronError.io("\(location()): \(written.debugDescription) is not a finite number")
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
        var numeric = 0
        result.layout = isText.indices.map { c in
            if isText[c] { return .text(names![c]) }
            numeric += 1
            return .numeric(numeric - 1)
        }
        return result
    }

    /// Spaces and tabs, unless that is the delimiter.
    private func isBlank(_ b: UInt8) -> Bool { (b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")) && b != delimiter }

    /// Reads the next record into `fields`, skipping blank lines, and returns the line it starts on
    /// (from 1), or nil at the end. A quoted field may run over several lines.
    mutating func nextRecord(into fields: inout [Field]) throws -> Int? {
        fields.removeAll(keepingCapacity: true)
        let end = bytes.count
        // Blank lines (nothing but blanks before the line break) are skipped.
        while true {
            guard position < end else { return nil }
            var i = position
            while i < end && isBlank(bytes[i]) { i += 1 }
            if i < end && bytes[i] == Self.carriageReturn && (i + 1 == end || bytes[i + 1] == Self.newline) { i += 1 }
            if i == end {
                position = end
                return nil
            }
            guard bytes[i] == Self.newline else { break }
            lineNumber += 1
            position = i + 1
        }
        lineNumber += 1
        let first = lineNumber
        var i = position
        while true {
            while i < end && isBlank(bytes[i]) { i += 1 }
            if i < end && bytes[i] == Self.quote {
                let start = i + 1
                var j = start
                while true {
                    guard j < end else {
                        throw NeuronError.io("\(source), line \(first), column \(fields.count + 1): a quoted field is not closed")
                    }
                    let b = bytes[j]
                    if b == Self.quote {
                        if j + 1 < end && bytes[j + 1] == Self.quote { j += 2; continue }
                        break
                    }
                    if b == Self.newline { lineNumber += 1 }
                    j += 1
                }
                fields.append(Field(content: start..<j, isQuoted: true))
                i = j + 1
                while i < end && isBlank(bytes[i]) { i += 1 }
                if i < end && bytes[i] == Self.carriageReturn && (i + 1 == end || bytes[i + 1] == Self.newline) { i += 1 }
                if i < end && bytes[i] != delimiter && bytes[i] != Self.newline {
                    throw NeuronError.io("\(source), line \(lineNumber), column \(fields.count): text after the closing quote")
                }
            } else {
                var j = i
                while j < end, bytes[j] != delimiter, bytes[j] != Self.newline { j += 1 }
                var k = j
                if k > i && bytes[k - 1] == Self.carriageReturn && (j == end || bytes[j] == Self.newline) { k -= 1 }
                while k > i && isBlank(bytes[k - 1]) { k -= 1 }
                fields.append(Field(content: i..<k, isQuoted: false))
                i = j
            }
            // i is at a delimiter (another field follows, empty if the line ends there), a line break or the end.
            if i < end && bytes[i] == delimiter {
                i += 1
                continue
            }
            position = i + 1
            return first
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
