import Testing

@testable import CryptCount
@testable import CryptCountFuzzSupport
@testable import CryptCountJSONLines

@Suite struct JSONLinesTests {
    func parse(_ s: String) throws -> MessagePackValue { try JSONLines.parse(Array(s.utf8)) }

    func parseError(_ s: String) -> JSONLinesError? {
        do {
            _ = try JSONLines.parse(Array(s.utf8))
            return nil
        } catch {
            return error
        }
    }

    /// value -> JSON -> value, and the JSON is what we expect.
    func roundTrip(_ value: MessagePackValue, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) throws
    {
        #expect(JSONLines.renderString(value) == json, sourceLocation: sourceLocation)
        #expect(try parse(json) == value, sourceLocation: sourceLocation)
        // And through real MessagePack bytes.
        let decoded = try MessagePackDecoder.decode(MessagePackWriter.encode(value))
        #expect(JSONLines.renderString(decoded) == json, sourceLocation: sourceLocation)
    }

    @Test func scalars() throws {
        try roundTrip(.nil, "null")
        try roundTrip(.bool(true), "true")
        try roundTrip(.bool(false), "false")
        try roundTrip(.uint(0), "0")
        try roundTrip(.uint(42), "42")
        try roundTrip(.int(-1), "-1")
        try roundTrip(.text("hi"), "\"hi\"")
        try roundTrip(.text(""), "\"\"")
    }

    @Test func bigIntegersAreExact() throws {
        try roundTrip(.uint(UInt64.max), "18446744073709551615")
        try roundTrip(.int(Int64.min), "-9223372036854775808")
        try roundTrip(.uint(9_007_199_254_740_993), "9007199254740993")  // 2^53 + 1, not a double
        #expect(parseError("18446744073709551616")?.message.contains("out of the MessagePack range") == true)
        #expect(parseError("-9223372036854775809")?.message.contains("out of the MessagePack range") == true)
        #expect(try parse("-0") == .uint(0))
    }

    @Test func floatsStayFloats() throws {
        try roundTrip(.float(1.0), "1.0")
        try roundTrip(.float(-2.5), "-2.5")
        try roundTrip(.float(0.1), "0.1")
        try roundTrip(.float(1e300), "1e+300")
        try roundTrip(.float(.leastNonzeroMagnitude), "5e-324")
        #expect(JSONLines.renderString(.float(.nan)) == "{\"$float\":\"NaN\"}")
        guard case .float(let nan) = try parse("{\"$float\":\"NaN\"}") else {
            Issue.record("$float NaN did not parse as a float")
            return
        }
        #expect(nan.isNaN)
        try roundTrip(.float(.infinity), "{\"$float\":\"Infinity\"}")
        try roundTrip(.float(-.infinity), "{\"$float\":\"-Infinity\"}")
        #expect(try parse("1e2") == .float(100))
        #expect(try parse("1E-2") == .float(0.01))
        #expect(try parse("3.0") == .float(3))
        #expect(try parse("3") == .uint(3))
        #expect(parseError("1e999")?.message.contains("float64 range") == true)
    }

    @Test func stringsAndEscapes() throws {
        try roundTrip(.text("a\"b\\c\n\t\r\u{8}\u{c}"), #""a\"b\\c\n\t\r\b\f""#)
        try roundTrip(.text("\u{1}\u{1f}\u{7f}"), "\"\\u0001\\u001f\u{7f}\"")
        try roundTrip(.text("café 🙂 /"), "\"café 🙂 /\"")
        #expect(try parse(#""\u00e9\ud83d\ude42\/""#) == .text("é🙂/"))
        #expect(try parse(#""\u00E9""#) == .text("é"))
    }

    @Test func nonUTF8StringsUseDollarStr() throws {
        try roundTrip(.string([0x66, 0xff, 0x6f]), "{\"$str\":\"Zv9v\"}")
        try roundTrip(.string([0xc3]), "{\"$str\":\"ww==\"}")
        // A valid-UTF-8 $str is accepted and is just a string.
        #expect(try parse("{\"$str\":\"aGk=\"}") == .text("hi"))
        #expect(parseError(#""\udc00""#)?.message.contains("lone surrogate") == true)
        #expect(parseError(#""\ud800x""#)?.message.contains("lone surrogate") == true)
        #expect(throws: JSONLinesError.self) { try JSONLines.parse([0x22, 0xff, 0x22]) }
    }

    @Test func binaryAndExt() throws {
        try roundTrip(.binary([]), "{\"$bin\":\"\"}")
        try roundTrip(.binary([0, 1, 2]), "{\"$bin\":\"AAEC\"}")
        try roundTrip(.binary([0xfb, 0xff]), "{\"$bin\":\"+/8=\"}")
        try roundTrip(.ext(type: -1, data: [1, 2, 3, 4]), "{\"$ext\":[-1,\"AQIDBA==\"]}")
        try roundTrip(.ext(type: 127, data: []), "{\"$ext\":[127,\"\"]}")
        #expect(parseError("{\"$bin\":\"AAE\"}")?.message.contains("base64") == true)
        #expect(parseError("{\"$bin\":\"AAF=\"}")?.message.contains("base64") == true)  // not canonical
        #expect(parseError("{\"$bin\":\"A=A=\"}")?.message.contains("base64") == true)
        #expect(parseError("{\"$bin\":\"-_8=\"}")?.message.contains("base64") == true)  // url-safe alphabet
        #expect(parseError("{\"$bin\":5}") != nil)
        #expect(parseError("{\"$ext\":[128,\"\"]}")?.message.contains("-128...127") == true)
        #expect(parseError("{\"$ext\":[1]}") != nil)
    }

    @Test func base64AllLengths() throws {
        var bytes: [UInt8] = []
        for n in 0..<40 {
            let json = JSONLines.renderString(.binary(bytes))
            #expect(try parse(json) == .binary(bytes))
            bytes.append(UInt8(truncatingIfNeeded: n &* 37 &+ 200))
        }
        #expect(JSONBase64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(JSONBase64.encode(Array("fooba".utf8)) == "Zm9vYmE=")
        #expect(JSONBase64.encode(Array("foob".utf8)) == "Zm9vYg==")
    }

    @Test func mapsKeepWireOrderAndDuplicates() throws {
        let value = MessagePackValue.map([
            MessagePackPair(.text("z"), .uint(1)),
            MessagePackPair(.text("a"), .uint(2)),
            MessagePackPair(.text("m"), .array([.uint(3), .map([])])),
            MessagePackPair(.text("a"), .nil),
        ])
        try roundTrip(value, "{\"z\":1,\"a\":2,\"m\":[3,{}],\"a\":null}")
        try roundTrip(.array([]), "[]")
        #expect(
            try parse(" { \"b\" : [ 1 , 2 ] , \"a\" : { } } \r")
                == .map([
                    MessagePackPair(.text("b"), .array([.uint(1), .uint(2)])),
                    MessagePackPair(.text("a"), .map([])),
                ]))
    }

