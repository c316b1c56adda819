#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

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
}

/// Terms compiled once per request, shared (read-only) by every worker.
///
/// Matching is one pass over the text for all terms: each term is anchored on its rarest byte
/// (for `ignoreCase`, the set of first bytes of every spelling of one of its characters) at a fixed
/// offset from the match start; a block-wise SIMD compare (or `memchr` when there is a single anchor
/// byte) finds anchor positions, and each candidate is verified per term. Terms are independent:
/// each keeps the end of its last match so its own matches never overlap.
public final class SearchPlan: Sendable {
    public let terms: [[UInt8]]
    public let options: SearchOptions

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
    /// Folded units of each term (ignore_case), flattened (`unitStart[t]..<unitStart[t + 1]`).
    let units: [UInt32]
    let unitStart: [Int]
    /// Per anchor byte b: entries `entryStart[b]..<entryStart[b + 1]` of (term, offset of the anchor
    /// from the match start).
    let entryStart: [Int32]
    let entryTerm: [Int32]
    let entryOffset: [Int]
    /// Distinct anchor bytes, and the same as a 256-entry membership table.
    let anchorBytes: [UInt8]
    let isAnchor: [Bool]
    let mode: PrefilterMode
    /// Byte pairs at the anchor (second may be `Pair.any`), and the same as a 64 Ki-bit bitmap
    /// indexed by `first << 8 | second` (`.pairBitmap` only).
    let anchorPairs: [Pair]
    let pairBitmap: [UInt64]
    /// Wu-Manber shift per two-byte block `first << 8 | second` (`.wuManber` only).
    let wuManberShift: [UInt8]
    /// Most bytes a match can span, and most bytes an anchor sits after its match start.
    let maxSpan: Int
    let maxAnchorOffset: Int

