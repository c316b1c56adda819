import CSearchKernels
import Testing

@testable import CryptCount

private func b(_ s: String) -> [UInt8] { Array(s.utf8) }

private func run(_ text: [UInt8], _ terms: [String], _ options: SearchOptions = SearchOptions()) throws -> SearchResult
{
    try SearchPlan(terms: terms.map(b), options: options).count(text)
}

private func counts(_ text: String, _ terms: [String], _ options: SearchOptions = SearchOptions()) throws -> [Int] {
    try run(b(text), terms, options).counts
}

@Suite struct SearchBasicsTests {
    @Test func nonOverlapping() throws {
        #expect(try counts("aaaa", ["aa"]) == [2])
        #expect(try counts("aaaaa", ["aa", "a", "aaa"]) == [2, 5, 1])
        #expect(try counts("abababa", ["aba"]) == [2])
    }

    @Test func emptyTextAndLongTerm() throws {
        #expect(try counts("", ["a", "abc"]) == [0, 0])
        #expect(try counts("ab", ["abc"]) == [0])
        #expect(try counts("abc", ["abc"]) == [1])
    }

    @Test func emptyTermIsRejected() {
        #expect(throws: SearchPlanError.emptyTerm(index: 1)) {
            _ = try SearchPlan(terms: [b("a"), []], options: SearchOptions())
        }
    }

    @Test func noTermsStillCountsWords() throws {
        let r = try run(b(" a  bc\td\n"), [], SearchOptions(words: true))
        #expect(r.counts == [])
        #expect(r.words == 3)
    }

    @Test func hugeTerms() throws {
        // Terms longer than the anchor reach and than a streamed chunk.
        let unit = Array("Σίσυφος \u{212A}elvin ".utf8)
        let term = Array([[UInt8]](repeating: unit, count: 80).joined())
        let text = Array("x ".utf8) + term + term + Array(" y".utf8) + Array(term.dropLast())
        for ic in [false, true] {
            let plan = try SearchPlan(
                terms: [term, Array(String(decoding: term, as: UTF8.self).uppercased().utf8)],
                options: SearchOptions(ignoreCase: ic))
            let whole = plan.count(text)
            #expect(whole.counts == (ic ? [2, 2] : [2, 0]))
            var scanner = plan.makeScanner()
            for start in stride(from: 0, to: text.count, by: 997) {
                text[start..<min(text.count, start + 997)].withUnsafeBytes { scanner.feed($0) }
            }
            #expect(scanner.finish() == whole)
        }
    }

    @Test func multiByteTermsAndInvalidBytes() throws {
        #expect(try counts("naïve naïve café", ["ï", "naïve", "é"]) == [2, 2, 1])
        let text: [UInt8] = [0xFF, 0x61, 0xC3, 0xFF, 0xC3, 0xA9, 0xFF]
        let r = try SearchPlan(terms: [[0xFF], [0xC3], [0xFF, 0x61]], options: SearchOptions()).count(text)
        #expect(r.counts == [3, 2, 1])
        // With ignore_case, invalid bytes match only themselves.
        let ri = try SearchPlan(terms: [[0xFF], [0xFF, 0x41]], options: SearchOptions(ignoreCase: true)).count(text)
        #expect(ri.counts == [3, 1])
    }

    @Test func wordsCount() throws {
        let cases: [(String, Int)] = [
            ("", 0), ("   ", 0), ("a", 1), (" a", 1), ("a b", 2), ("a\u{0B}b\u{0C}c\rd\ne\tf", 6),
            ("  lots   of\n\nspace  ", 3), ("x\u{A0}y", 1),
        ]
        for (text, n) in cases {
            #expect(try run(b(text), ["q"], SearchOptions(words: true)).words == n, "\(text)")
        }
        let long = String(repeating: "ab cd\t", count: 100) + "end"
        #expect(try run(b(long), ["q"], SearchOptions(words: true)).words == 201)
    }
}

@Suite struct SearchIgnoreCaseTests {
    let ic = SearchOptions(ignoreCase: true)

    @Test func ascii() throws {
        #expect(try counts("Hello HELLO hello hElLo", ["hello", "HELLO"], ic) == [4, 4])
        #expect(try counts("Hello", ["hello"]) == [0])
    }

    @Test func kelvinAndLongS() throws {
        // U+212A KELVIN SIGN folds to 'k'; U+017F LATIN SMALL LETTER LONG S folds to 's'.
        let r = try run(
            b("\u{212A}ing king KING s\u{017F}"), ["king", "ss", "K"], SearchOptions(ignoreCase: true, offsets: true))
        #expect(r.counts == [3, 1, 3])
        // KELVIN SIGN is 3 bytes, so later offsets shift by 2.
        #expect(r.offsets?[0] == [0, 7, 12])
        #expect(r.offsets?[1] == [17])
        #expect(try counts("\u{212A}", ["k"]) == [0])
    }

    @Test func sharpSIsNotSS() throws {
        // Simple folding: ß stays ß (only full folding maps it to "ss"); ẞ U+1E9E folds to ß.
        #expect(try counts("straße strasse STRASSE", ["straße"], ic) == [1])
        #expect(try counts("STRA\u{1E9E}E straße", ["straße"], ic) == [2])
        #expect(try counts("straße", ["strasse"], ic) == [0])
    }

    @Test func greekSigma() throws {
        // σ, ς and Σ all fold to σ.
        #expect(try counts("ΣΟΦΟΣ σοφος σοφοσ", ["σοφος"], ic) == [3])
        #expect(try counts("ς σ Σ", ["Σ"], ic) == [3])
        #expect(try counts("ς σ Σ", ["ς"]) == [1])
    }

    @Test func turkishI() throws {
        // Status T mappings are excluded: İ (U+0130) and ı (U+0131) fold only to themselves.
        #expect(try counts("I i \u{130} \u{131}", ["i"], ic) == [2])
        #expect(try counts("I i \u{130} \u{131}", ["\u{131}"], ic) == [1])
        #expect(try counts("I i \u{130} \u{131}", ["\u{130}"], ic) == [1])
    }

    /// A term with no cased letter counts the same with and without ignore_case, even a byte of
    /// a multi-byte character (issue 11: `\xC3` found 3 in "é é É" bytewise and 0 with -i).
    @Test func caselessTermsIgnoreNothing() throws {
        let text = b("café 123 € é É ÿ Ÿ k \u{212A}") + [0xC3, 0x28, 0xFF]
        let caseless: [[UInt8]] = [
            [0xC3], [0xA9], [0xE2, 0x82], [0x82, 0xAC], [0xFF], [0xC3, 0x28], b("123"), b("€"), b(" "), b("€") + [0xC3],
        ]
        for term in caseless {
            #expect(TextUnits.isCaseless(term), "\(term)")
            let plain = try SearchPlan(terms: [term], options: SearchOptions(offsets: true)).count(text)
            for exactLimit in [0, 8] {
                let folded = try SearchPlan(
                    terms: [term], options: SearchOptions(ignoreCase: true, offsets: true), exactLimit: exactLimit
                ).count(text)
                #expect(folded == plain, "\(term)")
            }
        }
        #expect(try SearchPlan(terms: [[0xC3]], options: ic).count(text).counts == [5])
        // A term with cased letters and bytes that are not UTF-8: the letters fold, the bytes
        // match themselves, inside a character too ("f" + the first byte of "é").
        #expect(try SearchPlan(terms: [b("F") + [0xC3]], options: ic).count(text).counts == [1])
        #expect(try SearchPlan(terms: [[0xA9] + b(" 1")], options: ic).count(text).counts == [1])
        #expect(try SearchPlan(terms: [[0xA9] + b(" 1")], options: SearchOptions()).count(text).counts == [1])
        // Next to cased terms in one plan, too.
        #expect(try SearchPlan(terms: [b("é"), [0xC3], b("ÿ")], options: ic).count(text).counts == [3, 5, 2])
        // Cased terms still fold: é matches É, ÿ matches Ÿ, k matches KELVIN SIGN.
        for cased in ["é", "ÿ", "k", "a1"] { #expect(!TextUnits.isCaseless(b(cased))) }
        #expect(try counts("é É", ["é"], ic) == [2])
    }

    @Test func nonASCIILetters() throws {
        #expect(try counts("Éclair éCLAIR ÉCLAIR", ["éclair"], ic) == [3])
        #expect(try counts("ПРИВЕТ привет Привет", ["привет"], ic) == [3])
    }
}

@Suite struct SearchWholeWordTests {
    let ww = SearchOptions(wholeWord: true)

