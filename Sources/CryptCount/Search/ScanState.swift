/// Per-file matching state (counts, per-term resume positions, offsets, snippets).
struct ScanState {
    var counts: [Int]
    /// Per term, the first offset (from the stream start) where its next match may begin.
    var nextAllowed: [Int]
    var offsets: [[Int]]
    var snippets: [[String]]
    /// Snippets waiting for text after their match (streaming), in match order.
    var pending: [PendingSnippet] = []
    var truncated = false
    var words = 0
    /// A range of a split file (see `RangeScan`): only matches starting in
    /// `rangeStart..<startLimit` count, and each term's first counted start is kept.
    var rangeStart = 0
    var startLimit = Int.max
    var firstStart: [Int]

    init(plan: SearchPlan) {
        let n = plan.terms.count
        // Copies that share the plan's storage until written (see `SearchPlan.zeroPerTerm`).
        counts = plan.zeroPerTerm
        nextAllowed = plan.zeroPerTerm
        offsets = plan.options.offsets ? [[Int]](repeating: [], count: n) : []
        snippets = plan.wantSnippets ? [[String]](repeating: [], count: n) : []
        firstStart = plan.maxPerTerm
    }

    mutating func reset() {
        for i in counts.indices {
            counts[i] = 0
            nextAllowed[i] = 0
            firstStart[i] = Int.max
        }
        for i in offsets.indices { offsets[i].removeAll(keepingCapacity: true) }
        for i in snippets.indices { snippets[i].removeAll(keepingCapacity: true) }
        pending.removeAll(keepingCapacity: true)
        truncated = false
        words = 0
        rangeStart = 0
        startLimit = Int.max
    }

    func result(plan: SearchPlan) -> SearchResult {
        SearchResult(
            counts: counts, words: plan.options.words ? words : nil,
            offsets: plan.options.offsets ? offsets : nil,
            snippets: plan.wantSnippets ? snippets : nil,
            truncated: truncated)
    }
}

struct PendingSnippet {
    var term: Int
    var slot: Int
    var start: Int
    var end: Int
}
