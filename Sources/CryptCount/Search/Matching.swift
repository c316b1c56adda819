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
        if !exact.isEmpty { scanExact(p, count: count, base: base, from: from, to: to, final: final, state: &state) }
        guard from < to, !anchorBytes.isEmpty else { return }
        var q = from
        let block = ByteScanning.blockSize
        switch mode {
        case .memchr:
            let b = memchrByte
            while q < to {
                guard let hit = memchr(p + q, Int32(b), to - q) else { break }
                q = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - p
                candidates(p, count: count, base: base, at: q, byte: b, final: final, state: &state)
                q += 1
            }
            return
        case .bytes:
            let needles = anchorBytes.map { ByteScanning.splat($0) }
            let fm = ByteScanning.splat(foldMask)
            while q + block <= to {
                let v = ByteScanning.loadWords(p, q) | fm
                var z = ByteScanning.zeroBytes(v ^ needles[0])
                for k in needles.indices.dropFirst() { z |= ByteScanning.zeroBytes(v ^ needles[k]) }
                candidates(p, count: count, base: base, block: q, zeroBytes: z, final: final, state: &state)
                q += block
            }
        case .pairs:
            let firsts = anchorPairs.map { ByteScanning.splat($0.first) }
            // A wildcard second byte compares against the loaded byte itself (always equal).
            let seconds = anchorPairs.map { ByteScanning.splat(UInt8(truncatingIfNeeded: $0.second)) }
            let wild = anchorPairs.map { $0.second == Pair.any ? ~SIMD4<UInt64>() : SIMD4<UInt64>() }
            let n = anchorPairs.count
            let fm = ByteScanning.splat(foldMask)
            // The second-byte load reads one byte past the block.
            while q + block <= to && q + block < count {
                let v0 = ByteScanning.loadWords(p, q) | fm
                let v1 = ByteScanning.loadWords(p, q + 1) | fm
                var z = SIMD4<UInt64>()
                var k = 0
                while k < n {
                    z |= ByteScanning.zeroBytes((v0 ^ firsts[k]) | ((v1 ^ seconds[k]) & ~wild[k]))
                    k += 1
                }
                candidates(p, count: count, base: base, block: q, zeroBytes: z, final: final, state: &state)
                q += block
            }
        case .wuManber:
            // Window ends i = anchor + 1; no anchor can be the text's last byte (m >= 4).
            let fm = foldMask
            wuManberShift.withUnsafeBufferPointer { shift in
                let stop = min(to, count - 1)
                var i = q + 1
                while i <= stop {
                    let w = Int(p[i - 1] | fm) << 8 | Int(p[i] | fm)
                    let d = Int(shift[w])
                    if d > 0 {
                        i += d
                        continue
                    }
                    candidates(p, count: count, base: base, at: i - 1, pair: w, final: final, state: &state)
                    i += 1
                }
            }
            return
        case .pairBitmap:
            let fm = foldMask
            let k = stride
            if k > 1 {
                // Stay on the stream-wide lattice so chunking cannot change which positions are seen.
                let r = (base &+ q) % k
                if r != 0 { q &+= k &- r }
            }
            // Positions are collected without a branch (a hit every ten or so positions would
            // mispredict often), then their candidates are tried.
            let batch = 256
            pairBitmap.withUnsafeBufferPointer { bitmap in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: batch) { hits in
                    let last = min(to, count - 1)
                    while q < last {
                        var n = 0
                        let stop = last &- q > batch &* k ? q &+ batch &* k : last
                        while q < stop {
                            let w = Int(p[q] | fm) << 8 | Int(p[q &+ 1] | fm)
                            hits[n] = q
                            n &+= Int(truncatingIfNeeded: (bitmap[w >> 6] >> UInt64(w & 63)) & 1)
                            q &+= k
                        }
                        for h in hits.prefix(n) {
                            let w = Int(p[h] | fm) << 8 | Int(p[h &+ 1] | fm)
                            candidates(p, count: count, base: base, at: h, pair: w, final: final, state: &state)
                        }
                    }
                }
            }
            // Sampled terms have at least 3 fixed bytes, so no anchor is a text's last byte.
            if k > 1 { return }
        }
        isAnchor.withUnsafeBufferPointer { isAnchor in
            while q < to {
                let b = p[q]
                if isAnchor[Int(b)] {
                    candidates(p, count: count, base: base, at: q, byte: b, final: final, state: &state)
                }
                q += 1
            }
        }
    }

    /// Counts the exact terms' matches that start in `from..<to`, two terms per pass over the
    /// text (the four shifted loads of a block serve both).
    func scanExact(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool, state: inout ScanState
    ) {
        guard from < to else { return }
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
        if options.wholeWord && !isWordBoundaryMatch(p, count: count, base: base, start: s, end: end) { return }
        state.counts[e.term] &+= 1
        if options.offsets {
            record(p, count: count, base: base, term: e.term, start: s, end: end, final: final, state: &state)
        }
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
    @inline(__always)
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
            guard base &+ s >= state.nextAllowed[t] else { continue }
            let end: Int
            if options.ignoreCase {
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
                } else if n > 8 {
                    let equal = termBytes.withUnsafeBufferPointer { tb in
                        guard let tp = tb.baseAddress else { return false }
                        return memcmp(p + s + 8, tp + lo + 8, n &- 8) == 0
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