    @Test func edgesAndPunctuation() throws {
        #expect(try counts("cat", ["cat"], ww) == [1])
        #expect(try counts("cat,cat.(cat)-cat", ["cat"], ww) == [4])
        #expect(try counts("cats concat cat_ _cat cat1 1cat", ["cat"], ww) == [0])
        #expect(try counts("cat's", ["cat"], ww) == [1])
    }

    @Test func nonASCIIWordCharacters() throws {
        #expect(try counts("écat caté cat", ["cat"], ww) == [1])
        // Combining mark after the match makes it part of a word.
        #expect(try counts("cat\u{301} cat", ["cat"], ww) == [1])
        // NBSP and em dash are not word characters.
        #expect(try counts("cat\u{A0}cat\u{2014}cat", ["cat"], ww) == [3])
        // Invalid bytes are not word characters.
        let r = try SearchPlan(terms: [b("cat")], options: ww).count([0xFF] + b("cat") + [0xC3])
        #expect(r.counts == [1])
    }

    @Test func resumesOneCharacterAfterFailedStart() throws {
        // "aa" at 0 fails (followed by 'a'); resuming at 1 finds "aa" at 1, which fails too (preceded
        // by 'a'); then "aa" at 4 counts.
        let r = try run(b("aaa aa"), ["aa"], SearchOptions(wholeWord: true, offsets: true))
        #expect(r.counts == [1])
        #expect(r.offsets == [[4]])
        #expect(try counts("aaa aa", ["aa"]) == [2])
        // "a-" at 0 fails (followed by 'a'); at 2 it is preceded by '-' and followed by ' '.
        #expect(try counts("a-a- a-", ["a-"], ww) == [2])
        #expect(try counts("x-y -y", ["-y"], ww) == [1])
        #expect(try counts("abab ab", ["ab"], ww) == [1])
        // "a.a" at 1 fails (after 'x'); the overlapping candidate at 3 counts (skipping to the end
        // of the failed candidate would miss it).
        #expect(try counts("xa.a.a", ["a.a"], ww) == [1])
        #expect(try counts("a.a.a", ["a.a"]) == [1])
    }

    @Test func wholeWordWithIgnoreCase() throws {
        let o = SearchOptions(ignoreCase: true, wholeWord: true)
        #expect(try counts("Straße STRASSE straßen", ["STRAẞE"], o) == [1])
        #expect(try counts("\u{212A}ing kings", ["KING"], o) == [1])
    }
}

@Suite struct SearchOffsetsTests {
    @Test func offsetsAndTruncation() throws {
        let r = try run(b("ab ab ab ab"), ["ab", "b a", "zz"], SearchOptions(offsets: true, maxOffsets: 2))
        #expect(r.counts == [4, 3, 0])
        #expect(r.offsets == [[0, 3], [1, 4], []])
        #expect(r.truncated)
        let all = try run(b("ab ab"), ["ab"], SearchOptions(offsets: true, maxOffsets: 2))
        #expect(all.offsets == [[0, 3]])
        #expect(!all.truncated)
        let none = try run(b("ab ab"), ["ab"], SearchOptions(offsets: true, maxOffsets: 0))
        #expect(none.counts == [2])
        #expect(none.offsets == [[]])
        #expect(none.truncated)
        #expect(try run(b("ab"), ["ab"]).offsets == nil)
    }

    @Test func snippets() throws {
        let text = "one two three four five six seven"
        let r = try run(b(text), ["four", "one", "seven", "ee fo"], SearchOptions(offsets: true, context: 2))
        #expect(
            r.snippets == [
                ["two three four five six"], ["one two three"], ["five six seven"], ["one two three four five six"],
            ])
        let mid = try run(b("alpha beta"), ["ph"], SearchOptions(offsets: true, context: 1))
        #expect(mid.snippets == [["alpha beta"]])
        #expect(try run(b(text), ["four"], SearchOptions(offsets: true)).snippets == nil)
    }

    @Test func snippetsStopAtNewlines() throws {
        let text = "first line here\r\nsecond  target\tline end\nthird"
        let r = try run(b(text), ["target", "first", "third"], SearchOptions(offsets: true, context: 3))
        #expect(r.snippets == [["second  target\tline end"], ["first line here"], ["third"]])
        let edge = try run(b("\nword\n"), ["word"], SearchOptions(offsets: true, context: 5))
        #expect(edge.snippets == [["word"]])
    }

    @Test func snippetInvalidUTF8IsReplaced() throws {
        let text: [UInt8] = b("ab ") + [0xFF] + b("x cd")
        let r = try SearchPlan(terms: [b("cd")], options: SearchOptions(offsets: true, context: 1)).count(text)
        #expect(r.snippets == [["\u{FFFD}x cd"]])
    }

    @Test func snippetWindowBoundsLongWords() throws {
        let w = SearchPlan.snippetWindow
        let long = String(repeating: "é", count: w)  // 2w bytes
        let text = long + " needle " + long
        let r = try run(b(text), ["needle"], SearchOptions(offsets: true, context: 1))
        let s = try #require(r.snippets?.first?.first)
        #expect(!s.contains("\u{FFFD}"))
        #expect(s.utf8.count <= 2 * w + 6)
        #expect(s.contains(" needle "))
    }

    /// The window drops only a character it cuts (one the text completes past it); bytes at its
    /// edges that are invalid in the text itself stay, U+FFFD each, as inside the window.
    @Test func snippetWindowCutsCharactersNotInvalidBytes() throws {
        let w = SearchPlan.snippetWindow
        let xs = [UInt8](repeating: UInt8(ascii: "x"), count: w - 1)
        let options = SearchOptions(offsets: true, context: 1)
        func snippet(_ text: [UInt8]) throws -> String {
            try #require(try run(text, ["Q"], options).snippets?.first?.first)
        }
        // After the match: its last window byte 0xFF / a lone lead, then more text.
        #expect(try snippet(b("Q") + xs + [0xFF] + b("xx")) == "Q" + String(repeating: "x", count: w - 1) + "\u{FFFD}")
        #expect(try snippet(b("Q") + xs + [0xC3] + b("xx")) == "Q" + String(repeating: "x", count: w - 1) + "\u{FFFD}")
        // A character the window cuts is dropped whole.
        #expect(try snippet(b("Q") + xs + b("é") + b("xx")) == "Q" + String(repeating: "x", count: w - 1))
        // Before the match: a stray continuation byte stays; the tail of a cut character goes.
        let before = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
        #expect(try snippet(before + [0x80] + xs + b("Q")).hasPrefix("\u{FFFD}x"))
        let cut = try snippet(before.dropLast() + b("é") + xs + b("Q"))
        #expect(cut == String(repeating: "x", count: w - 1) + "Q")
    }
}

