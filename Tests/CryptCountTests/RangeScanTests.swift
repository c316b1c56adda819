import Testing

@testable import CryptCount

/// A text counted as ranges and merged must give exactly what one pass gives, for any range
/// size, with matches on every edge (differential: `countRange` + `mergeRanges` vs `count`).
@Suite struct RangeScanTests {
    private static func split(_ plan: SearchPlan, _ text: [UInt8], range: Int, read: Int = 7) -> SearchResult? {
        let size = text.count
        let n = max(1, (size + range - 1) / range)
        let starts = (0..<n).map { $0 * range }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: read, alignment: 8)
        defer { scratch.deallocate() }
        func part(_ k: Int, _ carry: [Int]?) -> RangeCount? {
            plan.countRange(
                start: starts[k], end: min(size, starts[k] + range), size: size, carry: carry, scratch: scratch
            ) { offset, buf in
                let m = min(buf.count, size - offset)
                guard m > 0, let dst = buf.baseAddress else { return 0 }
                text.withUnsafeBytes { src in
                    if let s = src.baseAddress { dst.copyMemory(from: s + offset, byteCount: m) }
                }
                return m
            }
        }
        var parts: [RangeCount] = []
        for k in 0..<n {
            guard let p = part(k, nil) else { return nil }
            parts.append(p)
        }
        return plan.mergeRanges(parts, starts: starts, recount: part)
    }

    /// A term's non-overlapping matches, left to right, by comparing at every position.
    private static func naive(_ text: [UInt8], _ term: [UInt8]) -> Int {
        var n = 0
        var i = 0
        while i + term.count <= text.count {
            if text[i..<(i + term.count)].elementsEqual(term) {
                n += 1
                i += term.count
            } else {
                i += 1
            }
        }
        return n
    }

    private static let pieces: [[UInt8]] =
        [
            "a", "aa", "b", "ab", " ", "\n", "garden", "Stra\u{DF}e", "STRASSE", "caf\u{E9}", "x", ".", "\u{3A3}",
        ].map { Array($0.utf8) } + [[0xFF], [0xC3]]

    @Test(arguments: [
        SearchOptions(),
        SearchOptions(ignoreCase: true),
        SearchOptions(wholeWord: true),
        SearchOptions(ignoreCase: true, wholeWord: true, words: true),
        SearchOptions(offsets: true, maxOffsets: 7),
        SearchOptions(regex: true),
        SearchOptions(ignoreCase: true, offsets: true, regex: true),
    ])
    func rangesEqualOnePass(options: SearchOptions) throws {
        var rng = SystemRandomNumberGenerator()
        let literal = ["aa", "aba", "abab", "garden", "stra\u{DF}e", "a", "x x", "aaaaa"]
        let patterns = ["a+b", "^ab", "gar\\w+", "b$", "x\\s+x"]
        for _ in 0..<40 {
            var text: [UInt8] = []
            let len = Int.random(in: 0..<400, using: &rng)
            while text.count < len { text += Self.pieces.randomElement(using: &rng) ?? [] }
            let terms = (options.regex ? patterns : literal).map { Array($0.utf8) }
            let plan = try SearchPlan(terms: terms, options: options)
            let whole = plan.count(text)
            for range in [1, 2, 3, 5, 8, 13, 64] {
                let merged = Self.split(plan, text, range: range)
                #expect(merged == whole, "range \(range), text \(text)")
            }
        }
    }

    /// One term without a rare byte (the packed pair, on x86-64) over texts long enough for its SIMD
    /// steps, read in pieces big enough to be scanned in place, ranges cutting matches anywhere.
    @Test func packedPairRanges() throws {
        var rng = SystemRandomNumberGenerator()
        let words = ["garden", "gardengarden", "abaaba", "abaabaaba", "gar", "den", " ", "\n", "x"].map {
            Array($0.utf8)
        }
        for term in ["garden", "abaaba", "den garden"] {
            for options in [
                SearchOptions(), SearchOptions(ignoreCase: true), SearchOptions(wholeWord: true, offsets: true),
            ] {
                let plan = try SearchPlan(terms: [Array(term.utf8)], options: options)
                if PackedPairPrefilter.level > 0 { #expect(plan.mode == .packedPair) }
                for _ in 0..<6 {
                    var text: [UInt8] = []
                    let len = Int.random(in: 0..<5000, using: &rng)
                    while text.count < len { text += words.randomElement(using: &rng) ?? [] }
                    let whole = plan.count(text)
                    for (range, piece) in [(97, 64), (300, 1000), (1000, 333), (2048, 4096)] {
                        let merged = Self.split(plan, text, range: range, read: piece)
                        #expect(merged == whole, "\(term) range \(range) piece \(piece)")
                    }
                }
            }
        }
    }

    @Test func overlappingTermRecountedAcrossEdges() throws {
        // "aa" in a run of a's: the range after an edge that cuts a match must resume after it.
        let plan = try SearchPlan(terms: [Array("aa".utf8), Array("aaa".utf8)], options: SearchOptions())
        for n in 1..<40 {
            let text = [UInt8](repeating: UInt8(ascii: "a"), count: n)
            for range in 1...7 {
                #expect(Self.split(plan, text, range: range) == plan.count(text))
            }
        }
    }

    /// Long texts read in big pieces, so the short-term kernel (every width this CPU has) runs on
    /// ranges: self-overlapping terms ("aa", "abab", "that") keep their resume position and first
    /// start across range edges.
    @Test func shortKernelRanges() throws {
        var rng = SystemRandomNumberGenerator()
        let levels = [2, 3, 4, 5].filter { $0 <= ExactTerm.kernelLevel }
        let terms = ["aa", "abab", "that", "a", "ab", "b", "hat", "th", "t", "ba", "aba"].map { Array($0.utf8) }
        let alphabet = Array("abth".utf8)
        for round in 0..<12 {
            let text = (0..<Int.random(in: 2000...9000, using: &rng)).map { _ in
                alphabet.randomElement(using: &rng) ?? 0
            }
            for level in levels {
                let o = SearchOptions(ignoreCase: round % 2 == 1)
                let plan = try SearchPlan(
                    terms: terms, options: o, exactLimit: SearchPlan.defaultExactLimit, shortKernelLevel: level)
                let whole = plan.count(text)
                for range in [97, 640, 1000, 4099] {
                    for read in [65, 4099] {
                        #expect(
                            Self.split(plan, text, range: range, read: read) == whole,
                            "level \(level) range \(range) read \(read)")
                    }
                }
            }
        }
    }

    /// Teddy's C-confirmed terms (every Teddy level this CPU runs) over long texts dense with
    /// self-overlapping matches, read in big pieces, ranges cutting matches anywhere: each match
    /// counted once (resume positions and first starts carried across range edges), equal to one
    /// pass and to a plain left-to-right count.
    @Test func teddyConfirmRanges() throws {
        var rng = SystemRandomNumberGenerator()
        let terms = [
            "aaaaa", "abcab", "abcabcab", "bcabc", "cabca", "aabaa", "abcdefghijklmnop", "abcdefghijklmnopq", "baaab",
            "ccccc", "acbac", "xyzzy", "quick", "jumps", "vowel", "foxes",
        ].map { Array($0.utf8) }
        let alphabet = Array("abc".utf8)
        for round in 0..<8 {
            var text = (0..<Int.random(in: 2000...9000, using: &rng)).map { _ in
                alphabet.randomElement(using: &rng) ?? 0
            }
            text += Array("abcdefghijklmnopqabcdefghijklmnop".utf8) + text.prefix(100)
            text += Array("abcdefghijklmnop".utf8).prefix(Int.random(in: 0...15, using: &rng))
            for level in 1...max(1, TeddyPrefilter.widest) {
                let o = SearchOptions(ignoreCase: round % 4 == 3)
                let plan = try SearchPlan(
                    terms: terms, options: o, exactLimit: SearchPlan.defaultExactLimit, teddyLevel: level)
                if TeddyPrefilter.level > 0, case .teddy(let f) = plan.prefilter {
                    #expect(f.confirmed.count == (o.ignoreCase ? 0 : terms.count - 1))  // all but the 17-byte term
                } else {
                    #expect(TeddyPrefilter.level == 0)
                }
                let whole = plan.count(text)
                if !o.ignoreCase { #expect(whole.counts == terms.map { Self.naive(text, $0) }, "level \(level)") }
                for range in [97, 640, 1000, 4099] {
                    for read in [65, 4099] {
                        #expect(
                            Self.split(plan, text, range: range, read: read) == whole,
                            "level \(level) range \(range) read \(read)")
                    }
                }
            }
        }
    }

    /// Teddy's row path (`ccsk_long_table.row`: a slot's one term without a border counted in a byte
    /// lane, no resume position): letters-only terms, some self-overlapping (`river`, `abcab`), two
    /// with equal first 4 bytes (`there`, `therefore`: one slot of two) and a duplicate, in texts
    /// with punctuation and UTF-8 whose low 6 bits are a letter's (`,` `l`, `.` `n`: level 4 reads
    /// them as letters), runs of one term longer than a byte lane holds (300 `about`), matches
    /// in the last 16 bytes; whole, streamed and in ranges cutting matches anywhere, at every Teddy
    /// level, equal to a plain left-to-right count.
    @Test func teddyRowConfirmRanges() throws {
        var rng = Rng(state: 1_412)
        let words = [
            "there", "therefore", "about", "would", "could", "river", "riveriver", "abcab", "abcabcab", "garden",
            "window", "quickly", "zeppelin", "lighthouse", "marmalade", "would",
        ]
        let terms = words.map { Array($0.utf8) }
        let filler = [
            " ", ", ", ". ", "! ", "\n", "-", "'", "0123", "caf\u{E9} ", "\u{2019}", "the ", "a ", "thereabout",
            "wou,d", "cou.d", "lig!thouse", "rive", "rivers", "riveriveriver", "windowindow",
        ].map { Array($0.utf8) }
        var rowRounds = 0
        for round in 0..<10 {
            var text: [UInt8] = []
            let len = Int.random(in: 3000...12000, using: &rng)
            while text.count < len {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0...3: text += terms.randomElement(using: &rng) ?? []
                case 4 where round % 3 == 0: text += Array([String](repeating: "about ", count: 300).joined().utf8)
                default: text += filler.randomElement(using: &rng) ?? []
                }
            }
            text += terms.randomElement(using: &rng) ?? []  // a match in the last 16 bytes
            for level in 1...max(1, TeddyPrefilter.widest) {
                let plan = try SearchPlan(
                    terms: terms, options: SearchOptions(), exactLimit: SearchPlan.defaultExactLimit, teddyLevel: level)
                if case .teddy(let f) = plan.prefilter, f.tables.length >= 4 {
                    // Rows for all but river, riveriver, abcab, abcabcab, window (borders), there,
                    // therefore and the two would (slots of two).
                    #expect(f.confirmRow.filter { $0 < 16 }.count == 7, "level \(level)")
                    rowRounds += 1
                }
                let whole = plan.count(text)
                #expect(whole.counts == terms.map { Self.naive(text, $0) }, "round \(round) level \(level)")
                SearchRandomizedTests.expectStreamed(
                    plan, text, equals: whole, piecesUpTo: [5000], rng: &rng, round: round)
                for range in [97, 1000, 4099] {
                    #expect(
                        Self.split(plan, text, range: range, read: 2048) == whole,
                        "round \(round) level \(level) range \(range)")
                }
            }
        }
        #expect(TeddyPrefilter.level == 0 || rowRounds > 0)
    }
}
