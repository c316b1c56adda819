/// Chooses a plan's prefilter, in one place: the first of these that fits.
///
/// 1. memchr: every term can be anchored on one and the same rare byte.
/// 2. byte set: on at most 3 rare bytes (0x20 or-ed in under ignore_case).
/// 3. packed pair: one anchored term with two single-valued bytes, the CPU has a kernel (x86-64):
///    its two rarest bytes compared at their distance (`garden`, one 256 MiB file split in ranges:
///    21 ms of CPU per request against 45-52 with the pair set, 14-15 of either being the pread
///    copy; see PackedPairPrefilter). After memchr: one rare byte is cheaper still (glibc memchr
///    scans about 1.5x faster than the two compares).
/// 4. pair set: on at most 8 byte pairs, each term at its rarest pair; not when Teddy runs on
///    AVX-512 VBMI with 4-byte fingerprints, which is faster from two terms on (CLI, one 256 MiB
///    file, CPU: `garden` and `morning` 90 -> 50 ms, six 5- to 7-letter words 170 -> 50,
///    `there` and `about` 160 -> 60; 2,000 stories unchanged).
/// 5. Teddy: every anchored term has 3+ leading fixed bytes and the CPU has SSSE3, AVX2 or AVX-512 VBMI
///    (exact byte tables, 16 buckets: the 52 long terms of target 14.5 get 8,400 candidates a MB, 7,700
///    of them real 4-byte prefixes, where the AVX2 nibble masks gave 17,800). Measured on a
///    256 MiB text (CPU time): 14 terms of 5+ bytes 72 ms against 188 for the sampled pair bitmap,
///    16 terms of 6+ bytes 76 ms against 494 for Wu-Manber; with 2-byte fingerprints (100 mixed
///    terms) 1.8x slower than the pair bitmap, hence 3 bytes at least; 4 when every anchored term
///    has them (100 terms common to rare: a 3-byte "the" fingerprint for "there" made most of the
///    candidates, a check each), and 5 with AVX-512 VBMI (see TeddyPrefilter). Its candidates for
///    terms of up to 16 bytes without ignore_case, whole_word or offsets are confirmed and counted
///    in C per batch (`ccsk_confirm_long`), not by a Swift call per candidate (most candidates of
///    English text are real matches).
/// 6. Wu-Manber: every term has 6+ leading fixed bytes (many long terms).
/// 7. pair bitmap: anything else; sampled at every k-th position when every term has k+1 >= 3
///    leading fixed bytes.
///
/// With ignore_case, everything but memchr compares bytes with 0x20 set, which merges ASCII case
/// pairs (and only adds false candidates elsewhere, which verification rejects).
enum PrefilterBuilder {
    /// The prefilter, and per term the anchors its candidates are keyed on (none for `exact`).
    static func build(
        _ terms: TermAnchors, exact: Set<Int>, foldMask fm: UInt8, allowTeddy: Bool = true,
        pairLevel: Int32 = PackedPairPrefilter.level, teddyLevel: Int = TeddyPrefilter.level,
        plainTerms: [[UInt8]]? = nil
    ) -> (Prefilter, [[AnchorChoice]]) {
        let (prefilter, anchors) = choose(
            terms, exact: exact, foldMask: fm, allowTeddy: allowTeddy,
            pairLevel: min(pairLevel, PackedPairPrefilter.level), teddyLevel: min(teddyLevel, TeddyPrefilter.widest),
            plainTerms: plainTerms)
        Log.debug(
            "search plan: \(describe(prefilter)) for \(terms.choices.count - exact.count) anchored term(s), \(exact.count) compared at every position"
        )
        return (prefilter, anchors)
    }

