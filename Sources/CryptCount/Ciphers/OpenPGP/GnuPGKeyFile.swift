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

    /// The value of the `Key:` item, continuation lines (those starting with a space or tab)
    /// joined.
    static func keyItem(_ file: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var inKey = false
        var found = false
        for line in file.split(separator: 0x0a, omittingEmptySubsequences: false) {
            if let first = line.first, first == 0x20 || first == 0x09 {
                if inKey {
                    out.append(0x0a)
                    out.append(contentsOf: line)
                }
                continue
            }
            inKey = false
            let prefix = Array("Key:".utf8)
            if line.starts(with: prefix) && !found {
                inKey = true
                found = true
                out.append(contentsOf: line.dropFirst(prefix.count))
            }
        }
        return found ? out : nil
    }

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
                var bytes: [UInt8] = []
                i += 1
                while i < s.count, s[i] != UInt8(ascii: "\"") {
                    if s[i] == UInt8(ascii: "\\"), i + 1 < s.count {
                        let e = s[i + 1]
                        i += 2
                        switch e {
                        case UInt8(ascii: "n"): bytes.append(0x0a)
                        case UInt8(ascii: "t"): bytes.append(0x09)
                        case UInt8(ascii: "r"): bytes.append(0x0d)
                        case 0x0a: break  // a line continuation
                        default: bytes.append(e)
                        }
                        continue
                    }
                    bytes.append(s[i])
                    i += 1
                }
                guard i < s.count else { return nil }
                i += 1
                atom(bytes)
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
