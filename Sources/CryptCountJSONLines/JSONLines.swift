import CryptCount

/// The JSON Lines rendering of MessagePack values used by `cryptcount frame` / `unframe`, the
/// golden tests and the shell examples. One value per line; the mapping is a bijection, so
/// `unframe | frame` reproduces every frame's value exactly (float32 aside: it becomes float64).
///
/// | MessagePack | JSON |
/// |---|---|
/// | nil, bool | `null`, `true` / `false` |
/// | int / uint | an integer, exact over the whole int64 / uint64 range |
/// | float32 / float64 | a number with `.` or an exponent (`1.0`, `1e+20`); non-finite values as `{"$float":"NaN"}`, `"Infinity"`, `"-Infinity"` |
/// | str, valid UTF-8 | a string (non-ASCII written as raw UTF-8, control characters escaped) |
/// | str, not UTF-8 | `{"$str":"<base64>"}` |
/// | bin | `{"$bin":"<base64>"}` |
/// | ext | `{"$ext":[type,"<base64>"]}` |
/// | array | an array |
/// | map with str keys | an object, keys in wire order (duplicates kept) |
/// | any other map | `{"$map":[[key,value],...]}` |
///
/// Base64 is RFC 4648 standard with padding, canonical. An object with exactly one key that
/// starts with `$` is always a tag like the ones above (an unknown tag is an error), so a real
/// one-key map whose key starts with `$` is written in the `$map` form.
///
/// Reading JSON: integers (no fraction or exponent) become uint when >= 0 and int when negative;
/// outside [-2^63, 2^64-1] they are an error, never rounded. Numbers with a fraction or
/// exponent become float64 (an overflow to infinity is an error). Input must be UTF-8; lone
/// surrogate escapes are an error (use `$str`). Nesting is limited to `maxDepth`.
///
/// A purpose-built reader and writer rather than Foundation's JSONSerialization, because that
/// one rounds integers above 2^53, loses key order and duplicate keys, and cannot tell `1`
/// from `1.0`.
package enum JSONLines {
    /// Deepest nesting accepted when reading (a value inside 256 arrays or objects). Deeper
    /// than the server's MessagePack limit on purpose, so tests can send too-deep requests.
    package static let maxDepth = 256

    /// Parses one line (without its newline) into a value. Surrounding whitespace is allowed.
    package static func parse(_ line: some Collection<UInt8>) throws(JSONLinesError) -> MessagePackValue {
        let bytes = Array(line)
        var reader = JSONReader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        if reader.pos < bytes.count { throw reader.error("unexpected text after the value") }
        return value
    }

    /// True when the line holds only JSON whitespace (frame skips such lines).
    package static func isBlank(_ line: some Collection<UInt8>) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a || $0 == 0x0d }
    }

    /// Renders a value as compact JSON (no newline), deterministically.
    package static func render(_ value: MessagePackValue) -> [UInt8] {
        var out: [UInt8] = []
        render(value, into: &out)
        return out
    }

    /// Appends the compact JSON rendering of `value` to `out`.
    package static func render(_ value: MessagePackValue, into out: inout [UInt8]) {
        JSONWriter.write(value, into: &out)
    }

    /// Renders a value as a Swift string (always valid UTF-8).
    package static func renderString(_ value: MessagePackValue) -> String {
        String(decoding: render(value), as: UTF8.self)
    }
}

/// Why a line is not a value of the rendering. `column` counts bytes from 1.
package struct JSONLinesError: Error, Equatable, Sendable, CustomStringConvertible {
    package var column: Int
    package var message: String

    package init(column: Int, message: String) {
        self.column = column
        self.message = message
    }

    package var description: String { "column \(column): \(message)" }
}

// MARK: - Reader

