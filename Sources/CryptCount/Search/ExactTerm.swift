import CSearchKernels

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
    /// The term can overlap itself (only with the one-pass kernel, without whole_word or offsets):
    /// its matches then go through `ScanState.nextAllowed` like anchored terms'.
    let bordered: Bool

    /// The term for the one-pass kernel (`ccsk_count_short`).
    var kernelTerm: ccsk_short_term {
        var k = ccsk_short_term()
        withUnsafeMutableBytes(of: &k.bytes) { b in
            withUnsafeMutableBytes(of: &k.folds) { f in
                for j in 0..<4 {
                    b[j] = j < length ? bytes[j] : 0xFF
                    f[j] = j < length ? folds[j] : 0xFF
                }
            }
        }
        k.bordered = bordered ? 1 : 0
        return k
    }

    /// Most terms compared everywhere: with the one-pass kernel a term costs about a tenth of a CPU
    /// cycle per byte, without it a pass over the text per two terms. 48: on 100 terms from common
    /// to rare (256 MiB), 760 ms of CPU against 1,010 with 32 (the rest left to Teddy); 64 gains
    /// nothing more.
    /// With AVX-512 (`kernelLevel` 3: a bitmap per distinct byte, shared by all the terms) those 48
    /// cost 2.7x less CPU than with AVX2 (105 against 282 ms over 256 MiB in cache, one core); with
    /// GFNI the bitmaps 8 bytes at a time, and self-overlapping terms counted by the popcount where
    /// no two matches are close (CLI, the 100 terms of target 14.5, 256 MiB, CPU: 0.18 -> 0.15 s and
    /// 0.24 -> 0.21 s). Level 5 (a table lookup per group of 8 terms and offset, no bitmap stored)
    /// counts the same 48 in 0.165 ms per MiB against 0.24 (one core, in cache).
    /// Whole_word and offsets take every match one by one, in a pass per two terms: then 8.
    static let limit = hasKernel ? 48 : 8
    static let perMatchLimit = 8
    /// Whether this CPU runs the one-pass kernel (`ccsk_count_short`).
    static let hasKernel = ccsk_count_short_available() != 0
    /// Its widest kernel on this CPU: 5 AVX-512 with VBMI, GFNI and BITALG (per group of 8 terms a
    /// byte lookup per offset, the matches counted 8 terms at a time; terms of bytes 0x41-0x7F,
    /// letters in either case, else 4 does the work), 4 and 3 AVX-512 (a bitmap per distinct byte,
    /// shared by the terms; 4 makes them from the text's bit planes with GFNI), 2 AVX2 (a pass per
    /// term), 0 none.
    static let kernelLevel = Int(ccsk_count_short_best())

    init(term: Int, bytes: [UInt8], folds: [UInt8], bordered: Bool = false) {
        self.term = term
        self.bordered = bordered
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
    /// The shortest terms are taken first: what is left to the anchored prefilters then has longer
    /// fingerprints (fewer candidates).
    /// `kernel`: the one-pass kernel counts them (no whole_word, no offsets); then terms that can
    /// overlap themselves qualify too (it takes their matches one by one), and so do rare terms.
    static func select(_ terms: [[UInt8]], ignoreCase: Bool, limit: Int, kernel: Bool = false) -> [ExactTerm] {
        var out: [ExactTerm] = []
        let byLength = terms.indices.sorted { (terms[$0].count, $0) < (terms[$1].count, $1) }
        for t in byLength where out.count < limit && (1...maxLength).contains(terms[t].count) {
            let term = terms[t]
            var bytes = term
            var folds = [UInt8](repeating: 0, count: term.count)
            if ignoreCase {
                guard term.allSatisfy({ $0 < 0x80 && !"kKsS".utf8.contains($0) }) else { continue }
                for (j, b) in term.enumerated() where (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A {
                    bytes[j] = b | 0x20
                    folds[j] = 0x20
                }
            }
            // With the kernel a term costs little even when rare (about 7 ms per 256 MiB), and one
            // of up to 4 bytes left to the anchored prefilters would deny them Teddy's 3-byte
            // (shorter) or 4-byte (fewer candidates) fingerprints.
            guard isFrequent(bytes) || kernel else { continue }
            let bordered = hasBorder(bytes)
            guard kernel || !bordered else { continue }
            out.append(ExactTerm(term: t, bytes: bytes, folds: folds, bordered: bordered))
        }
        return out.sorted { $0.term < $1.term }
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

// MARK: - The scan loop

extension SearchPlan {
    /// Counts the exact terms' matches that start in `from..<to`, two terms per pass over the
    /// text (the four shifted loads of a block serve both).
    func scanExact(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool, state: inout ScanState
    ) {
        guard from < to else { return }
        var from = from
        if !shortKernel.isEmpty && !options.wholeWord && !options.offsets {
            // All terms in one pass (AVX2 or wider), matches summed per term, then the last
            // positions the vector steps leave, in C too: nothing is left for the loop per pair
            // of terms below (which would copy every pair of terms for those few positions).
            let n = exact.count
            from = withUnsafeTemporaryAllocation(of: Int64.self, capacity: 2 * n) { found in
                guard let f = found.baseAddress else { return from }
                f.initialize(repeating: 0, count: n)
                for i in 0..<n { (f + n + i).initialize(to: Int64(state.nextAllowed[exactTerm[i]] &- base)) }
                shortKernel.withUnsafeBufferPointer { terms in
                    let stop = ccsk_count_short_level(
                        shortKernelLevel, p, count, from, to, terms.baseAddress, terms.count, f, f + n)
                    ccsk_count_short_tail(p, count, stop, to, terms.baseAddress, terms.count, f, f + n)
                }
                for i in 0..<n {
                    let t = exactTerm[i]
                    if exactBordered[i] && state.counts[t] == 0 && f[i] > 0 {
                        // A split file's ranges are merged by each term's first counted start
                        // (RangeScan.mergeRanges): a self-overlapping term's can follow a match
                        // that ran in from the range before. The kernel only sums; find it.
                        let e = exact[i]
                        var s = max(from, state.nextAllowed[t] &- base)
                        while s < to && !(s &+ e.length <= count && e.matches(p, at: s)) { s &+= 1 }
                        state.firstStart[t] = base &+ s
                    }
                    if f[i] != 0 { state.counts[t] &+= Int(f[i]) }
                    if exactBordered[i] { state.nextAllowed[t] = base &+ Int(f[n + i]) }
                }
                return to
            }
            guard from < to else { return }
        }
        var g = 0
        while g < exact.count {
            if g + 1 < exact.count {
                scanExact(
                    p, count: count, base: base, from: from, to: to, final: final, exact[g], exact[g + 1], two: true,
                    state: &state)
            } else {
                scanExact(
                    p, count: count, base: base, from: from, to: to, final: final, exact[g], exact[g], two: false,
                    state: &state)
            }
            g += 2
        }
    }

    /// One pass for term `a` and, if `two`, term `b`. Without whole_word or offsets, matches are
    /// summed in byte lanes (a compare gives -1 per match) and added up every 255 blocks.
    @inline(__always)
    func scanExact(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool, _ a: ExactTerm,
        _ b: ExactTerm, two: Bool, state: inout ScanState
    ) {
        typealias Words = ByteScanning.Words
        let block = ByteScanning.blockSize
        let perMatch = options.wholeWord || options.offsets
        let (av0, av1, av2, av3) = a.value
        let (af0, af1, af2, af3) = a.fold
        let (bv0, bv1, bv2, bv3) = b.value
        let (bf0, bf1, bf2, bf3) = b.fold
        let ones = Words(repeating: 0x0101_0101_0101_0101)
        var q = from
        var foundA = 0
        var foundB = 0
        // The loads reach 3 bytes past the block.
        while q &+ block <= to && q &+ block &+ 3 <= count {
            var sumA = Words()
            var sumB = Words()
            var n = 0
            while n < 255 && q &+ block <= to && q &+ block &+ 3 <= count {
                let l0 = ByteScanning.loadWords(p, q)
                let l1 = ByteScanning.loadWords(p, q &+ 1)
                let l2 = ByteScanning.loadWords(p, q &+ 2)
                let l3 = ByteScanning.loadWords(p, q &+ 3)
                // 0x80 in each byte where the term starts.
                let zA = ByteScanning.zeroBytes(
                    ((l0 | af0) ^ av0) | ((l1 | af1) ^ av1) | ((l2 | af2) ^ av2) | ((l3 | af3) ^ av3))
                let zB =
                    two
                    ? ByteScanning.zeroBytes(
                        ((l0 | bf0) ^ bv0) | ((l1 | bf1) ^ bv1) | ((l2 | bf2) ^ bv2) | ((l3 | bf3) ^ bv3))
                    : Words()
                if perMatch {
                    if ByteScanning.any(zA) {
                        exactMatches(
                            p, count: count, base: base, at: q, ByteScanning.bits(zA), a, final: final, state: &state)
                    }
                    if two && ByteScanning.any(zB) {
                        exactMatches(
                            p, count: count, base: base, at: q, ByteScanning.bits(zB), b, final: final, state: &state)
                    }
                } else {
                    sumA &+= (zA &>> 7) & ones
                    if two { sumB &+= (zB &>> 7) & ones }
                }
                q &+= block
                n &+= 1
            }
            foundA &+= ByteScanning.laneSum(sumA)
            if two { foundB &+= ByteScanning.laneSum(sumB) }
        }
        state.counts[a.term] &+= foundA
        if two { state.counts[b.term] &+= foundB }
        while q < to {
            if q &+ a.length <= count && a.matches(p, at: q) {
                exactMatch(p, count: count, base: base, at: q, a, final: final, state: &state)
            }
            if two && q &+ b.length <= count && b.matches(p, at: q) {
                exactMatch(p, count: count, base: base, at: q, b, final: final, state: &state)
            }
            q &+= 1
        }
    }

    /// Matches of an exact term at `q + i` for every bit i of `bits`.
    @inline(__always)
    func exactMatches(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at q: Int, _ bits: UInt32, _ e: ExactTerm, final: Bool,
        state: inout ScanState
    ) {
        var bits = bits
        while bits != 0 {
            exactMatch(p, count: count, base: base, at: q &+ bits.trailingZeroBitCount, e, final: final, state: &state)
            bits &= bits &- 1
        }
    }

    /// One match of an exact term at `s` (whole_word or offsets asked for).
    @inline(__always)
    func exactMatch(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at s: Int, _ e: ExactTerm, final: Bool,
        state: inout ScanState
    ) {
        let end = s &+ e.length
        if e.bordered {
            guard base &+ s >= state.nextAllowed[e.term] else { return }
            state.nextAllowed[e.term] = base &+ end
        }
        if options.wholeWord && !isWordBoundaryMatch(p, count: count, base: base, start: s, end: end) { return }
        if state.counts[e.term] == 0 { state.firstStart[e.term] = base &+ s }
        state.counts[e.term] &+= 1
        if options.offsets {
            record(p, count: count, base: base, term: e.term, start: s, end: end, final: final, state: &state)
        }
    }
}
