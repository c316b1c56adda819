/// Recently compiled search plans, so a parent repeating a query (the common case: the same
/// words over many small requests) does not pay for compiling its terms every time. Plans are
/// immutable and shared by the jobs that use them. Used by the reader thread only.
final class SearchPlanCache {
    private struct Key: Hashable {
        var terms: [[UInt8]]
        var ignoreCase: Bool
        var wholeWord: Bool
        var offsets: Bool
        var maxOffsets: Int
        var context: Int
        var words: Bool
        var regex: Bool
        var regexMaxMemory: Int

        init(_ terms: [[UInt8]], _ o: SearchOptions) {
            self.terms = terms
            ignoreCase = o.ignoreCase
            wholeWord = o.wholeWord
            offsets = o.offsets
            maxOffsets = o.maxOffsets
            context = o.context
            words = o.words
            regex = o.regex
            regexMaxMemory = o.regexMaxMemory
        }
    }

    /// Bounds: entries, and term bytes per entry (larger term sets are compiled every time).
    private let maxEntries: Int
    private let maxTermBytes: Int
    private var entries: [Key: SearchPlan] = [:]
    private var order: [Key] = []  // oldest first

    init(maxEntries: Int = 32, maxTermBytes: Int = 16 << 10) {
        self.maxEntries = maxEntries
        self.maxTermBytes = maxTermBytes
    }

    func plan(terms: [[UInt8]], options: SearchOptions) throws(SearchPlanError) -> SearchPlan {
        var size = 0
        for t in terms { size &+= t.count &+ 8 }
        guard size <= maxTermBytes, maxEntries > 0 else { return try SearchPlan(terms: terms, options: options) }
        let key = Key(terms, options)
        if let p = entries[key] {
            if let i = order.firstIndex(of: key), i != order.count - 1 {
                order.remove(at: i)
                order.append(key)
            }
            return p
        }
        let p = try SearchPlan(terms: terms, options: options)
        if entries.count >= maxEntries, !order.isEmpty { entries[order.removeFirst()] = nil }
        entries[key] = p
        order.append(key)
        return p
    }
}
