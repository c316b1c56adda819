import CSearchKernels

/// How terms are matched (the protocol's `count` options).
package struct SearchOptions: Sendable, Equatable {
    package var ignoreCase = false
    package var wholeWord = false
    package var offsets = false
    package var maxOffsets = 1000
    package var context = 0
    package var words = false
    /// Terms are regular expressions (see PROTOCOL.md "Regular expressions").
    package var regex = false
    /// RE2's memory budget per pattern (`--regex-max-mem`).
    package var regexMaxMemory = SearchOptions.defaultRegexMaxMemory

    package init(
        ignoreCase: Bool = false, wholeWord: Bool = false, offsets: Bool = false,
        maxOffsets: Int = 1000, context: Int = 0, words: Bool = false, regex: Bool = false
    ) {
        self.regex = regex
        self.ignoreCase = ignoreCase
        self.wholeWord = wholeWord
        self.offsets = offsets
        self.maxOffsets = maxOffsets
        self.context = context
        self.words = words
    }
}

/// What one file's plaintext gave.
package struct SearchResult: Sendable, Equatable {
    /// Occurrences per term, in the plan's term order.
    package var counts: [Int]
    /// Whitespace-separated words (`len(bytes.split())`), when asked for.
    package var words: Int?
    /// Byte offsets of match starts per term (at most `maxOffsets` each), when asked for.
    package var offsets: [[Int]]?
    /// One snippet per offset, when offsets and a context are asked for.
    package var snippets: [[String]]?
    /// True when some term had more than `maxOffsets` matches.
    package var truncated: Bool

    package init(
        counts: [Int], words: Int? = nil, offsets: [[Int]]? = nil, snippets: [[String]]? = nil,
        truncated: Bool = false
    ) {
        self.counts = counts
        self.words = words
        self.offsets = offsets
        self.snippets = snippets
        self.truncated = truncated
    }
}

package enum SearchPlanError: Error, Equatable, Sendable {
    case emptyTerm(index: Int)
    /// A regular expression that does not compile; `position` is a byte offset in the pattern.
    case badPattern(index: Int, position: Int, message: String)
    /// A regular expression that can match the empty string.
    case emptyMatch(index: Int)
}

