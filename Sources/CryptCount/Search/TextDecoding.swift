/// UTF-8 decoding, simple case folding and `\w` membership for the search engine.
///
/// Text is read as a sequence of units: a Unicode scalar for each well-formed UTF-8 sequence, or
/// `rawBase + byte` for each byte that is not part of one (so invalid bytes match only themselves
/// and are never word characters).
package enum TextUnits {
    static let rawBase: UInt32 = 0x11_0000

    /// Decodes the unit starting at `i` (`i < end`); returns the unit and its byte length.
    @inline(__always)
    static func decode(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (unit: UInt32, length: Int) {
        let b0 = p[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        return decodeMultibyte(p, i, end, b0)
    }

    @inline(never)
    static func decodeMultibyte(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, _ b0: UInt8) -> (
        unit: UInt32, length: Int
    ) {
        let raw = (rawBase + UInt32(b0), 1)
        if b0 < 0xC2 || b0 > 0xF4 { return raw }
        if b0 < 0xE0 {
            guard i + 1 < end else { return raw }
            let b1 = p[i + 1]
            guard b1 & 0xC0 == 0x80 else { return raw }
            return ((UInt32(b0 & 0x1F) << 6) | UInt32(b1 & 0x3F), 2)
        }
        if b0 < 0xF0 {
            guard i + 2 < end else { return raw }
            let b1 = p[i + 1]
            let b2 = p[i + 2]
            let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard b1 >= lo, b1 <= hi, b2 & 0xC0 == 0x80 else { return raw }
            return ((UInt32(b0 & 0x0F) << 12) | (UInt32(b1 & 0x3F) << 6) | UInt32(b2 & 0x3F), 3)
        }
        guard i + 3 < end else { return raw }
        let b1 = p[i + 1]
        let b2 = p[i + 2]
        let b3 = p[i + 3]
        let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
        let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
        guard b1 >= lo, b1 <= hi, b2 & 0xC0 == 0x80, b3 & 0xC0 == 0x80 else { return raw }
        let u = (UInt32(b0 & 0x07) << 18) | (UInt32(b1 & 0x3F) << 12) | (UInt32(b2 & 0x3F) << 6) | UInt32(b3 & 0x3F)
        return (u, 4)
    }

    /// The unit that ends exactly at `s` (exclusive), looking back no further than `lo`; nil at `lo`.
    /// A byte that is not the end of a well-formed sequence is a raw unit.
    @inline(__always)
    static func unitBefore(_ p: UnsafePointer<UInt8>, _ s: Int, lo: Int, end: Int) -> UInt32? {
        guard s > lo else { return nil }
        let last = p[s - 1]
        if last < 0x80 { return UInt32(last) }
        if last & 0xC0 == 0x80 {
            var j = 2
            while j <= 4 && s - j >= lo {
                let b = p[s - j]
                if b & 0xC0 != 0x80 {
                    let (u, len) = decode(p, s - j, end)
                    return len == j ? u : rawBase + UInt32(last)
                }
                j += 1
            }
        }
        return rawBase + UInt32(last)
    }

    /// Byte length of the unit starting at `i` (`i < end`).
    @inline(__always)
    static func length(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        p[i] < 0x80 ? 1 : decode(p, i, end).length
    }

    /// Simple case folding (CaseFolding.txt C + S); raw units and unlisted scalars fold to themselves.
    @inline(__always)
    static func fold(_ u: UInt32) -> UInt32 {
        if u < 0x80 { return u &- 0x41 < 26 ? u | 0x20 : u }
        return foldNonASCII(u)
    }

    @inline(never)
    static func foldNonASCII(_ u: UInt32) -> UInt32 {
        if u >= rawBase { return u }
        let from = UnicodeTables.foldFrom
        var lo = 0
        var hi = from.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if from[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        if lo < from.count && from[lo] == u { return UnicodeTables.foldTo[lo] }
        return u
    }

    /// True when no unit of `term` has another case: each folds to itself and nothing else folds
    /// to it (digits, punctuation, `€`, bytes that are not UTF-8). ignore_case matches such a term
    /// byte for byte, so it counts exactly what it counts without ignore_case (a lone byte of a
    /// multi-byte character included).
    package static func isCaseless(_ term: [UInt8]) -> Bool {
        term.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return true }
            var i = 0
            while i < buf.count {
                let (u, len) = decode(p, i, buf.count)
                if fold(u) != u || foldMembers[u] != nil { return false }
                i += len
            }
            return true
        }
    }

    /// Every scalar whose folding is `folded` (including `folded` itself).
    static func foldClass(_ folded: UInt32) -> [UInt32] {
        [folded] + (foldMembers[folded] ?? [])
    }

    /// Scalars that fold to each folding target, other than the target itself.
    static let foldMembers: [UInt32: [UInt32]] = {
        var members: [UInt32: [UInt32]] = [:]
        for (from, to) in zip(UnicodeTables.foldFrom, UnicodeTables.foldTo) { members[to, default: []].append(from) }
        return members
    }()

    /// `\w` per UTS #18 (Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control).
    @inline(__always)
    static func isWord(_ u: UInt32) -> Bool {
        if u < 0x80 {
            let b = UInt8(truncatingIfNeeded: u)
            return b &- 0x30 < 10 || (b | 0x20) &- 0x61 < 26 || b == 0x5F
        }
        return isWordNonASCII(u)
    }

    @inline(never)
    static func isWordNonASCII(_ u: UInt32) -> Bool {
        if u >= rawBase { return false }
        let r = UnicodeTables.wordRanges
        // Find the last range start <= u.
        var lo = 0
        var hi = r.count >> 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if r[mid << 1] <= u { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return false }
        return u <= r[((lo - 1) << 1) + 1]
    }

    /// UTF-8 encoding of a scalar (for building prefilters).
    static func utf8(_ u: UInt32) -> [UInt8] {
        if u >= rawBase { return [UInt8(truncatingIfNeeded: u - rawBase)] }
        guard let scalar = Unicode.Scalar(u) else { return [] }
        return Array(String(Character(scalar)).utf8)
    }

    /// ASCII whitespace as `bytes.split()` sees it: 0x09-0x0D and 0x20.
    @inline(__always)
    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b &- 0x09 < 5 }
}
