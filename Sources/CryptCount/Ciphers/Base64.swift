/// Base64 (RFC 4648) decoding with the exact strictness each format asks for: the alphabet,
/// whether `=` padding is required or forbidden, and whether the unused low bits of the last
/// character must be zero (canonical encoding). Returns nil on any violation.
enum Base64 {
    enum Alphabet {
        /// `+` and `/` (age headers and armor).
        case standard
        /// `-` and `_` (Fernet).
        case urlSafe
        /// Either pair (lenient key parsing, as Python's `urlsafe_b64decode`).
        case either
    }

    enum Padding {
        case required
        case forbidden
    }

    /// Value of each byte per alphabet, 0xFF for bytes outside it.
    private static let standardTable: [UInt8] = table(extra: [(UInt8(ascii: "+"), 62), (UInt8(ascii: "/"), 63)])
    private static let urlSafeTable: [UInt8] = table(extra: [(UInt8(ascii: "-"), 62), (UInt8(ascii: "_"), 63)])
    private static let eitherTable: [UInt8] = table(extra: [
        (UInt8(ascii: "+"), 62), (UInt8(ascii: "/"), 63), (UInt8(ascii: "-"), 62), (UInt8(ascii: "_"), 63),
    ])

    private static func table(extra: [(UInt8, UInt8)]) -> [UInt8] {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, ch) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8.enumerated() {
            t[Int(ch)] = UInt8(i)
        }
        for (ch, v) in extra { t[Int(ch)] = v }
        return t
    }

    static func isStandardCharacter(_ b: UInt8) -> Bool { standardTable[Int(b)] != 0xff }

    static func decode<C: Collection>(
        _ text: C, alphabet: Alphabet, padding: Padding, canonical: Bool = true
    ) -> [UInt8]? where C.Element == UInt8 {
        let t: [UInt8]
        switch alphabet {
        case .standard: t = standardTable
        case .urlSafe: t = urlSafeTable
        case .either: t = eitherTable
        }
        var chars = Array(text)
        switch padding {
        case .required:
            guard chars.count % 4 == 0 else { return nil }
            var pads = 0
            while pads < 2, let last = chars.last, last == UInt8(ascii: "=") {
                chars.removeLast()
                pads += 1
            }
            let r = chars.count % 4
            guard (pads == 0 && r == 0) || (pads == 1 && r == 3) || (pads == 2 && r == 2) else { return nil }
        case .forbidden:
            guard chars.count % 4 != 1 else { return nil }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 4 * 3 + 2)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = t[Int(c)]
            if v == 0xff { return nil }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits (2 or 4) must be zero in a canonical encoding.
        if canonical && acc != 0 { return nil }
        return out
    }

    static func encode(_ bytes: [UInt8], alphabet: Alphabet = .standard, padded: Bool = true) -> String {
        let chars: [UInt8] = Array(
            (alphabet == .urlSafe
                ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/").utf8)
        var out = [UInt8]()
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [chars[Int(n >> 18)], chars[Int((n >> 12) & 63)], chars[Int((n >> 6) & 63)], chars[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [chars[Int(n >> 18)], chars[Int((n >> 12) & 63)]]
            if padded { out += Array("==".utf8) }
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [chars[Int(n >> 18)], chars[Int((n >> 12) & 63)], chars[Int((n >> 6) & 63)]]
            if padded { out += Array("=".utf8) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
