import Crypto
import CryptoExtras

/// Unprotects a gpg-agent key protected with `openpgp-s2k3-ocb-aes` (GnuPG 2.3, and 2.2 with
/// the extended key format: what Debian 12's gpg writes). librnp 0.16 knows the mode but
/// authenticates without GnuPG's associated data, so it rejects every such key; here the key is
/// opened as gpg-agent does (agent/protect.c) and handed to librnp unprotected, in memory.
///
/// Protected form (canonical S-expression):
///   (protected-private-key (ALGO (PUB..)... (protected openpgp-s2k3-ocb-aes
///       ((sha1 SALT COUNT) NONCE) ENCDATA) ...) (protected-at ...))
/// ENCDATA is AES-128-OCB (12-byte nonce, 16-byte tag appended) of `(` secret elements `)`,
/// with the key from iterated-and-salted S2K (SHA-1) of the passphrase, and as associated data
/// the algorithm list with the `(protected ...)` element cut out.
package enum GnuPGProtectedKey {
    static let ocbMode = Array("openpgp-s2k3-ocb-aes".utf8)

    /// A canonical S-expression node, with its byte range in the input.
    package indirect enum Node {
        case atom([UInt8], Range<Int>)
        case list([Node], Range<Int>)

        var range: Range<Int> {
            switch self {
            case .atom(_, let r), .list(_, let r): r
            }
        }
        var atom: [UInt8]? {
            if case .atom(let b, _) = self { return b }
            return nil
        }
        var items: [Node]? {
            if case .list(let n, _) = self { return n }
            return nil
        }
    }

    /// Parses one canonical S-expression starting at `i` (depth-limited, lengths checked).
    /// `copying: false` checks the shape only: atoms come back empty (their ranges are kept).
    package static func parse(_ s: [UInt8], _ i: inout Int, depth: Int = 0, copying: Bool = true) -> Node? {
        guard i < s.count, depth < 32 else { return nil }
        let start = i
        if s[i] == UInt8(ascii: "(") {
            i += 1
            var items: [Node] = []
            while i < s.count, s[i] != UInt8(ascii: ")") {
                guard let n = parse(s, &i, depth: depth + 1, copying: copying) else { return nil }
                items.append(n)
            }
            guard i < s.count else { return nil }
            i += 1
            return .list(items, start..<i)
        }
        if s[i] == UInt8(ascii: "[") {
            // A display hint: skip it, keep the atom after it.
            i += 1
            guard parse(s, &i, depth: depth + 1, copying: false) != nil, i < s.count, s[i] == UInt8(ascii: "]")
            else { return nil }
            i += 1
            return parse(s, &i, depth: depth + 1, copying: copying)
        }
        var n = 0
        while i < s.count, s[i] >= UInt8(ascii: "0"), s[i] <= UInt8(ascii: "9") {
            n = n * 10 + Int(s[i] - UInt8(ascii: "0"))
            guard n <= 1 << 24 else { return nil }
            i += 1
        }
        guard i < s.count, s[i] == UInt8(ascii: ":"), i > start, n <= s.count - i - 1 else { return nil }
        let bytes = copying ? Array(s[(i + 1)..<(i + 1 + n)]) : []
        i += 1 + n
        return .atom(bytes, start..<i)
    }

    /// Whether `s` is exactly one canonical S-expression list (`parse` walking it without copying
    /// its atoms, which may be key material).
    package static func isOneList(_ s: [UInt8]) -> Bool {
        var i = 0
        return s.first == UInt8(ascii: "(") && parse(s, &i, copying: false) != nil && i == s.count
    }

    package enum Outcome {
        /// Not an OCB-protected key: hand the file to librnp as it is.
        case notOCB
        /// The passphrase does not open it.
        case wrongPassphrase
        /// The same key, unprotected: `(private-key (ALGO ...))`.
        case unprotected(SecretBytes)
    }

    /// `maxCount` bounds the S2K work a key file can ask for (gpg-agent calibrates it to about
    /// 100 ms: tens to hundreds of millions of bytes).
    package static func unprotect(_ key: [UInt8], passphrase: SecretBytes, maxCount: Int = 1 << 31) -> Outcome {
        var i = 0
        guard let top = parse(key, &i), let items = top.items, items.count >= 2,
            items[0].atom == Array("protected-private-key".utf8), let algo = items[1].items, algo.count >= 2
        else { return .notOCB }
        guard
            let protIndex = algo.firstIndex(where: {
                $0.items?.first?.atom == Array("protected".utf8)
            }), let prot = algo[protIndex].items, prot.count == 4, prot[1].atom == ocbMode,
            let params = prot[2].items, params.count == 2, let s2k = params[0].items, s2k.count == 3,
            s2k[0].atom == Array("sha1".utf8), let salt = s2k[1].atom, salt.count == 8,
            let countText = s2k[2].atom, let nonce = params[1].atom, nonce.count == 12,
            let encrypted = prot[3].atom, encrypted.count >= 16
        else { return .notOCB }
        guard let count = Int(String(decoding: countText, as: UTF8.self)), count > 0, count <= maxCount else {
            return .notOCB
        }
        // Associated data: the algorithm list without the protected element.
        let algoRange = items[1].range
        let protRange = algo[protIndex].range
        let aad =
            Array(key[algoRange.lowerBound..<protRange.lowerBound])
            + Array(key[protRange.upperBound..<algoRange.upperBound])
        var derived = passphrase.withBytes { s2kIterated(passphrase: $0, salt: salt, count: count, length: 16) }
        defer { SecretBytes.wipe(&derived) }
        let aes = SymmetricKey(data: derived)
        guard var plain = OCB.decrypt(key: aes, nonce: nonce, ciphertextAndTag: encrypted, aad: aad) else {
            return .wrongPassphrase
        }
        defer { SecretBytes.wipe(&plain) }
        // `((` secret elements `))`: the elements (`(d ...)`, ...) go where the protected one was.
        var j = 0
        guard var secretList = parse(plain, &j), j == plain.count else { return .wrongPassphrase }
        while let inner = secretList.items, inner.count == 1, inner[0].items?.first?.items != nil {
            secretList = inner[0]
        }
        guard let elements = secretList.items, !elements.isEmpty, elements.allSatisfy({ $0.items?.first?.atom != nil })
        else { return .wrongPassphrase }
        var out: [UInt8] = Array("(11:private-key".utf8)
        out.append(contentsOf: key[algoRange.lowerBound..<protRange.lowerBound])
        for e in elements { out.append(contentsOf: plain[e.range]) }
        out.append(contentsOf: key[protRange.upperBound..<algoRange.upperBound])
        out.append(UInt8(ascii: ")"))
        defer { SecretBytes.wipe(&out) }
        return .unprotected(SecretBytes(out))
    }

    /// OpenPGP S2K "iterated and salted" with SHA-1 (RFC 4880 3.7.1.3); `count` bytes hashed.
    static func s2kIterated(passphrase: UnsafeBufferPointer<UInt8>, salt: [UInt8], count: Int, length: Int) -> [UInt8] {
        var unit = salt
        unit.append(contentsOf: passphrase)
        defer { SecretBytes.wipe(&unit) }
        let total = max(count, unit.count)
        // Hash a buffer of whole repetitions at a time.
        var block: [UInt8] = []
        let reps = max(1, 65536 / unit.count)
        for _ in 0..<reps { block.append(contentsOf: unit) }
        defer { SecretBytes.wipe(&block) }
        var hasher = Insecure.SHA1()
        var left = total
        while left > 0 {
            let n = min(left, block.count)
            block.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        let digest = Array(hasher.finalize())
        return Array(digest.prefix(length))
    }
}

/// AES-OCB decryption (RFC 7253) with a 96-bit nonce and a 128-bit tag, from the AES block
/// function. Small inputs only (keys): nothing here is tuned.
enum OCB {
    private static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var out = a
        for i in 0..<min(a.count, b.count) { out[i] ^= b[i] }
        return out
    }

    private static func double(_ b: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = (b[i] << 1) | (i < 15 ? b[i + 1] >> 7 : 0) }
        if b[0] & 0x80 != 0 { out[15] ^= 0x87 }
        return out
    }

    static func decrypt(key: SymmetricKey, nonce: [UInt8], ciphertextAndTag: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard nonce.count == 12, ciphertextAndTag.count >= 16 else { return nil }
        func enc(_ b: [UInt8]) -> [UInt8] {
            var x = b
            do { try AES.permute(&x, key: key) } catch { return [UInt8](repeating: 0, count: 16) }
            return x
        }
        func dec(_ b: [UInt8]) -> [UInt8] {
            var x = b
            do { try AES.inversePermute(&x, key: key) } catch { return [UInt8](repeating: 0, count: 16) }
            return x
        }
        let zero = [UInt8](repeating: 0, count: 16)
        let lStar = enc(zero)
        let lDollar = double(lStar)
        var ls = [double(lDollar)]
        func l(_ i: Int) -> [UInt8] {
            while ls.count <= i { ls.append(double(ls[ls.count - 1])) }
            return ls[i]
        }
        // Nonce block: 0^7 (tag length 128 mod 128) || 0^24 || 1 || N.
        var nblock: [UInt8] = [0, 0, 0, 1] + nonce
        let bottom = Int(nblock[15] & 0x3f)
        nblock[15] &= 0xc0
        let ktop = enc(nblock)
        var stretch = ktop
        for i in 0..<8 { stretch.append(ktop[i] ^ ktop[i + 1]) }
        // Offset_0: bits bottom..bottom+127 of Stretch.
        var offset = [UInt8](repeating: 0, count: 16)
        let byteShift = bottom / 8
        let bitShift = bottom % 8
        for i in 0..<16 {
            let hi = stretch[i + byteShift] << bitShift
            let lo = bitShift == 0 ? 0 : stretch[i + byteShift + 1] >> (8 - bitShift)
            offset[i] = hi | lo
        }
        let c = Array(ciphertextAndTag.prefix(ciphertextAndTag.count - 16))
        let tag = Array(ciphertextAndTag.suffix(16))
        var checksum = zero
        var plain: [UInt8] = []
        plain.reserveCapacity(c.count)
        let full = c.count / 16
        for i in 0..<full {
            offset = xor(offset, l((i + 1).trailingZeroBitCount))
            let block = Array(c[(i * 16)..<(i * 16 + 16)])
            let p = xor(dec(xor(block, offset)), offset)
            checksum = xor(checksum, p)
            plain.append(contentsOf: p)
        }
        let rest = c.count - full * 16
        if rest > 0 {
            offset = xor(offset, lStar)
            let pad = enc(offset)
            var p = [UInt8](repeating: 0, count: rest)
            for j in 0..<rest { p[j] = c[full * 16 + j] ^ pad[j] }
            var padded = p + [0x80]
            padded.append(contentsOf: [UInt8](repeating: 0, count: 16 - padded.count))
            checksum = xor(checksum, padded)
            plain.append(contentsOf: p)
        }
        let expected = xor(enc(xor(xor(checksum, offset), lDollar)), hash(aad, l: l, lStar: lStar, enc: enc))
        // Constant time: no early exit on the first differing byte.
        var diff: UInt8 = 0
        for i in 0..<16 { diff |= expected[i] ^ tag[i] }
        guard diff == 0 else {
            SecretBytes.wipe(&plain)
            return nil
        }
        return plain
    }

    private static func hash(
        _ a: [UInt8], l: (Int) -> [UInt8], lStar: [UInt8], enc: ([UInt8]) -> [UInt8]
    ) -> [UInt8] {
        var sum = [UInt8](repeating: 0, count: 16)
        var offset = [UInt8](repeating: 0, count: 16)
        let full = a.count / 16
        for i in 0..<full {
            offset = xor(offset, l((i + 1).trailingZeroBitCount))
            sum = xor(sum, enc(xor(Array(a[(i * 16)..<(i * 16 + 16)]), offset)))
        }
        let rest = a.count - full * 16
        if rest > 0 {
            offset = xor(offset, lStar)
            var padded = Array(a[(full * 16)...]) + [0x80]
            padded.append(contentsOf: [UInt8](repeating: 0, count: 16 - padded.count))
            sum = xor(sum, enc(xor(padded, offset)))
        }
        return sum
    }
}
