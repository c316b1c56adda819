import CFastBase64

/// Base64 (RFC 4648) decoding with the exact strictness each format asks for: the alphabet,
/// whether `=` padding is required or forbidden, and whether the unused low bits of the last
/// character must be zero (canonical encoding). Returns nil on any violation.
package enum Base64 {
    package enum Alphabet {
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

    /// Each byte's value in the standard alphabet, 0xFF for any other byte; also the table the
    /// streaming decoders look characters up in before they feed `Base64Group`.
    static let standardTable: [UInt8] = table(extra: [(UInt8(ascii: "+"), 62), (UInt8(ascii: "/"), 63)])
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
    static func isURLSafe(_ b: UInt8) -> Bool { urlSafeTable[Int(b)] != 0xff }

    static func decode<C: Collection>(
        _ text: C, alphabet: Alphabet, padding: Padding, canonical: Bool = true
    ) -> [UInt8]? where C.Element == UInt8 {
        let chars = Array(text)
        var out: [UInt8] = []
        let ok = chars.withUnsafeBytes { raw in
            decode(raw, alphabet: alphabet, padding: padding, canonical: canonical, appendingTo: &out)
        }
        return ok ? out : nil
    }

    /// Decodes `text` and appends the bytes to `out`; false (with `out` unchanged) on any
    /// violation. The fast path for large inputs (Fernet tokens, armor lines).
    static func decode(
        _ text: UnsafeRawBufferPointer, alphabet: Alphabet, padding: Padding, canonical: Bool = true,
        appendingTo out: inout [UInt8]
    ) -> Bool {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: maxDecodedCount(text.count)))
        let produced = out.withUnsafeMutableBytes { dst in
            decode(
                text, alphabet: alphabet, padding: padding, canonical: canonical,
                into: UnsafeMutableRawBufferPointer(rebasing: dst[start...]))
        }
        guard let produced else {
            out.removeSubrange(start...)
            return false
        }
        out.removeSubrange((start + produced)...)
        return true
    }

    /// Room `decode(_:alphabet:padding:canonical:into:)` needs for `count` characters.
    static func maxDecodedCount(_ count: Int) -> Int { count / 4 * 3 + 2 }

    /// Decodes `text` into `dst`, which has room for `maxDecodedCount(text.count)` bytes: the
    /// number of bytes written, or nil on any violation (what `dst` then holds is unspecified).
    /// Whole 32-character blocks go through the vectorised decoder where the CPU has one; it
    /// stops at the first block with a character outside the alphabet, and the scalar loop
    /// below decodes the rest and decides, so the result is the same either way.
    static func decode(
        _ text: UnsafeRawBufferPointer, alphabet: Alphabet, padding: Padding, canonical: Bool = true,
        into dst: UnsafeMutableRawBufferPointer, vectorised allowVector: Bool = true
    ) -> Int? {
        var n = text.count
        switch padding {
        case .required:
            guard n % 4 == 0 else { return nil }
            var pads = 0
            while pads < 2, n > 0, text[n - 1] == UInt8(ascii: "=") {
                n -= 1
                pads += 1
            }
            let r = n % 4
            guard (pads == 0 && r == 0) || (pads == 1 && r == 3) || (pads == 2 && r == 2) else { return nil }
        case .forbidden:
            guard n % 4 != 1 else { return nil }
        }
        let groups = n / 4
        let rest = n % 4  // 0, 2 or 3 characters in the last group
        let produced = groups * 3 + (rest == 0 ? 0 : rest - 1)
        guard dst.count >= produced else { return nil }
        if produced == 0 { return 0 }  // the empty string
        guard let src = text.baseAddress, let out = dst.baseAddress else { return nil }
        let table: [UInt8]
        var vectorised = 0
        switch alphabet {
        case .standard:
            table = standardTable
            guard allowVector else { break }
            vectorised = cfb64_decode_blocks(
                src.assumingMemoryBound(to: UInt8.self), groups * 4, out.assumingMemoryBound(to: UInt8.self),
                Int32(CFB64_STANDARD))
        case .urlSafe:
            table = urlSafeTable
            guard allowVector else { break }
            vectorised = cfb64_decode_blocks(
                src.assumingMemoryBound(to: UInt8.self), groups * 4, out.assumingMemoryBound(to: UInt8.self),
                Int32(CFB64_URLSAFE))
        case .either:
            table = eitherTable
        }
        let ok = table.withUnsafeBufferPointer { t in
            var bad: UInt8 = 0
            var o = vectorised / 4 * 3
            var i = vectorised
            for _ in (vectorised / 4)..<groups {
                let a = t[Int(text[i])]
                let b = t[Int(text[i + 1])]
                let c = t[Int(text[i + 2])]
                let d = t[Int(text[i + 3])]
                bad |= a | b | c | d
                let v = UInt32(a & 63) << 18 | UInt32(b & 63) << 12 | UInt32(c & 63) << 6 | UInt32(d & 63)
                dst[o] = UInt8(truncatingIfNeeded: v >> 16)
                dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                dst[o + 2] = UInt8(truncatingIfNeeded: v)
                o += 3
                i += 4
            }
            // 0xFF marks a byte outside the alphabet; valid values are below 64.
            if bad & 0xc0 != 0 { return false }
            if rest >= 2 {
                let a = t[Int(text[i])]
                let b = t[Int(text[i + 1])]
                let c = rest == 3 ? t[Int(text[i + 2])] : 0
                if (a | b | c) & 0xc0 != 0 { return false }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                dst[o] = UInt8(truncatingIfNeeded: v >> 16)
                if rest == 3 { dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
                // Canonical: the bits below the last output byte are zero.
                let unused = rest == 3 ? v & 0xff : v & 0xffff
                if canonical && unused != 0 { return false }
            }
            return true
        }
        return ok ? produced : nil
    }

    package static func encode(_ bytes: [UInt8], alphabet: Alphabet = .standard, padded: Bool = true) -> String {
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

/// Base64 read one character at a time, for decoders that stream (armor lines, `openssl enc
/// -a`): each whole group of four characters becomes three bytes.
struct Base64Group {
    private var bits: UInt32 = 0
    private var count = 0

    /// Adds a character's value (0-63); a group that is now whole goes to `out`.
    mutating func add(_ value: UInt8, to out: inout [UInt8]) {
        bits = bits << 6 | UInt32(value & 63)
        count += 1
        guard count == 4 else { return }
        out.append(UInt8(truncatingIfNeeded: bits >> 16))
        out.append(UInt8(truncatingIfNeeded: bits >> 8))
        out.append(UInt8(truncatingIfNeeded: bits))
        bits = 0
        count = 0
    }

    /// The data ends (padding, or the end of the text): a group of 2 or 3 characters gives its
    /// 1 or 2 bytes; false for a lone character, which cannot end base64.
    mutating func end(to out: inout [UInt8]) -> Bool {
        defer {
            bits = 0
            count = 0
        }
        switch count {
        case 0: return true
        case 2: out.append(UInt8(truncatingIfNeeded: bits >> 4))
        case 3:
            out.append(UInt8(truncatingIfNeeded: bits >> 10))
            out.append(UInt8(truncatingIfNeeded: bits >> 2))
        default: return false
        }
        return true
    }
}
