#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// `memchr` on the one rare byte that anchors every term.
struct MemchrPrefilter: Sendable {
    let byte: UInt8

    /// Returns `to`: memchr reaches the end itself.
    @inline(__always)
    func scan(
        _ plan: SearchPlan, _ p: UnsafePointer<UInt8>, count: Int, base: Int, from: Int, to: Int, final: Bool,
        state: inout ScanState
    ) -> Int {
        var q = from
        while q < to {
            guard let hit = memchr(p + q, Int32(byte), to - q) else { break }
            q = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - p
            plan.candidates(p, count: count, base: base, at: q, byte: byte, final: final, state: &state)
            q += 1
        }
        return to
    }
}
