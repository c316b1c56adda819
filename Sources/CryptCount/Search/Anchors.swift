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
