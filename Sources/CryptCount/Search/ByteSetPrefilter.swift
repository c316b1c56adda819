/// A 32-byte SWAR/SIMD compare with a few (up to 3) rare anchor bytes. Under ignore_case every
/// text byte gets 0x20 or-ed in first, which merges ASCII case pairs (and only adds false
/// candidates elsewhere, which verification rejects).
struct ByteSetPrefilter: Sendable {
    /// The anchor bytes (0x20 set under ignore_case), each in every lane.
    let needles: [ByteScanning.Words]
    let fold: ByteScanning.Words

    init(bytes: [UInt8], foldMask: UInt8) {
        needles = bytes.map { ByteScanning.splat($0) }
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
        guard let first = needles.first else { return q }
        while q + block <= to {
            let v = ByteScanning.loadWords(p, q) | fold
            var z = ByteScanning.zeroBytes(v ^ first)
            for k in needles.indices.dropFirst() { z |= ByteScanning.zeroBytes(v ^ needles[k]) }
            plan.candidates(p, count: count, base: base, block: q, zeroBytes: z, final: final, state: &state)
            q += block
        }
        return q
    }
}
