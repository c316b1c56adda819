/// A short term matched by comparing it with every text position, 32 positions at a time.
///
/// For a frequent short term such as "the", the anchored prefilter finds a candidate every few
/// bytes and verifies each one; comparing all positions at once is cheaper, and without a border
/// (no proper prefix that is also a suffix) two occurrences can never overlap, so every match
/// counts, exactly as `bytes.count` counts them, and matches are summed without a per-match step.
struct ExactTerm: Sendable {
    /// Most bytes a term may have: the block loop compares 4 shifted loads, whatever the length.
    static let maxLength = 4

    let term: Int
    let length: Int
    /// Byte j of the term in every lane, and what is or-ed into text byte j before comparing
    /// (0x20 for a letter under ignore_case, else 0). Past `length` both are 0xFF: always equal.
    let value: (ByteScanning.Words, ByteScanning.Words, ByteScanning.Words, ByteScanning.Words)
    let fold: (ByteScanning.Words, ByteScanning.Words, ByteScanning.Words, ByteScanning.Words)
    /// The term's bytes (lowercase ASCII under ignore_case) and per byte the fold mask, for the
    /// scalar tail.
    let bytes: [UInt8]
    let folds: [UInt8]

    init(term: Int, bytes: [UInt8], folds: [UInt8]) {
        self.term = term
        self.length = bytes.count
        self.bytes = bytes
        self.folds = folds
        func v(_ j: Int) -> ByteScanning.Words { ByteScanning.splat(j < bytes.count ? bytes[j] : 0xFF) }
        func f(_ j: Int) -> ByteScanning.Words { ByteScanning.splat(j < folds.count ? folds[j] : 0xFF) }
        value = (v(0), v(1), v(2), v(3))
        fold = (f(0), f(1), f(2), f(3))
    }

    /// The terms that are cheaper to compare everywhere than to anchor, at most `limit` of them.
    /// Under ignore_case only ASCII terms qualify, and none with k or s: those letters also fold
    /// from non-ASCII characters (KELVIN SIGN, LONG S), which a byte compare would miss.
    static func select(_ terms: [[UInt8]], ignoreCase: Bool, limit: Int) -> [ExactTerm] {
        var out: [ExactTerm] = []
        for (t, term) in terms.enumerated() where out.count < limit && (1...maxLength).contains(term.count) {
            var bytes = term
            var folds = [UInt8](repeating: 0, count: term.count)
            if ignoreCase {
                guard term.allSatisfy({ $0 < 0x80 && !"kKsS".utf8.contains($0) }) else { continue }
                for (j, b) in term.enumerated() where (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A {
                    bytes[j] = b | 0x20
                    folds[j] = 0x20
                }
            }
            guard isFrequent(bytes) else { continue }
            guard !hasBorder(bytes) else { continue }
            out.append(ExactTerm(term: t, bytes: bytes, folds: folds))
        }
        return out
    }

    /// True when the term is likely common enough that verifying each anchored candidate would
    /// cost more than comparing every position (about 0.3 ms per MB): every byte (one-byte term)
    /// or every adjacent pair of bytes is common in text. `the`, `and`, `of`, `you` qualify;
    /// `fox` (`ox`), `qed`, `Zq` are left to the anchored prefilter.
    static func isFrequent(_ bytes: [UInt8]) -> Bool {
        let f = ByteScanning.frequency
        guard bytes.count > 1 else { return bytes.allSatisfy { f[Int($0)] > 100 } }
        for j in 0..<(bytes.count - 1) where Int(f[Int(bytes[j])]) * Int(f[Int(bytes[j + 1])]) < 30_000 {
            return false
        }
        return true
    }

    /// True when some proper prefix of `b` is also its suffix (then occurrences can overlap).
    static func hasBorder(_ b: [UInt8]) -> Bool {
        guard b.count > 1 else { return false }
        for k in 1..<b.count where b[0..<k] == b[(b.count - k)...] { return true }
        return false
    }

    /// True when the term occurs at `p[s...]` (the caller checks `s + length <= count`).
    @inline(__always)
    func matches(_ p: UnsafePointer<UInt8>, at s: Int) -> Bool {
        var j = 0
        while j < length {
            guard p[s &+ j] | folds[j] == bytes[j] else { return false }
            j &+= 1
        }
        return true
    }
}
