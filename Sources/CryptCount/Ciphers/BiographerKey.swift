/// The seed diary's toy cipher (`shared/seed/biographer-format.md`): no integrity, weak secrecy;
/// supported so that existing diaries can be searched.
///
/// `biographer`: 8-byte iv, then hex applied four times (16x), chained, shifted and XORed with
/// the password. `biographer-v0`: one hex pass, shifted and XORed; no iv, no chaining.
///
/// Decryption is local: undoing the chaining in decreasing order reads only bytes not yet
/// rewritten, so plaintext byte `j` depends on ciphertext bytes `16j ..< 16j + 24` alone. The
/// decrypter therefore runs one fused pass with no intermediate buffers.
public final class BiographerKey: CipherKey {
    public let chained: Bool
    private let password: SecretBytes
    private let amount: UInt8

    public init(password: [UInt8], chained: Bool) throws(SecretError) {
        guard !password.isEmpty else { throw SecretError("the password is empty") }
        self.password = SecretBytes(password)
        self.chained = chained
        self.amount = Self.shift(for: password)
    }

    public var cipherName: String { chained ? "biographer" : "biographer-v0" }
    public var readsWholeFile: Bool { true }

    /// Sum of the bytes of hex(pw), mod 256.
    static func shift(for password: [UInt8]) -> UInt8 {
        var sum: UInt8 = 0
        for b in password {
            sum &+= Hex.lower[Int(b >> 4)]
            sum &+= Hex.lower[Int(b & 0x0f)]
        }
        return sum
    }

    public func decrypt(whole c: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        if chained {
            try decryptChained(c, into: &output)
        } else {
            try decryptV0(c, into: &output)
        }
    }

    private func decryptV0(_ c: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        guard c.count % 2 == 0 else { throw .badFormat("length is odd, not a biographer-v0 file") }
        let n = c.count / 2
        output.removeAll(keepingCapacity: true)
        guard n > 0 else { return }
        let pwCount = password.count
        let shift = amount
        var bad = false
        output.reserveCapacity(n)
        password.withBytes { pwb in
            var k = 0  // password index, i mod pwCount, kept incrementally
            for j in 0..<n {
                let hi = (c[2 * j] ^ pwb[k]) &- shift
                k += 1
                if k == pwCount { k = 0 }
                let lo = (c[2 * j + 1] ^ pwb[k]) &- shift
                k += 1
                if k == pwCount { k = 0 }
                let a = Hex.nibble[Int(hi)]
                let b = Hex.nibble[Int(lo)]
                if (a | b) & 0xf0 != 0 { bad = true }
                output.append((a << 4) | (b & 0x0f))
            }
        }
        if bad {
            output.removeAll(keepingCapacity: true)
            throw .decryptFailed("the text is not hex after decryption (wrong password?)")
        }
    }

    private func decryptChained(_ c: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        guard c.count >= 8, (c.count - 8) % 16 == 0 else {
            throw .badFormat("length is not 8 + a multiple of 16, not a biographer file")
        }
        let n = (c.count - 8) / 16
        output.removeAll(keepingCapacity: true)
        guard n > 0 else { return }
        let pwCount = password.count
        let shift = amount
        var bad: UInt8 = 0
        output.reserveCapacity(n)
        password.withBytes { pwb in
            // d(i) = (c[i] ^ pw[i % len]) - shift; t[i] = d(i) ^ d(i - 8) for i >= 8.
            var prev = [UInt8](repeating: 0, count: 8)  // d over the previous 8 positions
            var k = 0
            for i in 0..<8 {
                prev[i] = (c[i] ^ pwb[k]) &- shift
                k += 1
                if k == pwCount { k = 0 }
            }
            var group = [UInt8](repeating: 0, count: 16)
            var i = 8
            for _ in 0..<n {
                for g in 0..<16 {
                    let d = (c[i] ^ pwb[k]) &- shift
                    k += 1
                    if k == pwCount { k = 0 }
                    group[g] = d ^ prev[g & 7]
                    prev[g & 7] = d
                    i += 1
                }
                // Four unhex passes over 16 bytes: 16 -> 8 -> 4 -> 2 -> 1.
                var width = 16
                while width > 1 {
                    let half = width / 2
                    for m in 0..<half {
                        let a = Hex.nibble[Int(group[2 * m])]
                        let b = Hex.nibble[Int(group[2 * m + 1])]
                        bad |= (a | b) & 0xf0
                        group[m] = (a << 4) | (b & 0x0f)
                    }
                    width = half
                }
                output.append(group[0])
            }
        }
        if bad != 0 {
            output.removeAll(keepingCapacity: true)
            throw .decryptFailed("the text is not hex after decryption (wrong password?)")
        }
    }

    /// Encrypts (for `cryptcount encrypt`, tests and demos). `iv` must be 8 bytes for the
    /// chained format and is ignored by v0.
    public func encrypt(_ plain: [UInt8], iv: [UInt8]) -> [UInt8] {
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