private struct JSONReader {
    let bytes: [UInt8]
    var pos = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ message: String, at position: Int? = nil) -> JSONLinesError {
        JSONLinesError(column: (position ?? pos) + 1, message: message)
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0a, 0x0d: pos += 1
            default: return
            }
        }
    }

    func describeNext() -> String {
        guard pos < bytes.count else { return "end of line" }
        let b = bytes[pos]
        if b >= 0x21 && b < 0x7f { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16)
    }

    mutating func expectLiteral(_ word: String, _ value: MessagePackValue) throws(JSONLinesError) -> MessagePackValue {
        let w = Array(word.utf8)
        guard bytes.count - pos >= w.count, Array(bytes[pos..<(pos + w.count)]) == w else {
            throw error("invalid literal (expected \(word))")
        }
        pos += w.count
        return value
    }

    mutating func parseValue(depth: Int) throws(JSONLinesError) -> MessagePackValue {
        guard pos < bytes.count else { throw error("expected a value, found end of line") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            return try parseObject(depth: depth)
        case UInt8(ascii: "["):
            return try parseArray(depth: depth)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            return try expectLiteral("true", .bool(true))
        case UInt8(ascii: "f"):
            return try expectLiteral("false", .bool(false))
        case UInt8(ascii: "n"):
            return try expectLiteral("null", .nil)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw error("expected a value, found \(describeNext())")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONLinesError) -> MessagePackValue {
        guard depth < JSONLines.maxDepth else { throw error("nesting deeper than \(JSONLines.maxDepth)") }
        pos += 1  // [
        var items: [MessagePackValue] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else { throw error("expected ',' or ']', found end of line") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
            } else if bytes[pos] == UInt8(ascii: "]") {
                pos += 1
                return .array(items)
            } else {
                throw error("expected ',' or ']', found \(describeNext())")
            }
        }
    }

    mutating func parseObject(depth: Int) throws(JSONLinesError) -> MessagePackValue {
        guard depth < JSONLines.maxDepth else { throw error("nesting deeper than \(JSONLines.maxDepth)") }
        let start = pos
        pos += 1  // {
        var pairs: [MessagePackPair] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            return .map(pairs)
        }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describeNext())")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw error("expected ':', found \(describeNext())")
            }
            pos += 1
            skipWhitespace()
            let valueStart = pos
            let value = try parseValue(depth: depth + 1)
            pairs.append(MessagePackPair(.string(key), value))
            skipWhitespace()
            guard pos < bytes.count else { throw error("expected ',' or '}', found end of line") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
            } else if bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                if pairs.count == 1, key.first == UInt8(ascii: "$") {
                    return try decodeTag(key, value, at: start, valueAt: valueStart)
                }
                return .map(pairs)
            } else {
                throw error("expected ',' or '}', found \(describeNext())")
            }
        }
    }

    /// A one-key object whose key starts with `$`.
    func decodeTag(_ key: [UInt8], _ value: MessagePackValue, at start: Int, valueAt: Int)
        throws(JSONLinesError) -> MessagePackValue
    {
        let name = String(decoding: key, as: UTF8.self)
        func base64(_ v: MessagePackValue, _ what: String) throws(JSONLinesError) -> [UInt8] {
            guard case .string(let text) = v else { throw error("\(what) must be a base64 string", at: valueAt) }
            guard let data = JSONBase64.decode(text) else {
                throw error("\(what) is not canonical padded base64", at: valueAt)
            }
            return data
        }
        switch name {
        case "$bin":
            return .binary(try base64(value, "$bin"))
        case "$str":
            return .string(try base64(value, "$str"))
        case "$ext":
            guard case .array(let parts) = value, parts.count == 2 else {
                throw error("$ext must be [type, \"<base64>\"]", at: valueAt)
            }
            let type: Int8
            switch parts[0] {
            case .uint(let u) where u <= 127: type = Int8(u)
            case .int(let i) where i >= -128: type = Int8(i)
            default: throw error("$ext type must be an integer in -128...127", at: valueAt)
            }
            return .ext(type: type, data: try base64(parts[1], "$ext data"))
        case "$map":
            guard case .array(let entries) = value else {
                throw error("$map must be an array of [key, value] pairs", at: valueAt)
            }
            var pairs: [MessagePackPair] = []
            pairs.reserveCapacity(entries.count)
            for entry in entries {
                guard case .array(let kv) = entry, kv.count == 2 else {
                    throw error("$map must be an array of [key, value] pairs", at: valueAt)
                }
                pairs.append(MessagePackPair(kv[0], kv[1]))
            }
            return .map(pairs)
        case "$float":
            switch value.stringValue {
            case "NaN": return .float(.nan)
            case "Infinity": return .float(.infinity)
            case "-Infinity": return .float(-.infinity)
            default: throw error("$float must be \"NaN\", \"Infinity\" or \"-Infinity\"", at: valueAt)
            }
        default:
            throw error(
                "unknown tag \(name) (a one-key object whose key starts with '$' is a tag; "
                    + "write such a map as {\"$map\":[[key,value]]})", at: start)
        }
    }

    /// Parses a string literal at `pos` into its UTF-8 bytes.
    mutating func parseString() throws(JSONLinesError) -> [UInt8] {
        let start = pos
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            // Copy a run of plain bytes at once.
            let runStart = pos
            while pos < bytes.count {
                let b = bytes[pos]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
                pos += 1
            }
            if pos > runStart { out.append(contentsOf: bytes[runStart..<pos]) }
            guard pos < bytes.count else { throw error("unterminated string", at: start) }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                break
            }
            if b < 0x20 { throw error("control character in a string must be escaped") }
            // Backslash escape.
            guard pos + 1 < bytes.count else { throw error("unterminated string", at: start) }
            let e = bytes[pos + 1]
            pos += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escapeAt = pos - 2
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard bytes.count - pos >= 6, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                    else { throw error("lone surrogate escape (use {\"$str\":...} for such bytes)", at: escapeAt) }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        throw error("lone surrogate escape (use {\"$str\":...} for such bytes)", at: escapeAt)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw error("lone surrogate escape (use {\"$str\":...} for such bytes)", at: escapeAt)
                }
                guard let s = Unicode.Scalar(scalar) else { throw error("invalid \\u escape", at: escapeAt) }
                if let encoded = UTF8.encode(s) { out.append(contentsOf: encoded) }
            default:
                throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'", at: pos - 2)
            }
        }
        // Escapes only produce whole sequences, so validating the result validates the input.
        guard String(validating: out, as: UTF8.self) != nil else {
            throw error("string is not valid UTF-8 (use {\"$str\":\"<base64>\"} for such bytes)", at: start)
        }
        return out
    }

    mutating func hex4() throws(JSONLinesError) -> UInt32 {
        guard bytes.count - pos >= 4 else { throw error("incomplete \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func parseNumber() throws(JSONLinesError) -> MessagePackValue {
        let start = pos
        var negative = false
        if bytes[pos] == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        guard isDigit(pos) else { throw error("invalid number", at: start) }
        let intStart = pos
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if isDigit(pos) { throw error("leading zeros are not allowed in numbers", at: start) }
        } else {
            while isDigit(pos) { pos += 1 }
        }
        let intEnd = pos
        var isFloat = false
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard isDigit(pos) else { throw error("invalid number: digits must follow '.'", at: start) }
            while isDigit(pos) { pos += 1 }
            isFloat = true
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard isDigit(pos) else { throw error("invalid number: digits must follow the exponent", at: start) }
            while isDigit(pos) { pos += 1 }
            isFloat = true
        }
        if isFloat {
            let text = String(decoding: bytes[start..<pos], as: UTF8.self)
            guard let d = Double(text), d.isFinite else {
                throw error("number is out of the float64 range", at: start)
            }
            return .float(d)
        }
        // Exact integer: accumulate the magnitude with overflow checks.
        var magnitude: UInt64 = 0
        for i in intStart..<intEnd {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(bytes[i] - 0x30))
            if o1 || o2 { throw error("integer is out of the MessagePack range (-2^63 ... 2^64-1)", at: start) }
            magnitude = s
        }
        if !negative || magnitude == 0 { return .uint(magnitude) }
        if magnitude <= UInt64(Int64.max) { return .int(-Int64(magnitude)) }
        if magnitude == UInt64(Int64.max) + 1 { return .int(Int64.min) }
        throw error("integer is out of the MessagePack range (-2^63 ... 2^64-1)", at: start)
    }
}

