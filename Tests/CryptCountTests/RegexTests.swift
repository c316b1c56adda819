import Testing

@testable import CryptCount

private func b(_ s: String) -> [UInt8] { Array(s.utf8) }

private func plan(_ patterns: [String], _ o: SearchOptions = SearchOptions()) throws -> SearchPlan {
    var o = o
    o.regex = true
    return try SearchPlan(terms: patterns.map(b), options: o)
}

private func counts(_ text: String, _ patterns: [String], _ o: SearchOptions = SearchOptions()) throws -> [Int] {
    try plan(patterns, o).count(b(text)).counts
}

private func refusal(_ patterns: [String]) -> SearchPlanError? {
    do {
        _ = try plan(patterns)
        return nil
    } catch {
        return error as? SearchPlanError
    }
}

@Suite struct RegexTests {
    @Test func countsAsRipgrep() throws {
        let text = "singing walking café naïve\nrain rainy rainfall rained\n2024-01-02 John Smith\nHeron EGRET"
        #expect(
            try counts(
                text,
                [
                    #"\b\w+ing\b"#, "rain(y|fall|ed)?", #"\d{4}-\d{2}-\d{2}"#, "[A-Z][a-z]+ [A-Z][a-z]+",
                    "(?i)heron|egret|swan",
                ]) == [2, 4, 1, 1, 2])
        // \w, \d and \s are Unicode, as in ripgrep.
        #expect(try counts("café ٣٤ x\u{00A0}y", [#"\w+"#, #"\d"#, #"\s"#]) == [4, 2, 3])
        // Non-overlapping, leftmost first.
        #expect(try counts("aaaaa", ["aa", "a|aa"]) == [2, 5])
    }

    @Test func matchesNeverSpanLines() throws {
        #expect(try counts("a\nb", [#"a\sb"#, "a[^x]b", "a.b", #"a\W*b"#]) == [0, 0, 0, 0])
        #expect(try counts("ab\nab\n", ["^ab$", "b$", "^a"]) == [2, 2, 2])
    }

    @Test func invalidUTF8IsMatchedByNoClass() throws {
        let text: [UInt8] = [0x61, 0xFF, 0x62, 0x20, 0xED, 0xA0, 0x80, 0x63]
        let r = try plan([".", "[^x]", #"\W"#, #"\S+"#]).count(text)
        #expect(r.counts == [4, 4, 1, 3])
    }

    @Test func refusesEmptyMatchesAndBadSyntaxWithIndexAndPosition() {
        for p in ["a*", "x?", "^", "$", #"\b"#, "a|", "(?:a|b?)", "^$", "(?i)", "[a]{0}"] {
            #expect(refusal(["ok", p]) == .emptyMatch(index: 1), "\(p)")
        }
        if case .badPattern(let i, let pos, _)? = refusal(["ok", "fine", "x{2,1}"]) {
            #expect(i == 2 && pos == 1)
        } else {
            Issue.record("x{2,1} was not refused as bad syntax")
        }
        if case .badPattern(let i, let pos, _)? = refusal(["ab("]) {
            #expect(i == 0 && pos == 3)
        } else {
            Issue.record("ab( was not refused")
        }
        if case .badPattern(_, let pos, let m)? = refusal([#"ab[\W]"#]) {
            #expect(pos == 3 && m.contains("bracket"))
        } else {
            Issue.record(#"[\W] was not refused"#)
        }
        if case .badPattern(_, let pos, _)? = refusal([#"\d\d[z-a]"#]) {
            #expect(pos == 5)  // a position in the user's pattern, not in the rewritten one
        } else {
            Issue.record("[z-a] was not refused")
        }
    }

    @Test func wholeWordAndIgnoreCase() throws {
        let ww = SearchOptions(wholeWord: true)
        #expect(try counts("foo foobar -x a-x x", ["foo", "-x", "x"], ww) == [1, 1, 3])
        #expect(try counts("###", ["."], ww) == [3])  // rg 14's \b{start-half}.\b{end-half}
        #expect(try counts("Straße STRASSE straße", ["straße"], SearchOptions(ignoreCase: true)) == [2])
    }

    /// Counts, offsets and snippets are the same for every chunking of the stream.
    @Test func streamedEqualsWhole() throws {
        var rng = Rng(seed: 13)
        let words = ["rain", "rainy", "singing", "café", "2024-01-02", "John", "Smith", "\n", "\n", " ", "é\u{0301}"]
        var text: [UInt8] = []
        while text.count < 20000 { text += b(words[Int(rng.next() % UInt64(words.count))] + " ") }
        text += [0xFF, 0x0A, 0xC3]
        var o = SearchOptions(offsets: true, maxOffsets: 100_000, context: 2)
        for ww in [false, true] {
            o.wholeWord = ww
            let p = try plan(
                [#"\b\w+ing\b"#, "rain(y|fall|ed)?", #"\d{4}-\d{2}-\d{2}"#, "[A-Z][a-z]+ [A-Z][a-z]+", #"\S+"#], o)
            let whole = p.count(text)
            #expect(whole.counts.allSatisfy { $0 > 0 })
            var scanner = p.makeScanner()
            for size in [1, 2, 3, 7, 64, 1000, 4099] {
                scanner.reset()
                var i = 0
                while i < text.count {
                    let n = min(text.count - i, size)
                    text[i..<(i + n)].withUnsafeBytes { scanner.feed($0) }
                    i += n
                }
                #expect(scanner.finish() == whole, "chunks of \(size)")
            }
        }
    }

    /// No backtracking blow-up: RE2 is linear (this would not finish with a backtracking engine).
    @Test func pathologicalPatternsStayLinear() throws {
        let line = [UInt8](repeating: 0x61, count: 100_000) + [0x0A]
        let r = try plan(["(a|aa)*b", #"(a|aa)*\d"#, #"(a*)*\w\d"#, "(?:a+)+[bc]", "(x+x+)+y"]).count(line + line)
        #expect(r.counts == [0, 0, 0, 0, 0])
    }
}
