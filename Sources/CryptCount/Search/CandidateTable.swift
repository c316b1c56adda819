/// Which terms to try at a candidate position, keyed by the anchor byte (with 0x20 or-ed in under
/// ignore_case) or, for the prefilters that find byte pairs, by the pair.
struct CandidateTable {
    /// Per anchor byte b: entries `entryStart[b]..<entryStart[b + 1]` of (term, offset of the anchor
    /// from the match start).
    var entryStart: [Int32] = [0]
    var entryTerm: [Int32] = []
    var entryOffset: [Int] = []
    /// Per byte pair `first << 8 | second`: entries `pairEntryStart[w]..<pairEntryStart[w + 1]`,
    /// in the same arrays after the byte-keyed ones (empty unless `pairKeyed`).
    var pairEntryStart: [Int32] = []
    /// Distinct anchor bytes (with the fold mask applied), and a 256-entry membership table of the
    /// text bytes that can be anchors.
    var anchorBytes: [UInt8] = []
    var isAnchor: [Bool]
    /// Most bytes an anchor sits after its match start.
    var maxAnchorOffset: Int

    /// `pairSkipping`: terms left out of the pair keys (Teddy confirms them itself).
    init(anchors: [[AnchorChoice]], foldMask fm: UInt8, pairKeyed: Bool, pairSkipping: Set<Int> = []) {
        var perByte = [Set<Entry>](repeating: [], count: 256)
        var perPair: [Int: Set<Entry>] = [:]
        for (t, choice) in anchors.enumerated().flatMap({ t, list in list.map { (t, $0) } }) {
            for b in choice.firstBytes { perByte[Int(b | fm)].insert(Entry(term: t, offset: choice.offset)) }
            guard pairKeyed, !pairSkipping.contains(t) else { continue }
            for pair in choice.pairs {
                for second in pair.second == Pair.any ? Array(0..<256) : [Int(pair.second)] {
                    perPair[Int(pair.first) << 8 | second, default: []].insert(Entry(term: t, offset: choice.offset))
                }
            }
        }
        for b in 0..<256 {
            // Per term, larger offsets first: candidates at one position then come in match order.
            for entry in perByte[b].sorted(by: { ($0.term, -$0.offset) < ($1.term, -$1.offset) }) {
                entryTerm.append(Int32(entry.term))
                entryOffset.append(entry.offset)
            }
            entryStart.append(Int32(entryTerm.count))
            if !perByte[b].isEmpty { anchorBytes.append(UInt8(b)) }
        }
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
        isAnchor = (0..<256).map { !perByte[$0 | Int(fm)].isEmpty }
        maxAnchorOffset = anchors.flatMap { $0.map(\.offset) }.max() ?? 0
    }
}