// MARK: - Writer

private enum JSONWriter {
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func write(_ value: MessagePackValue, into out: inout [UInt8]) {
        switch value {
        case .nil: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .uint(let u): out.append(contentsOf: String(u).utf8)
        case .float(let d): writeFloat(d, into: &out)
        case .string(let bytes):
            if String(validating: bytes, as: UTF8.self) != nil {
                writeString(bytes, into: &out)
            } else {
                writeTag("$str", into: &out)
                writeBase64(bytes, into: &out)
                out.append(UInt8(ascii: "}"))
            }
        case .binary(let bytes):
            writeTag("$bin", into: &out)
            writeBase64(bytes, into: &out)
            out.append(UInt8(ascii: "}"))
        case .ext(let type, let data):
            writeTag("$ext", into: &out)
            out.append(UInt8(ascii: "["))
            out.append(contentsOf: String(type).utf8)
            out.append(UInt8(ascii: ","))
            writeBase64(data, into: &out)
            out.append(contentsOf: "]}".utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .map(let pairs):
            if isPlainObject(pairs) {
                out.append(UInt8(ascii: "{"))
                for (i, pair) in pairs.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    if case .string(let key) = pair.key { writeString(key, into: &out) }
                    out.append(UInt8(ascii: ":"))
                    write(pair.value, into: &out)
                }
                out.append(UInt8(ascii: "}"))
            } else {
                writeTag("$map", into: &out)
                out.append(UInt8(ascii: "["))
                for (i, pair) in pairs.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(UInt8(ascii: "["))
                    write(pair.key, into: &out)
                    out.append(UInt8(ascii: ","))
                    write(pair.value, into: &out)
                    out.append(UInt8(ascii: "]"))
                }
                out.append(contentsOf: "]}".utf8)
            }
        }
    }

    /// A map that can be a JSON object: UTF-8 string keys, and not a lone `$` key (a tag).
    static func isPlainObject(_ pairs: [MessagePackPair]) -> Bool {
        for pair in pairs {
            guard case .string(let key) = pair.key, String(validating: key, as: UTF8.self) != nil else { return false }
            if pairs.count == 1 && key.first == UInt8(ascii: "$") { return false }
        }
        return true
    }

    static func writeTag(_ name: String, into out: inout [UInt8]) {
        out.append(contentsOf: "{\"".utf8)
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: "\":".utf8)
    }

    static func writeFloat(_ d: Double, into out: inout [UInt8]) {
        if d.isNaN || d.isInfinite {
            writeTag("$float", into: &out)
            out.append(contentsOf: (d.isNaN ? "\"NaN\"" : d < 0 ? "\"-Infinity\"" : "\"Infinity\"").utf8)
            out.append(UInt8(ascii: "}"))
            return
        }
        // Swift's description is the shortest text that reads back to the same Double.
        let text = Array(d.description.utf8)
        out.append(contentsOf: text)
        // Keep it a float on the way back: it must show a fraction or an exponent.
        if !text.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            out.append(contentsOf: ".0".utf8)
        }
    }

    /// Writes valid UTF-8 as a JSON string literal.
    static func writeString(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case 0x22: out.append(contentsOf: "\\\"".utf8)
            case 0x5c: out.append(contentsOf: "\\\\".utf8)
            case 0x0a: out.append(contentsOf: "\\n".utf8)
            case 0x0d: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0x08: out.append(contentsOf: "\\b".utf8)
            case 0x0c: out.append(contentsOf: "\\f".utf8)
            case 0x00..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0f)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func writeBase64(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        JSONBase64.encode(bytes, into: &out)
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Base64

/// RFC 4648 standard base64 with padding; decoding accepts only the canonical form, so each
/// byte string has exactly one spelling and round trips stay exact.
enum JSONBase64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        var i = 0
        let n = bytes.count
        while n - i >= 3 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
            out.append(alphabet[Int(v & 63)])
            i += 3
        }
        if n - i == 1 {
            let v = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(contentsOf: "==".utf8)
        } else if n - i == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var i = 0
        while i < text.count {
            let last = i + 4 == text.count
            var pads = 0
            if last {
                if text[i + 3] == UInt8(ascii: "=") { pads += 1 }
                if text[i + 2] == UInt8(ascii: "=") {
                    guard pads == 1 else { return nil }
                    pads += 1
                }
            }
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = text[i + k]
                if k >= 4 - pads {
                    v <<= 6
                    continue
                }
                let d = values[Int(c)]
                if d == 0xff { return nil }
                v = v << 6 | UInt32(d)
            }
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            if pads < 2 { out.append(UInt8(truncatingIfNeeded: v >> 8)) }
            if pads < 1 { out.append(UInt8(truncatingIfNeeded: v)) }
            // Canonical: the bits under the padding are zero.
            if pads == 1 && v & 0xff != 0 { return nil }
            if pads == 2 && v & 0xffff != 0 { return nil }
            i += 4
        }
        return out
    }
}
