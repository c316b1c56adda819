/// How a plan finds the text positions where a match could be anchored. One case per strategy,
/// each in its own file with its tables and its scan loop; `PrefilterBuilder` chooses. The switch
/// below is the only dispatch, once per scanned piece of text, so every loop is compiled for its
/// own strategy.
enum Prefilter: Sendable {
    case memchr(MemchrPrefilter)
    case byteSet(ByteSetPrefilter)
    case pairSet(PairSetPrefilter)
    case wuManber(WuManberPrefilter)
    case pairBitmap(PairBitmapPrefilter)
    case teddy(TeddyPrefilter)
    case packedPair(PackedPairPrefilter)

    var mode: PrefilterMode {
        switch self {
        case .memchr: .memchr
        case .byteSet: .bytes
        case .pairSet: .pairs
        case .wuManber: .wuManber
        case .pairBitmap: .pairBitmap
        case .teddy: .teddy
        case .packedPair: .packedPair
        }
    }

    /// The candidate tables of these strategies are keyed by byte pair, not by byte.
    var pairKeyed: Bool {
        switch self {
        case .wuManber, .pairBitmap, .teddy: true
        case .memchr, .byteSet, .pairSet, .packedPair: false
        }
    }

    /// Terms the strategy confirms and counts itself (left out of the pair-keyed candidate table).
    var confirmed: Set<Int> {
        if case .teddy(let f) = self { return f.confirmed }
        return []
    }

    /// Tries the candidates whose anchor lies in `from..<to` (see `SearchPlan.scan`).
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) {
        // Each strategy returns where its block loop stopped; the last few bytes go byte by byte.
        let rest: Int
        switch self {
        case .memchr(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .byteSet(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .pairSet(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .wuManber(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .pairBitmap(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .teddy(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        case .packedPair(let f):
            rest = f.scan(plan, p, count: count, base: base, from: from, to: to, final: final, state: &state)
        }
        var q = rest
        plan.isAnchor.withUnsafeBufferPointer { isAnchor in
            while q < to {
                let b = p[q]
                if isAnchor[Int(b)] {
                    plan.candidates(p, count: count, base: base, at: q, byte: b, final: final, state: &state)
                }
                q += 1
            }
        }
    }
}

/// The strategies, by name (tests and logs).
enum PrefilterMode: Sendable {
    case memchr, bytes, pairs, pairBitmap, wuManber, teddy, packedPair
}
