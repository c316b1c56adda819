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
