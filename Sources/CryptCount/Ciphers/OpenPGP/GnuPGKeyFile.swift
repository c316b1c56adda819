/// A file of a GnuPG home's `private-keys-v1.d`. gpg-agent writes either a canonical
/// S-expression (`(21:protected-private-key...`) or, since GnuPG 2.2.20 on some systems and
/// always from 2.3, the "extended key format": `Name: value` lines whose `Key:` item holds the
/// same S-expression in advanced (readable) form. librnp 0.16 reads only the canonical form,
/// so the extended form is converted here. Pure; the result holds the key as stored (protected
/// by its passphrase, unless the home keeps unprotected keys), so callers wipe it after use.
package enum GnuPGKeyFile {
    /// The key's canonical S-expression, or nil if the file is neither form. A converted `Key:`
    /// value must come out as exactly one list (a bare atom, two lists or a stray display hint
    /// would be handed to librnp as a key otherwise).
    package static func canonicalKey(_ file: [UInt8]) -> [UInt8]? {
        if file.first == UInt8(ascii: "(") { return file }
        guard var value = keyItem(file) else { return nil }
        defer { SecretBytes.wipe(&value) }
        guard var key = canonical(value) else { return nil }
        guard GnuPGProtectedKey.isOneList(key) else {
            SecretBytes.wipe(&key)
            return nil
        }
        return key
    }

    /// The value of the `Key:` item as gpg-agent reads it (GnuPG's name-value format): the text
    /// after the colon, then each continuation line (one starting with a space or tab, or a blank
    /// one), each piece without one leading and every trailing whitespace byte, joined with
    /// nothing between: the writer breaks a long value every 70 bytes or so, also inside an atom
    /// (a hex string, a quoted salt), and a blank line stands for a newline.
    static func keyItem(_ file: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var inEntry = false
        var inKey = false
        var found = false
        var swallow = false  // after a blank line, all leading whitespace goes
        func append(_ piece: ArraySlice<UInt8>) {
            var s = piece
            if swallow {
                s = s.drop(while: isSpace)
            } else if let first = s.first, isSpace(first) {
                s = s.dropFirst()
            }
            while let last = s.last, isSpace(last) { s = s.dropLast() }
            if s.isEmpty {
                out.append(0x0a)
                swallow = true
            } else {
                out.append(contentsOf: s)
                swallow = false
            }
        }
        var lines = file.split(separator: 0x0a, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // the file's last line end
        for line in lines {
            let rest = line.drop(while: isSpace)
            if inEntry, rest.isEmpty || line.first == 0x20 || line.first == 0x09 {
                if inKey { append(line) }
                continue
            }
            inEntry = false
            inKey = false
            swallow = false
            guard let first = rest.first, first != UInt8(ascii: "#"),
                let colon = rest.firstIndex(of: UInt8(ascii: ":"))
            else { continue }
            inEntry = true
            let name = rest[..<colon].map { $0 | 0x20 }  // names are matched without case
            if name == Array("key".utf8) && !found {
                inKey = true
                found = true
                append(rest[rest.index(after: colon)...])
            }
        }
        return found ? out : nil
    }

    /// ASCII whitespace as GnuPG's `ascii_isspace`: space, tab, LF, VT, FF, CR.
    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0d).contains(b) }

    /// Advanced S-expression -> canonical (`len:bytes` atoms). Tokens, `#hex#`, `"quoted"`,
    /// `|base64|` and `len:verbatim` atoms; display hints are kept as `[...]`.
    static func canonical(_ s: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        var depth = 0
        func atom(_ bytes: [UInt8]) {
            out.append(contentsOf: Array(String(bytes.count).utf8))
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: bytes)
        }
        while i < s.count {
            let c = s[i]
            switch c {
            case 0x20, 0x09, 0x0a, 0x0d:
                i += 1
            case UInt8(ascii: "("):
                depth += 1
                out.append(c)
                i += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth < 0 { return nil }
                out.append(c)
                i += 1
            case UInt8(ascii: "["), UInt8(ascii: "]"):
                out.append(c)
                i += 1
            case UInt8(ascii: "#"):
                var bytes: [UInt8] = []
                var high: UInt8? = nil
                i += 1
                while i < s.count, s[i] != UInt8(ascii: "#") {
                    let h = s[i]
                    i += 1
                    if ASCII.isWhitespace(h) { continue }
                    guard let v = hexValue(h) else { return nil }
                    if let hi = high {
                        bytes.append(hi << 4 | v)
                        high = nil
                    } else {
                        high = v
                    }
                }
                guard i < s.count, high == nil else { return nil }
                i += 1
                atom(bytes)
                SecretBytes.wipe(&bytes)
            case UInt8(ascii: "\""):
                i += 1
                guard var bytes = unquote(s, &i) else { return nil }
                atom(bytes)
                SecretBytes.wipe(&bytes)
            case UInt8(ascii: "|"):
                var text: [UInt8] = []
                i += 1
                while i < s.count, s[i] != UInt8(ascii: "|") {
                    if !ASCII.isWhitespace(s[i]) { text.append(s[i]) }
                    i += 1
                }
                guard i < s.count, var bytes = Base64.decode(text, alphabet: .standard, padding: .required) else {
                    return nil
                }
                i += 1
                atom(bytes)
                SecretBytes.wipe(&bytes)
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // Either `len:verbatim` or a token that starts with a digit.
                var j = i
                var n = 0
                while j < s.count, s[j] >= UInt8(ascii: "0"), s[j] <= UInt8(ascii: "9"), n < 1 << 24 {
                    n = n * 10 + Int(s[j] - UInt8(ascii: "0"))
                    j += 1
                }
                if j < s.count, s[j] == UInt8(ascii: ":") {
                    guard n <= s.count - j - 1 else { return nil }
                    atom(Array(s[(j + 1)..<(j + 1 + n)]))
                    i = j + 1 + n
                } else {
                    let start = i
                    while i < s.count, isTokenByte(s[i]) { i += 1 }
                    atom(Array(s[start..<i]))
                }
            default:
                guard isTokenByte(c) else { return nil }
                let start = i
                while i < s.count, isTokenByte(s[i]) { i += 1 }
                atom(Array(s[start..<i]))
            }
        }
        return depth == 0 && !out.isEmpty ? out : nil
    }

    /// A quoted string's bytes, from just after its opening quote; `i` ends past the closing
    /// one. The escapes are libgcrypt's: `\b \t \v \n \f \r \" \' \\`, `\xHH`, three octal
    /// digits, and a backslash before a line end (CR, LF, CRLF or LFCR) joins the lines. Any
    /// other escape is an error, as there. gpg-agent writes a salt or a nonce that is mostly
    /// printable this way (`"w\x00..."`, `"...:k\b+..."`), so every escape matters.
    static func unquote(_ s: [UInt8], _ i: inout Int) -> [UInt8]? {
        var bytes: [UInt8] = []
        var closed = false
        defer { if !closed { SecretBytes.wipe(&bytes) } }  // a salt or nonce read so far
        while i < s.count, s[i] != UInt8(ascii: "\"") {
            let c = s[i]
            i += 1
            guard c == UInt8(ascii: "\\") else {
                bytes.append(c)
                continue
            }
            guard i < s.count else { return nil }
            let e = s[i]
            i += 1
            switch e {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "v"): bytes.append(0x0b)
            case UInt8(ascii: "n"): bytes.append(0x0a)
            case UInt8(ascii: "f"): bytes.append(0x0c)
            case UInt8(ascii: "r"): bytes.append(0x0d)
            case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"): bytes.append(e)
            case 0x0d, 0x0a:
                // A line continuation: CR LF or LF CR count as one line end.
                if i < s.count, s[i] == (e == 0x0d ? 0x0a : 0x0d) { i += 1 }
            case UInt8(ascii: "x"):
                guard i + 1 < s.count, let hi = hexValue(s[i]), let lo = hexValue(s[i + 1]) else { return nil }
                bytes.append(hi << 4 | lo)
                i += 2
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard i + 1 < s.count, let b = octalValue(s[i]), let c = octalValue(s[i + 1]) else { return nil }
                // As libgcrypt: three octal digits, kept to a byte (\777 is 0xFF).
                bytes.append((e - UInt8(ascii: "0")) << 6 | b << 3 | c)
                i += 2
            default:
                return nil
            }
        }
        guard i < s.count else { return nil }
        i += 1
        closed = true
        return bytes
    }

    private static func octalValue(_ b: UInt8) -> UInt8? {
        b >= UInt8(ascii: "0") && b <= UInt8(ascii: "7") ? b - UInt8(ascii: "0") : nil
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || Array("-./_:*+=".utf8).contains(b)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
