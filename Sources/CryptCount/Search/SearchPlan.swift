/// How terms are matched (the protocol's `count` options).
public struct SearchOptions: Sendable, Equatable {
    public var ignoreCase = false
    public var wholeWord = false
    public var offsets = false
    public var maxOffsets = 1000
    public var context = 0
    public var words = false

    public init(
        ignoreCase: Bool = false, wholeWord: Bool = false, offsets: Bool = false,
        maxOffsets: Int = 1000, context: Int = 0, words: Bool = false
    ) {
        self.ignoreCase = ignoreCase
        self.wholeWord = wholeWord
        self.offsets = offsets
        self.maxOffsets = maxOffsets
        self.context = context
        self.words = words
    }
}

/// What one file's plaintext gave.
public struct SearchResult: Sendable, Equatable {
    /// Occurrences per term, in the plan's term order.
    public var counts: [Int]
    /// Whitespace-separated words (`len(bytes.split())`), when asked for.
    public var words: Int?
    /// Byte offsets of match starts per term (at most `maxOffsets` each), when asked for.
    public var offsets: [[Int]]?
    /// One snippet per offset, when offsets and a context are asked for.
    public var snippets: [[String]]?
    /// True when some term had more than `maxOffsets` matches.
    public var truncated: Bool

    public init(counts: [Int], words: Int? = nil, offsets: [[Int]]? = nil, snippets: [[String]]? = nil, truncated: Bool = false) {
        self.counts = counts
        self.words = words
        self.offsets = offsets
        self.snippets = snippets
        self.truncated = truncated
    }
}

public enum SearchPlanError: Error, Equatable, Sendable {
    case emptyTerm(index: Int)
}

/// Terms compiled once per request, shared (read-only) by every worker.
public final class SearchPlan: Sendable {
    public let terms: [[UInt8]]
    public let options: SearchOptions

    public init(terms: [[UInt8]], options: SearchOptions) throws(SearchPlanError) {
        for (i, t) in terms.enumerated() where t.isEmpty { throw .emptyTerm(index: i) }
        self.terms = terms
        self.options = options
    }

    /// Counts in one contiguous plaintext.
    public func count(_ text: UnsafeRawBufferPointer) -> SearchResult {
        var scanner = makeScanner()
        scanner.feed(text)
        return scanner.finish()
    }

    public func count(_ text: [UInt8]) -> SearchResult {
        text.withUnsafeBytes { count($0) }
    }

    /// A scanner for one file's plaintext arriving in pieces.
    public func makeScanner() -> StreamScanner { StreamScanner(plan: self) }
}

/// Counts over plaintext fed in pieces; matches that straddle pieces still count.
/// PLACEHOLDER: buffers everything and scans naively (case-sensitive only); to be replaced by
/// the real engine.
public struct StreamScanner {
    let plan: SearchPlan
    var text: [UInt8] = []

    init(plan: SearchPlan) { self.plan = plan }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) { text.append(contentsOf: chunk) }

    public mutating func finish() -> SearchResult {
        var counts: [Int] = []
        var offsets: [[Int]] = []
        for term in plan.terms {
            var c = 0
            var offs: [Int] = []
            var i = 0
            while i + term.count <= text.count {
                if text[i..<(i + term.count)].elementsEqual(term) {
                    c += 1
                    if offs.count < plan.options.maxOffsets { offs.append(i) }
                    i += term.count
                } else {
                    i += 1
                }
            }
            counts.append(c)
            offsets.append(offs)
        }
        var words: Int? = nil
        if plan.options.words {
            var w = 0
            var inWord = false
            for b in text {
                let ws = b == 0x20 || (b >= 0x09 && b <= 0x0d)
                if !ws && !inWord { w += 1 }
                inWord = !ws
            }
            words = w
        }
        return SearchResult(counts: counts, words: words, offsets: plan.options.offsets ? offsets : nil)
    }
}
