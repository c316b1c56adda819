import CSearchKernels

/// Teddy (after BurntSushi/aho-corasick): every term's first 1-4 fixed bytes (its fingerprint) go
/// into one of 8 buckets; a SIMD step looks up the low and high nibble of each text byte in
/// per-bucket bitmasks (PSHUFB) and ANDs them over the fingerprint's bytes, 32 positions at a time
/// (AVX2) or 16 (SSSE3), chosen at run time (`ccsk_teddy_level`). With AVX-512 VBMI the lookup is
/// exact instead: 16 buckets, each byte's low 7 bits looked up in a 128-entry table per half of the
/// buckets (VPERMI2B), 64 positions a step; on Intel, where VPERMI2B is three micro-ops, fingerprints
/// of bytes 0x41-0x7F only (letters) take a 64-entry table (VPERMB) on bytes raised to 0x40 instead.
/// There, when every term has 5 fixed leading bytes, fingerprints are 5 bytes: in 8 buckets (one
/// lookup per offset) up to `halfBuckets` of them, else in 16. A fifth byte splits terms whose
/// first four collide (random sets of the corpus's words, candidates a MB against 16 buckets of 4
/// bytes: 52 terms 785 against 7,415, 400 terms 20,162 against 58,161; see Benchmarks/HISTORY.md).
/// A position where some bucket
/// survives is a candidate for the terms whose first two bytes it holds (the pair-keyed candidate
/// table, anchors at offset 0), verified as with every other prefilter, in text order, so each term's
/// matches stay its own non-overlapping left-to-right ones.
///
/// The terms in `confirmed` (plain bytes, at most 16, no whole_word, offsets or ignore_case: see
/// `PrefilterBuilder`) are confirmed and counted in C right after each batch of candidates
/// (`ccsk_confirm_long`: a hash of the fingerprint bytes, a masked 16-byte compare), not one Swift
/// call per candidate: on English text most candidates are real matches. The candidate table
/// leaves them out of its pair keys; the other terms go through the Swift check as before. A
/// confirmed term alone in its hash slot and unable to overlap itself is counted in a byte lane
/// of its own (`confirmRow`), without a resume position: none of its matches can start inside
/// another.
struct TeddyPrefilter: @unchecked Sendable {
    // @unchecked: `ccsk_teddy` is a C struct of byte tuples, immutable here.
    let tables: ccsk_teddy
    /// Distinct fingerprints, and terms behind them (the log and tests).
    let fingerprints: Int
    /// The terms confirmed in C, and their table (`ccsk_long_table`: slot starts, terms, hash bits).
    let confirmed: Set<Int>
    let confirmStart: [UInt32]
    let confirmTerms: [ccsk_long_term]
    let confirmBits: Int32
    /// The bytes the confirm table's hash reads: the fingerprint's, at most 4 (`ccsk_long_hash`).
    let confirmKey: Int32
    /// Per slot, the row of its one term when that term cannot overlap itself (`ccsk_long_table.row`;
    /// empty when unused): such terms are counted without resume positions, in a byte lane each.
    let confirmRow: [UInt8]
    /// Some fingerprinted term is left to the Swift check.
    let checksInSwift: Bool

    /// The kernel used by default (`ccsk_teddy_preferred`): 4 for AVX-512 VBMI with 64-entry tables
    /// where the fingerprints allow, 3 for VBMI with 128-entry tables, 2 for AVX2, 1 for SSSE3, 0
    /// when this CPU (or platform) has no Teddy kernel.
    static let level = Int(ccsk_teddy_preferred())
    /// The widest kernel this CPU runs (tests run each one up to it).
    static let widest = Int(ccsk_teddy_level())
    /// Buckets of the nibble tables (levels 1 and 2) and of the exact tables (levels 3 and 4; 8 for
    /// up to `halfBuckets` 5-byte fingerprints).
    static let buckets = 8
    static let exactBuckets = 16
    /// Most 5-byte fingerprints put in 8 buckets; more take 16 (simulated: at 100 terms 8 buckets
    /// left 3,624 candidates a MB against 1,230, what the 3 lookups per step they save cost).
    static let halfBuckets = 96

