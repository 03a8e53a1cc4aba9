import Foundation
import Testing
@testable import Neuron

/// The kind and message of the `NeuronError` that `body` throws; records an issue when it throws
/// nothing or another error.
private func failure(_ body: () throws -> Any, sourceLocation: SourceLocation = #_sourceLocation) -> (kind: String, message: String)? {
    do {
        _ = try body()
        Issue.record("expected a NeuronError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as NeuronError {
        switch error {
        case .shapeMismatch(let m): return ("shapeMismatch", m)
        case .invalidArgument(let m): return ("invalidArgument", m)
        case .emptyInput(let m): return ("emptyInput", m)
        case .nonFinite(let m): return ("nonFinite", m)
        case .io(let m): return ("io", m)
        case .communication(let m): return ("communication", m)
        }
    } catch {
        Issue.record("expected a NeuronError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

private func expectNear(_ a: Tensor, _ b: Tensor, atol: Float = 1e-6, rtol: Float = 1e-5,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.isClose(to: b, atol: atol, rtol: rtol), "\(a.shape) \(a.scalars) vs \(b.shape) \(b.scalars)",
            sourceLocation: sourceLocation)
}

/// Writes `text` to a fresh temporary file and returns its URL.
private func temporaryFile(_ text: String, name: String = "data.csv") throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}

@Suite struct DataTests {
    // MARK: Scalers

    @Test func standardScalerUsesPopulationStatisticsAndMapsConstantColumnsToZero() throws {
        let train = Tensor([[1, 10, 5], [2, 20, 5], [3, 30, 5], [4, 40, 5]])
        var scaler = StandardScaler()
        let z = try scaler.fitTransform(train)
        // Column 0: mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
        let s = Float(1.25).squareRoot()
        expectNear(try #require(scaler.mean), Tensor([2.5, 25, 5]))
        expectNear(try #require(scaler.scale), Tensor([s, 10 * s, 1]))
        expectNear(z, Tensor([[-1.5 / s, -1.5 / s, 0], [-0.5 / s, -0.5 / s, 0], [0.5 / s, 0.5 / s, 0], [1.5 / s, 1.5 / s, 0]]))
        #expect(z.scalars.allSatisfy { $0.isFinite })

        // New data is scaled with the training statistics, not its own.
        let test = Tensor([[5, 0, 7], [2.5, 25, 5]])
        expectNear(try scaler.transform(test), Tensor([[2.5 / s, -25 / (10 * s), 2], [0, 0, 0]]))
        expectNear(try scaler.inverseTransform(try scaler.transform(test)), test, atol: 1e-5)
        expectNear(try scaler.inverseTransform(z), train, atol: 1e-5)
    }

    @Test func minMaxScalerMapsTrainingRangeToTheTargetRange() throws {
        let train = Tensor([[1, -2, 3], [3, 2, 3], [2, 0, 3]])
        var unit = MinMaxScaler()
        expectNear(try unit.fitTransform(train), Tensor([[0, 0, 0], [1, 1, 0], [0.5, 0.5, 0]]))
        #expect(unit.dataMin == Tensor([1, -2, 3]))
        #expect(unit.dataMax == Tensor([3, 2, 3]))
        // Outside the training range maps outside 0...1; the constant column moves by x - 3.
        let test = Tensor([[4, -4, 5]])
        expectNear(try unit.transform(test), Tensor([[1.5, -0.5, 2]]))
        expectNear(try unit.inverseTransform(try unit.transform(test)), test)

        var symmetric = MinMaxScaler(range: -1...1)
        let y = try symmetric.fitTransform(train)
        expectNear(y, Tensor([[-1, -1, -1], [1, 1, -1], [0, 0, -1]]))
        expectNear(try symmetric.inverseTransform(y), train)
    }

    @Test func scalersRejectBadInput() throws {
        var standard = StandardScaler()
        let early = failure { try standard.transform(Tensor([[1, 2]])) }
        #expect(early?.kind == "invalidArgument")
        #expect(early?.message.contains("before fit") == true)
        #expect(failure { try standard.inverseTransform(Tensor([[1, 2]])) }?.kind == "invalidArgument")
        #expect(failure { try standard.fit(Tensor.zeros([0, 3])) }?.kind == "emptyInput")
        #expect(failure { try standard.fit(Tensor([1, 2, 3])) }?.kind == "shapeMismatch")

        try standard.fit(Tensor([[1, 2, 3], [4, 5, 6]]))
        let mismatch = failure { try standard.transform(Tensor([[1, 2], [3, 4]])) }
        #expect(mismatch?.kind == "shapeMismatch")
        #expect(mismatch?.message.contains("[2, 2]") == true && mismatch?.message.contains("[2, 3]") == true)

        var minMax = MinMaxScaler()
        #expect(failure { try minMax.transform(Tensor([[1]])) }?.kind == "invalidArgument")
        #expect(failure { try minMax.fit(Tensor.zeros([0, 2])) }?.kind == "emptyInput")
        try minMax.fit(Tensor([[0, 1], [1, 2]]))
        #expect(failure { try minMax.inverseTransform(Tensor([[1, 2, 3]])) }?.kind == "shapeMismatch")
        var point = MinMaxScaler(range: 1...1)
        #expect(failure { try point.fit(Tensor([[0], [1]])) }?.kind == "invalidArgument")
    }

    // MARK: One-hot

    @Test func oneHotEncodesLabels() throws {
        #expect(try oneHot([2, 0, 1, 2], classes: 3) == Tensor([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
        #expect(try oneHot([], classes: 4).shape == [0, 4])
        let outOfRange = failure { try oneHot([0, 3], classes: 3) }
        #expect(outOfRange?.kind == "invalidArgument")
        #expect(outOfRange?.message.contains("label 3 at index 1") == true)
        #expect(failure { try oneHot([-1], classes: 3) }?.kind == "invalidArgument")
        #expect(failure { try oneHot([0], classes: 0) }?.kind == "invalidArgument")
    }

    // MARK: CSV

    @Test func csvReadsHeaderLabelsAndTargets() throws {
        let url = try temporaryFile("\u{FEFF}a, b ,label\n1,2,0\n3.5,-4,1\r\n\n5,6e1,2\n")
        let table = try CSVTable(contentsOf: url, hasHeader: true)
        #expect(table.columnNames == ["a", "b", "label"])
        #expect(table.values == Tensor([[1, 2, 0], [3.5, -4, 1], [5, 60, 2]]))
        #expect(table.rowCount == 3 && table.columnCount == 3)

        let (features, labels) = try table.separatingLabels(column: try table.columnIndex(named: "label"))
        #expect(features == Tensor([[1, 2], [3.5, -4], [5, 60]]))
        #expect(labels == [0, 1, 2])

        let (rest, targets) = try table.separatingTargets(columns: [2, 0])
        #expect(rest == Tensor([[2], [-4], [60]]))
        #expect(targets == Tensor([[0, 1], [1, 3.5], [2, 5]]))
    }

    @Test func csvHandlesDelimitersQuotesAndNoHeader() throws {
        let semicolons = try CSVTable(contentsOf: try temporaryFile("\"x;1\";\"say \"\"hi\"\"\"\n\"1.5\"; 2\n-3;4\n"), hasHeader: true, delimiter: ";")
        #expect(semicolons.columnNames == ["x;1", "say \"hi\""])
        #expect(semicolons.values == Tensor([[1.5, 2], [-3, 4]]))

        let tabs = try CSVTable(parsing: "1\t2\t3\n4\t5\t6", delimiter: "\t")
        #expect(tabs.columnNames == nil)
        #expect(tabs.values == Tensor([[1, 2, 3], [4, 5, 6]]))
        #expect(failure { try tabs.columnIndex(named: "a") }?.kind == "invalidArgument")
    }

    @Test func csvErrorsNameTheFileLineAndColumn() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-no-such-\(UUID().uuidString).csv")
        let unreadable = failure { try CSVTable(contentsOf: missing) }
        #expect(unreadable?.kind == "io")
        #expect(unreadable?.message.contains(missing.path) == true)

        let url = try temporaryFile("a,b\n1,2\n3,abc\n")
        let notNumber = failure { try CSVTable(contentsOf: url, hasHeader: true) }
        #expect(notNumber?.kind == "io")
        #expect(notNumber?.message.contains("line 3, column 2") == true)
        #expect(notNumber?.message.contains("\"abc\"") == true)
        #expect(notNumber?.message.contains(url.path) == true)

        let ragged = failure { try CSVTable(parsing: "1,2,3\n4,5\n") }
        #expect(ragged?.kind == "io")
        #expect(ragged?.message.contains("line 2 has 2 columns but line 1 has 3") == true)
        let raggedHeader = failure { try CSVTable(parsing: "a,b\n1,2,3\n", hasHeader: true) }
        #expect(raggedHeader?.message.contains("the header has 2") == true)

        let empty = failure { try CSVTable(parsing: "1,,3\n") }
        #expect(empty?.kind == "io")
        #expect(empty?.message.contains("line 1, column 2") == true)
        #expect(failure { try CSVTable(parsing: "1,2,\n") }?.message.contains("column 3") == true)
        #expect(failure { try CSVTable(parsing: "1,\"2\n") }?.kind == "io")
        #expect(failure { try CSVTable(parsing: "1,1e99\n") }?.kind == "io")
        #expect(failure { try CSVTable(parsing: "1,nan\n") }?.kind == "io")
        #expect(failure { try CSVTable(parsing: "a,b\n", hasHeader: true) }?.kind == "emptyInput")
        #expect(failure { try CSVTable(parsing: "") }?.kind == "emptyInput")
        #expect(failure { try CSVTable(parsing: "1,2", delimiter: "é") }?.kind == "invalidArgument")

        let table = try CSVTable(parsing: "1,0\n2,0.5\n")
        let fractional = failure { try table.separatingLabels(column: 1) }
        #expect(fractional?.kind == "io")
        #expect(fractional?.message.contains("line 2, column 2") == true)
        #expect(failure { try table.separatingLabels(column: 2) }?.kind == "invalidArgument")
        #expect(failure { try table.separatingTargets(columns: [0, 1]) }?.kind == "invalidArgument")
        #expect(failure { try table.separatingTargets(columns: [1, 1]) }?.kind == "invalidArgument")
        #expect(failure { try table.separatingTargets(columns: []) }?.kind == "invalidArgument")
    }

    @Test func csvReadsTextColumnsAndMissingCells() throws {
        let text = "date,\"name\",x,y\n2001-02-28,\"a, b\",1.5,\n2001-03-01,,,2\n2000-02-29,c,3,4\n"
        let table = try CSVTable(parsing: text, hasHeader: true, textColumns: ["date", "name"], emptyCells: .nan)
        #expect(table.columnNames == ["x", "y"])
        #expect(table.texts == ["date": ["2001-02-28", "2001-03-01", "2000-02-29"], "name": ["a, b", "", "c"]])
        #expect(table.values.shape == [3, 2])
        let v = table.values.scalars
        #expect(v[0] == 1.5 && v[1].isNaN && v[2].isNaN && v[3] == 2 && v[4] == 3 && v[5] == 4)
        #expect(try table.column(named: "y").scalars[1...] == [2, 4])
        // Day numbers: 2001-02-28 and 2001-03-01 are consecutive; 2000 is a leap year.
        #expect(try table.days(inColumn: "date") == [11381, 11382, 11016])
        #expect(isoDayNumber("1970-01-01") == 0 && isoDayNumber("1969-12-31") == -1 && isoDayNumber("1958-03-29") == -4296)
        for bad in ["2001-02-29", "2001-13-01", "2001-00-10", "01-02-03", "2001-1-01", "2001/01/01", "abcd-ef-gh", ""] {
            #expect(isoDayNumber(bad) == nil, "\(bad)")
        }
        #expect(failure { try table.days(inColumn: "name") }?.message.contains("line 2") == true)
        #expect(failure { try table.days(inColumn: "x") }?.kind == "invalidArgument")
        // Without .nan the empty cell is an error naming its place; text columns need a header that names them.
        let empty = failure { try CSVTable(parsing: text, hasHeader: true, textColumns: ["date", "name"]) }
        #expect(empty?.kind == "io")
        #expect(empty?.message.contains("line 2, column 4 (\"y\"): empty cell") == true)
        #expect(failure { try CSVTable(parsing: "a\n1\n", textColumns: ["a"]) }?.kind == "invalidArgument")
        #expect(failure { try CSVTable(parsing: "a\n1\n", hasHeader: true, textColumns: ["b"]) }?.kind == "invalidArgument")
        // A table of text only has no numeric columns.
        let names = try CSVTable(parsing: "w\nx\ny\n", hasHeader: true, textColumns: ["w"])
        #expect(names.values.shape == [2, 0] && names.columnNames == [] && names.texts["w"] == ["x", "y"])
    }

    @Test func csvRoundTripsDatesMissingCellsAndQuotedNewlines() throws {
        // A date column, missing numbers, a quoted field with a line break (and a CRLF one), a quote, the
        // delimiter, surrounding blanks and an empty text: read, written, read again, the same table.
        let text = "date,note,temp,rain\r\n2024-01-31,\"two\nlines\",-1.5,\n2024-02-01,\"say \"\"hi\"\", ok\",,0.25\n"
            + "2024-02-02,,1e-05,3\n2024-02-03,\" padded \",16777216,\"\"\n2024-02-04,\"a\r\nb\",0.1,7\n"
        let table = try CSVTable(parsing: text, hasHeader: true, textColumns: ["date", "note"], emptyCells: .nan)
        #expect(table.texts["note"] == ["two\nlines", "say \"hi\", ok", "", " padded ", "a\r\nb"])
        #expect(table.lineNumbers == [2, 4, 5, 6, 7])
        #expect(try table.days(inColumn: "date") == [19753, 19754, 19755, 19756, 19757])
        #expect(table.textColumnNames == ["date", "note"] && table.columnNames == ["temp", "rain"])
        let written = try table.csvText()
        #expect(written.hasPrefix("date,note,temp,rain\n2024-01-31,\"two\nlines\",-1.5,\n2024-02-01,\"say \"\"hi\"\", ok\",,0.25\n"))
        let url = try temporaryFile("")
        try table.write(to: url)
        let again = try CSVTable(contentsOf: url, hasHeader: true, textColumns: ["date", "note"], emptyCells: .nan)
        #expect(again.texts == table.texts && again.columnNames == table.columnNames)
        #expect(again.values.scalars.map(\.bitPattern) == table.values.scalars.map(\.bitPattern))
        #expect(try again.csvText() == written)
        // Inferred types find the same text columns; a row whose cells are all empty is written so it is not skipped.
        let inferred = try CSVTable(parsing: written, hasHeader: true, textColumns: .inferred, emptyCells: .nan)
        #expect(inferred.textColumnNames == ["date", "note"] && inferred.values.scalars.map(\.bitPattern) == table.values.scalars.map(\.bitPattern))
        let blank = try CSVTable(values: Tensor([[Float.nan], [2]]), columnNames: ["x"])
        #expect(try blank.csvText() == "x\n\"\"\n2\n")
        #expect(try CSVTable(parsing: blank.csvText(), hasHeader: true, emptyCells: .nan).rowCount == 2)
        #expect(failure { try CSVTable(values: Tensor([[Float.infinity]]), columnNames: nil).csvText() }?.kind == "nonFinite")
        // A quoted field left open across the remaining lines names the line it starts on.
        let open = failure { try CSVTable(parsing: "a,b\n1,2\n3,\"4\n5,6\n", hasHeader: true) }
        #expect(open?.message.contains("line 3, column 2: a quoted field is not closed") == true)
    }

    @Test func csvTypesCategoriesAndMissingMarkers() throws {
        let text = "city,size,price\nOslo,NA,3\nLima,2,?\n,3,5\nOslo,4,6\n"
        // "NA" and "?" are missing markers; "city" is text by inference, the others numbers.
        let table = try CSVTable(parsing: text, hasHeader: true, textColumns: .inferred, emptyCells: .nan, missingMarkers: ["NA", "?"])
        #expect(table.textColumnNames == ["city"] && table.columnNames == ["size", "price"])
        let v = table.values.scalars
        #expect(v[0].isNaN && v[1] == 3 && v[2] == 2 && v[3].isNaN && v[4] == 3 && v[5] == 5)
        let city = try table.categories(inColumn: "city")
        #expect(city.levels == ["Lima", "Oslo"] && city.indices == [1, 0, -1, 1])
        #expect(city.oneHot() == Tensor([[0, 1], [1, 0], [0, 0], [0, 1]]))
        // Levels from a training set encode a test set the same way; an unseen value is an error naming it.
        #expect(try table.categories(inColumn: "city", levels: ["Oslo", "Lima", "Rome"]).indices == [0, 1, -1, 0])
        let unseen = failure { try table.categories(inColumn: "city", levels: ["Oslo"]) }
        #expect(unseen?.kind == "io" && unseen?.message.contains("line 3") == true && unseen?.message.contains("\"Lima\"") == true)
        #expect(failure { try table.categories(inColumn: "city", levels: ["a", "a"]) }?.kind == "invalidArgument")
        #expect(failure { try table.categories(inColumn: "size") }?.kind == "invalidArgument")
        // Without .nan a marker is an error like an empty cell; inference needs a header.
        let marker = failure { try CSVTable(parsing: text, hasHeader: true, textColumns: ["city"], missingMarkers: ["NA", "?"]) }
        #expect(marker?.message.contains("line 2, column 2 (\"size\"): missing value \"NA\"") == true)
        #expect(failure { try CSVTable(parsing: "1,a\n", textColumns: .inferred) }?.kind == "invalidArgument")
        #expect(failure { try CSVTable(parsing: "a,a\nx,y\n", hasHeader: true, textColumns: .inferred) }?.kind == "invalidArgument")
        // Numbers stay numbers under inference, quoted or not.
        let numeric = try CSVTable(parsing: "a,b\n\"1\",2\n3,4\n", hasHeader: true, textColumns: .inferred)
        #expect(numeric.textColumnNames.isEmpty && numeric.values == Tensor([[1, 2], [3, 4]]))
    }

    @Test func co2SeriesReadsWithItsDatesAndGaps() throws {
        let table = try Datasets.co2MaunaLoaWeekly()
        #expect(table.rowCount == 2284)
        let co2 = try table.column(named: "co2_ppm").scalars
        #expect(co2.filter(\.isNaN).count == 59)
        #expect(co2.prefix(4) == [316.1, 317.3, 317.6, 317.5])
        // Every week is a row (the gaps are empty cells, not absent rows).
        let days = try table.days(inColumn: "date")
        #expect(zip(days, days.dropFirst()).allSatisfy { $1 - $0 == 7 })
        #expect(table.texts["date"]?.last == "2001-12-29")
    }

    @Test func fortunesSplitAtPercentLines() throws {
        #expect(Fortunes.entries(parsing: "one\n  two\n%\n%\nthree\r\n%\n\n%\nfour") == ["one\n  two", "three", "four"])
        #expect(Fortunes.entries(parsing: "") == [])
        let excerpt = try Fortunes.excerpt()
        #expect(excerpt.count == 856)
        #expect(excerpt.first?.hasPrefix("(1) Avoid fried meats") == true)
        #expect(failure { try Fortunes.read(directory: URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)")) }?.kind == "io")
        let emptyDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("neuron-fortunes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: emptyDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: emptyDirectory) }
        #expect(failure { try Fortunes.read(directory: emptyDirectory) }?.kind == "emptyInput")
    }

    @Test func csvNumbersMatchDoubleParsingRoundedToFloat() throws {
        // The parser's fast path for plain decimals must agree bit for bit with Double(String) -> Float.
        var generator = RandomGenerator(seed: 17)
        func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(uniformIndex(below: 10, using: &generator))) }) }
        var texts = ["0", "-0", "+7", ".5", "5.", "0.1", "3.4028235e38", "1e-45", "123456789012345", "1234567890123456",
                     "0.000000000000000000001", "9007199254740993", "1.5E+3", "2e22", "2e23", "0x1p4"]
        for _ in 0..<20_000 {
            var text = ["", "-", "+"][uniformIndex(below: 3, using: &generator)] + digits(uniformIndex(below: 9, using: &generator))
            if uniformIndex(below: 2, using: &generator) == 1 { text += "." + digits(uniformIndex(below: 12, using: &generator)) }
            if text.last.map({ !$0.isNumber }) ?? true { text += "1" }
            if uniformIndex(below: 2, using: &generator) == 1 { text += "e\(uniformIndex(below: 61, using: &generator) - 30)" }
            texts.append(text)
        }
        for text in texts {
            let bytes = Array(text.utf8)
            let parsed = bytes.withUnsafeBufferPointer { buffer in
                CSVRecordParser(bytes: buffer, delimiter: UInt8(ascii: ","), source: "test")
                    .number(in: .init(content: 0..<buffer.count, isQuoted: false))
            }
            let expected = Double(text).map { Float($0) }
            #expect(parsed?.bitPattern == expected?.bitPattern, "\(text): \(String(describing: parsed)) vs \(String(describing: expected))")
        }
    }

    // MARK: DataLoader

    /// Ten samples whose first feature is their index, labelled with that index.
    private func indexedData(_ n: Int = 10) -> (x: Tensor, y: [Int]) {
        (Tensor((0..<n).map { [Float($0), Float(100 + $0)] }), Array(0..<n))
    }

    @Test func dataLoaderVisitsEverySampleOncePerEpoch() throws {
        let (x, y) = indexedData()
        var loader = try DataLoader(x: x, y: y, batchSize: 3, generator: RandomGenerator(seed: 7))
        #expect(loader.batchCount == 4)
        var orders = [[Int]]()
        for _ in 0..<3 {
            let epoch = loader.epoch()
            #expect(epoch.map { $0.x.shape } == [[3, 2], [3, 2], [3, 2], [1, 2]])
            var seen = [Int]()
            for (xb, yb) in epoch {
                // Features and labels stay paired.
                #expect(stride(from: 0, to: xb.count, by: 2).map { Int(xb.scalars[$0]) } == yb)
                #expect(xb.scalars.enumerated().filter { $0.offset % 2 == 1 }.map { Int($0.element) } == yb.map { $0 + 100 })
                seen += yb
            }
            #expect(seen.sorted() == Array(0..<10))
            #expect(seen == epoch.order)
            orders.append(seen)
        }
        // Reshuffled every epoch.
        #expect(orders[0] != orders[1] && orders[1] != orders[2])
    }

    @Test func dataLoaderDropLastAndSequentialOrder() throws {
        let (x, y) = indexedData()
        var dropping = try DataLoader(x: x, y: y, batchSize: 4, dropLast: true, generator: RandomGenerator(seed: 1))
        let epoch = dropping.epoch()
        #expect(dropping.batchCount == 2 && epoch.count == 2)
        #expect(epoch.allSatisfy { $0.y.count == 4 })
        #expect(Set(epoch.flatMap { $0.y }).count == 8)

        var ordered = try DataLoader(x: x, y: y, batchSize: 4, shuffle: false)
        #expect(ordered.epoch().map { $0.y } == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        #expect(ordered.epoch().map { $0.y } == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    }

    @Test func dataLoaderIsDeterministicAndResumesExactly() throws {
        let (x, _) = indexedData()
        let targets = x * 2  // a tensor target [10, 2]
        var a = try DataLoader(x: x, y: targets, batchSize: 3, generator: RandomGenerator(seed: 42))
        var b = try DataLoader(x: x, y: targets, batchSize: 3, generator: RandomGenerator(seed: 42))
        for _ in 0..<2 { #expect(a.epoch().order == b.epoch().order) }
        for (xb, yb) in a.epoch() { #expect(yb == xb * 2) }

        // Checkpoint the generator before an epoch, consume two batches, then resume in a new loader.
        let saved = a.generator.state
        let full = Array(a.epoch())
        var resumed = try DataLoader(x: x, y: targets, batchSize: 3, generator: RandomGenerator(seed: 999))
        resumed.generator = try RandomGenerator(state: saved)
        let rest = Array(resumed.epoch().dropFirst(2))
        #expect(rest.count == 2)
        for (r, f) in zip(rest, full.dropFirst(2)) { #expect(r.x == f.x && r.y == f.y) }
        #expect(a.generator == resumed.generator)

        var other = try DataLoader(x: x, y: targets, batchSize: 3, generator: RandomGenerator(seed: 43))
        var again = try DataLoader(x: x, y: targets, batchSize: 3, generator: RandomGenerator(seed: 42))
        #expect(other.epoch().order != again.epoch().order)
    }

    @Test func dataLoaderRejectsBadInput() throws {
        let (x, y) = indexedData()
        let mismatch = failure { try DataLoader(x: x, y: Array(y.dropLast()), batchSize: 2) }
        #expect(mismatch?.kind == "shapeMismatch")
        #expect(mismatch?.message.contains("[10, 2]") == true && mismatch?.message.contains("9") == true)
        #expect(failure { try DataLoader(x: x, y: y, batchSize: 0) }?.kind == "invalidArgument")
        #expect(failure { try DataLoader(x: x, y: y, batchSize: 11, dropLast: true) }?.kind == "invalidArgument")
        #expect(failure { try DataLoader(x: Tensor.zeros([0, 2]), y: [Int](), batchSize: 2) }?.kind == "emptyInput")
        #expect(failure { try DataLoader(x: Tensor(1), y: [0], batchSize: 1) }?.kind == "shapeMismatch")
        #expect(failure { try [1, 2, 3].gathering([3]) }?.kind == "invalidArgument")
        #expect(try IntTensor(shape: [3, 2], scalars: [0, 1, 2, 3, 4, 5]).gathering([2, 0])
                == IntTensor(shape: [2, 2], scalars: [4, 5, 0, 1]))
    }

    // MARK: Splits

    @Test func holdoutSplitSizesAndDisjointness() throws {
        var generator = RandomGenerator(seed: 3)
        let (train, test) = try holdoutSplit(count: 100, testFraction: 0.3, generator: &generator)
        #expect(train.count == 70 && test.count == 30)
        #expect(Set(train).isDisjoint(with: test))
        #expect((train + test).sorted() == Array(0..<100))
        #expect(test != Array(70..<100))  // shuffled

        var same = RandomGenerator(seed: 3)
        #expect(try holdoutSplit(count: 100, generator: &same).test == test)

        let ordered = try holdoutSplit(count: 10, testFraction: 0.2, shuffle: false, generator: &generator)
        #expect(ordered.train == Array(0..<8) && ordered.test == [8, 9])

        for fraction in [0.0, 1.0, -0.1, 1.5, .nan] {
            #expect(failure { try holdoutSplit(count: 10, testFraction: fraction, generator: &generator) }?.kind == "invalidArgument")
        }
        #expect(failure { try holdoutSplit(count: 2, testFraction: 0.1, generator: &generator) }?.kind == "invalidArgument")
        #expect(failure { try holdoutSplit(count: 0, generator: &generator) }?.kind == "emptyInput")
    }

    @Test func kFoldCoversEveryIndexOnce() throws {
        var generator = RandomGenerator(seed: 5)
        let folds = try kFold(count: 10, k: 3, generator: &generator)
        #expect(folds.map { $0.validation.count } == [4, 3, 3])
        #expect(folds.flatMap { $0.validation }.sorted() == Array(0..<10))
        for fold in folds {
            #expect((fold.train + fold.validation).sorted() == Array(0..<10))
            #expect(Set(fold.train).isDisjoint(with: fold.validation))
        }
        let sizes = try kFold(count: 103, k: 10, generator: &generator).map { $0.validation.count }
        #expect(sizes.max()! - sizes.min()! <= 1 && sizes.reduce(0, +) == 103)

        let ordered = try kFold(count: 7, k: 3, shuffle: false, generator: &generator)
        #expect(ordered.map { $0.validation } == [[0, 1, 2], [3, 4], [5, 6]])
        #expect(ordered[1].train == [0, 1, 2, 5, 6])

        #expect(failure { try kFold(count: 10, k: 1, generator: &generator) }?.kind == "invalidArgument")
        #expect(failure { try kFold(count: 10, k: 11, generator: &generator) }?.kind == "invalidArgument")
        #expect(failure { try kFold(count: 0, k: 2, generator: &generator) }?.kind == "emptyInput")
    }

    @Test func crossValidateAveragesFoldScores() throws {
        var generator = RandomGenerator(seed: 9)
        var calls = 0
        let result = try crossValidate(count: 10, k: 3, generator: &generator) { train, validation in
            calls += 1
            #expect(train.count + validation.count == 10)
            return Double(validation.count)
        }
        #expect(calls == 3)
        #expect(result.perFold == [4, 3, 3])
        #expect(abs(result.mean - 10.0 / 3) < 1e-12)

        struct Boom: Error {}
        #expect(throws: Boom.self) { try crossValidate(count: 10, k: 2, generator: &generator) { _, _ in throw Boom() } }
        let nan = failure { try crossValidate(count: 10, k: 2, generator: &generator) { _, _ in .nan } }
        #expect(nan?.kind == "nonFinite")
        #expect(failure { try crossValidate(count: 10, k: 1, generator: &generator) { _, _ in 0 } }?.kind == "invalidArgument")
    }

    // MARK: Resampling

    @Test func bootstrapOutOfBagShareApproachesOneOverE() throws {
        var generator = RandomGenerator(seed: 11)
        let n = 100_000
        let (sample, outOfBag) = try bootstrapSample(count: n, generator: &generator)
        #expect(sample.count == n)
        #expect(sample.allSatisfy { $0 >= 0 && $0 < n })
        let drawn = Set(sample)
        #expect(drawn.isDisjoint(with: outOfBag))
        #expect(drawn.count + outOfBag.count == n)
        #expect(outOfBag == outOfBag.sorted())
        #expect(abs(Double(outOfBag.count) / Double(n) - exp(-1)) < 0.01)

        #expect(failure { try bootstrapSample(count: 0, generator: &generator) }?.kind == "emptyInput")
        #expect(failure { try bootstrapSample(count: -1, generator: &generator) }?.kind == "invalidArgument")
    }

    @Test func overAndUndersamplingBalanceTheClasses() throws {
        let labels = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2]
        func classCounts(_ indices: [Int]) -> [Int: Int] { Dictionary(indices.map { (labels[$0], 1) }, uniquingKeysWith: +) }
        var generator = RandomGenerator(seed: 13)

        let over = try oversample(labels: labels, generator: &generator)
        #expect(classCounts(over) == [0: 5, 1: 5, 2: 5])
        #expect(Array(over.prefix(10)) == Array(0..<10))

        let under = try undersample(labels: labels, generator: &generator)
        #expect(classCounts(under) == [0: 2, 1: 2, 2: 2])
        #expect(Set(under).count == 6 && under == under.sorted())
        #expect(under.filter { labels[$0] == 1 } == [5, 6])

        var again = RandomGenerator(seed: 13)
        #expect(try oversample(labels: labels, generator: &again) == over)

        #expect(failure { try oversample(labels: [], generator: &generator) }?.kind == "emptyInput")
        #expect(failure { try undersample(labels: [], generator: &generator) }?.kind == "emptyInput")
    }

    // MARK: Metrics

    @Test func confusionMatrixScores() throws {
        let labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
        let predictions = [0, 0, 1, 1, 1, 1, 2, 2, 0, 0]
        let m = try ConfusionMatrix(predictions: predictions, labels: labels, classes: 3)
        #expect(m.counts == [[2, 1, 0], [0, 3, 0], [2, 0, 2]])
        #expect(m.total == 10)
        #expect(m.accuracy == 0.7)
        #expect(try accuracy(predictions: predictions, labels: labels) == 0.7)

        let expected: [(p: Double, r: Double, f1: Double)] = [(2.0 / 4, 2.0 / 3, 4.0 / 7), (3.0 / 4, 1, 6.0 / 7), (1, 2.0 / 4, 2.0 / 3)]
        for (c, e) in expected.enumerated() {
            #expect(abs(try m.precision(class: c) - e.p) < 1e-12)
            #expect(abs(try m.recall(class: c) - e.r) < 1e-12)
            #expect(abs(try m.f1(class: c) - e.f1) < 1e-12)
        }
        #expect(try m.support(class: 2) == 4)
        #expect(abs(m.macroPrecision - 0.75) < 1e-12)
        #expect(abs(m.macroRecall - 13.0 / 18) < 1e-12)
        #expect(abs(m.macroF1 - 44.0 / 63) < 1e-12)

        let text = m.description
        #expect(text.contains("true 2"))
        #expect(text.contains("pred 0"))
        #expect(text.contains("0.7000"))
        #expect(text.contains("0.8571"))  // f1 of class 1

        // A class that never occurs scores 0 (not NaN) and still counts in the macro average.
        let sparse = try ConfusionMatrix(predictions: [0, 1], labels: [0, 1], classes: 3)
        #expect(try sparse.precision(class: 2) == 0 && sparse.recall(class: 2) == 0 && sparse.f1(class: 2) == 0)
        #expect(abs(sparse.macroF1 - 2.0 / 3) < 1e-12)
    }

    @Test func metricsRejectBadInput() throws {
        let lengths = failure { try accuracy(predictions: [0, 1], labels: [0]) }
        #expect(lengths?.kind == "shapeMismatch")
        #expect(lengths?.message.contains("2 predictions for 1 labels") == true)
        #expect(failure { try accuracy(predictions: [], labels: []) }?.kind == "emptyInput")
        #expect(failure { try ConfusionMatrix(predictions: [0], labels: [0, 1], classes: 2) }?.kind == "shapeMismatch")
        #expect(failure { try ConfusionMatrix(predictions: [], labels: [], classes: 2) }?.kind == "emptyInput")
        #expect(failure { try ConfusionMatrix(predictions: [0, 2], labels: [0, 1], classes: 2) }?.kind == "invalidArgument")
        #expect(failure { try ConfusionMatrix(predictions: [0, 1], labels: [0, -1], classes: 2) }?.kind == "invalidArgument")
        #expect(failure { try ConfusionMatrix(predictions: [0], labels: [0], classes: 0) }?.kind == "invalidArgument")
        let m = try ConfusionMatrix(predictions: [0, 1], labels: [0, 1], classes: 2)
        #expect(failure { try m.precision(class: 2) }?.kind == "invalidArgument")
        #expect(failure { try m.recall(class: -1) }?.kind == "invalidArgument")
        #expect(failure { try m.f1(class: 5) }?.kind == "invalidArgument")
    }
}
