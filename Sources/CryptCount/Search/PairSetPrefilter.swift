/// A 32-byte SWAR/SIMD compare with a few (up to 8) byte pairs at the anchor (0x20 or-ed into both
/// bytes under ignore_case).
struct PairSetPrefilter: Sendable {
    let firsts: [ByteScanning.Words]
    let seconds: [ByteScanning.Words]
    /// All ones for a pair whose second byte is `Pair.any`.
    let wild: [ByteScanning.Words]
    let fold: ByteScanning.Words

    init(pairs: [Pair], foldMask: UInt8) {
        firsts = pairs.map { ByteScanning.splat($0.first) }
        // A wildcard second byte compares against the loaded byte itself (always equal).
        seconds = pairs.map { ByteScanning.splat(UInt8(truncatingIfNeeded: $0.second)) }
        wild = pairs.map { $0.second == Pair.any ? ~ByteScanning.Words() : ByteScanning.Words() }
        fold = ByteScanning.splat(foldMask)
    }

    /// Returns where the block loop stopped.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        var q = from
        let block = ByteScanning.blockSize
        let n = firsts.count
        // The second-byte load reads one byte past the block.
        while q + block <= to && q + block < count {
            let v0 = ByteScanning.loadWords(p, q) | fold
            let v1 = ByteScanning.loadWords(p, q + 1) | fold
            var z = ByteScanning.Words()
            var k = 0
            while k < n {
                z |= ByteScanning.zeroBytes((v0 ^ firsts[k]) | ((v1 ^ seconds[k]) & ~wild[k]))
                k += 1
            }
            plan.candidates(p, count: count, base: base, block: q, zeroBytes: z, final: final, state: &state)
            q += block
        }
        return q
    }
}
