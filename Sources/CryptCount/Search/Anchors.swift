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

    /// The same choice with `mask` or-ed into every byte (merging ASCII case variants).
    func folded(_ mask: UInt8) -> AnchorChoice {
        let merged = Set(
            pairs.map { Pair($0.first | mask, $0.second == Pair.any ? Pair.any : $0.second | UInt16(mask)) })
        return AnchorChoice(offset: offset, pairs: merged.sorted())
    }

    var singleScore: Int { firstBytes.reduce(0) { $0 + Int(ByteScanning.frequency[Int($1)]) } }

    var pairScore: Int {
        pairs.reduce(0) { sum, pair in
            let second = pair.second == Pair.any ? 300 : Int(ByteScanning.frequency[Int(pair.second)])
            return sum + Int(ByteScanning.frequency[Int(pair.first)]) * second
        }
    }
}

/// A term anchored at `offset` bytes after its match start.
struct Entry: Hashable {
    var term: Int
    var offset: Int
}

/// What every term offers to anchor on, and the tables verification needs: each term's bytes,
/// its folded units (ignore_case) and how many bytes a match can span.
struct TermAnchors {
    /// Case-sensitive term bytes, flattened (`termStart[t]..<termStart[t + 1]`).
    var termBytes: [UInt8] = []
    var termStart: [Int] = [0]
    /// Folded units of each term (ignore_case), flattened (`unitStart[t]..<unitStart[t + 1]`).
    var units: [UInt32] = []
    var unitStart: [Int] = [0]
    /// Per term, every place it could be anchored (none for the terms in `skipping`).
    var choices: [[AnchorChoice]] = []
    /// Per term, the possible bytes at each byte offset from the match start, for the leading
    /// offsets that are the same in every spelling (Wu-Manber prefixes, prefix words).
    var fixedBytes: [[Set<UInt8>]] = []
    /// Most bytes a match can span.
    var maxSpan = 0

    /// How far into a term anchors may sit: anchors and fixed prefixes only look at the first
    /// `reach` bytes, so compiling a huge term stays linear and cheap.
    init(_ terms: [[UInt8]], ignoreCase: Bool, reach: Int, skipping: Set<Int>) {
        for term in terms {
            termBytes.append(contentsOf: term)
            termStart.append(termBytes.count)
            if !ignoreCase || TextUnits.isCaseless(term) {
                // Compared byte for byte (no units: `unitStart` gives it an empty range).
                choices.append(
                    term.indices.prefix(reach).map { i in
                        AnchorChoice(
                            offset: i, pairs: [Pair(term[i], i + 1 < term.count ? UInt16(term[i + 1]) : Pair.any)])
                    })
                maxSpan = max(maxSpan, term.count)
                unitStart.append(units.count)
                fixedBytes.append(term.prefix(reach).map { [$0] })
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
                    if spellings.count < reach {
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
                if offset >= reach {
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
        for t in skipping { choices[t] = [] }
    }
}
