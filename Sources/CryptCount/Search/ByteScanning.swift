/// Block-wise byte scanning on portable SIMD types (no intrinsics, so it builds on every platform).
enum ByteScanning {
    typealias Block = SIMD32<UInt8>
    static let blockSize = 32

    @inline(__always)
    static func load(_ p: UnsafePointer<UInt8>, _ i: Int) -> Block {
        UnsafeRawPointer(p + i).loadUnaligned(as: Block.self)
    }

    /// One bit per lane (bit i = lane i), like SSE's movemask.
    @inline(__always)
    static func bits(_ m: SIMDMask<Block.MaskStorage>) -> UInt32 { bits(unsafeBitCast(m, to: Words.self)) }

    typealias Words = SIMD4<UInt64>

    @inline(__always)
    static func loadWords(_ p: UnsafePointer<UInt8>, _ i: Int) -> Words {
        UnsafeRawPointer(p + i).loadUnaligned(as: Words.self)
    }

    @inline(__always)
    static func splat(_ b: UInt8) -> Words { Words(repeating: UInt64(b) &* 0x0101_0101_0101_0101) }

    /// 0x80 in every byte of `x` that is zero, 0 elsewhere (exact, no borrow between bytes).
    @inline(__always)
    static func zeroBytes(_ x: Words) -> Words {
        let low7 = Words(repeating: 0x7F7F_7F7F_7F7F_7F7F)
        return ~(((x & low7) &+ low7) | x | low7)
    }

    @inline(__always)
    static func any(_ x: Words) -> Bool { (x[0] | x[1] | x[2] | x[3]) != 0 }

    /// One bit per byte with its high bit set (bit i = byte i).
    @inline(__always)
    static func bits(_ lanes: Words) -> UInt32 {
        let high: UInt64 = 0x8080_8080_8080_8080
        let gather: UInt64 = 0x0002_0408_1020_4081
        let b0 = UInt32(truncatingIfNeeded: ((lanes[0] & high) &* gather) >> 56)
        let b1 = UInt32(truncatingIfNeeded: ((lanes[1] & high) &* gather) >> 56)
        let b2 = UInt32(truncatingIfNeeded: ((lanes[2] & high) &* gather) >> 56)
        let b3 = UInt32(truncatingIfNeeded: ((lanes[3] & high) &* gather) >> 56)
        return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
    }

    /// The sum of the 32 bytes of `v`.
    @inline(__always)
    static func laneSum(_ v: Words) -> Int {
        // Adjacent bytes are added in ever wider fields: 8 -> 16 -> 32 -> 64 bits.
        var w = v
        w = (w & Words(repeating: 0x00FF_00FF_00FF_00FF)) &+ ((w &>> 8) & Words(repeating: 0x00FF_00FF_00FF_00FF))
        w = (w & Words(repeating: 0x0000_FFFF_0000_FFFF)) &+ ((w &>> 16) & Words(repeating: 0x0000_FFFF_0000_FFFF))
        w = (w & Words(repeating: 0x0000_0000_FFFF_FFFF)) &+ (w &>> 32)
        return Int(truncatingIfNeeded: w[0] &+ w[1] &+ w[2] &+ w[3])
    }

    /// Counts word starts (a non-space byte after a space byte or after the start) in `p[0..<n]`;
    /// `previousIsSpace` carries the state across pieces (true at the start of a file).
    static func countWordStarts(_ p: UnsafePointer<UInt8>, _ n: Int, previousIsSpace: inout Bool) -> Int {
        var count = 0
        var carry: UInt32 = previousIsSpace ? 1 : 0
        var i = 0
        let space = Block(repeating: 0x20)
        let tab = Block(repeating: 0x09)
        let five = Block(repeating: 5)
        while i + blockSize <= n {
            let v = load(p, i)
            let ws = bits((v .== space) .| ((v &- tab) .< five))
            let starts = ~ws & ((ws << 1) | carry)
            count &+= starts.nonzeroBitCount
            carry = ws >> 31
            i += blockSize
        }
        var prev = carry != 0
        while i < n {
            let s = TextUnits.isSpace(p[i])
            if !s && prev { count &+= 1 }
            prev = s
            i += 1
        }
        previousIsSpace = prev
        return count
    }

    /// Rough rank of how common a byte is in text (higher is more common); the prefilter anchors
    /// each term on its rarest byte.
    static let frequency: [UInt8] = {
        var f = [UInt8](repeating: 40, count: 256)  // UTF-8 lead and continuation bytes
        for b in 0..<32 { f[b] = 5 }
        f[0x0A] = 120
        f[0x0D] = 60
        f[0x09] = 60
        f[0x20] = 255
        for b in 0x21...0x2F { f[b] = 50 }
        for b in 0x3A...0x40 { f[b] = 40 }
        for b in 0x5B...0x60 { f[b] = 30 }
        for b in 0x7B...0x7E { f[b] = 20 }
        f[0x2C] = 150  // ,
        f[0x2E] = 150  // .
        f[0x27] = 90  // '
        f[0x22] = 80  // "
        f[0x2D] = 90  // -
        for b in 0x30...0x39 { f[b] = 70 }
        f[0x30] = 85
        f[0x31] = 85
        // English letter frequency order, most common first.
        let order = Array("etaoinshrdlcumwfgypbvkjxqz".utf8)
        for (rank, b) in order.enumerated() {
            f[Int(b)] = UInt8(250 - rank * 6)  // lowercase: 250 ... 100
            f[Int(b) - 32] = UInt8(100 - rank * 3)  // uppercase: 100 ... 25
        }
        f[0xC3] = 70
        f[0xE2] = 60
        f[0x80] = 50
        return f
    }()
}
