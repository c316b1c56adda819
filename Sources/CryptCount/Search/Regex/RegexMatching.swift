import CRE2Shim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

extension SearchPlan {
    /// Counts the matches of every pattern in `from..<to` of `p[0..<count]` (`p[0]` is stream
    /// offset `base`). `from` is a line start and `to` a line start or `count`: no match spans a
    /// line break, so lines are independent and a stream can be cut after any `\n`.
    func scanRegex(
        _ regex: RegexPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) {
        // Blocks of whole lines, about 1 MiB each: the atom positions of one block are held at a
        // time, whatever the text's size (a file read whole may be 1 GiB).
        var start = from
        while start < to {
            var end = to
            if to &- start > Self.regexBlock {
                let cut = start &+ Self.regexBlock
                if let nl = memchr(p + cut, 0x0A, to &- cut) {
                    end = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self)) - p + 1
                }
            }
            scanRegexBlock(regex, p, count: count, base: base, from: start, to: end, final: final, state: &state)
            start = end
        }
    }

    static let regexBlock = 1 << 20

    private func scanRegexBlock(
        _ regex: RegexPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) {
        guard from < to else { return }
        for (t, atoms) in regex.atomTerms.enumerated() where atoms == nil {
            if let first = regex.firstBytes[t] {
                runOnLines(
                    regex.compiled[t], term: t, startingWith: first, p, count: count, base: base, from: from, to: to,
                    final: final, state: &state)
            } else {
                run(
                    regex.compiled[t], term: t, p, count: count, base: base, from: from, to: to, final: final,
                    state: &state)
            }
        }
        guard let atomPlan = regex.atomPlan else { return }
        // Every atom occurrence in the region, by position.
        let found = atomPlan.count(UnsafeRawBufferPointer(start: p + from, count: to - from))
        var hits: [(position: Int, atom: Int)] = []
        for (a, list) in (found.offsets ?? []).enumerated() {
            for o in list { hits.append((from + o, a)) }
        }
        guard !hits.isEmpty else { return }
        hits.sort { $0.position < $1.position }
        var present = [UInt8](repeating: 0, count: atomPlan.terms.count)
        var perPattern: [UInt8] = []
        var h = 0
        while h < hits.count {
            // The line holding this hit, and every hit on it.
            let at = hits[h].position
            var lo = at
            while lo > from && p[lo - 1] != 0x0A { lo -= 1 }
            let hi: Int
            if let nl = memchr(p + at, 0x0A, to - at) {
                hi = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self)) - p + 1
            } else {
                hi = to
            }
            let first = h
            while h < hits.count && hits[h].position < hi {
                present[hits[h].atom] = 1
                h += 1
            }
            for (t, atoms) in regex.atomTerms.enumerated() {
                guard let atoms else { continue }
                perPattern.removeAll(keepingCapacity: true)
                for a in atoms { perPattern.append(present[a]) }
                guard ccre_atoms_pass(regex.compiled[t], perPattern) != 0 else { continue }
                run(
                    regex.compiled[t], term: t, p, count: count, base: base, from: lo, to: hi, final: final,
                    state: &state)
            }
            for k in first..<h { present[hits[k].atom] = 0 }
        }
    }

    /// `run` on each line of `from..<to` (a line start) holding a byte in `first`.
    private func runOnLines(
        _ re: OpaquePointer, term t: Int, startingWith first: ClosedRange<UInt8>, _ p: UnsafePointer<UInt8>,
        count: Int, base: Int, from: Int, to: Int, final: Bool, state: inout ScanState
    ) {
        let lo = first.lowerBound
        let span = first.upperBound &- lo
        let los = SIMD32<UInt8>(repeating: lo)
        let spans = SIMD32<UInt8>(repeating: span)
        var q = from  // always a line start
        var i = from
        while i < to {
            // The next byte in `first` (unsigned b - lo <= span), 32 bytes at a time.
            while i &+ 32 <= to {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD32<UInt8>.self)
                if any((v &- los) .<= spans) { break }
                i &+= 32
            }
            while i < to && p[i] &- lo > span { i &+= 1 }
            guard i < to else { return }
            var lineStart = i
            while lineStart > q && p[lineStart &- 1] != 0x0A { lineStart &-= 1 }
            let lineEnd: Int
            if let nl = memchr(p + i, 0x0A, to &- i) {
                lineEnd = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self)) - p + 1
            } else {
                lineEnd = to
            }
            run(re, term: t, p, count: count, base: base, from: lineStart, to: lineEnd, final: final, state: &state)
            q = lineEnd
            i = lineEnd
        }
    }

    /// Every match of one pattern starting in `from..<to`, non-overlapping, leftmost first.
    private func run(
        _ re: OpaquePointer, term t: Int, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int,
        final: Bool, state: inout ScanState
    ) {
        let text = UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self)
        var pos = from
        var s = 0
        var e = 0
        while pos < to && ccre_find(re, text, count, pos, to, &s, &e) != 0 {
            state.counts[t] &+= 1
            if options.offsets {
                record(p, count: count, base: base, term: t, start: s, end: e, final: final, state: &state)
            }
            pos = e > s ? e : s + 1
        }
    }
}
