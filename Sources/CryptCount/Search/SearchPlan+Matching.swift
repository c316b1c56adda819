#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

extension SearchPlan {
    /// Finds matches whose anchor lies in `from..<to` of `p[0..<count]`, where `p[0]` is stream
    /// offset `base`. Unless `final`, the caller guarantees `to + lookahead <= count`.
    func scan(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool, state: inout ScanState
    ) {
        if let regex {
            scanRegex(regex, p, count: count, base: base, from: from, to: to, final: final, state: &state)
            return
        }
        if !exact.isEmpty {
            // Exact terms are anchored on their first byte: a range clips positions directly.
            let lo = max(from, state.rangeStart &- base)
            let hi = state.startLimit == Int.max ? to : min(to, state.startLimit &- base)
            scanExact(p, count: count, base: base, from: lo, to: hi, final: final, state: &state)
        }
        guard from < to, !anchorBytes.isEmpty else { return }
        prefilter.scan(self, p, count: count, base: base, from: from, to: to, final: final, state: &state)
    }

    /// Tries the candidates of the 32-byte block at `q`: one per byte of `z` with its high bit set.
    @inline(__always)
    func candidates(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, block q: Int, zeroBytes z: ByteScanning.Words,
        final: Bool, state: inout ScanState
    ) {
        guard ByteScanning.any(z) else { return }
        var bits = ByteScanning.bits(z)
        while bits != 0 {
            let i = q &+ bits.trailingZeroBitCount
            candidates(p, count: count, base: base, at: i, byte: p[i], final: final, state: &state)
            bits &= bits &- 1
        }
    }

    /// Tries every term anchored on `byte` with the anchor at `q`.
    @inline(__always)
    func candidates(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at q: Int, byte: UInt8, final: Bool,
        state: inout ScanState
    ) {
        let key = Int(byte | foldMask)
        tryEntries(
            p, count: count, base: base, at: q, entries: Int(entryStart[key])..<Int(entryStart[key &+ 1]),
            final: final, state: &state)
    }

    /// Tries every term anchored on the byte pair `w` (already folded) with the anchor at `q`.
    /// Kept out of line: inlined, the verification bloats the tight Wu-Manber and pair-bitmap
    /// loops that call it (5-10% slower on a 256 MiB file).
    @inline(never)
    func candidates(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at q: Int, pair w: Int, final: Bool,
        state: inout ScanState
    ) {
        tryEntries(
            p, count: count, base: base, at: q, entries: Int(pairEntryStart[w])..<Int(pairEntryStart[w &+ 1]),
            final: final, state: &state)
    }

    @inline(__always)
    func tryEntries(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at q: Int, entries: Range<Int>, final: Bool,
        state: inout ScanState
    ) {
        var e = entries.lowerBound
        let stop = entries.upperBound
        while e < stop {
            let t = Int(entryTerm[e])
            let s = q &- entryOffset[e]
            e &+= 1
            guard s >= 0 else { continue }
            // Cheap reject on the first (up to) 8 bytes before looking at the term's state.
            let whole8 = s &+ 8 <= count
            if whole8 {
                let w = UnsafeRawPointer(p + s).loadUnaligned(as: UInt64.self) | prefixFold
                guard (w ^ prefixWord[t]) & prefixMask[t] == 0 else { continue }
            }
            guard base &+ s >= state.nextAllowed[t], base &+ s < state.startLimit else { continue }
            let end: Int
            if unitStart[t] != unitStart[t &+ 1] {
                guard let m = matchFolded(p, count: count, at: s, term: t) else { continue }
                end = m
            } else {
                let lo = termStart[t]
                let n = termStart[t &+ 1] &- lo
                guard s &+ n <= count else { continue }
                if !whole8 {
                    var i = 0
                    while i < n && p[s &+ i] == termBytes[lo &+ i] { i &+= 1 }
                    guard i == n else { continue }
                } else if n > 8 || prefixFold != 0 {
                    // The prefix check covered the first 8 bytes exactly, unless it folded them
                    // (a caseless term under ignore_case).
                    let from = prefixFold != 0 ? 0 : 8
                    let equal = termBytes.withUnsafeBufferPointer { tb in
                        guard let tp = tb.baseAddress else { return false }
                        return memcmp(p + s + from, tp + lo + from, n &- from) == 0
                    }
                    guard equal else { continue }
                }
                end = s &+ n
            }
            if options.wholeWord && !isWordBoundaryMatch(p, count: count, base: base, start: s, end: end) {
                state.nextAllowed[t] = base + s + TextUnits.length(p, s, count)
                continue
            }
            state.nextAllowed[t] = base + end
            if state.counts[t] == 0 { state.firstStart[t] = base + s }
            state.counts[t] += 1
            if options.offsets {
                record(p, count: count, base: base, term: t, start: s, end: end, final: final, state: &state)
            }
        }
    }

    /// End of the match of term `t` (folded) starting at `s`, if it matches.
    @inline(__always)
    func matchFolded(_ p: UnsafePointer<UInt8>, count: Int, at s: Int, term t: Int) -> Int? {
        var i = s
        var k = unitStart[t]
        let stop = unitStart[t + 1]
        while k < stop {
            guard i < count else { return nil }
            let b = p[i]
            let u = units[k]
            if b < 0x80 {
                guard UInt32(b &- 0x41 < 26 ? b | 0x20 : b) == u else { return nil }
                i += 1
            } else if u >= TextUnits.rawBase {
                // A term byte that is not UTF-8 matches that byte, even inside a text character
                // (as without ignore_case).
                guard UInt32(b) == u &- TextUnits.rawBase else { return nil }
                i += 1
            } else {
                let (c, len) = TextUnits.decode(p, i, count)
                guard TextUnits.fold(c) == u else { return nil }
                i += len
            }
            k += 1
        }
        return i
    }

    @inline(__always)
    func isWordBoundaryMatch(_ p: UnsafePointer<UInt8>, count: Int, base: Int, start: Int, end: Int) -> Bool {
        if let before = TextUnits.unitBefore(p, start, lo: 0, end: count), TextUnits.isWord(before) {
            return false
        }
        if end < count && TextUnits.isWord(TextUnits.decode(p, end, count).unit) { return false }
        return true
    }

    @inline(never)
    func record(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, term t: Int, start s: Int, end: Int, final: Bool,
        state: inout ScanState
    ) {
        guard state.offsets[t].count < maxOffsets else {
            state.truncated = true
            return
        }
        state.offsets[t].append(base + s)
        guard wantSnippets else { return }
        if final || end + Self.snippetWindow < count {
            state.snippets[t].append(snippet(p, count: count, base: base, start: s, end: end))
        } else {
            state.snippets[t].append("")
            state.pending.append(
                PendingSnippet(term: t, slot: state.snippets[t].count - 1, start: base + s, end: base + end))
        }
    }
}
