/// Wu-Manber skipping, for many terms of 6+ fixed leading bytes: every term is anchored on its
/// bytes m-2, m-1 (m: the shortest such prefix, at most 64), and a window whose last two bytes end
/// no term's prefix is skipped by as much as the shift table allows.
struct WuManberPrefilter: Sendable {
    /// Shift per two-byte block `first << 8 | second` (0x20 or-ed into both under ignore_case).
    let shift: [UInt8]
    let foldMask: UInt8

    /// `fixed`: per term, the possible bytes (folded) at each leading fixed offset; terms in
    /// `skipping` are left out. Every other term has at least `m` of them.
    init(fixed: [[Set<UInt8>]], skipping: Set<Int>, m: Int, foldMask: UInt8) {
        var shift = [UInt8](repeating: UInt8(m - 1), count: 65536)
        for (t, fixed) in fixed.enumerated() where !skipping.contains(t) {
            for j in 0...(m - 2) {
                for a in fixed[j] {
                    for b in fixed[j + 1] {
                        let w = Int(a) << 8 | Int(b)
                        shift[w] = min(shift[w], UInt8(m - 2 - j))
                    }
                }
            }
        }
        self.shift = shift
        self.foldMask = foldMask
    }

    /// Each term's anchor: offset m-2, every pair its bytes m-2, m-1 can make.
    static func anchors(fixed: [[Set<UInt8>]], skipping: Set<Int>, m: Int) -> [AnchorChoice?] {
        fixed.enumerated().map { t, fixed in
            skipping.contains(t)
                ? nil
                : AnchorChoice(
                    offset: m - 2,
                    pairs: fixed[m - 2].flatMap { a in fixed[m - 1].map { Pair(a, UInt16($0)) } }.sorted())
        }
    }

    /// Returns `to`: no anchor can be the text's last byte (m >= 6), so nothing is left over.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        // Window ends i = anchor + 1.
        let fm = Int(foldMask)  // widened once, as in the pair-bitmap loop
        shift.withUnsafeBufferPointer { shift in
            let stop = min(to, count - 1)
            var i = from + 1
            while i <= stop {
                let w = (Int(p[i - 1]) | fm) << 8 | (Int(p[i]) | fm)
                let d = Int(shift[w])
                if d > 0 {
                    i += d
                    continue
                }
                plan.candidates(p, count: count, base: base, at: i - 1, pair: w, final: final, state: &state)
                i += 1
            }
        }
        return to
    }
}
