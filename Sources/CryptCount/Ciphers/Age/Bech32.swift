/// Bech32 (BIP 173, original checksum constant 1) decoding, without BIP 173's 90-character
/// limit, as the age spec uses it for identities. Strings must be all upper or all lower case;
/// the checksum is computed over the lower-case form.
enum Bech32 {
    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let values: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in charset.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let gen: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { chk ^= gen[i] }
        }
        return chk
    }

    /// The lower-case human-readable part and the decoded bytes, or nil if the string is not
    /// valid Bech32 (mixed case, bad characters, bad checksum, bad padding). The text is an age
    /// secret key: the working copies of it are zeroed before they are freed.
    static func decode<C: Collection<UInt8>>(_ text: C) -> (hrp: String, data: [UInt8])? {
        guard text.count >= 8 else { return nil }
        var hasLower = false
        var hasUpper = false
        var lower = [UInt8]()
        var data5 = [UInt8]()
        var check = [UInt8]()
        defer {
            SecretBytes.wipe(&lower)
            SecretBytes.wipe(&data5)
            SecretBytes.wipe(&check)
        }
        lower.reserveCapacity(text.count)
        for c in text {
            guard c >= 33, c <= 126 else { return nil }
            if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") { hasLower = true }
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") {
                hasUpper = true
                lower.append(c + 32)
            } else {
                lower.append(c)
            }
        }
        guard !(hasLower && hasUpper) else { return nil }
        guard let sep = lower.lastIndex(of: UInt8(ascii: "1")), sep >= 1, lower.count - sep - 1 >= 6 else {
            return nil
        }
        let hrp = Array(lower[..<sep])
        for c in lower[(sep + 1)...] {
            let v = values[Int(c)]
            guard v >= 0 else { return nil }
            data5.append(UInt8(v))
        }
        check = hrp.map { $0 >> 5 }
        check.append(0)
        check += hrp.map { $0 & 31 }
        check += data5
        guard polymod(check) == 1 else { return nil }
        // 5-bit groups to bytes; leftover bits must be fewer than 5 and all zero.
        var out = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        for v in data5.dropLast(6) {
            acc = acc << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        guard bits < 5, acc == 0 else {
            SecretBytes.wipe(&out)
            return nil
        }
        return (String(decoding: hrp, as: UTF8.self), out)
    }

    /// Encodes bytes under `hrp` (lower case; callers upper-case identities). For tests.
    static func encode(hrp: String, data: [UInt8]) -> String {
        var data5 = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        for b in data {
            acc = acc << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                data5.append(UInt8((acc >> UInt32(bits)) & 31))
            }
            acc &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { data5.append(UInt8((acc << UInt32(5 - bits)) & 31)) }
        let h = Array(hrp.utf8)
        var check = h.map { $0 >> 5 }
        check.append(0)
        check += h.map { $0 & 31 }
        check += data5
        check += [0, 0, 0, 0, 0, 0]
        let pm = polymod(check) ^ 1
        for i in 0..<6 { data5.append(UInt8((pm >> UInt32(5 * (5 - i))) & 31)) }
        return hrp + "1" + String(decoding: data5.map { charset[Int($0)] }, as: UTF8.self)
    }
}