    /// `fixed`: per term, the possible bytes (0x20 or-ed in under ignore_case) at each leading fixed
    /// offset; only the terms in `active` are fingerprinted, on their first `length` (1...5, at most
    /// the shortest active term's fixed prefix) bytes. `level`: the kernel (tests force each one).
    /// `confirm`: the terms of `active` to confirm in C, with their bytes (1...16 of them, at least
    /// `length`; compared exactly, so no fold).
    init(
        fixed: [[Set<UInt8>]], active: [Int], length requested: Int, foldMask: UInt8, level: Int = Self.level,
        confirm: [Int: [UInt8]] = [:]
    ) {
        // The nibble kernels (levels 1 and 2) read 4 bytes at most.
        let length = level >= 3 ? min(requested, 5) : min(requested, 4)
        // Equal fingerprints share a bucket; sorted ones are split into contiguous runs, so a
        // bucket's terms tend to share bytes and its nibble masks stay narrow.
        let prints = Set(active.map { t in fixed[t].prefix(length).map { $0.sorted() } })
        let sorted = prints.sorted { a, b in a.lexicographicallyPrecedes(b) { $0.lexicographicallyPrecedes($1) } }
        var t = ccsk_teddy()
        t.length = Int32(length)
        let half = length == 5 && sorted.count <= Self.halfBuckets
        t.half = half ? 1 : 0
        t.level = Int32(level)
        t.fold = foldMask
        withUnsafeMutableBytes(of: &t.low) { low in
            withUnsafeMutableBytes(of: &t.high) { high in
                for (i, print) in sorted.enumerated() {
                    let bit = UInt8(1) << UInt8(i * Self.buckets / max(1, sorted.count))
                    for (j, bytes) in print.enumerated() where j < 4 {
                        for b in bytes {
                            low[j * 16 + Int(b & 15)] |= bit
                            high[j * 16 + Int(b >> 4)] |= bit
                        }
                    }
                }
            }
        }
        withUnsafeMutableBytes(of: &t.exact) { exact in
            for (i, print) in sorted.enumerated() {
                let bucket = i * (half ? Self.buckets : Self.exactBuckets) / max(1, sorted.count)
                let bit = UInt8(1) << UInt8(bucket & 7)
                for (j, bytes) in print.enumerated() {
                    for b in bytes { exact[j * 256 + (bucket >> 3) * 128 + Int(b & 127)] |= bit }
                }
            }
        }
        // Level 4's 64-entry tables hold 0x40-0x7F; other text bytes read them by their low 6 bits.
        t.narrow = sorted.allSatisfy { $0.allSatisfy { $0.allSatisfy { (0x41...0x7F).contains($0) } } } ? 1 : 0
        tables = t
        fingerprints = sorted.count

        // At least 4 slots per term, and up to 16 times more while two terms that could be apart
        // share a slot (terms with the same first `key` bytes never are): a candidate is then
        // compared with one term. On the 52 long terms of target 14.5 "there", the most common,
        // shared its slot with another at 256 slots (each of its candidates compared twice, a
        // mispredicted branch on the second): 1,024 slots hold one term each, and the confirm
        // took 10 ms of CPU instead of 13 over 256 MiB.
        let key = min(length, 4)
        confirmKey = Int32(key)
        let confirmable = confirm.sorted(by: { $0.key < $1.key }).filter { (length...16).contains($0.value.count) }
        func slot(_ bytes: [UInt8], _ bits: Int32) -> Int {
            let h = bytes.withUnsafeBufferPointer { b in b.baseAddress.map { ccsk_long_hash($0, Int32(key), bits) } }
            return Int(h ?? 0)
        }
        var bits: Int32 = 6
        while bits < 16 && (1 << bits) < 4 * confirm.count { bits += 1 }
        let keys = Set(confirmable.map { $0.value.prefix(key) }).count
        let least = bits
        while bits < min(16, least + 4) && Set(confirmable.map { slot($0.value, bits) }).count < keys { bits += 1 }
        var slots = [[ccsk_long_term]](repeating: [], count: 1 << bits)
        for (term, bytes) in confirmable {
            var c = ccsk_long_term()
            withUnsafeMutableBytes(of: &c.bytes) { b in
                withUnsafeMutableBytes(of: &c.mask) { m in
                    for (j, byte) in bytes.enumerated() {
                        b[j] = byte
                        m[j] = 0xFF
                    }
                }
            }
            c.term = term
            c.length = bytes.count
            slots[slot(bytes, bits)].append(c)
        }
        var rows = slots.flatMap { $0 }
        let start = [0] + slots.reduce(into: [UInt32]()) { $0.append(($0.last ?? 0) + UInt32($1.count)) }
        confirmStart = start
        confirmBits = bits
        let confirmed = Set(rows.map(\.term))
        // The row path (`ccsk_long_table.row`): a slot of one term without a border gets its row.
        if key == 4 && !rows.isEmpty && rows.count <= 64 {
            let bordered = Set(confirmable.filter { ExactTerm.hasBorder($0.value) }.map(\.key))
            confirmRow = slots.indices.map { h in
                switch slots[h].count {
                case 0: UInt8(rows.count)
                case 1 where !bordered.contains(slots[h][0].term): UInt8(start[h])
                default: 0xFE
                }
            }
            rows.append(ccsk_long_term())  // the entry an empty slot's candidates compare with
        } else {
            confirmRow = []
        }
        confirmTerms = rows
        self.confirmed = confirmed
        checksInSwift = active.contains { !confirmed.contains($0) }
    }

