#if canImport(Glibc)
    import Glibc
#endif

/// What one range of a split file gave, before the ranges are merged.
package struct RangeCount: Sendable {
    /// Counts, offsets (at most `maxOffsets` per term) and words of the range alone.
    package var result: SearchResult
    /// Per term, where its next match may start once the range is done (end of its last match).
    package var carry: [Int]
    /// Per term, the start of its first counted match (`Int.max`: none).
    package var firstStart: [Int]
}

/// Counting one big file as independent ranges (the engine hands them to idle workers).
///
/// A range counts the matches that *start* in it. Literal terms read `rangeMargins` of text on
/// each side (context for whole_word, for ignore_case's characters, and for matches running past
/// the end); regular expressions match whole lines, so a regex range is moved to line starts:
/// it begins after the first line feed at or after `start - 1` and ends likewise after `end - 1`
/// (neighbours agree, whatever they read). Words are counted over the nominal range, the byte
/// before it telling whether the first one starts a word.
///
/// A term's matches never overlap (each resumes after the previous one's end), so a range that
/// begins inside the last match of the range before may count differently: `mergeRanges` finds
/// that case (the carried resume position is past the range's first match) and has the range
/// counted again with the carry, so the totals equal one pass over the whole text.
extension SearchPlan {
    /// Whether ranges can be counted independently and merged (snippets need the text around
    /// every match in order; such files are read in one pass).
    package var splittable: Bool { !wantSnippets }

    /// Text a literal range reads before and after its nominal bounds.
    var rangeMargins: (before: Int, after: Int) { (lookbehind + 8, lookahead + 8) }

    /// Counts the range `start..<end` of a text of `size` bytes. `read(offset, buffer)` fills the
    /// buffer from that text offset and returns how many bytes it gave (possibly fewer than asked:
    /// it is asked again from there); 0 (the text ended early) or a negative count (a failure)
    /// makes the range fail (nil). `carry` comes from `mergeRanges`.
    package func countRange(
        start: Int, end: Int, size: Int, carry: [Int]?, scratch: UnsafeMutableRawBufferPointer,
        read: (Int, UnsafeMutableRawBufferPointer) -> Int
    ) -> RangeCount? {
        var scanner = makeScanner()
        var words = 0
        var previousIsSpace = true
        let regexMode = regex != nil
        let origin = regexMode ? max(0, start - 1) : max(0, start - rangeMargins.before)
        let stop = regexMode ? size : min(size, end + rangeMargins.after)
        // Regex ranges: where lines begin and end (nil until seen).
        var scanStart: Int? = regexMode ? (start == 0 ? 0 : nil) : origin
        var scanEnd: Int? = regexMode ? (end >= size ? size : nil) : stop
        if regexMode {
            scanner.startRange(origin: origin, start: origin, limit: Int.max, carry: nil)
        } else {
            scanner.startRange(origin: origin, start: start, limit: end, carry: carry)
        }
        var pos = origin
        while pos < stop {
            if let e = scanEnd, pos >= e && pos >= end { break }
            let want = min(scratch.count, stop - pos)
            let n = read(pos, UnsafeMutableRawBufferPointer(rebasing: scratch[0..<want]))
            guard n > 0, n <= want, let p = scratch.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
            if options.words {
                // The bytes before the range only set `previousIsSpace`.
                let lo = max(pos, start)
                let hi = min(pos + n, end)
                if pos < start {
                    let k = min(n, start - pos)
                    _ = ByteScanning.countWordStarts(p, k, previousIsSpace: &previousIsSpace)
                }
                if lo < hi {
                    words &+= ByteScanning.countWordStarts(p + (lo - pos), hi - lo, previousIsSpace: &previousIsSpace)
                }
            }
            if regexMode {
                if scanStart == nil, let i = Self.lineFeed(p, from: max(0, start - 1 - pos), to: n) {
                    scanStart = pos + i + 1
                    scanner.startRange(origin: pos + i + 1, start: pos + i + 1, limit: Int.max, carry: nil)
                }
                if let s = scanStart, scanEnd == nil,
                    let i = Self.lineFeed(p, from: max(0, end - 1 - pos, s - 1 - pos), to: n)
                {
                    scanEnd = pos + i + 1
                }
            }
            if let s = scanStart {
                let lo = max(pos, s)
                let hi = min(pos + n, scanEnd ?? Int.max)
                if lo < hi { scanner.feed(UnsafeRawBufferPointer(start: p + (lo - pos), count: hi - lo)) }
            }
            pos += n
        }
        var result = scanner.finish()
        let (next, first) = scanner.rangeCarry
        result.words = options.words ? words : nil
        return RangeCount(result: result, carry: next, firstStart: first)
    }

    private static func lineFeed(_ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let hit = memchr(p + from, 0x0A, to - from) else { return nil }
        return UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - p
    }

    /// Joins the ranges' counts (in order) into the file's result. `recount(k, carry)` counts range
    /// `k` again with the resume positions the ranges before it left (nil: it failed); it is
    /// called only when a term's match ran into range `k` and the range counted a match that
    /// starts before that match's end. Returns nil if a recount failed.
    package func mergeRanges(
        _ parts: [RangeCount], starts: [Int], recount: (Int, [Int]) -> RangeCount?
    ) -> SearchResult? {
        let n = terms.count
        var counts = [Int](repeating: 0, count: n)
        var offsets: [[Int]] = options.offsets ? [[Int]](repeating: [], count: n) : []
        var words = 0
        var carry = [Int](repeating: 0, count: n)
        for (k, original) in parts.enumerated() {
            var part = original
            if regex == nil, k < starts.count,
                (0..<n).contains(where: { carry[$0] > starts[k] && part.firstStart[$0] < carry[$0] })
            {
                guard let again = recount(k, carry) else { return nil }
                part = again
            }
            for t in 0..<min(n, part.result.counts.count) {
                counts[t] &+= part.result.counts[t]
                if options.offsets, let o = part.result.offsets, t < o.count, offsets[t].count < maxOffsets {
                    offsets[t].append(contentsOf: o[t].prefix(maxOffsets - offsets[t].count))
                }
                if t < part.carry.count { carry[t] = max(carry[t], part.carry[t]) }
            }
            words &+= part.result.words ?? 0
        }
        let truncated = options.offsets && counts.contains { $0 > maxOffsets }
        return SearchResult(
            counts: counts, words: options.words ? words : nil, offsets: options.offsets ? offsets : nil,
            snippets: nil, truncated: truncated)
    }
}