    @Test func mapsThatAreNotObjects() throws {
        try roundTrip(.map([MessagePackPair(.uint(1), .text("x"))]), "{\"$map\":[[1,\"x\"]]}")
        try roundTrip(
            .map([MessagePackPair(.string([0xff]), .nil), MessagePackPair(.text("k"), .bool(true))]),
            "{\"$map\":[[{\"$str\":\"/w==\"},null],[\"k\",true]]}")
        // A real one-key map whose key starts with "$" cannot be an object (it would be a tag).
        try roundTrip(.map([MessagePackPair(.text("$bin"), .text("AAEC"))]), "{\"$map\":[[\"$bin\",\"AAEC\"]]}")
        try roundTrip(.map([MessagePackPair(.text("$x"), .uint(1))]), "{\"$map\":[[\"$x\",1]]}")
        // With more keys it is a plain object.
        try roundTrip(
            .map([MessagePackPair(.text("$bin"), .uint(1)), MessagePackPair(.text("b"), .uint(2))]),
            "{\"$bin\":1,\"b\":2}")
        #expect(parseError("{\"$nope\":1}")?.message.contains("unknown tag $nope") == true)
        #expect(parseError("{\"$map\":[[1]]}") != nil)
    }

    @Test func nested() throws {
        let value = MessagePackValue.map([
            MessagePackPair(.text("id"), .uint(4)),
            MessagePackPair(.text("files"), .array([.text("a.txt"), .binary([0xff, 0xfe]), .string([0x61, 0xff])])),
            MessagePackPair(
                .text("deep"), .array([.array([.array([.map([MessagePackPair(.text("x"), .float(0.5))])])])])),
        ])
        try roundTrip(
            value,
            "{\"id\":4,\"files\":[\"a.txt\",{\"$bin\":\"//4=\"},{\"$str\":\"Yf8=\"}],\"deep\":[[[{\"x\":0.5}]]]}")
    }

    @Test func syntaxErrorsNameTheColumn() {
        let cases: [(String, Int, String)] = [
            ("{\"a\":1,}", 8, "expected a string key"),
            ("[1 2]", 4, "expected ',' or ']'"),
            ("{\"a\" 1}", 6, "expected ':'"),
            ("tru", 1, "expected true"),
            ("01", 1, "leading zeros"),
            ("1.", 1, "digits must follow '.'"),
            ("-", 1, "invalid number"),
            ("\"abc", 1, "unterminated string"),
            ("\"a\tb\"", 3, "control character"),
            ("\"\\x\"", 2, "invalid escape"),
            ("{} {}", 4, "after the value"),
            ("", 1, "found end of line"),
            ("'a'", 1, "expected a value"),
            ("NaN", 1, "expected a value"),
        ]
        for (input, column, fragment) in cases {
            let error = parseError(input)
            #expect(error?.column == column, "\(input): \(String(describing: error))")
            #expect(error?.message.contains(fragment) == true, "\(input): \(String(describing: error))")
        }
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: JSONLines.maxDepth) + String(repeating: "]", count: JSONLines.maxDepth)
        _ = try parse(ok)
        let deep = "[" + ok + "]"
        #expect(parseError(deep)?.message.contains("nesting deeper") == true)
    }

    @Test func blankLines() {
        #expect(JSONLines.isBlank(Array(" \t\r".utf8)))
        #expect(JSONLines.isBlank([]))
        #expect(!JSONLines.isBlank(Array(" 1".utf8)))
    }
}
