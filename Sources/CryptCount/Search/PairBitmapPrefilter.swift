/// A 64 Ki-bit bitmap of the byte pairs at the terms' anchors, looked up at every text position,
/// or at every k-th one (`stride`) when every term has k+1 >= 3 leading fixed bytes: then each
/// term is registered on k consecutive pairs, so one of them falls on the lattice.
struct PairBitmapPrefilter: Sendable {
    /// Bit `first << 8 | second` set for every anchor pair (0x20 or-ed in under ignore_case).
    let bitmap: [UInt64]
    /// Text positions looked at are multiples of this (stream offsets).
    let stride: Int
    let foldMask: UInt8

    init(anchors: [[AnchorChoice]], stride: Int, foldMask: UInt8) {
        var bitmap = [UInt64](repeating: 0, count: 1024)
        for pair in anchors.joined().flatMap(\.pairs) {
            for second in pair.second == Pair.any ? Array(0..<256) : [Int(pair.second)] {
                let w = Int(pair.first) << 8 | second
                bitmap[w >> 6] |= 1 << UInt64(w & 63)
            }
        }
        self.bitmap = bitmap
        self.stride = stride
        self.foldMask = foldMask
    }

    /// The sampled anchors: if every term in `active` has k+1 >= 3 leading fixed bytes (k at most
    /// 4), k consecutive pairs per term at the offset where they are rarest, and the stride k;
    /// else nil (one anchor per term, every position).
    static func sampledAnchors(fixed: [[Set<UInt8>]], active: [Int], skipping: Set<Int>) -> (
        anchors: [[AnchorChoice]], stride: Int
    )? {
        let k = min(4, (active.map { fixed[$0].count }.min() ?? 0) - 1)
        guard k >= 2 else { return nil }
        func pairs(_ fixed: [Set<UInt8>], _ i: Int) -> [Pair] {
            fixed[i].flatMap { a in fixed[i + 1].map { Pair(a, UInt16($0)) } }.sorted()
        }
        func score(_ fixed: [Set<UInt8>], _ o: Int) -> Int {
            (0..<k).reduce(0) { $0 + AnchorChoice(offset: 0, pairs: pairs(fixed, o + $1)).pairScore }
        }
        let anchors = fixed.enumerated().map { t, fixed -> [AnchorChoice] in
            if skipping.contains(t) { return [] }
            let best = (0..<(fixed.count - k)).min { score(fixed, $0) < score(fixed, $1) } ?? 0
            return (0..<k).map { AnchorChoice(offset: best + $0, pairs: pairs(fixed, best + $0)) }
        }
        return (anchors, k)
    }

    /// Returns where the lookups stopped: `to` when sampling (sampled terms have at least 3 fixed
    /// bytes, so no anchor is a text's last byte), else the last position, left to the byte loop.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        var q = from
        // The mask widened once: `Int(x) | fm` rather than `Int(x | fm)` keeps the loop at the
        // instructions it had before the strategies had files of their own (10% on 256 MiB).
        let fm = Int(foldMask)
        let k = stride
        if k > 1 {
            // Stay on the stream-wide lattice so chunking cannot change which positions are seen.
            let r = (base &+ q) % k
            if r != 0 { q &+= k &- r }
        }
        // Positions are collected without a branch (a hit every ten or so positions would
        // mispredict often), then their candidates are tried.
        let batch = 256
        bitmap.withUnsafeBufferPointer { bitmap in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: batch) { hits in
                let last = min(to, count - 1)
                while q < last {
                    var n = 0
                    let stop = last &- q > batch &* k ? q &+ batch &* k : last
                    while q < stop {
                        let w = (Int(p[q]) | fm) << 8 | (Int(p[q &+ 1]) | fm)
                        hits[n] = q
                        n &+= Int(truncatingIfNeeded: (bitmap[w >> 6] >> UInt64(w & 63)) & 1)
                        q &+= k
                    }
                    for h in hits.prefix(n) {
                        let w = (Int(p[h]) | fm) << 8 | (Int(p[h &+ 1]) | fm)
                        plan.candidates(p, count: count, base: base, at: h, pair: w, final: final, state: &state)
                    }
                }
            }
        }
        return k > 1 ? to : q
    }
}
