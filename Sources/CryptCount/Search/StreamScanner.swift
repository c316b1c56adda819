/// Counts over plaintext fed in pieces; the result equals `SearchPlan.count` on the concatenation
/// for any chunking. One scanner per thread; `reset()` reuses it for the next file.
///
/// Memory is bounded independently of the file size: besides the piece being fed it keeps
/// `plan.lookahead + plan.lookbehind` bytes (the longest possible match plus a few bytes) and, with
/// snippets, up to `SearchPlan.snippetWindow` bytes on each side of a match whose snippet is still
/// open. Without snippets, pieces larger than twice that are scanned in place (no copy).
package struct StreamScanner {
    let plan: SearchPlan
    var state: ScanState
    /// Unscanned tail plus the text kept for look-behind and pending snippets.
    var buffer: [UInt8] = []
    /// Stream offset of `buffer[0]`.
    var base = 0
    /// Index in `buffer` of the next anchor position to scan.
    var scanFrom = 0
    var previousIsSpace = true
    /// Off for a range of a split file, whose words are counted over the range alone.
    var countsWords = true

    init(plan: SearchPlan) {
        self.plan = plan
        state = ScanState(plan: plan)
    }

    /// Forgets the current file, keeping allocations, so one scanner can serve many files.
    package mutating func reset() {
        state.reset()
        buffer.removeAll(keepingCapacity: true)
        base = 0
        scanFrom = 0
        previousIsSpace = true
        countsWords = true
    }

    /// Starts one range of a split file: text fed from stream offset `origin` on, matches counted
    /// when they start in `start..<limit`; `carry` is each term's resume position left by the
    /// ranges before (when known).
    mutating func startRange(origin: Int, start: Int, limit: Int, carry: [Int]?) {
        reset()
        base = origin
        countsWords = false
        state.rangeStart = start
        state.startLimit = limit
        for t in state.nextAllowed.indices {
            state.nextAllowed[t] = max(start, carry.map { t < $0.count ? $0[t] : start } ?? start)
        }
    }

    /// Each term's resume position (end of its last match) and its first counted match start.
    var rangeCarry: (next: [Int], first: [Int]) { (state.nextAllowed, state.firstStart) }

    package mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        guard let cp = chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), chunk.count > 0 else { return }
        let n = chunk.count
        if plan.options.words && countsWords {
            state.words &+= ByteScanning.countWordStarts(cp, n, previousIsSpace: &previousIsSpace)
        }
        guard !plan.terms.isEmpty else { return }
        let seam = plan.lookahead + plan.lookbehind
        // Without snippets, a big chunk is scanned in place: only its first `seam` bytes are copied
        // (to join it to the kept tail) and its last `seam` bytes are kept.
        guard plan.regex == nil, !plan.wantSnippets, n > 2 * seam else {
            append(UnsafeBufferPointer(start: cp, count: n))
            return
        }
        let chunkBase = base + buffer.count
        append(UnsafeBufferPointer(start: cp, count: seam))
        let from = base + scanFrom - chunkBase
        let to = n - plan.lookahead
        guard from >= plan.lookbehind, from < to else {
            append(UnsafeBufferPointer(start: cp + seam, count: n - seam))
            return
        }
        plan.scan(cp, count: n, base: chunkBase, from: from, to: to, final: false, state: &state)
        let keep = to - plan.lookbehind
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: UnsafeBufferPointer(start: cp + keep, count: n - keep))
        base = chunkBase + keep
        scanFrom = to - keep
    }

    /// Appends to the kept tail, scans what can be decided and drops what is no longer needed.
    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        buffer.append(contentsOf: bytes)
        // Regular expressions scan whole lines (no match spans a line break).
        let to = plan.regex == nil ? buffer.count - plan.lookahead : lineEnd(max(scanFrom, buffer.count - bytes.count))
        guard to > scanFrom else { return }
        let plan = self.plan
        let from = scanFrom
        let base = self.base
        buffer.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return }
            plan.scan(p, count: buf.count, base: base, from: from, to: to, final: false, state: &state)
            if !state.pending.isEmpty {
                plan.resolvePending(p, count: buf.count, base: base, final: false, state: &state)
            }
        }
        scanFrom = to
        var keep = to - plan.lookbehind
        // Pending snippets of different terms are not ordered by start (anchor offsets differ).
        if let start = state.pending.lazy.map(\.start).min() {
            keep = min(keep, start - base - SearchPlan.snippetWindow - 8)
        }
        if keep > 0 {
            buffer.removeFirst(keep)
            self.base += keep
            scanFrom -= keep
        }
    }

    /// The index after the last `\n` in `buffer[from...]` (the bytes just appended: earlier ones
    /// hold none past `scanFrom`), or `scanFrom` when there is none.
    private func lineEnd(_ from: Int) -> Int {
        buffer.withUnsafeBufferPointer { buf in
            var i = buf.count
            while i > from {
                if buf[i - 1] == 0x0A { return i }
                i -= 1
            }
            return scanFrom
        }
    }

    package mutating func finish() -> SearchResult {
        let plan = self.plan
        let from = scanFrom
        let base = self.base
        buffer.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return }
            plan.scan(p, count: buf.count, base: base, from: from, to: buf.count, final: true, state: &state)
            plan.resolvePending(p, count: buf.count, base: base, final: true, state: &state)
        }
        scanFrom = buffer.count
        return state.result(plan: plan)
    }
}