/// A direct, slow statement of the semantics: try every position left to right.
private func reference(_ text: [UInt8], _ terms: [[UInt8]], _ o: SearchOptions) -> SearchResult {
    var counts: [Int] = []
    var offsets: [[Int]] = []
    var truncated = false
    text.withUnsafeBufferPointer { tb in
        guard let p = tb.baseAddress else {
            counts = terms.map { _ in 0 }
            offsets = terms.map { _ in [] }
            return
        }
        let n = tb.count
        for term in terms {
            let folded: [UInt32] = term.withUnsafeBufferPointer { q in
                var out: [UInt32] = []
                guard let qp = q.baseAddress else { return out }
                var i = 0
                while i < q.count {
                    let (u, len) = TextUnits.decode(qp, i, q.count)
                    out.append(TextUnits.fold(u))
                    i += len
                }
                return out
            }
            var c = 0
            var offs: [Int] = []
            var i = 0
            while i < n {
                var end: Int? = nil
                // ignore_case folds only terms with a cased letter; the rest compare byte for byte.
                if o.ignoreCase && !TextUnits.isCaseless(term) {
                    var j = i
                    var ok = true
                    for u in folded {
                        guard j < n else {
                            ok = false
                            break
                        }
                        if u >= TextUnits.rawBase {
                            // A term byte that is not UTF-8 matches that byte wherever it is.
                            if UInt32(p[j]) != u - TextUnits.rawBase {
                                ok = false
                                break
                            }
                            j += 1
                            continue
                        }
                        let (x, len) = TextUnits.decode(p, j, n)
                        if TextUnits.fold(x) != u {
                            ok = false
                            break
                        }
                        j += len
                    }
                    if ok { end = j }
                } else if i + term.count <= n && Array(tb[i..<(i + term.count)]) == term {
                    end = i + term.count
                }
                guard let e = end else {
                    i += 1
                    continue
                }
                if o.wholeWord {
                    let before = TextUnits.unitBefore(p, i, lo: 0, end: n).map(TextUnits.isWord) ?? false
                    let after = e < n && TextUnits.isWord(TextUnits.decode(p, e, n).unit)
                    if before || after {
                        i += TextUnits.length(p, i, n)
                        continue
                    }
                }
                c += 1
                if offs.count < o.maxOffsets { offs.append(i) } else { truncated = true }
                i = e
            }
            counts.append(c)
            offsets.append(offs)
        }
    }
    return SearchResult(counts: counts, offsets: o.offsets ? offsets : nil, truncated: o.offsets && truncated)
}

@Suite struct SearchRandomizedTests {
    static let pieces: [[UInt8]] =
        [
            "a", "b", "A", "k", "K", "s", "S", " ", " ", "\n", "\r\n", "_", "1", "-", "é", "É", "ß", "ẞ", "σ", "ς",
            "Σ", "\u{212A}", "\u{17F}", "\u{301}", "\u{A0}", "ab", "aa", "the", "The",
        ].map { Array($0.utf8) } + [[0xFF], [0xC3], [0xE2, 0x84], [0x80]]