    /// The kernel the scan runs, for the log.
    var kernelName: String {
        let halfName = tables.half != 0 ? ", 8 buckets" : ""
        return switch tables.level {
        case 4 where tables.narrow != 0: "AVX-512 VBMI, 64-entry tables\(halfName)"
        case 3, 4: "AVX-512 VBMI\(halfName)"
        case 2: "AVX2"
        case 1: "SSSE3"
        default: "none"
        }
    }

    /// Returns where the SIMD steps stopped; the last few positions are left to the byte loop.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        var position = from
        let capacity = 256
        let fm = Int(tables.fold)
        withUnsafePointer(to: tables) { tables in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: capacity) { hits in
                confirmStart.withUnsafeBufferPointer { start in
                    confirmTerms.withUnsafeBufferPointer { terms in
                        confirmRow.withUnsafeBufferPointer { row in
                            guard let h = hits.baseAddress else { return }
                            var confirm = ccsk_long_table(
                                start: start.baseAddress, terms: terms.baseAddress, key: confirmKey,
                                bits: confirmBits, row: confirmRow.isEmpty ? nil : row.baseAddress,
                                rows: Int32(confirmStart.last ?? 0))
                            while true {
                                let n = ccsk_teddy_scan(tables, p, count, &position, to, h, capacity)
                                if !terms.isEmpty {
                                    Self.confirm(&confirm, p, count: count, base: base, hits: h, n: n, state: &state)
                                }
                                // Candidates are keyed by their first two bytes (the kernel read at least
                                // three: `length` >= 3).
                                var i = 0
                                while checksInSwift && i < n {
                                    let q = h[i]
                                    let w = (Int(p[q]) | fm) << 8 | (Int(p[q &+ 1]) | fm)
                                    plan.candidates(
                                        p, count: count, base: base, at: q, pair: w, final: final, state: &state)
                                    i &+= 1
                                }
                                // A full buffer stopped the kernel (room for less than a 64-position step): go
                                // on; else it reached the end of its range.
                                if n + 64 <= capacity { break }
                            }
                        }
                    }
                }
            }
        }
        return position
    }

    /// Counts the confirmed terms' matches at `hits[0..<n]` into `state` (see `ccsk_confirm_long`).
    @inline(__always)
    private static func confirm(
        _ table: inout ccsk_long_table, _ p: UnsafePointer<UInt8>, count: Int, base: Int, hits: UnsafePointer<Int>,
        n: Int, state: inout ScanState
    ) {
        let lo = state.rangeStart
        let limit = state.startLimit
        state.counts.withUnsafeMutableBufferPointer { counts in
            state.nextAllowed.withUnsafeMutableBufferPointer { next in
                state.firstStart.withUnsafeMutableBufferPointer { first in
                    ccsk_confirm_long(
                        &table, p, count, hits, n, base, lo, limit, counts.baseAddress, next.baseAddress,
                        first.baseAddress)
                }
            }
        }
    }
}
