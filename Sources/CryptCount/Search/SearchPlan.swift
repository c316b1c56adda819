/// How terms are matched (the protocol's `count` options).
public struct SearchOptions: Sendable, Equatable {
    public var ignoreCase = false
    public var wholeWord = false
    public var offsets = false
    public var maxOffsets = 1000
    public var context = 0
    public var words = false
    /// Terms are regular expressions (see PROTOCOL.md "Regular expressions").
    public var regex = false
    /// RE2's memory budget per pattern (`--regex-max-mem`).
    public var regexMaxMemory = SearchOptions.defaultRegexMaxMemory

    public init(
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

    public init(
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

public enum SearchPlanError: Error, Equatable, Sendable {
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
public final class SearchPlan: Sendable {
    public let terms: [[UInt8]]
    public let options: SearchOptions
    /// The compiled patterns when `options.regex` (the literal fields below then describe no terms).
    let regex: RegexPlan?

    /// Bytes of context a snippet may reach on each side of its match (before the start, after the
    /// end). Words beyond it are left out; a word cut by it is cut at a character boundary.
    /// Streaming keeps at most this much text back, so snippets are the same for any chunking.
    public static let snippetWindow = 4096

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
    /// Folded units of each term (ignore_case), flattened (`unitStart[t]..<unitStart[t + 1]`).
    let units: [UInt32]
    let unitStart: [Int]
    /// Per anchor byte b: entries `entryStart[b]..<entryStart[b + 1]` of (term, offset of the anchor
    /// from the match start).
    let entryStart: [Int32]
    let entryTerm: [Int32]
    let entryOffset: [Int]
    /// Per byte pair `first << 8 | second` (0x20 or-ed in under ignore_case): entries
    /// `pairEntryStart[w]..<pairEntryStart[w + 1]` (`.pairBitmap` and `.wuManber` only).
    let pairEntryStart: [Int32]
    /// Distinct anchor bytes (with `foldMask` applied), and a 256-entry membership table of the
    /// text bytes that can be anchors.
    let anchorBytes: [UInt8]
    let isAnchor: [Bool]
    /// 0x20 with ignore_case (prefilters compare bytes with that bit set), else 0.
    let foldMask: UInt8
    /// The raw byte `.memchr` looks for.
    let memchrByte: UInt8
    let mode: PrefilterMode
    /// Byte pairs at the anchor (second may be `Pair.any`), and the same as a 64 Ki-bit bitmap
    /// indexed by `first << 8 | second` (`.pairBitmap` only).
    let anchorPairs: [Pair]
    let pairBitmap: [UInt64]
    /// `.pairBitmap` looks at text positions that are multiples of this (stream offsets).
    let stride: Int
    /// Wu-Manber shift per two-byte block `first << 8 | second` (`.wuManber` only).
    let wuManberShift: [UInt8]
    /// Most bytes a match can span, and most bytes an anchor sits after its match start.
    let maxSpan: Int
    let maxAnchorOffset: Int
    /// Terms matched by comparing every position (they have no anchors).
    let exact: [ExactTerm]

    /// `exactLimit`: most terms matched by comparing every position (tests set 0 to exercise the
    /// anchored prefilters alone).
    public convenience init(terms: [[UInt8]], options: SearchOptions) throws(SearchPlanError) {
        let regex =
            options.regex
            ? try RegexPlan(
                patterns: terms, ignoreCase: options.ignoreCase, wholeWord: options.wholeWord,
                maxMemory: options.regexMaxMemory) : nil
        try self.init(terms: terms, options: options, exactLimit: Self.defaultExactLimit, regex: regex)
    }

    static let defaultExactLimit = 8

    init(terms: [[UInt8]], options: SearchOptions, exactLimit: Int, regex: RegexPlan? = nil) throws(SearchPlanError) {
        for (i, t) in terms.enumerated() where t.isEmpty { throw .emptyTerm(index: i) }
        self.terms = terms
        self.regex = regex
        // A regex plan has no literal terms.
        let terms = regex == nil ? terms : []
        self.options = options
        maxOffsets = options.offsets ? max(0, options.maxOffsets) : 0
        wantSnippets = options.offsets && options.context > 0
        let exact = ExactTerm.select(terms, ignoreCase: options.ignoreCase, limit: exactLimit)
        self.exact = exact
        let isExact = Set(exact.map(\.term))
        // Terms left to the anchored prefilter.
        let active = terms.indices.filter { !isExact.contains($0) }

        var termBytes: [UInt8] = []
        var termStart: [Int] = [0]
        var units: [UInt32] = []
        var unitStart: [Int] = [0]
        var choices: [[AnchorChoice]] = []
        // Per term, the possible bytes at each byte offset from the match start, for the leading
        // offsets that are the same in every spelling (Wu-Manber prefixes).
        var fixedBytes: [[Set<UInt8>]] = []
        var maxSpan = 0
        for term in terms {
            termBytes.append(contentsOf: term)
            termStart.append(termBytes.count)
            if !options.ignoreCase {
                // Anchors and Wu-Manber prefixes only look at the first `anchorReach` bytes, so
                // compiling a huge term stays linear and cheap.
                choices.append(
                    term.indices.prefix(Self.anchorReach).map { i in
                        AnchorChoice(
                            offset: i, pairs: [Pair(term[i], i + 1 < term.count ? UInt16(term[i + 1]) : Pair.any)])
                    })
                maxSpan = max(maxSpan, term.count)
                unitStart.append(units.count)
                fixedBytes.append(term.prefix(Self.anchorReach).map { [$0] })
                continue
            }
            // Fold the term unit by unit. Anchors may only sit on units whose offset from the match
            // start is fixed (every earlier unit's spellings have one UTF-8 length).
            var spellings: [[[UInt8]]] = []
            var span = 0
            term.withUnsafeBufferPointer { buf in
                guard let p = buf.baseAddress else { return }
                var i = 0
                while i < buf.count {
                    let (u, len) = TextUnits.decode(p, i, buf.count)
                    let folded = TextUnits.fold(u)
                    units.append(folded)
                    if spellings.count < Self.anchorReach {
                        spellings.append(TextUnits.foldClass(folded).map { TextUnits.utf8($0) }.filter { !$0.isEmpty })
                    } else {
                        span += 4  // Beyond the anchor reach: the longest UTF-8 spelling is an upper bound.
                    }
                    i += len
                }
            }
            unitStart.append(units.count)
            var termChoices: [AnchorChoice] = []
            var fixed: [Set<UInt8>] = []
            var offset = 0
            for (k, spelled) in spellings.enumerated() {
                if offset >= Self.anchorReach {
                    for rest in spellings[k...] { span += Set(rest.map(\.count)).max() ?? 1 }
                    break
                }
                let nextFirsts = k + 1 < spellings.count ? Set(spellings[k + 1].compactMap(\.first)) : []
                var pairs = Set<Pair>()
                for sp in spelled {
                    if sp.count >= 2 {
                        pairs.insert(Pair(sp[0], UInt16(sp[1])))
                    } else if nextFirsts.isEmpty {
                        pairs.insert(Pair(sp[0], Pair.any))
                    } else {
                        for f in nextFirsts { pairs.insert(Pair(sp[0], UInt16(f))) }
                    }
                }
                termChoices.append(AnchorChoice(offset: offset, pairs: pairs.sorted()))
                let lengths = Set(spelled.map(\.count))
                span += lengths.max() ?? 1
                for j in 0..<(lengths.min() ?? 0) where lengths.count == 1 || j == 0 {
                    fixed.append(Set(spelled.map { $0[j] }))
                }
                if lengths.count != 1 {
                    // Later units have no fixed offset; count their span only.
                    for rest in spellings[(k + 1)...] { span += Set(rest.map(\.count)).max() ?? 1 }
                    break
                }
                offset += lengths.first ?? 1
            }
            choices.append(termChoices)
            fixedBytes.append(fixed)
            maxSpan = max(maxSpan, span)
        }
        for t in isExact { choices[t] = [] }

        // Pick the prefilter: memchr on one rare byte, a SIMD compare on a few rare bytes, a SIMD
        // compare on a few byte pairs, Wu-Manber for many long terms, or a byte-pair bitmap.
        // With ignore_case, everything but memchr compares bytes with 0x20 set, which merges ASCII
        // case pairs (and only adds false candidates elsewhere, which verification rejects).
        let fm: UInt8 = options.ignoreCase ? 0x20 : 0
        let single = choices.map { $0.min { $0.singleScore < $1.singleScore } }
        let singleBytes = Set(single.flatMap { $0?.firstBytes ?? [] })
        var chosen: [AnchorChoice?]
        let mode: PrefilterMode
        var wuManberShift: [UInt8] = []
        var memchrByte: UInt8 = 0
        var stride = 1
        // With sampling, every anchor of every term (else `chosen` alone).
        var extra: [[AnchorChoice]] = []
        let folded = choices.map { $0.map { $0.folded(fm) } }
        let foldedSingle = folded.map { $0.min { $0.singleScore < $1.singleScore } }
        let foldedSingleBytes = Set(foldedSingle.flatMap { $0?.firstBytes ?? [] })
        if singleBytes.count == 1, let b = singleBytes.first, ByteScanning.frequency[Int(b)] <= 100 {
            mode = .memchr
            memchrByte = b
            chosen = single
        } else if foldedSingleBytes.count <= 3
            && foldedSingleBytes.allSatisfy({ ByteScanning.frequency[Int($0)] <= 100 })
        {
            mode = .bytes
            chosen = foldedSingle
        } else {
            chosen = folded.map { $0.min { $0.pairScore < $1.pairScore } }
            let m = min(active.map { fixedBytes[$0].count }.min() ?? 0, 64)
            if Set(chosen.flatMap { $0?.pairs ?? [] }).count <= 8 {
                mode = .pairs
            } else if m >= 6 {
                // Wu-Manber over the first m bytes: anchor every term on its bytes m-2, m-1 and
                // skip windows whose last two bytes end no term's prefix.
                mode = .wuManber
                let fixedFolded = fixedBytes.map { $0.map { Set($0.map { $0 | fm }) } }
                var shift = [UInt8](repeating: UInt8(m - 1), count: 65536)
                for (t, fixed) in fixedFolded.enumerated() where !isExact.contains(t) {
                    for j in 0...(m - 2) {
                        for a in fixed[j] {
                            for b in fixed[j + 1] {
                                let w = Int(a) << 8 | Int(b)
                                shift[w] = min(shift[w], UInt8(m - 2 - j))
                            }
                        }
                    }
                }
                wuManberShift = shift
                chosen = fixedFolded.enumerated().map { t, fixed in
                    isExact.contains(t)
                        ? nil
                        : AnchorChoice(
                            offset: m - 2,
                            pairs: fixed[m - 2].flatMap { a in fixed[m - 1].map { Pair(a, UInt16($0)) } }.sorted())
                }
            } else {
                mode = .pairBitmap
                // Sampling: if every term has k+1 >= 3 leading bytes at fixed offsets, register k
                // consecutive pairs per term and look only at every k-th text position.
                let fixedFolded = fixedBytes.map { $0.map { Set($0.map { $0 | fm }) } }
                let k = min(4, (active.map { fixedFolded[$0].count }.min() ?? 0) - 1)
                if k >= 2 {
                    stride = k
                    func pairs(_ fixed: [Set<UInt8>], _ i: Int) -> [Pair] {
                        fixed[i].flatMap { a in fixed[i + 1].map { Pair(a, UInt16($0)) } }.sorted()
                    }
                    func score(_ fixed: [Set<UInt8>], _ o: Int) -> Int {
                        (0..<k).reduce(0) { $0 + AnchorChoice(offset: 0, pairs: pairs(fixed, o + $1)).pairScore }
                    }
                    extra = fixedFolded.enumerated().map { t, fixed in
                        if isExact.contains(t) { return [] }
                        let best = (0..<(fixed.count - k)).min { score(fixed, $0) < score(fixed, $1) } ?? 0
                        return (0..<k).map { AnchorChoice(offset: best + $0, pairs: pairs(fixed, best + $0)) }
                    }
                    chosen = extra.map { $0.first }
                }
            }
        }

        // Candidates are looked up by the anchor byte with 0x20 set (ignore_case) or as is.
        var perByte = [Set<Entry>](repeating: [], count: 256)
        var pairs = Set<Pair>()
        var pairBitmap = [UInt64](repeating: 0, count: mode == .pairBitmap ? 1024 : 0)
        var perPair: [Int: Set<Entry>] = [:]
        let allChoices: [[AnchorChoice]] = extra.isEmpty ? chosen.map { $0.map { [$0] } ?? [] } : extra
        for (t, choice) in allChoices.enumerated().flatMap({ t, list in list.map { (t, $0) } }) {
            for b in choice.firstBytes { perByte[Int(b | fm)].insert(Entry(term: t, offset: choice.offset)) }
            for pair in choice.pairs {
                pairs.insert(pair)
                guard mode == .pairBitmap || mode == .wuManber else { continue }
                for second in pair.second == Pair.any ? Array(0..<256) : [Int(pair.second)] {
                    let w = Int(pair.first) << 8 | second
                    perPair[w, default: []].insert(Entry(term: t, offset: choice.offset))
                    if mode == .pairBitmap { pairBitmap[w >> 6] |= 1 << UInt64(w & 63) }
                }
            }
        }
        var entryStart: [Int32] = [0]
        var entryTerm: [Int32] = []
        var entryOffset: [Int] = []
        var anchorBytes: [UInt8] = []
        for b in 0..<256 {
            // Per term, larger offsets first: candidates at one position then come in match order.
            for entry in perByte[b].sorted(by: { ($0.term, -$0.offset) < ($1.term, -$1.offset) }) {
                entryTerm.append(Int32(entry.term))
                entryOffset.append(entry.offset)
            }
            entryStart.append(Int32(entryTerm.count))
            if !perByte[b].isEmpty { anchorBytes.append(UInt8(b)) }
        }
        // Pair-keyed entries (bitmap and Wu-Manber modes), in the same arrays after the byte-keyed ones.
        var pairEntryStart: [Int32] = []
        if !perPair.isEmpty {
            pairEntryStart = [Int32](repeating: 0, count: 65537)
            var next = 0
            for w in perPair.keys.sorted() {
                while next <= w {
                    pairEntryStart[next] = Int32(entryTerm.count)
                    next += 1
                }
                for entry in (perPair[w] ?? []).sorted(by: { ($0.term, -$0.offset) < ($1.term, -$1.offset) }) {
                    entryTerm.append(Int32(entry.term))
                    entryOffset.append(entry.offset)
                }
            }
            while next <= 65536 {
                pairEntryStart[next] = Int32(entryTerm.count)
                next += 1
            }
        }
        self.pairEntryStart = pairEntryStart
        self.foldMask = fm
        self.memchrByte = memchrByte
        self.termBytes = termBytes
        func word(_ bytes: [UInt8]) -> UInt64 {
            let padded = Array(bytes.prefix(8)) + [UInt8](repeating: 0, count: max(0, 8 - bytes.count))
            return padded.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        // Prefix check: the bytes at fixed offsets with one possible value (after or-ing 0x20 under
        // ignore_case) must match; other positions are masked out.
        var words: [UInt64] = []
        var masks: [UInt64] = []
        for fixed in fixedBytes {
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
        self.termStart = termStart
        self.units = units
        self.unitStart = unitStart
        self.entryStart = entryStart
        self.entryTerm = entryTerm
        self.entryOffset = entryOffset
        self.anchorBytes = anchorBytes
        self.isAnchor = (0..<256).map { !perByte[$0 | Int(fm)].isEmpty }
        self.mode = mode
        self.anchorPairs = pairs.sorted()
        self.pairBitmap = pairBitmap
        self.wuManberShift = wuManberShift
        self.maxSpan = maxSpan
        self.maxAnchorOffset = allChoices.flatMap { $0.map(\.offset) }.max() ?? 0
        self.stride = stride
    }

    /// How far into a term anchors may sit.
    static let anchorReach = 64

    /// Counts in one contiguous plaintext (no copy).
    public func count(_ text: UnsafeRawBufferPointer) -> SearchResult {
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

    public func count(_ text: [UInt8]) -> SearchResult {
        text.withUnsafeBytes { count($0) }
    }

    /// A scanner for one file's plaintext arriving in pieces (one per thread; `reset()` to reuse).
    public func makeScanner() -> StreamScanner { StreamScanner(plan: self) }

    /// Bytes past an anchor position that must be present before its candidates can be decided:
    /// the longest match plus one following character (whole_word) plus slack.
    var lookahead: Int { maxSpan + 8 }

    /// Bytes before the next anchor position a stream must keep: the anchor offset, one character
    /// before the match (whole_word) and the snippet window.
    var lookbehind: Int { maxAnchorOffset + 8 + (wantSnippets ? Self.snippetWindow : 0) }
}