/// Terms compiled once per request, shared (read-only) by every worker thread.
///
/// Matching is one pass over the text for all terms. Each term is anchored at a fixed offset from
/// its match start on a byte, or a pair of bytes, that any match must contain there (under
/// ignore_case: every spelling of the folded character). A prefilter finds anchor positions:
/// `memchr` for one rare byte; a 32-byte SWAR/SIMD compare for a few rare bytes or a few pairs;
/// Wu-Manber skipping for many terms of 6+ fixed bytes; else a 64 Ki-bit pair bitmap, sampled at
/// every k-th position when all terms are long enough. Candidates are verified per term (8-byte
/// prefix word, then memcmp or unit-by-unit folding). Terms are independent: each keeps the end of
/// its last match, so its own matches never overlap, exactly as `bytes.count` per term.
///
/// Short frequent terms skip all that: when a term is at most 4 bytes, has no byte rare enough to
/// anchor on cheaply and no border (so its occurrences never overlap), every text position is
/// compared with it 32 at a time and the matches are summed in byte lanes (`ExactTerm`).
///
/// Verification is naive, so a long periodic term over a periodic text costs O(text x term).
package final class SearchPlan: Sendable {
    package let terms: [[UInt8]]
    package let options: SearchOptions
    /// The compiled patterns when `options.regex` (the literal fields below then describe no terms).
    let regex: RegexPlan?

    /// Bytes of context a snippet may reach on each side of its match (before the start, after the
    /// end). Words beyond it are left out; a word cut by it is cut at a character boundary.
    /// Streaming keeps at most this much text back, so snippets are the same for any chunking.
    package static let snippetWindow = 4096

    let maxOffsets: Int
    let wantSnippets: Bool
    /// Case-sensitive term bytes, flattened (`termStart[t]..<termStart[t + 1]`).
    let termBytes: [UInt8]
    let termStart: [Int]
    /// The first (up to) 8 bytes of each term as a word loaded from memory, and the mask of the
    /// bytes that count.
    let prefixWord: [UInt64]
    let prefixMask: [UInt64]
    /// 0x2020...20 with ignore_case (or-ed into the loaded text word), else 0.
    let prefixFold: UInt64
    /// Folded units of each term (ignore_case), flattened (`unitStart[t]..<unitStart[t + 1]`); the
    /// range is empty for a term compared byte for byte (no ignore_case, or a caseless term).
    let units: [UInt32]
    let unitStart: [Int]
    /// The candidate tables (see `CandidateTable`).
    let entryStart: [Int32]
    let entryTerm: [Int32]
    let entryOffset: [Int]
    let pairEntryStart: [Int32]
    let anchorBytes: [UInt8]
    let isAnchor: [Bool]
    /// 0x20 with ignore_case (prefilters compare bytes with that bit set), else 0.
    let foldMask: UInt8
    /// How candidate positions are found (chosen by `PrefilterBuilder`).
    let prefilter: Prefilter
    /// Most bytes a match can span, and most bytes an anchor sits after its match start.
    let maxSpan: Int
    let maxAnchorOffset: Int
    /// Terms matched by comparing every position (they have no anchors).
    let exact: [ExactTerm]
    /// Each exact term's index and whether it is bordered, apart: a loop over `exact` copies each
    /// term (two array retains), which for a small file and 48 terms cost more than counting.
    let exactTerm: [Int]
    let exactBordered: [Bool]
    /// The same for the one-pass SIMD kernel; empty when this CPU has none.
    let shortKernel: [ccsk_short_term]
    /// Its width (`ccsk_count_short_level`): the widest this CPU runs unless a test asks for less.
    let shortKernelLevel: Int32
    /// Whether some terms take the exact-term path (the fuzz harness compares it with the anchored one).
    package var hasExactTerms: Bool { !exact.isEmpty }
    /// A zero per term and `Int.max` per term: every file's `ScanState` starts as copies of these,
    /// which share their storage until a match writes to them (a file without a match allocates
    /// nothing; each array allocated was a run-time metadata lookup and a malloc, 2% of a cold
    /// 2,000-file request).
    let zeroPerTerm: [Int]
    let maxPerTerm: [Int]

    /// `exactLimit`: most terms matched by comparing every position (tests set 0 to exercise the
    /// anchored prefilters alone).
    package convenience init(terms: [[UInt8]], options: SearchOptions) throws(SearchPlanError) {
        let regex =
            options.regex
            ? try RegexPlan(
                patterns: terms, ignoreCase: options.ignoreCase, wholeWord: options.wholeWord,
                maxMemory: options.regexMaxMemory) : nil
        try self.init(terms: terms, options: options, exactLimit: Self.defaultExactLimit, regex: regex)
    }

    static let defaultExactLimit = ExactTerm.limit

    /// `allowTeddy`: tests set false to exercise the portable prefilters on a CPU that has Teddy (or
    /// the packed pair). `shortKernelLevel`: tests force each width of the short-term kernel (5
    /// AVX-512 table lookups per group of 8 terms, 4 AVX-512 with GFNI bit planes, 3 AVX-512, 2
    /// AVX2). `pairLevel`: the packed-pair kernel width (tests force each one); `teddyLevel` Teddy's
    /// (3 VBMI, 2 AVX2, 1 SSSE3).
    package init(
        terms: [[UInt8]], options: SearchOptions, exactLimit: Int, regex: RegexPlan? = nil, allowTeddy: Bool = true,
        shortKernelLevel: Int? = nil, pairLevel: Int32 = PackedPairPrefilter.level,
        teddyLevel: Int = TeddyPrefilter.level
    ) throws(SearchPlanError) {
        for (i, t) in terms.enumerated() where t.isEmpty { throw .emptyTerm(index: i) }
        self.terms = terms
        zeroPerTerm = [Int](repeating: 0, count: terms.count)
        maxPerTerm = [Int](repeating: Int.max, count: terms.count)
        self.regex = regex
        // A regex plan has no literal terms.
        let terms = regex == nil ? terms : []
        self.options = options
        maxOffsets = options.offsets ? max(0, options.maxOffsets) : 0
        wantSnippets = options.offsets && options.context > 0
        let exact = ExactTerm.select(
            terms, ignoreCase: options.ignoreCase,
            limit: options.wholeWord || options.offsets ? min(exactLimit, ExactTerm.perMatchLimit) : exactLimit,
            kernel: ExactTerm.hasKernel && !options.wholeWord && !options.offsets)
        self.exact = exact
        exactTerm = exact.map { $0.term }
        exactBordered = exact.map { $0.bordered }
        shortKernel = ExactTerm.hasKernel ? exact.map(\.kernelTerm) : []
        self.shortKernelLevel = Int32(min(shortKernelLevel ?? ExactTerm.kernelLevel, ExactTerm.kernelLevel))
        let isExact = Set(exact.map(\.term))
        let fm: UInt8 = options.ignoreCase ? 0x20 : 0

        let anchors = TermAnchors(terms, ignoreCase: options.ignoreCase, reach: Self.anchorReach, skipping: isExact)
        let (prefilter, chosen) = PrefilterBuilder.build(
            anchors, exact: isExact, foldMask: fm, allowTeddy: allowTeddy, pairLevel: pairLevel,
            teddyLevel: teddyLevel,
            // Exact bytes and counts only: the other options need the Swift check.
            plainTerms: options.ignoreCase || options.wholeWord || options.offsets ? nil : terms)
        let table = CandidateTable(
            anchors: chosen, foldMask: fm, pairKeyed: prefilter.pairKeyed, pairSkipping: prefilter.confirmed)

        // Prefix check: the bytes at fixed offsets with one possible value (after or-ing 0x20 under
        // ignore_case) must match; other positions are masked out.
        func word(_ bytes: [UInt8]) -> UInt64 {
            let padded = Array(bytes.prefix(8)) + [UInt8](repeating: 0, count: max(0, 8 - bytes.count))
            return padded.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        var words: [UInt64] = []
        var masks: [UInt64] = []
        for fixed in anchors.fixedBytes {
            var value: [UInt8] = []
            var mask: [UInt8] = []
            for set in fixed.prefix(8) {
                let merged = Set(set.map { $0 | fm })
                value.append(merged.count == 1 ? merged.first ?? 0 : 0)
                mask.append(merged.count == 1 ? 0xFF : 0)
            }
            words.append(word(value))
            masks.append(word(mask))
        }
        prefixWord = words
        prefixMask = masks
        prefixFold = UInt64(fm) &* 0x0101_0101_0101_0101
        foldMask = fm
        termBytes = anchors.termBytes
        termStart = anchors.termStart
        units = anchors.units
        unitStart = anchors.unitStart
        maxSpan = anchors.maxSpan
        self.prefilter = prefilter
        entryStart = table.entryStart
        entryTerm = table.entryTerm
        entryOffset = table.entryOffset
        pairEntryStart = table.pairEntryStart
        anchorBytes = table.anchorBytes
        isAnchor = table.isAnchor
        maxAnchorOffset = table.maxAnchorOffset
    }

    /// How far into a term anchors may sit.
    static let anchorReach = 64

    /// The prefilter's strategy and sampling stride (tests).
    var mode: PrefilterMode { prefilter.mode }
    var stride: Int {
        if case .pairBitmap(let f) = prefilter { return f.stride }
        return 1
    }

    /// Counts in one contiguous plaintext (no copy).
    package func count(_ text: UnsafeRawBufferPointer) -> SearchResult {
        var state = ScanState(plan: self)
        if let p = text.baseAddress?.assumingMemoryBound(to: UInt8.self) {
            scan(p, count: text.count, base: 0, from: 0, to: text.count, final: true, state: &state)
            if options.words {
                var previousIsSpace = true
                state.words = ByteScanning.countWordStarts(p, text.count, previousIsSpace: &previousIsSpace)
            }
        }
        return state.result(plan: self)
    }

    package func count(_ text: [UInt8]) -> SearchResult {
        text.withUnsafeBytes { count($0) }
    }

    /// A scanner for one file's plaintext arriving in pieces (one per thread; `reset()` to reuse).
    package func makeScanner() -> StreamScanner { StreamScanner(plan: self) }

    /// Bytes past an anchor position that must be present before its candidates can be decided:
    /// the longest match plus one following character (whole_word) plus slack.
    var lookahead: Int { maxSpan + 8 }

    /// Bytes before the next anchor position a stream must keep: the anchor offset, one character
    /// before the match (whole_word) and the snippet window.
    var lookbehind: Int { maxAnchorOffset + 8 + (wantSnippets ? Self.snippetWindow : 0) }
}
