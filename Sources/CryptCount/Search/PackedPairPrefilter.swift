import CSearchKernels

/// One term's packed pair (after the memchr crate's generic SIMD memmem): two of its bytes that
/// are rare in text, by `ByteScanning.frequency`, compared at their distance over 64 (AVX-512BW),
/// 32 (AVX2) or 16 (SSE2) positions at a time; a position where both agree is a candidate,
/// verified as with every other prefilter. A word such as `garden` (no rare byte for memchr) then
/// has a candidate every few KB of English instead of every few dozen bytes with one byte pair.
///
/// Candidates are keyed by the first of the two bytes (anchor at its offset in the term), so the
/// byte loop after the SIMD steps, and verification, are the byte-keyed ones.
struct PackedPairPrefilter: @unchecked Sendable {
    // @unchecked: `ccsk_pair` is a C struct of plain values, immutable here.
    let pair: ccsk_pair
    /// Offset in the term of the first byte (the anchor).
    let offset: Int
    /// The kernel width asked for (`ccsk_pair_level`; tests lower it to exercise each width).
    let level: Int32

    /// The widest kernel this CPU runs (0: none, the engine uses its portable prefilters).
    static let level = ccsk_pair_level()

    /// Most bytes between the two (the kernel's second load reaches that far past a step).
    static let maxDistance = 255

    /// The two rarest bytes of the term with a single value (0x20 or-ed in under ignore_case) at
    /// fixed offsets, the anchor first; nil when it has fewer than two.
    static func choose(fixed: [Set<UInt8>], foldMask fm: UInt8) -> (
        offset: Int, first: UInt8, distance: Int, second: UInt8
    )? {
        let single = fixed.enumerated().compactMap { i, set -> (Int, UInt8)? in
            let merged = Set(set.map { $0 | fm })
            guard merged.count == 1, let b = merged.first else { return nil }
            return (i, b)
        }
        // Rarest first; at equal rank, the earlier offset (stable, so the choice is deterministic).
        let ranked = single.sorted {
            (ByteScanning.frequency[Int($0.1)], $0.0) < (ByteScanning.frequency[Int($1.1)], $1.0)
        }
        guard let r1 = ranked.first else { return nil }
        // The second: the rarest at another offset within reach, preferably another byte value
        // (two equal bytes at a distance add little where that byte is common).
        let others = ranked.dropFirst().filter { abs($0.0 - r1.0) <= maxDistance }
        guard let r2 = others.first(where: { $0.1 != r1.1 }) ?? others.first else { return nil }
        let (a, b) = r1.0 < r2.0 ? (r1, r2) : (r2, r1)
        return (a.0, a.1, b.0 - a.0, b.1)
    }

    init(offset: Int, first: UInt8, distance: Int, second: UInt8, foldMask: UInt8, level: Int32 = Self.level) {
        var p = ccsk_pair()
        p.first = first
        p.second = second
        p.fold = foldMask
        p.distance = UInt32(clamping: distance)
        pair = p
        self.offset = offset
        self.level = level
    }

    /// Returns where the SIMD steps stopped; the last few positions are left to the byte loop.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        var position = from
        // Room for several of the kernel's 256-position iterations with hits (it returns before one
        // whose hits might not fit).
        let capacity = 1024
        let first = pair.first
        let level = self.level
        withUnsafePointer(to: pair) { pair in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: capacity) { hits in
                guard let h = hits.baseAddress else { return }
                while true {
                    let n = ccsk_pair_scan(pair, level, p, count, &position, to, h, capacity)
                    var i = 0
                    while i < n {
                        plan.candidates(p, count: count, base: base, at: h[i], byte: first, final: final, state: &state)
                        i &+= 1
                    }
                    // No hit: the kernel reached the end of its range (a full buffer stops it only
                    // with hits in it).
                    if n == 0 { break }
                }
            }
        }
        return position
    }
}