    public init(terms: [[UInt8]], options: SearchOptions) throws(SearchPlanError) {
        for (i, t) in terms.enumerated() where t.isEmpty { throw .emptyTerm(index: i) }
        self.terms = terms
        self.options = options
        maxOffsets = options.offsets ? max(0, options.maxOffsets) : 0
        wantSnippets = options.offsets && options.context > 0

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

        // Pick the prefilter: memchr on one rare byte, a SIMD compare on a few rare bytes, a SIMD
        // compare on a few byte pairs, or a byte-pair bitmap for many terms.
        let single = choices.map { $0.min { $0.singleScore < $1.singleScore } }
        let singleBytes = Set(single.flatMap { $0?.firstBytes ?? [] })
        let rare = singleBytes.allSatisfy { ByteScanning.frequency[Int($0)] <= 100 }
        var chosen: [AnchorChoice?]
        let mode: PrefilterMode
        var wuManberShift: [UInt8] = []
        if singleBytes.count == 1 && rare {
            mode = .memchr
            chosen = single
        } else if singleBytes.count <= 3 && rare {
            mode = .bytes
            chosen = single
        } else {
            chosen = choices.map { $0.min { $0.pairScore < $1.pairScore } }
            let m = min(fixedBytes.map(\.count).min() ?? 0, 64)
            if Set(chosen.flatMap { $0?.pairs ?? [] }).count <= 8 {
                mode = .pairs
            } else if m >= 6 {
                // Wu-Manber over the first m bytes: anchor every term on its bytes m-2, m-1 and
                // skip windows whose last two bytes end no term's prefix.
                mode = .wuManber
                var shift = [UInt8](repeating: UInt8(m - 1), count: SearchPlan.wuManberTableSize)
                for fixed in fixedBytes {
                    for j in 0...(m - 2) {
                        for a in fixed[j] {
                            for b in fixed[j + 1] {
                                let w = SearchPlan.wuManberHash(a, b)
                                shift[w] = min(shift[w], UInt8(m - 2 - j))
                            }
                        }
                    }
                }
                wuManberShift = shift
                chosen = fixedBytes.map { fixed in
                    AnchorChoice(
                        offset: m - 2,
                        pairs: fixed[m - 2].flatMap { a in fixed[m - 1].map { Pair(a, UInt16($0)) } }.sorted())
                }
            } else {
                mode = .pairBitmap
            }
        }

        var perByte = [[(Int32, Int)]](repeating: [], count: 256)
        var pairs = Set<Pair>()
        var pairBitmap = [UInt64](repeating: 0, count: mode == .pairBitmap ? 1024 : 0)
        for (t, choice) in chosen.enumerated() {
            guard let choice else { continue }
            for b in choice.firstBytes { perByte[Int(b)].append((Int32(t), choice.offset)) }
            for pair in choice.pairs {
                pairs.insert(pair)
                guard mode == .pairBitmap else { continue }
                for second in pair.second == Pair.any ? Array(0..<256) : [Int(pair.second)] {
                    let w = Int(pair.first) << 8 | second
                    pairBitmap[w >> 6] |= 1 << UInt64(w & 63)
                }
            }
        }
        var entryStart: [Int32] = [0]
        var entryTerm: [Int32] = []
        var entryOffset: [Int] = []
        var anchorBytes: [UInt8] = []
        var isAnchor = [Bool](repeating: false, count: 256)
        for b in 0..<256 {
            for (t, off) in perByte[b] {
                entryTerm.append(t)
                entryOffset.append(off)
            }
            entryStart.append(Int32(entryTerm.count))
            if !perByte[b].isEmpty {
                anchorBytes.append(UInt8(b))
                isAnchor[b] = true
            }
        }
        self.termBytes = termBytes
        func word(_ bytes: [UInt8]) -> UInt64 {
            let padded = Array(bytes.prefix(8)) + [UInt8](repeating: 0, count: max(0, 8 - bytes.count))
            return padded.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        prefixWord = terms.map(word)
        prefixMask = terms.map { word([UInt8](repeating: 0xFF, count: min(8, $0.count))) }
        self.termStart = termStart
        self.units = units
        self.unitStart = unitStart
        self.entryStart = entryStart
        self.entryTerm = entryTerm
        self.entryOffset = entryOffset
        self.anchorBytes = anchorBytes
        self.isAnchor = isAnchor
        self.mode = mode
        self.anchorPairs = pairs.sorted()
        self.pairBitmap = pairBitmap
        self.wuManberShift = wuManberShift
        self.maxSpan = maxSpan
        self.maxAnchorOffset = chosen.map { $0?.offset ?? 0 }.max() ?? 0
    }

    /// How far into a term anchors may sit.
    static let anchorReach = 64

    /// The Wu-Manber table is indexed by the two-byte block.
    static let wuManberTableSize = 65536

    @inline(__always)
    static func wuManberHash(_ a: UInt8, _ b: UInt8) -> Int { Int(a) << 8 | Int(b) }

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

enum PrefilterMode: Sendable {
    case memchr, bytes, pairs, pairBitmap, wuManber
}

/// Two bytes at an anchor; `second == any` matches any byte (or the end of the text).
struct Pair: Hashable, Comparable, Sendable {
    static let any: UInt16 = 256
    var first: UInt8
    var second: UInt16

    init(_ first: UInt8, _ second: UInt16) {
        self.first = first
        self.second = second
    }

    static func < (a: Pair, b: Pair) -> Bool { (a.first, a.second) < (b.first, b.second) }
}

/// Where a term could be anchored: a fixed offset from the match start and every byte pair a
/// matching text can have there.
struct AnchorChoice {
    var offset: Int
    var pairs: [Pair]

    var firstBytes: [UInt8] { Array(Set(pairs.map(\.first))).sorted() }

    var singleScore: Int { firstBytes.reduce(0) { $0 + Int(ByteScanning.frequency[Int($1)]) } }

    var pairScore: Int {
        pairs.reduce(0) { sum, pair in
            let second = pair.second == Pair.any ? 300 : Int(ByteScanning.frequency[Int(pair.second)])
            return sum + Int(ByteScanning.frequency[Int(pair.first)]) * second
        }
    }
}

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

    init(plan: SearchPlan) {
        let n = plan.terms.count
        counts = [Int](repeating: 0, count: n)
        nextAllowed = [Int](repeating: 0, count: n)
        offsets = plan.options.offsets ? [[Int]](repeating: [], count: n) : []
        snippets = plan.wantSnippets ? [[String]](repeating: [], count: n) : []
    }

    mutating func reset() {
        for i in counts.indices {
            counts[i] = 0
            nextAllowed[i] = 0
        }
        for i in offsets.indices { offsets[i].removeAll(keepingCapacity: true) }
        for i in snippets.indices { snippets[i].removeAll(keepingCapacity: true) }
        pending.removeAll(keepingCapacity: true)
        truncated = false
        words = 0
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

extension SearchPlan {
    /// Finds matches whose anchor lies in `from..<to` of `p[0..<count]`, where `p[0]` is stream
    /// offset `base`. Unless `final`, the caller guarantees `to + lookahead <= count`.
    func scan(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool, state: inout ScanState
    ) {
        guard from < to, !anchorBytes.isEmpty else { return }
        var q = from
        let block = ByteScanning.blockSize
        switch mode {
        case .memchr:
            let b = anchorBytes[0]
            while q < to {
                guard let hit = memchr(p + q, Int32(b), to - q) else { break }
                q = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - p
                candidates(p, count: count, base: base, at: q, byte: b, final: final, state: &state)
                q += 1
            }
            return
        case .bytes:
            let needles = anchorBytes.map { ByteScanning.splat($0) }
            while q + block <= to {
                let v = ByteScanning.loadWords(p, q)
                var z = ByteScanning.zeroBytes(v ^ needles[0])
                for k in needles.indices.dropFirst() { z |= ByteScanning.zeroBytes(v ^ needles[k]) }
                if ByteScanning.any(z) {
                    var bits = ByteScanning.bits(z)
                    while bits != 0 {
                        let i = q + bits.trailingZeroBitCount
                        candidates(p, count: count, base: base, at: i, byte: p[i], final: final, state: &state)
                        bits &= bits &- 1
                    }
                }
                q += block
            }
        case .pairs:
            let firsts = anchorPairs.map { ByteScanning.splat($0.first) }
            // A wildcard second byte compares against the loaded byte itself (always equal).
            let seconds = anchorPairs.map { ByteScanning.splat(UInt8(truncatingIfNeeded: $0.second)) }
            let wild = anchorPairs.map { $0.second == Pair.any ? ~SIMD4<UInt64>() : SIMD4<UInt64>() }
            let n = anchorPairs.count
            // The second-byte load reads one byte past the block.
            while q + block <= to && q + block < count {
                let v0 = ByteScanning.loadWords(p, q)
                let v1 = ByteScanning.loadWords(p, q + 1)
                var z = SIMD4<UInt64>()
                var k = 0
                while k < n {
                    z |= ByteScanning.zeroBytes((v0 ^ firsts[k]) | ((v1 ^ seconds[k]) & ~wild[k]))
                    k += 1
                }
                if ByteScanning.any(z) {
                    var bits = ByteScanning.bits(z)
                    while bits != 0 {
                        let i = q + bits.trailingZeroBitCount
                        candidates(p, count: count, base: base, at: i, byte: p[i], final: final, state: &state)
                        bits &= bits &- 1
                    }
                }
                q += block
            }
        case .wuManber:
            // Window ends i = anchor + 1; no anchor can be the text's last byte (m >= 4).
            wuManberShift.withUnsafeBufferPointer { shift in
                let stop = min(to, count - 1)
                var i = q + 1
                while i <= stop {
                    let d = Int(shift[SearchPlan.wuManberHash(p[i - 1], p[i])])
                    if d > 0 {
                        i += d
                        continue
                    }
                    candidates(p, count: count, base: base, at: i - 1, byte: p[i - 1], final: final, state: &state)
                    i += 1
                }
            }
            return
        case .pairBitmap:
            pairBitmap.withUnsafeBufferPointer { bitmap in
                let last = min(to, count - 1)
                while q < last {
                    let w = Int(p[q]) << 8 | Int(p[q + 1])
                    if bitmap[w >> 6] & (1 << UInt64(w & 63)) != 0 {
                        candidates(p, count: count, base: base, at: q, byte: p[q], final: final, state: &state)
                    }
                    q += 1
                }
            }
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

    /// Tries every term anchored on `byte` with the anchor at `q`.
    @inline(__always)
    func candidates(
        _ p: UnsafePointer<UInt8>, count: Int, base: Int, at q: Int, byte: UInt8, final: Bool,
        state: inout ScanState
    ) {
        var e = Int(entryStart[Int(byte)])
        let stop = Int(entryStart[Int(byte) + 1])
        while e < stop {
            let t = Int(entryTerm[e])
            let s = q - entryOffset[e]
            e += 1
            guard base + s >= state.nextAllowed[t], s >= 0 else { continue }
            let end: Int
            if options.ignoreCase {
                guard let m = matchFolded(p, count: count, at: s, term: t) else { continue }
                end = m
            } else {
                let lo = termStart[t]
                let n = termStart[t + 1] - lo
                guard s + n <= count else { continue }
                if s + 8 <= count {
                    let w = UnsafeRawPointer(p + s).loadUnaligned(as: UInt64.self)
                    guard (w ^ prefixWord[t]) & prefixMask[t] == 0 else { continue }
                    if n > 8 {
                        let equal = termBytes.withUnsafeBufferPointer { tb in
                            guard let tp = tb.baseAddress else { return false }
                            return memcmp(p + s + 8, tp + lo + 8, n - 8) == 0
                        }
                        guard equal else { continue }
                    }
                } else {
                    var i = 0
                    while i < n && p[s + i] == termBytes[lo + i] { i += 1 }
                    guard i == n else { continue }
                }
                end = s + n
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

    /// Fills pending snippets whose window is complete (all of them when `final`).
    func resolvePending(_ p: UnsafePointer<UInt8>, count: Int, base: Int, final: Bool, state: inout ScanState) {
        var done = 0
        for item in state.pending {
            let s = item.start - base
            let e = item.end - base
            guard final || e + Self.snippetWindow < count else { break }
            state.snippets[item.term][item.slot] = snippet(p, count: count, base: base, start: s, end: e)
            done += 1
        }
        state.pending.removeFirst(done)
    }

    /// The snippet for the match `s..<e`: `context` words either side of the words holding the
    /// match start and end, on the match's line(s), within `snippetWindow` bytes of the match.
    func snippet(_ p: UnsafePointer<UInt8>, count: Int, base: Int, start s: Int, end e: Int) -> String {
        let w = Self.snippetWindow
        let context = options.context
        let lo = max(0, s - w)
        let cutLeft = base + s - w > 0
        let hi = min(count, e + w)
        let cutRight = e + w < count
        let newline: UInt8 = 0x0A
        var a = s
        if s < e && !TextUnits.isSpace(p[s]) {
            while a > lo && !TextUnits.isSpace(p[a - 1]) { a -= 1 }
        }
        var n = 0
        while n < context {
            var b = a
            while b > lo && TextUnits.isSpace(p[b - 1]) && p[b - 1] != newline { b -= 1 }
            if b == lo || p[b - 1] == newline { break }
            while b > lo && !TextUnits.isSpace(p[b - 1]) { b -= 1 }
            a = b
            n += 1
        }
        var z = e
        if e > s && !TextUnits.isSpace(p[e - 1]) {
            while z < hi && !TextUnits.isSpace(p[z]) { z += 1 }
        }
        n = 0
        while n < context {
            var b = z
            while b < hi && TextUnits.isSpace(p[b]) && p[b] != newline { b += 1 }
            if b == hi || p[b] == newline { break }
            while b < hi && !TextUnits.isSpace(p[b]) { b += 1 }
            z = b
            n += 1
        }
        if cutLeft && a == lo {
            // Don't start inside a character the window cut.
            var k = 0
            while k < 3 && a < s && p[a] & 0xC0 == 0x80 {
                a += 1
                k += 1
            }
        }
        if cutRight && z == hi {
            // Drop a character the window cut (its lead byte promises more bytes than remain).
            var k = 1
            while k <= 3 && z - k > e {
                let b = p[z - k]
                if b & 0xC0 != 0x80 {
                    let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                    if need > k { z -= k }
                    break
                }
                k += 1
            }
        }
        return String(decoding: UnsafeBufferPointer(start: p + a, count: z - a), as: UTF8.self)
    }
}

/// Counts over plaintext fed in pieces; the result equals `SearchPlan.count` on the concatenation
/// for any chunking. Memory is bounded: besides the current piece it keeps at most
/// `plan.lookahead + plan.lookbehind` bytes (the longest match plus, with snippets,
/// `SearchPlan.snippetWindow` bytes on each side of a match).
public struct StreamScanner {
    let plan: SearchPlan
    var state: ScanState
    /// Unscanned tail plus the text kept for look-behind and pending snippets.
    var buffer: [UInt8] = []
    /// Stream offset of `buffer[0]`.
    var base = 0
    /// Index in `buffer` of the next anchor position to scan.
    var scanFrom = 0
    var previousIsSpace = true

    init(plan: SearchPlan) {
        self.plan = plan
        state = ScanState(plan: plan)
    }

    /// Forgets the current file, keeping allocations, so one scanner can serve many files.
    public mutating func reset() {
        state.reset()
        buffer.removeAll(keepingCapacity: true)
        base = 0
        scanFrom = 0
        previousIsSpace = true
    }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        guard let cp = chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), chunk.count > 0 else { return }
        let n = chunk.count
        if plan.options.words {
            state.words &+= ByteScanning.countWordStarts(cp, n, previousIsSpace: &previousIsSpace)
        }
        guard !plan.terms.isEmpty else { return }
        let seam = plan.lookahead + plan.lookbehind
        // Without snippets, a big chunk is scanned in place: only its first `seam` bytes are copied
        // (to join it to the kept tail) and its last `seam` bytes are kept.
        guard !plan.wantSnippets, n > 2 * seam else {
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
        let to = buffer.count - plan.lookahead
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
        if let first = state.pending.first { keep = min(keep, first.start - base - SearchPlan.snippetWindow - 8) }
        if keep > 0 {
            buffer.removeFirst(keep)
            self.base += keep
            scanFrom -= keep
        }
    }

    public mutating func finish() -> SearchResult {
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
