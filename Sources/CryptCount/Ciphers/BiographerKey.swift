import CBiographerKernels

/// The seed diary's toy cipher (`shared/seed/biographer-format.md`): no integrity, weak secrecy;
/// supported so that existing diaries can be searched.
///
/// `biographer`: 8-byte iv, then hex applied four times (16x), chained, shifted and XORed with
/// the password. `biographer-v0`: one hex pass, shifted and XORed; no iv, no chaining.
///
/// Decryption is local: undoing the chaining in decreasing order reads only bytes not yet
/// rewritten, so plaintext byte `j` depends on ciphertext bytes `16j ..< 16j + 24` alone. The
/// decrypter therefore runs one fused pass with no intermediate buffers: 256 ciphertext bytes
/// at a time in 16-byte vectors (unmask, unchain, then four unhex levels 16 -> 8 -> 4 -> 2 -> 1
/// vectors), writing 16 plaintext bytes straight into the output. The AVX2 and AVX-512 kernels
/// (`BiographerKernel`, C) do the same on 2 or 4 blocks at once.
package final class BiographerKey: CipherKey {
    package let chained: Bool
    private let password: SecretBytes
    /// The password repeated: `padStream[p + m] == pw[(p + m) mod len]` for phase `p < len` and
    /// `m < 1024 + 16`, so the mask for any 256-byte block (1024 bytes: the AVX-512 kernel's
    /// four) is a plain load from its phase.
    private let padStream: SecretBytes
    private let amount: UInt8

    private static let block = 256

    package convenience init(password: [UInt8], chained: Bool) throws(SecretError) {
        try self.init(password: SecretBytes(password), chained: chained)
    }

    package init(password: SecretBytes, chained: Bool) throws(SecretError) {
        guard !password.isEmpty else { throw SecretError("the password is empty") }
        self.password = password
        self.chained = chained
        let (amount, pad) = password.withBytes { pw in
            (Self.shift(for: pw), SecretBytes((0..<(pw.count + 4 * Self.block + 16)).lazy.map { pw[$0 % pw.count] }))
        }
        self.amount = amount
        self.padStream = pad
    }

    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> BiographerKey
    {
        try BiographerKey(password: SecretInput.password(secret), chained: kind == .biographer)
    }

    package var kind: CipherKind { chained ? .biographer : .biographerV0 }
    package var mode: DecryptionMode { .wholeFile }
    package func makeStreamDecryptor() -> any StreamDecryptor { WholeFileStreamAdapter(key: self) }

    package func fingerprint(into fingerprint: inout KeyFingerprint) {
        fingerprint.add(password)
    }

    /// Sum of the bytes of hex(pw), mod 256.
    static func shift<C: Collection<UInt8>>(for password: C) -> UInt8 {
        var sum: UInt8 = 0
        for b in password {
            sum &+= Hex.lower[Int(b >> 4)]
            sum &+= Hex.lower[Int(b & 0x0f)]
        }
        return sum
    }

    package func decrypt(whole c: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        try decrypt(whole: c, into: &output, kernel: .active)
    }

    /// As `decrypt(whole:into:)` with a given kernel for the chained format (tests, benchmarks);
    /// one this CPU does not run is replaced by `sse2`. `biographer-v0` always runs the Swift one.
    package func decrypt(
        whole c: UnsafeRawBufferPointer, into output: inout [UInt8], kernel: BiographerKernel
    ) throws(CipherFailure) {
        if chained {
            try decryptChained(c, into: &output, kernel: kernel)
        } else {
            try decryptV0(c, into: &output)
        }
    }

    /// Sets `output` to `n` bytes (to be overwritten), reusing its storage when it is not shared
    /// (the plaintext cache keeps the previous file's array: then fresh storage, nothing copied).
    private static func resize(_ output: inout [UInt8], to n: Int) {
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: repeatElement(0, count: n))
    }

    /// Runs a decryption kernel over the pad stream, the password and `output`'s bytes (already
    /// sized). The kernel returns 0xf0-masked flags of non-hex bytes; any makes the file
    /// `decrypt_failed`, with `output` emptied.
    @inline(__always)
    private func withKernel(
        _ output: inout [UInt8],
        _ kernel: (
            _ pad: UnsafeRawPointer, _ password: UnsafeBufferPointer<UInt8>, _ out: UnsafeMutableRawBufferPointer,
            _ outBase: UnsafeMutableRawPointer
        ) -> UInt8
    ) throws(CipherFailure) {
        let bad: UInt8 = padStream.withBytes { pad in
            password.withBytes { pwb in
                output.withUnsafeMutableBytes { out -> UInt8 in
                    guard let padBase = pad.baseAddress, let outBase = out.baseAddress else { return 0 }
                    return kernel(UnsafeRawPointer(padBase), pwb, out, outBase)
                }
            }
        }
        if bad & 0xf0 != 0 {
            output.removeAll(keepingCapacity: true)
            throw Self.notHex
        }
    }

    private static let notHex: CipherFailure = .decryptFailed("the text is not hex after decryption (wrong password?)")

    private func decryptV0(_ c: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        guard c.count % 2 == 0 else { throw .badFormat("length is odd, not a biographer-v0 file") }
        let n = c.count / 2
        Self.resize(&output, to: n)
        guard n > 0, let cBase = c.baseAddress else { return }
        let pwCount = password.count
        let shift = amount
        let step = Self.block % pwCount
        let blocks = n / (Self.block / 2)
        try withKernel(&output) { padRaw, pwb, out, outBase in
            let s = SIMD16<UInt8>(repeating: shift)
            var acc = SIMD16<UInt8>()
            var phase = 0
            for b in 0..<blocks {
                let src = cBase + b * Self.block
                let dst = outBase + b * (Self.block / 2)
                for v in 0..<(Self.block / 32) {
                    let o = v * 32
                    let x0 = src.loadUnaligned(fromByteOffset: o, as: SIMD16<UInt8>.self)
                    let x1 = src.loadUnaligned(fromByteOffset: o + 16, as: SIMD16<UInt8>.self)
                    let m0 = padRaw.loadUnaligned(fromByteOffset: phase + o, as: SIMD16<UInt8>.self)
                    let m1 = padRaw.loadUnaligned(fromByteOffset: phase + o + 16, as: SIMD16<UInt8>.self)
                    let packed = Self.unhexPair((x0 ^ m0) &- s, (x1 ^ m1) &- s, &acc)
                    dst.storeBytes(of: packed, toByteOffset: v * 16, as: SIMD16<UInt8>.self)
                }
                phase += step
                if phase >= pwCount { phase -= pwCount }
            }
            var bad: UInt8 = (acc & 0x80).max() != 0 ? 0xf0 : 0
            // The tail, byte by byte.
            var k = phase
            let cb = UnsafeRawBufferPointer(c)
            for j in (blocks * (Self.block / 2))..<n {
                let hi = (cb[2 * j] ^ pwb[k]) &- shift
                k += 1
                if k == pwCount { k = 0 }
                let lo = (cb[2 * j + 1] ^ pwb[k]) &- shift
                k += 1
                if k == pwCount { k = 0 }
                let a = Hex.nibble[Int(hi)]
                let bb = Hex.nibble[Int(lo)]
                bad |= (a | bb) & 0xf0
                out[j] = (a << 4) | (bb & 0x0f)
            }
            return bad
        }
    }

    private func decryptChained(
        _ c: UnsafeRawBufferPointer, into output: inout [UInt8], kernel: BiographerKernel
    ) throws(CipherFailure) {
        guard c.count >= 8, (c.count - 8) % 16 == 0 else {
            throw .badFormat("length is not 8 + a multiple of 16, not a biographer file")
        }
        let n = (c.count - 8) / 16
        Self.resize(&output, to: n)
        guard n > 0, let cBase = c.baseAddress else { return }
        let pwCount = password.count
        let shift = amount
        let blocks = n / 16
        try withKernel(&output) { padRaw, pwb, out, outBase in
            let src = cBase.assumingMemoryBound(to: UInt8.self)
            let pad = padRaw.assumingMemoryBound(to: UInt8.self)
            let dst = outBase.assumingMemoryBound(to: UInt8.self)
            // The wide kernels decrypt the tail too (in C, one vector a byte).
            var bad: UInt8
            switch kernel.isSupported ? kernel : .sse2 {
            case .avx2: return ccbio_chained_avx2(src, dst, n, pad, pwCount, shift) != 0 ? 0xf0 : 0
            case .avx512: return ccbio_chained_avx512(src, dst, n, pad, pwCount, shift) != 0 ? 0xf0 : 0
            case .sse2: bad = Self.chainedBlocks(cBase, outBase, blocks, padRaw, pwCount, shift)
            }
            // The tail (fewer than 16 plaintext bytes), one 16-byte group at a time.
            let cb = UnsafeRawBufferPointer(c)
            var k = (blocks * Self.block) % pwCount  // password index of ciphertext byte i - 8
            var k8 = (k + 8) % pwCount  // password index of ciphertext byte i
            var group = (UInt64(0), UInt64(0))
            for j in (blocks * 16)..<n {
                let base = 8 + 16 * j
                withUnsafeMutableBytes(of: &group) { g in
                    for m in 0..<16 {
                        let i = base + m
                        let d = (cb[i] ^ pwb[k8]) &- shift
                        let p = (cb[i - 8] ^ pwb[k]) &- shift
                        k += 1
                        if k == pwCount { k = 0 }
                        k8 += 1
                        if k8 == pwCount { k8 = 0 }
                        g[m] = d ^ p
                    }
                    var width = 16
                    while width > 1 {
                        let half = width / 2
                        for m in 0..<half {
                            let a = Hex.nibble[Int(g[2 * m])]
                            let bb = Hex.nibble[Int(g[2 * m + 1])]
                            bad |= (a | bb) & 0xf0
                            g[m] = (a << 4) | (bb & 0x0f)
                        }
                        width = half
                    }
                    out[j] = g[0]
                }
            }
            return bad
        }
    }

    /// The `sse2` kernel: `blocks` 256-byte blocks in 16-byte vectors (portable Swift SIMD16);
    /// returns 0xf0 if any byte was not a hex digit.
    private static func chainedBlocks(
        _ cBase: UnsafeRawPointer, _ outBase: UnsafeMutableRawPointer, _ blocks: Int, _ padRaw: UnsafeRawPointer,
        _ pwCount: Int, _ shift: UInt8
    ) -> UInt8 {
        let step = Self.block % pwCount
        let s = SIMD16<UInt8>(repeating: shift)
        var acc = SIMD16<UInt8>()
        // `phase` is the password index of the block's first byte minus 8 (mod len):
        // blocks start at ciphertext offset 8 + 256b and also read the 8 bytes before.
        var phase = 0
        var level = (
            SIMD16<UInt8>(), SIMD16<UInt8>(), SIMD16<UInt8>(), SIMD16<UInt8>(),
            SIMD16<UInt8>(), SIMD16<UInt8>(), SIMD16<UInt8>(), SIMD16<UInt8>()
        )
        for b in 0..<blocks {
            let src = cBase + b * Self.block  // 8 bytes before the block
            // t[i] = d(i) ^ d(i - 8), d(i) = (c[i] ^ pw[i]) - shift.
            @inline(__always) func unchained(_ v: Int) -> SIMD16<UInt8> {
                let o = v * 16
                let prev = src.loadUnaligned(fromByteOffset: o, as: SIMD16<UInt8>.self)
                let cur = src.loadUnaligned(fromByteOffset: o + 8, as: SIMD16<UInt8>.self)
                let mp = padRaw.loadUnaligned(fromByteOffset: phase + o, as: SIMD16<UInt8>.self)
                let mc = padRaw.loadUnaligned(fromByteOffset: phase + o + 8, as: SIMD16<UInt8>.self)
                return ((cur ^ mc) &- s) ^ ((prev ^ mp) &- s)
            }
            // Level 1: 16 vectors of hex^4 -> 8 vectors of hex^3.
            level.0 = Self.unhexPair(unchained(0), unchained(1), &acc)
            level.1 = Self.unhexPair(unchained(2), unchained(3), &acc)
            level.2 = Self.unhexPair(unchained(4), unchained(5), &acc)
            level.3 = Self.unhexPair(unchained(6), unchained(7), &acc)
            level.4 = Self.unhexPair(unchained(8), unchained(9), &acc)
            level.5 = Self.unhexPair(unchained(10), unchained(11), &acc)
            level.6 = Self.unhexPair(unchained(12), unchained(13), &acc)
            level.7 = Self.unhexPair(unchained(14), unchained(15), &acc)
            // Levels 2-4: 8 -> 4 -> 2 -> 1.
            let a0 = Self.unhexPair(level.0, level.1, &acc)
            let a1 = Self.unhexPair(level.2, level.3, &acc)
            let a2 = Self.unhexPair(level.4, level.5, &acc)
            let a3 = Self.unhexPair(level.6, level.7, &acc)
            let b0 = Self.unhexPair(a0, a1, &acc)
            let b1 = Self.unhexPair(a2, a3, &acc)
            let plain = Self.unhexPair(b0, b1, &acc)
            (outBase + b * 16).storeBytes(of: plain, as: SIMD16<UInt8>.self)
            phase += step
            if phase >= pwCount { phase -= pwCount }
        }
        return (acc & 0x80).max() != 0 ? 0xf0 : 0
    }

    /// Values of 16 hex digits (either case). Bit 7 of `acc` is set for any byte that is not a
    /// hex digit. Plain lane arithmetic only (no compares or selects, which Swift scalarises):
    /// with x7 = x & 0x7f, bit 7 of x7 + (0x80 - lo) says x7 >= lo, without carrying out.
    @inline(__always)
    static func nibbles(_ x: SIMD16<UInt8>, _ acc: inout SIMD16<UInt8>) -> SIMD16<UInt8> {
        let x7 = x & 0x7f
        let digit = (x7 &+ 0x50) & ~(x7 &+ 0x46)  // 0x30 ... 0x39
        let l = x7 | 0x20
        let letter = (l &+ 0x1f) & ~(l &+ 0x19)  // 0x61 ... 0x66 after folding case
        acc |= ~(digit | letter) | x
        // '0'-'9' -> x & 15; 'a'-'f' and 'A'-'F' (bit 6 set) -> (x & 15) + 9.
        let t = (x &>> 6) & 1
        return (x & 0x0f) &+ (t &<< 3) &+ t
    }

    /// Unhexes 32 digits (`a` then `b`) into 16 bytes; bit 7 of `acc` flags a non-digit.
    @inline(__always)
    static func unhexPair(_ a: SIMD16<UInt8>, _ b: SIMD16<UInt8>, _ acc: inout SIMD16<UInt8>) -> SIMD16<UInt8> {
        let na = nibbles(a, &acc)
        let nb = nibbles(b, &acc)
        // Little-endian 16-bit lanes hold (high digit) | (low digit << 8); the byte is
        // (high << 4) | low, then the lanes are narrowed (packuswb).
        let wa = unsafeBitCast(na, to: SIMD8<UInt16>.self)
        let wb = unsafeBitCast(nb, to: SIMD8<UInt16>.self)
        let pa = ((wa &<< 4) | (wa &>> 8)) & 0xff
        let pb = ((wb &<< 4) | (wb &>> 8)) & 0xff
        return SIMD16<UInt8>(
            lowHalf: SIMD8<UInt8>(truncatingIfNeeded: pa), highHalf: SIMD8<UInt8>(truncatingIfNeeded: pb))
    }

    /// Encrypts (for `cryptcount encrypt`, tests and demos). `iv` must be 8 bytes for the
    /// chained format and is ignored by v0.
    package func encrypt(_ plain: [UInt8], iv: [UInt8]) -> [UInt8] {
        var t = Hex.encode(plain)
        if chained {
            t = Hex.encode(Hex.encode(Hex.encode(t)))
            var c = iv + t
            if c.count > 8 {
                for i in 8..<c.count { c[i] ^= c[i - 8] }
            }
            return finish(c)
        }
        return finish(t)
    }

    private func finish(_ input: [UInt8]) -> [UInt8] {
        var c = input
        password.withBytes { pw in
            for i in c.indices {
                c[i] = (c[i] &+ amount) ^ pw[i % pw.count]
            }
        }
        return c
    }
}

/// Hex digits and their values.
enum Hex {
    static let lower: [UInt8] = Array("0123456789abcdef".utf8)

    /// Value of a hex digit (either case), or 0xFF for any other byte.
    static let nibble: [UInt8] = {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, ch) in "0123456789abcdef".utf8.enumerated() { t[Int(ch)] = UInt8(i) }
        for (i, ch) in "ABCDEF".utf8.enumerated() { t[Int(ch)] = UInt8(10 + i) }
        return t
    }()

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(lower[Int(b >> 4)])
            out.append(lower[Int(b & 0x0f)])
        }
        return out
    }
}