    private static func choose(
        _ terms: TermAnchors, exact: Set<Int>, foldMask fm: UInt8, allowTeddy: Bool, pairLevel: Int32,
        teddyLevel: Int, plainTerms: [[UInt8]]?
    ) -> (Prefilter, [[AnchorChoice]]) {
        let choices = terms.choices
        let active = choices.indices.filter { !exact.contains($0) }
        func one(_ chosen: [AnchorChoice?]) -> [[AnchorChoice]] { chosen.map { $0.map { [$0] } ?? [] } }
        func rare(_ b: UInt8) -> Bool { ByteScanning.frequency[Int(b)] <= 100 }

        let single = choices.map { $0.min { $0.singleScore < $1.singleScore } }
        let singleBytes = Set(single.flatMap { $0?.firstBytes ?? [] })
        if singleBytes.count == 1, let b = singleBytes.first, rare(b) {
            return (.memchr(MemchrPrefilter(byte: b)), one(single))
        }

        let folded = choices.map { $0.map { $0.folded(fm) } }
        let foldedSingle = folded.map { $0.min { $0.singleScore < $1.singleScore } }
        let foldedSingleBytes = Set(foldedSingle.flatMap { $0?.firstBytes ?? [] })
        if foldedSingleBytes.count <= 3 && foldedSingleBytes.allSatisfy(rare) {
            return (.byteSet(ByteSetPrefilter(bytes: foldedSingleBytes.sorted(), foldMask: fm)), one(foldedSingle))
        }

        if allowTeddy && pairLevel > 0 && active.count == 1, let t = active.first,
            let c = PackedPairPrefilter.choose(fixed: terms.fixedBytes[t], foldMask: fm)
        {
            let f = PackedPairPrefilter(
                offset: c.offset, first: c.first, distance: c.distance, second: c.second, foldMask: fm, level: pairLevel
            )
            let anchors = choices.indices.map {
                $0 == t ? [AnchorChoice(offset: c.offset, pairs: [Pair(c.first, Pair.any)])] : []
            }
            return (.packedPair(f), anchors)
        }

        let m = min(active.map { terms.fixedBytes[$0].count }.min() ?? 0, 64)
        let pairChoice = folded.map { $0.min { $0.pairScore < $1.pairScore } }
        let pairs = Set(pairChoice.flatMap { $0?.pairs ?? [] })
        if pairs.count <= 8 && !(allowTeddy && teddyLevel >= 3 && m >= 4) {
            return (.pairSet(PairSetPrefilter(pairs: pairs.sorted(), foldMask: fm)), one(pairChoice))
        }

        let fixed = terms.fixedBytes.map { $0.map { Set($0.map { $0 | fm }) } }
        if allowTeddy && teddyLevel > 0 && m >= 3 {
            // Terms of up to 16 bytes, counted without options, are confirmed in C (see TeddyPrefilter).
            var confirm: [Int: [UInt8]] = [:]
            if let plain = plainTerms, fm == 0 {
                for t in active where t < plain.count && plain[t].count <= 16 { confirm[t] = plain[t] }
            }
            let teddy = TeddyPrefilter(
                fixed: fixed, active: active, length: min(m, 5), foldMask: fm, level: teddyLevel, confirm: confirm)
            return (.teddy(teddy), one(folded.map { $0.first { $0.offset == 0 } }))
        }
        if m >= 6 {
            let wuManber = WuManberPrefilter(fixed: fixed, skipping: exact, m: m, foldMask: fm)
            return (.wuManber(wuManber), one(WuManberPrefilter.anchors(fixed: fixed, skipping: exact, m: m)))
        }

        let (anchors, stride) =
            PairBitmapPrefilter.sampledAnchors(fixed: fixed, active: active, skipping: exact) ?? (one(pairChoice), 1)
        return (.pairBitmap(PairBitmapPrefilter(anchors: anchors, stride: stride, foldMask: fm)), anchors)
    }

    private static func describe(_ prefilter: Prefilter) -> String {
        switch prefilter {
        case .memchr: "memchr on one byte"
        case .byteSet(let f): "SIMD compare on \(f.needles.count) byte(s)"
        case .pairSet(let f): "SIMD compare on \(f.firsts.count) byte pair(s)"
        case .wuManber: "Wu-Manber skipping"
        case .teddy(let f):
            "Teddy (\(f.kernelName)) on \(f.tables.length) byte(s), \(f.fingerprints) fingerprint(s), \(f.confirmed.count) term(s) confirmed in C"
        case .packedPair(let f):
            "packed pair (\(["none", "SSE2", "AVX2", "AVX-512BW"][Int(f.level) & 3])) at distance \(f.pair.distance)"
        case .pairBitmap(let f): "byte-pair bitmap at every \(f.stride == 1 ? "position" : "\(f.stride) positions")"
        }
    }
}