    static func randomBytes(_ rng: inout Rng, maxPieces: Int) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<Int.random(in: 0...maxPieces, using: &rng) {
            out += pieces[Int.random(in: 0..<pieces.count, using: &rng)]
        }
        return out
    }

    /// Feeds `text` to one scanner of `plan` once per entry of `piecesUpTo`, in random pieces of
    /// at most that many bytes (the scanner reset between passes), and expects `whole` each time.
    static func expectStreamed(
        _ plan: SearchPlan, _ text: [UInt8], equals whole: SearchResult, piecesUpTo: [Int], rng: inout Rng, round: Int
    ) {
        var scanner = plan.makeScanner()
        for (attempt, most) in piecesUpTo.enumerated() {
            if attempt > 0 { scanner.reset() }
            var i = 0
            while i < text.count {
                let n = min(text.count - i, Int.random(in: 1...most, using: &rng))
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "round \(round) attempt \(attempt)")
        }
    }

    /// The whole text's counts and offsets equal the reference's, and streamed pieces the whole.
    static func expectReference(
        _ plan: SearchPlan, _ text: [UInt8], _ terms: [[UInt8]], _ o: SearchOptions, rng: inout Rng, round: Int
    ) {
        let whole = plan.count(text)
        let ref = reference(text, terms, o)
        #expect(whole.counts == ref.counts, "round \(round) \(plan.mode)")
        #expect(whole.offsets == ref.offsets, "round \(round)")
        expectStreamed(plan, text, equals: whole, piecesUpTo: [7, 64, 3000], rng: &rng, round: round)
    }

    @Test func streamingEqualsWholeAndReference() throws {
        var rng = Rng(state: 20_261_126)
        for round in 0..<1500 {
            let text = Self.randomBytes(&rng, maxPieces: round % 10 == 0 ? 400 : 40)
            var terms: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                var t = Self.randomBytes(&rng, maxPieces: 3)
                if t.isEmpty { t = [0x61] }
                terms.append(t)
            }
            let o = SearchOptions(
                ignoreCase: Bool.random(using: &rng), wholeWord: Bool.random(using: &rng),
                offsets: Bool.random(using: &rng), maxOffsets: Int.random(in: 0...6, using: &rng),
                context: Int.random(in: 0...3, using: &rng), words: Bool.random(using: &rng))
            let plan = try SearchPlan(terms: terms, options: o)
            let whole = plan.count(text)
            let ref = reference(text, terms, o)
            #expect(whole.counts == ref.counts, "round \(round)")
            #expect(whole.offsets == ref.offsets, "round \(round)")
            #expect(whole.truncated == ref.truncated, "round \(round)")
            if o.words {
                #expect(whole.words == text.split(whereSeparator: { TextUnits.isSpace($0) }).count)
            }
            Self.expectStreamed(plan, text, equals: whole, piecesUpTo: [7, 7, 64], rng: &rng, round: round)
        }
    }

    /// Every prefilter mode gives the reference result, whole and streamed.
    @Test(arguments: [
        (["Zq"], false, PrefilterMode.memchr), (["Zq", "Xj"], false, .bytes), (["Zq"], true, .bytes),
        (["the"], false, .pairs), (["the", "a"], true, .pairs),
        (["license", "software", "program", "the", "ab", "é", "k", "ss", "z"], false, .pairBitmap),
        (["license", "software", "program", "the", "ab", "é", "k", "ss", "z"], true, .pairBitmap),
        (
            [
                "license", "software", "program", "theses", "ababab", "éeée", "kisses", "z\u{212A}zzz", "cafés",
                "qwerty", "_-_-_-",
            ], false, .wuManber
        ),
        (
            [
                "license", "portable", "program", "thereby", "ababab", "éeée", "mmmmmm", "zzzzzz", "cafés", "quartz",
                "jujube", "voodoo", "fifty1",
            ], true,
            .wuManber
        ),
        // Sampled bitmap: every term has at least 3 fixed leading bytes.
        (["the", "and", "abc", "xyz", "qed", "fig", "kin", "éé", "a_b", "1-2", "aaa"], false, .pairBitmap),
        (["the", "and", "abc", "xyz", "qed", "fig", "pin", "éé", "a_b", "1-2", "aaaa"], true, .pairBitmap),
    ])
    func prefilterModes(terms: [String], ignoreCase: Bool, mode: PrefilterMode) throws {
        var rng = Rng(state: UInt64(terms.count * 31 + (ignoreCase ? 1 : 0)))
        let words = terms.map { Array($0.utf8) } + terms.map { Array($0.uppercased().utf8) }
        for round in 0..<100 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...120, using: &rng) {
                text +=
                    Bool.random(using: &rng)
                    ? words[Int.random(in: 0..<words.count, using: &rng)]
                    : Self.pieces[Int.random(in: 0..<Self.pieces.count, using: &rng)]
            }
            let o = SearchOptions(
                ignoreCase: ignoreCase, wholeWord: Bool.random(using: &rng), offsets: true,
                maxOffsets: 1000, context: Int.random(in: 0...2, using: &rng))
            // Teddy off: it would take every case with 3+ fixed bytes per term (see teddyDifferential).
            let plan = try SearchPlan(terms: terms.map { Array($0.utf8) }, options: o, exactLimit: 0, allowTeddy: false)
            #expect(plan.mode == mode)
            #expect(plan.stride == (terms.contains("xyz") ? 2 : 1))
            let whole = plan.count(text)
            let ref = reference(text, plan.terms, o)
            #expect(whole.counts == ref.counts, "round \(round)")
            #expect(whole.offsets == ref.offsets, "round \(round)")
            var scanner = plan.makeScanner()
            var i = 0
            while i < text.count {
                let n = min(text.count - i, Int.random(in: 1...40, using: &rng))
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "round \(round)")
        }
    }

    /// Short frequent terms compared at every position: which terms qualify, and results equal to
    /// the reference (and to the anchored prefilters) over long texts, whole and streamed.
    @Test func exactTerms() throws {
        func exact(_ terms: [String], ignoreCase: Bool) throws -> [Int] {
            try SearchPlan(terms: terms.map { Array($0.utf8) }, options: SearchOptions(ignoreCase: ignoreCase))
                .exact.map(\.term)
        }
        // Rare bytes or pairs ("Zq", "xyz", "fox"), length 5: anchored instead. Borders ("aa",
        // "abab") and rare terms ("Zq", "xyz") only with the one-pass kernel.
        #expect(
            try exact(["fox", "of", "you", "qed", "with"], ignoreCase: false)
                == (ExactTerm.hasKernel ? [0, 1, 2, 3, 4] : [1, 2, 4]))
        #expect(
            try exact(["the", "aa", "abab", "Zq", "xyz", "and", "there", "e", "a b"], ignoreCase: false)
                == (ExactTerm.hasKernel ? [0, 1, 2, 3, 4, 5, 7, 8] : [0, 5, 7, 8]))
        #expect(
            try SearchPlan(terms: [Array("Zq".utf8)], options: SearchOptions(wholeWord: true)).exact.isEmpty)
        // Under ignore_case: ASCII without k or s only.
        #expect(try exact(["the", "ask", "THE", "é", "on"], ignoreCase: true) == [0, 2, 4])
        #expect(try exact(Array(repeating: "the", count: 70), ignoreCase: false).count == SearchPlan.defaultExactLimit)

        var rng = Rng(state: 7)
        let words = [
            "the", "The", "THE", "then", "and", "band", "a", "e", "on", "no", "one", "ten", "é", "\u{212A}", "aaa",
            "anana", "eveve", "thathat", "nenene",
        ]
        .map { Array($0.utf8) }
        for round in 0..<200 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...600, using: &rng) {
                text +=
                    Bool.random(using: &rng)
                    ? words[Int.random(in: 0..<words.count, using: &rng)]
                    : Self.pieces[Int.random(in: 0..<Self.pieces.count, using: &rng)]
            }
            let termPool = [
                "the", "and", "e", "on", "ne", "a", "ten", "the n", "hen", "aa", "ana", "eve", "that", "nene",
            ]
            let terms = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                Array(termPool[Int.random(in: 0..<termPool.count, using: &rng)].utf8)
            }
            let o = SearchOptions(
                ignoreCase: Bool.random(using: &rng), wholeWord: Bool.random(using: &rng),
                offsets: Bool.random(using: &rng), maxOffsets: Int.random(in: 0...50, using: &rng),
                context: Int.random(in: 0...2, using: &rng))
            let plan = try SearchPlan(terms: terms, options: o)
            let borders = ExactTerm.hasKernel && !o.wholeWord && !o.offsets
            #expect(plan.exact.count == terms.filter { $0.count <= 4 && (borders || !ExactTerm.hasBorder($0)) }.count)
            let whole = plan.count(text)
            #expect(whole == (try SearchPlan(terms: terms, options: o, exactLimit: 0)).count(text), "round \(round)")
            let ref = reference(text, terms, o)
            #expect(whole.counts == ref.counts, "round \(round)")
            #expect(whole.offsets == ref.offsets, "round \(round)")
            var scanner = plan.makeScanner()
            var i = 0
            while i < text.count {
                let n = min(text.count - i, Int.random(in: 1...(round % 2 == 0 ? 9 : 200), using: &rng))
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "round \(round)")
        }
    }

    /// Teddy (on a CPU with SSSE3, AVX2 or AVX-512 VBMI: each kernel it runs) and the one-pass
    /// short-term kernel against the reference:
    /// random term sets (shared prefixes, 1-byte terms, terms longer than 16 bytes, non-ASCII, case
    /// variants, duplicates), random options, texts long enough for many SIMD steps, whole and
    /// streamed in small, medium and big (scanned in place) pieces.
    @Test func teddyDifferential() throws {
        var rng = Rng(state: 2026)
        let pool = [
            "the", "then", "there", "therein", "thermometer and more than 16", "and", "andante", "abc", "abd",
            "abe", "xyz", "été", "café", "kiss", "KISS", "sss", "aaaa", "ababab", "zzz", "qed", "a_b", "1-2",
            "Straße", "STRASSE", "σας", "that", "hat", "at th", "a", "e", "k", "of", "oo",
            // Longer words with distinct pairs: with the short terms counted by the one-pass
            // kernel, Teddy then gets 4-byte fingerprints (not the pair set).
            "window", "winter", "garden", "letter", "morning", "mother", "market", "marmalade", "river",
            "rivet", "gramophone",
        ]
        let long = pool.filter { $0.utf8.count >= 3 }
        let friendly = long.filter { !"kKsS".contains($0.prefix(1)) }
        let words = pool.map { Array($0.utf8) } + pool.map { Array($0.uppercased().utf8) }
        var teddyRounds = 0
        var fourByteRounds = 0  // fingerprints of 4 or 5 bytes (every anchored term has 4+ fixed bytes)
        var fiveByteRounds = 0  // 5 bytes (AVX-512 VBMI levels)
        var narrowRounds = 0  // the 64-entry tables (fingerprints of bytes 0x41-0x7F only)
        for round in 0..<300 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...700, using: &rng) {
                text +=
                    Int.random(in: 0..<3, using: &rng) == 0
                    ? words[Int.random(in: 0..<words.count, using: &rng)]
                    : Self.pieces[Int.random(in: 0..<Self.pieces.count, using: &rng)]
            }
            // Mostly terms of 3+ fixed bytes (Teddy's), sometimes a short one (exact or anchored).
            // Every other round only terms with 3+ fixed leading bytes under any options (no
            // leading k or s: KELVIN SIGN and LONG S spell those in 3 and 2 bytes).
            let teddyOnly = round % 2 == 0
            let terms = (0..<Int.random(in: teddyOnly ? 12...24 : 1...14, using: &rng)).map { _ in
                let from = teddyOnly ? friendly : Int.random(in: 0..<5, using: &rng) == 0 ? pool : long
                return Array(from[Int.random(in: 0..<from.count, using: &rng)].utf8)
            }
            let o = SearchOptions(
                ignoreCase: Bool.random(using: &rng), wholeWord: Bool.random(using: &rng),
                offsets: Int.random(in: 0..<3, using: &rng) == 0, maxOffsets: 1000,
                context: Int.random(in: 0...1, using: &rng))
            // Each Teddy kernel this CPU runs (VBMI with 64- and 128-entry tables, AVX2, SSSE3) in turn.
            let level = TeddyPrefilter.widest > 0 ? 1 + round % TeddyPrefilter.widest : 0
            let plan = try SearchPlan(
                terms: terms, options: o, exactLimit: Bool.random(using: &rng) ? 0 : SearchPlan.defaultExactLimit,
                teddyLevel: level)
            if plan.mode == .teddy { teddyRounds += 1 }
            if case .teddy(let f) = plan.prefilter { #expect(Int(f.tables.level) == level) }
            if case .teddy(let f) = plan.prefilter, f.tables.length >= 4 { fourByteRounds += 1 }
            if case .teddy(let f) = plan.prefilter, f.tables.length == 5 {
                fiveByteRounds += 1
                #expect(level >= 3)
            }
            if case .teddy(let f) = plan.prefilter, level == 4, f.tables.narrow != 0 { narrowRounds += 1 }
            Self.expectReference(plan, text, terms, o, rng: &rng, round: round)
        }
        // Teddy is chosen when every anchored term has 3+ fixed leading bytes and the CPU has it.
        print(
            "teddyDifferential: Teddy in \(teddyRounds) of 300 rounds, \(fourByteRounds) on 4+ bytes (\(fiveByteRounds) on 5), \(narrowRounds) with 64-entry tables"
        )
        if TeddyPrefilter.level > 0 {
            #expect(teddyRounds > 60)
            #expect(fourByteRounds >= 5 && fourByteRounds < teddyRounds)
            if TeddyPrefilter.widest >= 4 { #expect(narrowRounds >= 5) }
            if TeddyPrefilter.widest >= 3 { #expect(fiveByteRounds >= 3) }
        } else {
            #expect(teddyRounds == 0)
        }
    }

    /// Teddy's C-confirmed terms get a hash table with one term per slot where 16 times more slots
    /// than the least allow it (a candidate is then compared with one term): the 52 long terms
    /// of target 14.5 shared slots at 256 ("there" with "mymyohu"), none at 1,024. Counts as the
    /// reference.
    @Test func teddyConfirmSlotsHoldOneTerm() throws {
        guard TeddyPrefilter.level > 0 else {
            print("teddyConfirmSlotsHoldOneTerm: skipped, no Teddy kernel on this CPU")
            return
        }
        let words = [
            "there", "about", "would", "could", "garden", "morning", "letter", "window", "river", "evening", "mother",
            "father", "village", "winter", "summer", "journey", "kitchen", "doctor", "church", "market", "forest",
            "station", "harbour", "bridge", "lighthouse", "zeppelin", "marmalade", "telegram", "gramophone",
            "velocipede", "aaaoutys", "cfhlpnsa", "ctndio", "dlhesvnvsc", "eaowul", "erifmo", "fitea", "hfunds",
            "huloeonh", "iymsuleliy", "lomwsoy", "miwpftse", "mymyohu", "ocpfswswbd", "opedeiiw", "pynucdmn",
            "rnoam", "srusde", "tenecroewl", "ttppouurri", "vcfitnpria", "wtlanuoivi",
        ]
        let terms = words.map { Array($0.utf8) }
        let plan = try SearchPlan(terms: terms, options: SearchOptions(), exactLimit: SearchPlan.defaultExactLimit)
        guard case .teddy(let f) = plan.prefilter else {
            Issue.record("expected Teddy, got \(plan.mode)")
            return
        }
        // The table's rows, and one spare entry for the row path's empty slots.
        #expect(f.confirmStart.last.map(Int.init) == terms.count)
        #expect(f.confirmTerms.count == terms.count + 1)
        // Every slot's one term has a row but the self-overlapping ones' (window, river, church...).
        let bordered = words.filter { ExactTerm.hasBorder(Array($0.utf8)) }
        #expect(bordered == ["window", "river", "church", "huloeonh", "iymsuleliy"])
        #expect(f.confirmRow.filter { $0 == 0xFE }.count == bordered.count)
        #expect(f.confirmRow.filter { $0 < 52 }.count == terms.count - bordered.count)
        let sizes = zip(f.confirmStart.dropFirst(), f.confirmStart).map { $0 - $1 }
        #expect(sizes.allSatisfy { $0 <= 1 }, "slots of 2+ terms: \(sizes.filter { $0 > 1 }.count)")
        #expect(f.confirmBits >= 8 && f.confirmBits <= 12)
        var rng = Rng(state: 52)
        var text: [UInt8] = []
        for _ in 0..<3000 { text += Array((words[Int.random(in: 0..<words.count, using: &rng)] + " ").utf8) }
        #expect(plan.count(text).counts == reference(text, terms, SearchOptions()).counts)
    }

    /// `ccsk_confirm_long` called directly with more candidates of one row than a byte lane holds
    /// (600 `about`, one call; Teddy's batches stay under 255 of one term): every one counted, in
    /// the row path and the general one alike, and a range's bounds (`lo`, `limit`) respected.
    @Test func teddyConfirmRowsManyOfOneTerm() throws {
        let terms = ["about", "would", "garden"].map { Array($0.utf8) }
        let plan = try SearchPlan(terms: terms, options: SearchOptions(), exactLimit: SearchPlan.defaultExactLimit)
        guard case .teddy(let f) = plan.prefilter, !f.confirmRow.isEmpty else {
            print("teddyConfirmRowsManyOfOneTerm: skipped, no row path for these terms here (\(plan.mode))")
            return
        }
        let text = Array([String](repeating: "about ", count: 600).joined().utf8) + [UInt8](repeating: 0x20, count: 16)
        let hits = (0..<600).map { $0 * 6 }
        for (row, lo, limit, expected) in [(true, 0, Int.max, 600), (false, 0, Int.max, 600), (true, 61, 3001, 490)] {
            var counts = [Int](repeating: 0, count: 3)
            var next = [Int](repeating: lo, count: 3)
            var first = [Int](repeating: Int.max, count: 3)
            f.confirmStart.withUnsafeBufferPointer { start in
                f.confirmTerms.withUnsafeBufferPointer { rows in
                    f.confirmRow.withUnsafeBufferPointer { rowOf in
                        var table = ccsk_long_table(
                            start: start.baseAddress, terms: rows.baseAddress, key: f.confirmKey, bits: f.confirmBits,
                            row: row ? rowOf.baseAddress : nil, rows: Int32(terms.count))
                        ccsk_confirm_long(
                            &table, text, text.count, hits, hits.count, 0, lo, limit, &counts, &next, &first)
                    }
                }
            }
            #expect(counts == [expected, 0, 0], "row path \(row), \(lo)..<\(limit)")
        }
    }

    /// Terms whose first 4 bytes are equal hash to one slot however many slots there are: the
    /// table is not grown for them.
    @Test func teddyConfirmSlotsNotGrownForEqualKeys() throws {
        let terms = ["there", "therefore", "thereby", "garden", "gardener"].map { Array($0.utf8) }
        let plan = try SearchPlan(terms: terms, options: SearchOptions(), exactLimit: SearchPlan.defaultExactLimit)
        guard case .teddy(let f) = plan.prefilter, f.tables.length >= 4 else {
            print("teddyConfirmSlotsNotGrownForEqualKeys: skipped, these terms take \(plan.mode) here")
            return
        }
        #expect(f.confirmBits == 6)  // the least: 64 slots, at least 4 per term
        let text = Array("there therefore thereby garden gardener gardens theretherefore".utf8)
        #expect(plan.count(text).counts == reference(text, terms, SearchOptions()).counts)
    }

    /// Five-byte fingerprints (AVX-512 VBMI): terms whose first four bytes collide (`there`,
    /// `therm`...) are told apart by the fifth, in 8 buckets up to `halfBuckets` fingerprints and
    /// in 16 past it; counts equal the reference at every level this CPU runs, and the nibble
    /// levels keep 4 bytes. The kernel alone returns exactly the positions where some term's first
    /// five bytes are (each bucket here holds one fingerprint, so the tables are exact).
    @Test func teddyFiveByteFingerprints() throws {
        guard TeddyPrefilter.widest > 0 else {
            print("teddyFiveByteFingerprints: skipped, no Teddy kernel on this CPU")
            return
        }
        var rng = Rng(state: 55)
        // "re-a": a byte outside 0x41-0x7F, so level 4 takes its 128-entry tables there. No k or s
        // (KELVIN SIGN and LONG S match them under ignore_case: no fixed bytes there).
        let stems = ["ther", "trat", "grea", "cont", "wind", "Ther", "re-a", "houp"]
        let letters = Array("abcdefghijlmnopqrtuvwxyzE".utf8)
        func word(_ stem: String) -> [UInt8] {
            Array(stem.utf8)
                + (0..<Int.random(in: 1...5, using: &rng)).map { _ in letters.randomElement(using: &rng) ?? 0x61 }
        }
        for (n, buckets) in [(40, 8), (220, 16)] {
            var set = Set<[UInt8]>()
            while set.count < n { set.insert(word(stems.randomElement(using: &rng) ?? "ther")) }
            let terms = set.sorted { $0.lexicographicallyPrecedes($1) }
            let prints = Set(terms.map { $0.prefix(5) }).count
            #expect((prints <= TeddyPrefilter.halfBuckets) == (buckets == 8), "\(prints) fingerprints")
            for level in 1...TeddyPrefilter.widest {
                for round in 0..<6 {
                    var text: [UInt8] = []
                    for _ in 0..<Int.random(in: 100...900, using: &rng) {
                        switch Int.random(in: 0..<4, using: &rng) {
                        case 0: text += terms.randomElement(using: &rng) ?? []
                        case 1: text += word(stems.randomElement(using: &rng) ?? "ther")  // a near miss, mostly
                        case 2: text += Array((terms.randomElement(using: &rng) ?? []).prefix(4))
                        default: text += Self.pieces.randomElement(using: &rng) ?? []
                        }
                    }
                    let o = SearchOptions(
                        ignoreCase: round % 3 == 1, wholeWord: round % 3 == 2, offsets: round == 0, maxOffsets: 1000)
                    let plan = try SearchPlan(terms: terms, options: o, exactLimit: 0, teddyLevel: level)
                    guard case .teddy(let f) = plan.prefilter else {
                        Issue.record("\(n) terms, level \(level): \(plan.mode), not Teddy")
                        continue
                    }
                    #expect(Int(f.tables.length) == (level >= 3 ? 5 : 4), "level \(level)")
                    let half = level >= 3 && f.fingerprints <= TeddyPrefilter.halfBuckets
                    #expect((f.tables.half != 0) == half, "level \(level), \(f.fingerprints) fingerprints")
                    if level >= 3 && !o.ignoreCase { #expect(f.fingerprints == prints) }
                    Self.expectReference(plan, text, terms, o, rng: &rng, round: round)
                }
            }
        }
        // The kernel's candidates: exactly where a 5-byte fingerprint is, not where only 4 are.
        guard TeddyPrefilter.widest >= 3 else { return }
        let terms = ["theory", "thermal"].map { Array($0.utf8) }
        let plan = try SearchPlan(terms: terms, options: SearchOptions(), exactLimit: 0, teddyLevel: 3)
        guard case .teddy(let f) = plan.prefilter, f.tables.length == 5 else {
            Issue.record("expected 5-byte Teddy, got \(plan.mode)")
            return
        }
        var text: [UInt8] = []
        var expected: [Int] = []
        for i in 0..<400 {
            if i % 7 == 3 { expected.append(text.count) }
            text += Array((i % 7 == 3 ? (i % 2 == 0 ? "theory " : "thermal ") : i % 2 == 0 ? "there " : "then ").utf8)
        }
        text += [UInt8](repeating: 0x20, count: 64)
        for level in 3...TeddyPrefilter.widest {
            var tables = f.tables
            tables.level = Int32(level)
            var position = 0
            var hits = [Int](repeating: 0, count: 256)
            var found: [Int] = []
            while true {
                let k = text.withUnsafeBufferPointer { t in
                    hits.withUnsafeMutableBufferPointer { h in
                        ccsk_teddy_scan(&tables, t.baseAddress, t.count, &position, t.count, h.baseAddress, 256)
                    }
                }
                found += hits.prefix(k)
                if k + 64 <= 256 { break }
            }
            #expect(found == expected.filter { $0 < position }, "level \(level)")
            #expect(position + 128 >= text.count, "level \(level): stopped at \(position)")
        }
    }

    /// Teddy's candidates confirmed and counted in C (terms of up to 16 bytes without ignore_case,
    /// whole_word or offsets; the others through the Swift check) against the reference, at each
    /// Teddy level this CPU runs: self-overlapping terms (`aaaaa`, `abcab`), terms of exactly 16 and
    /// of 17+ bytes, duplicates, texts dense with matches over a small alphabet that sometimes end
    /// mid-term, whole and streamed in small, medium and big pieces (matches on piece edges).
    @Test func teddyConfirmDifferential() throws {
        var rng = Rng(state: 1405)
        let pool = [
            "aaaaa", "abcab", "abcabcab", "zebra", "zebras", "garden", "gardener", "windowsill", "mississippi",
            "abcdefghijklmnop", "abcdefghijklmnopq", "aaaaaaaaaaaaaaaa", "abab ab", "the cat", "thermometer",
            "therein", "there", "Zebra", "caf\u{E9}s", "qrstu", "bcabc", "cabca",
        ]
        let fragments = [
            "a", "b", "c", "ab", "abc", " ", "z", "the", "gard", "\u{E9}", "Z", "\n", "mississ", "abcdefgh",
        ]
        let words = (pool + fragments).map { Array($0.utf8) }
        let levels = TeddyPrefilter.widest
        var confirmedRounds = 0
        for round in 0..<240 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...(round % 4 == 0 ? 1500 : 200), using: &rng) {
                text += words[Int.random(in: 0..<words.count, using: &rng)]
            }
            // Text ending inside a term.
            if Bool.random(using: &rng), let t = pool.randomElement(using: &rng) {
                text += Array(t.utf8).prefix(Int.random(in: 1..<t.utf8.count, using: &rng))
            }
            let terms = (0..<Int.random(in: 9...20, using: &rng)).map { _ in
                Array(pool[Int.random(in: 0..<pool.count, using: &rng)].utf8)
            }
            let plain = round % 2 == 0
            let o =
                plain
                ? SearchOptions()
                : SearchOptions(
                    ignoreCase: Bool.random(using: &rng), wholeWord: Bool.random(using: &rng),
                    offsets: Bool.random(using: &rng), maxOffsets: 1000)
            let level = levels > 0 ? 1 + round % levels : 0
            let plan = try SearchPlan(
                terms: terms, options: o, exactLimit: SearchPlan.defaultExactLimit, teddyLevel: level)
            if case .teddy(let f) = plan.prefilter {
                let expected =
                    o.ignoreCase || o.wholeWord || o.offsets ? [] : Set(terms.indices.filter { terms[$0].count <= 16 })
                #expect(f.confirmed == expected, "round \(round)")
                #expect(f.checksInSwift == (f.confirmed.count < terms.count), "round \(round)")
                if !f.confirmed.isEmpty { confirmedRounds += 1 }
            }
            Self.expectReference(plan, text, terms, o, rng: &rng, round: round)
        }
        print("teddyConfirmDifferential: terms confirmed in C in \(confirmedRounds) of 240 rounds")
        #expect(levels == 0 ? confirmedRounds == 0 : confirmedRounds > 60)  // of 120 plain rounds
    }

    /// The packed pair (one anchored term, two of its bytes compared at their distance) against the
    /// reference, at each kernel width this CPU runs (SSE2, AVX2, AVX-512BW): random texts over a
    /// small alphabet (many candidates and self-overlapping matches), needles of 1...40 bytes,
    /// random options, whole and streamed.
    @Test func packedPairDifferential() throws {
        #expect(
            PackedPairPrefilter.choose(fixed: Array("garden".utf8).map { [$0] }, foldMask: 0).map {
                [$0.offset, Int($0.first), $0.distance, Int($0.second)]
            } == [0, 0x67, 3, 0x64])  // g, d: the two rarest
        #expect(PackedPairPrefilter.choose(fixed: [[0x61]], foldMask: 0) == nil)
        let levels = Array(1...max(1, Int(PackedPairPrefilter.level)))
        if PackedPairPrefilter.level == 0 {
            print("packedPairDifferential: no packed-pair kernel on this CPU; checking the fallback only")
        }
        var rng = Rng(state: 1414)
        let alphabet: [[UInt8]] = ["a", "b", "g", "d", "G", "D", " ", "\n", "é", "É", "\u{212A}", "k", "ß"].map {
            Array($0.utf8)
        }
        func random(_ maxPieces: Int, _ rng: inout Rng) -> [UInt8] {
            var out: [UInt8] = []
            for _ in 0..<Int.random(in: 0...maxPieces, using: &rng) {
                out += alphabet[Int.random(in: 0..<(Bool.random(using: &rng) ? 4 : alphabet.count), using: &rng)]
            }
            return out
        }
        var packed = 0
        for round in 0..<600 {
            let level = Int32(levels[round % levels.count])
            var needle = Array(random(40, &rng).prefix(Int.random(in: 1...40, using: &rng)))
            if needle.isEmpty { needle = [0x61] }
            if round % 3 == 0 {
                // Self-overlapping: a period repeated (abab..., gdgdg...).
                let period = Array(needle.prefix(Int.random(in: 1...3, using: &rng)))
                needle = Array((0..<20).flatMap { _ in period }.prefix(Int.random(in: 2...40, using: &rng)))
            }
            var text = random(round % 10 == 0 ? 1500 : 300, &rng)
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let at = Int.random(in: 0...text.count, using: &rng)
                text.insert(contentsOf: needle, at: at)
            }
            let o = SearchOptions(
                ignoreCase: Bool.random(using: &rng), wholeWord: Int.random(in: 0..<4, using: &rng) == 0,
                offsets: Bool.random(using: &rng), maxOffsets: 1000)
            let plan = try SearchPlan(terms: [needle], options: o, exactLimit: 0, pairLevel: level)
            if plan.mode == .packedPair { packed += 1 }
            let whole = plan.count(text)
            let ref = reference(text, [needle], o)
            #expect(whole.counts == ref.counts, "round \(round) level \(level)")
            #expect(whole.offsets == ref.offsets, "round \(round) level \(level)")
            var scanner = plan.makeScanner()
            var i = 0
            while i < text.count {
                let n = min(text.count - i, Int.random(in: 1...(round % 2 == 0 ? 70 : 700), using: &rng))
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "round \(round) level \(level)")
        }
        print("packedPairDifferential: packed pair in \(packed) of 600 rounds")
        // Needles with a rare byte (uppercase, UTF-8, a line feed) go to memchr or the byte set.
        #expect(PackedPairPrefilter.level == 0 ? packed == 0 : packed > 120)
    }

    /// The packed pair at every offset of texts whose lengths straddle the kernels' steps (16, 32,
    /// 64, 128, 256 bytes): one match wherever it sits, at each width, needles of 2 to 40 bytes whose two
    /// bytes sit at their start, middle or end.
    @Test func packedPairEveryOffset() throws {
        let levels = Array(1...max(1, Int(PackedPairPrefilter.level)))
        let needles = ["gd", "dg", "hm", "garden", "xgardenx", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaahm", "hmaaaaaaa"]
        let lengths = [
            0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 66, 100, 127, 128, 129, 130, 191, 192, 193, 256, 300,
        ]
        for level in levels {
            for needle in needles.map({ Array($0.utf8) }) {
                let plan = try SearchPlan(
                    terms: [needle], options: SearchOptions(offsets: true), exactLimit: 0, pairLevel: Int32(level))
                if PackedPairPrefilter.level > 0 { #expect(plan.mode == .packedPair) }
                for length in lengths where length >= needle.count {
                    for at in 0...(length - needle.count) {
                        // Filler holding the needle's bytes, never the needle itself.
                        var text = [UInt8](repeating: 0x61 == needle.first ? 0x62 : 0x61, count: length)
                        text.replaceSubrange(at..<(at + needle.count), with: needle)
                        let r = plan.count(text)
                        #expect(
                            r.counts == [1] && r.offsets == [[at]], "\(needle) level \(level) length \(length) at \(at)"
                        )
                    }
                }
            }
        }
    }

    /// The short-term kernel at every width this CPU has (AVX-512 table lookups per group of
    /// terms, bitmaps from bit planes and from compares, AVX2 passes) against the
    /// reference: up to 48 short terms (1-byte, self-overlapping such as "aa" and "abab", shared
    /// bytes, ignore_case), texts of many 64-byte steps with odd lengths, whole and streamed in pieces
    /// of odd sizes (the kernel's edges: its last 32-position step, the 3 bytes its loads reach past).
    @Test func shortKernelWidths() throws {
        var rng = Rng(state: 1130)
        let levels = [2, 3, 4, 5].filter { $0 <= ExactTerm.kernelLevel }
        // NUL in terms and text: the AVX-512 kernel reads the block after the last one with a
        // masked load (zeros past the text), whose bytes must never complete a match. Terms of
        // letters alone (a third of the rounds) take level 5, whose tables hold bytes 0x40-0x7F by
        // their low 6 bits: "!" (0x21), 0xE2, 0xB4 and "(" share them with a, b, t and h.
        let alphabet = Array("abthe\u{0}AB n!(".utf8) + [0xFF, 0xE2, 0xB4]
        var rounds = 0
        for round in 0..<120 {
            let size = Int.random(in: 0...(round % 4 == 0 ? 9000 : 1500), using: &rng)
            // A small alphabet: many matches, long runs for the self-overlapping terms.
            let text = (0..<size).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            let termBytes = round % 3 == 0 ? Array("abtheAB".utf8) : Array(alphabet[0..<8])
            let terms = (0..<Int.random(in: 1...48, using: &rng)).map { _ in
                (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                    termBytes[Int.random(in: 0..<termBytes.count, using: &rng)]
                }
            }
            let o = SearchOptions(ignoreCase: Bool.random(using: &rng))
            let ref = reference(text, terms, o)
            for level in levels {
                let plan = try SearchPlan(
                    terms: terms, options: o, exactLimit: SearchPlan.defaultExactLimit, shortKernelLevel: level)
                #expect(!ExactTerm.hasKernel || plan.exact.count == terms.count, "round \(round)")
                #expect(plan.count(text).counts == ref.counts, "round \(round) level \(level)")
                var scanner = plan.makeScanner()
                var i = 0
                while i < text.count {
                    let n = min(text.count - i, [1, 63, 65, 127, 1000, 4099][Int.random(in: 0..<6, using: &rng)])
                    text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                    i += n
                }
                #expect(scanner.finish().counts == ref.counts, "round \(round) level \(level) streamed")
                rounds += 1
            }
        }
        print("shortKernelWidths: levels \(levels), \(rounds) plans")
        #expect(rounds == 120 * levels.count)
    }

    /// The kernel's C entry point at every width against the others: random `from`, `to`, text
    /// ends, resume positions of self-overlapping terms, up to 64 terms (more distinct bytes and
    /// shifted rows than the AVX-512 kernel keeps: it then hands over to AVX2).
    @Test func shortKernelEntryPointWidthsAgree() {
        guard ExactTerm.kernelLevel >= 3 else {
            print("shortKernelEntryPointWidthsAgree: skipped, no AVX-512 kernel on this CPU")
            return
        }
        var rng = Rng(state: 64)
        for round in 0..<3000 {
            // Some rounds with 20 letters: a self-overlapping term's sparse matches take the
            // AVX-512 kernel's whole-vector count, the close ones its bit-by-bit path.
            let alpha = Int.random(in: 2...(round % 10 == 0 ? 60 : round % 10 == 1 ? 20 : 6), using: &rng)
            // Some texts of several blocks of the level-5 kernel (62 rounds of 128 positions).
            let count = Int.random(in: 0...(round % 40 == 0 ? 20000 : 3000), using: &rng)
            let fold = Bool.random(using: &rng)
            // A byte in 40 outside 0x40-0x7F with the low 6 bits of a letter: level 5's tables must
            // not take it for the letter (it raises such bytes to '@', 0x40, also in the text).
            let text = (0..<count).map { _ in
                let letter = UInt8(0x41 + Int.random(in: 0..<alpha, using: &rng)) | (fold ? 0 : 0x20)
                switch Int.random(in: 0..<40, using: &rng) {
                case 0: return letter ^ [0x40, 0x80, 0xC0][round % 3]
                case 1: return 0x40
                default: return letter
                }
            }
            // Some rounds with a term that matches '@' (0x60, '`', when folded): level 5 leaves them
            // to level 4.
            let at = round % 7 == 0
            let terms = (0..<Int.random(in: 1...64, using: &rng)).map { _ in
                let bytes = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                    at && Int.random(in: 0..<20, using: &rng) == 0
                        ? UInt8(fold ? 0x60 : 0x40) : UInt8(0x61 + Int.random(in: 0..<alpha, using: &rng))
                }
                return ExactTerm(
                    term: 0, bytes: bytes, folds: bytes.map { _ in fold ? 0x20 : 0 },
                    bordered: ExactTerm.hasBorder(bytes)
                ).kernelTerm
            }
            let from = Int.random(in: 0...count, using: &rng)
            let to = Int.random(in: from...count, using: &rng)
            let start = terms.map { _ in Int64(from + Int.random(in: 0...3, using: &rng)) }
            var results: [(Int, [Int64], [Int64])] = []
            for level in [2, 3, 4, 5] where level <= ExactTerm.kernelLevel {
                var counts = [Int64](repeating: 0, count: terms.count)
                var next = start
                let stop = text.withUnsafeBufferPointer { t in
                    terms.withUnsafeBufferPointer { k in
                        ccsk_count_short_level(
                            Int32(level), t.baseAddress, count, from, to, k.baseAddress, terms.count, &counts, &next)
                    }
                }
                // A bordered term's resume position where it lies past `stop` (before it, any
                // value up to `stop` blocks nothing more: see ccsk_count_short).
                results.append((stop, counts, zip(next, terms).map { $1.bordered != 0 ? max($0, Int64(stop)) : 0 }))
            }
            for r in results.dropFirst() {
                #expect(results[0].0 == r.0, "round \(round)")
                #expect(results[0].1 == r.1, "round \(round)")
                #expect(results[0].2 == r.2, "round \(round)")
            }
        }
    }

    /// Big chunks are scanned in place (no snippets): seams between them must not lose matches.
    @Test func streamingBigChunksInPlace() throws {
        var rng = Rng(state: 99)
        for round in 0..<60 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 500...3000, using: &rng) {
                text += Self.pieces[Int.random(in: 0..<Self.pieces.count, using: &rng)]
            }
            var terms: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                var t = Self.randomBytes(&rng, maxPieces: 4)
                if t.isEmpty { t = [0x73] }
                terms.append(t)
            }
            let o = SearchOptions(
                ignoreCase: Bool.random(using: &rng), wholeWord: Bool.random(using: &rng),
                offsets: Bool.random(using: &rng), maxOffsets: 100_000, words: Bool.random(using: &rng))
            let plan = try SearchPlan(terms: terms, options: o)
            let whole = plan.count(text)
            #expect(whole.counts == reference(text, terms, o).counts, "round \(round)")
            var scanner = plan.makeScanner()
            var i = 0
            while i < text.count {
                let n = min(text.count - i, Int.random(in: 1...1500, using: &rng))
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "round \(round)")
            #expect(scanner.buffer.count <= 2 * (plan.lookahead + plan.lookbehind) + 1500)
        }
    }

    /// A term anchored far from its start opens its snippet after a shorter term's match that
    /// starts later; the text the earlier snippet needs must still be kept. (The pair set anchors
    /// a term on its rarest pair; with AVX-512 VBMI these two terms would take Teddy, which anchors
    /// on the first bytes.)
    @Test func streamingKeepsTextForEveryPendingSnippet() throws {
        let w = SearchPlan.snippetWindow
        let text = b(
            String(repeating: "y", count: w + 100) + " gamma alpha beta needle Z " + String(repeating: "x ", count: w))
        let plan = try SearchPlan(
            terms: [b("needle"), b("gamma alpha beta needle Z")], options: SearchOptions(offsets: true, context: 1),
            exactLimit: SearchPlan.defaultExactLimit, allowTeddy: false)
        #expect(plan.maxAnchorOffset > 8)
        let whole = plan.count(text)
        #expect(whole.counts == [1, 1])
        for chunk in [64, 1000, 5000] {
            var scanner = plan.makeScanner()
            var i = 0
            while i < text.count {
                let n = min(chunk, text.count - i)
                text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                i += n
            }
            #expect(scanner.finish() == whole, "chunk \(chunk)")
        }
    }

    @Test func streamingSnippetsAcrossLargeText() throws {
        // Text longer than the snippet window on both sides, so streaming must drop and keep text.
        var rng = Rng(state: 7)
        // The long phrase is anchored far from its start, so its snippets open after those of the
        // "needle" inside it although it starts earlier.
        let words = ["alpha", "beta", "gamma", "needle", "Needle", "é", "\n", "x\r\n", "gamma needle alpha beta Z"]
        var text: [UInt8] = []
        while text.count < 40_000 {
            text += Array(words[Int.random(in: 0..<words.count, using: &rng)].utf8)
            text += Int.random(in: 0..<5, using: &rng) == 0 ? [0x20, 0x20] : [0x20]
        }
        for o in [
            SearchOptions(ignoreCase: true, offsets: true, maxOffsets: 5000, context: 3),
            SearchOptions(wholeWord: true, offsets: true, maxOffsets: 5000, context: 50, words: true),
        ] {
            let plan = try SearchPlan(
                terms: [b("needle"), b("a g"), b("é"), b("gamma needle alpha beta Z")], options: o)
            #expect(plan.maxAnchorOffset > 8)
            let whole = plan.count(text)
            #expect(whole.counts[0] > 100)
            for chunk in [1, 100, 4096, 65536] {
                var scanner = plan.makeScanner()
                var i = 0
                while i < text.count {
                    let n = min(chunk, text.count - i)
                    text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                    i += n
                }
                #expect(scanner.finish() == whole, "chunk \(chunk)")
                #expect(scanner.buffer.count < 2 * SearchPlan.snippetWindow + 65536 + 200)
            }
        }
    }
}
