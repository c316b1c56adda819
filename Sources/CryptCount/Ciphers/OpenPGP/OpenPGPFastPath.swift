import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// The session-key cache, and the fast path that makes it possible. librnp neither reveals a
/// message's session key nor accepts one, so for the common small message this path opens the
/// message itself: binary, a PKESK for an X25519 (cv25519) key or an SKESK, then a SEIPD v1
/// packet (AES, MDC) holding literal data, uncompressed (what `pass` writes: it passes
/// `--compress-algo=none`) or in an "uncompressed" compressed packet. The session key found is
/// cached by the SHA-256 of the message's key packets, so the next query over the same file
/// skips the X25519 or S2K step even with the plaintext cache off.
///
/// Only a message that decrypts completely and passes the quick check and the MDC is answered
/// here; anything else (other algorithms, compression, armor, damage) goes to librnp, which
/// decides (and words the error). So this path can make a count faster, never different.
final class OpenPGPFastPath: Sendable {
    struct X25519Recipient: Sendable {
        let keyID: [UInt8]
        let fingerprint: [UInt8]
        let key: Curve25519.KeyAgreement.PrivateKey
        let kdfHash: UInt8
        let wrapAlgorithm: UInt8
    }

    /// An unlocked RSA encryption key (PKESK algorithms 1 and 2, PKCS#1 v1.5). Unchecked:
    /// swift-crypto's key is an immutable wrapper of a BoringSSL `RSA`, whose private-key
    /// operations are thread-safe (BoringSSL locks its lazily computed Montgomery state).
    struct RSARecipient: @unchecked Sendable {
        let keyID: [UInt8]
        let key: _RSA.Encryption.PrivateKey
        /// The modulus length in bytes: BoringSSL wants the ciphertext exactly this long.
        let modulusBytes: Int
    }

    struct SessionKey: Sendable {
        let algorithm: UInt8
        let key: SymmetricKey
    }

    let recipients: [X25519Recipient]
    let rsaRecipients: [RSARecipient]
    let passphrase: SecretBytes?
    /// SHA-256 of the key packets -> session key. Belongs to one `OpenPGPKey`: forgotten with it.
    let sessionKeys = BoundedCache<[UInt8], SessionKey>(capacity: 8192)
    /// X25519 and S2K derivations run (tests check the cache with it).
    let keyOperations = Atomic<Int>(0)

    /// Messages at most this large are tried here (whole, in memory).
    static let maxMessage = 1 << 20

    init(recipients: [X25519Recipient], rsaRecipients: [RSARecipient] = [], passphrase: SecretBytes?) {
        self.recipients = recipients
        self.rsaRecipients = rsaRecipients
        self.passphrase = passphrase
    }

    // MARK: Packets

    struct Packet {
        var tag: Int
        var body: [UInt8]
        var start: Int
        var end: Int
    }

    /// The packet at `i` (old or new format; partial body lengths joined), or nil.
    static func packet(_ p: UnsafeRawBufferPointer, at i: Int) -> Packet? {
        guard i < p.count, p[i] & 0x80 != 0 else { return nil }
        let first = p[i]
        var j = i + 1
        func byte() -> Int? {
            guard j < p.count else { return nil }
            defer { j += 1 }
            return Int(p[j])
        }
        if first & 0x40 == 0 {
            let tag = Int((first >> 2) & 0x0f)
            let length: Int
            switch first & 0x03 {
            case 0:
                guard let a = byte() else { return nil }
                length = a
            case 1:
                guard let a = byte(), let b = byte() else { return nil }
                length = a << 8 | b
            case 2:
                guard let a = byte(), let b = byte(), let c = byte(), let d = byte() else { return nil }
                length = a << 24 | b << 16 | c << 8 | d
            default:
                length = p.count - j
            }
            guard length <= p.count - j else { return nil }
            return Packet(tag: tag, body: Array(p[j..<(j + length)]), start: i, end: j + length)
        }
        let tag = Int(first & 0x3f)
        var body: [UInt8] = []
        while true {
            guard let a = byte() else { return nil }
            var length: Int
            var partial = false
            switch a {
            case 0..<192: length = a
            case 192..<224:
                guard let b = byte() else { return nil }
                length = (a - 192) << 8 + b + 192
            case 255:
                guard let b = byte(), let c = byte(), let d = byte(), let e = byte() else { return nil }
                length = b << 24 | c << 16 | d << 8 | e
            default:
                length = 1 << (a & 0x1f)
                partial = true
            }
            guard length <= p.count - j else { return nil }
            body.append(contentsOf: p[j..<(j + length)])
            j += length
            if !partial { break }
        }
        return Packet(tag: tag, body: body, start: i, end: j)
    }

    // MARK: Decrypting

    /// What the in-memory path made of a whole small message.
    enum Opened {
        /// Plain literal data: the plaintext.
        case literal([UInt8])
        /// Decrypted and verified (quick check, MDC), but the contents are more than one
        /// literal packet (compressed data, say): these packets, an unencrypted OpenPGP
        /// message, for librnp to unpack.
        case inner([UInt8])
    }

    /// The message opened here, or nil to let librnp handle it. `hit` tells whether the
    /// session key came from the cache.
    func open(_ message: UnsafeRawBufferPointer, hit: inout Bool) -> Opened? {
        guard message.count <= Self.maxMessage else { return nil }
        var i = 0
        var esks: [Packet] = []
        var seipd: Packet? = nil
        while i < message.count {
            guard let pkt = Self.packet(message, at: i) else { return nil }
            i = pkt.end
            switch pkt.tag {
            case 1, 3: esks.append(pkt)
            case 18:
                seipd = pkt
                guard i == message.count else { return nil }
            default: return nil
            }
        }
        guard let seipd, !esks.isEmpty, seipd.body.first == 1 else { return nil }
        let cacheKey = Array(SHA256.hash(data: UnsafeRawBufferPointer(rebasing: message[0..<seipd.start])))
        if let cached = sessionKeys.value(for: cacheKey) {
            hit = true
            return Self.openSEIPD(seipd.body, cached).map(Self.unpack)
        }
        for esk in esks {
            guard let sk = sessionKey(from: esk) else { continue }
            // A wrong key can unwrap to a plausible session key only by chance; the MDC decides.
            guard let inner = Self.openSEIPD(seipd.body, sk) else { continue }
            sessionKeys.insert(sk, for: cacheKey)
            return Self.unpack(inner)
        }
        return nil
    }

    private static func unpack(_ inner: [UInt8]) -> Opened {
        var inner = inner
        if let plain = inner.withUnsafeBytes({ literal(in: $0, depth: 0) }) {
            SecretBytes.wipe(&inner)
            return .literal(plain)
        }
        return .inner(inner)
    }

    /// The session key of one key packet (a PKESK or SKESK this key can open), or nil. Counts
    /// as one public-key or S2K operation.
    func sessionKey(from esk: Packet) -> SessionKey? {
        keyOperations.add(1, ordering: .relaxed)
        switch esk.tag {
        case 1:
            guard esk.body.count > 10 else { return nil }
            switch esk.body[9] {
            case 1, 2: return rsaSessionKey(esk.body)
            default: return publicKeySessionKey(esk.body)
            }
        default:
            return symmetricSessionKey(esk.body)
        }
    }

    /// PKESK v3, RSA (RFC 4880 5.1): one MPI, m^e mod n, whose PKCS#1 v1.5 payload is
    /// algorithm || key || checksum. BoringSSL checks the padding; a bad one is only nil.
    private func rsaSessionKey(_ b: [UInt8]) -> SessionKey? {
        guard b.count > 12, b[0] == 3, b[9] == 1 || b[9] == 2 else { return nil }
        let keyID = Array(b[1..<9])
        let bits = Int(b[10]) << 8 | Int(b[11])
        let length = (bits + 7) / 8
        guard b.count == 12 + length, length > 0 else { return nil }
        let mpi = b[12...]
        for r in rsaRecipients where r.keyID == keyID || keyID == [UInt8](repeating: 0, count: 8) {
            guard length <= r.modulusBytes else { continue }
            let ciphertext = [UInt8](repeating: 0, count: r.modulusBytes - length) + mpi
            guard var plain = try? r.key.decrypt(ciphertext, padding: ._WEAK_AND_INSECURE_PKCS_V1_5) else { continue }
            var m = Array(plain)
            plain.resetBytes(in: 0..<plain.count)
            defer { SecretBytes.wipe(&m) }
            if let sk = Self.checkedSessionKey(m) { return sk }
        }
        return nil
    }

    static let curve25519OID: [UInt8] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]
    static let anonymousSender = Array("Anonymous Sender    ".utf8)

    /// PKESK v3, ECDH on Curve25519 (RFC 6637 with the cv25519 conventions).
    private func publicKeySessionKey(_ b: [UInt8]) -> SessionKey? {
        guard b.count > 12, b[0] == 3, b[9] == 18 else { return nil }
        let keyID = Array(b[1..<9])
        let bits = Int(b[10]) << 8 | Int(b[11])
        let pointLength = (bits + 7) / 8
        guard pointLength == 33, b.count > 12 + pointLength, b[12] == 0x40 else { return nil }
        let ephemeral = Array(b[13..<(12 + pointLength)])
        let wrappedLength = Int(b[12 + pointLength])
        let wrappedStart = 13 + pointLength
        guard b.count == wrappedStart + wrappedLength else { return nil }
        let wrapped = Array(b[wrappedStart...])
        guard let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: ephemeral) else { return nil }
        for r in recipients where r.keyID == keyID || keyID == [UInt8](repeating: 0, count: 8) {
            guard let shared = try? r.key.sharedSecretFromKeyAgreement(with: peer) else { continue }
            var param: [UInt8] = [UInt8(Self.curve25519OID.count)] + Self.curve25519OID
            param += [18, 3, 1, r.kdfHash, r.wrapAlgorithm]
            param += Self.anonymousSender + r.fingerprint
            var z: [UInt8] = [0, 0, 0, 1]
            shared.withUnsafeBytes { z.append(contentsOf: $0) }
            z += param
            defer { SecretBytes.wipe(&z) }
            var digest: [UInt8]
            switch r.kdfHash {
            case 8: digest = Array(SHA256.hash(data: z))
            case 9: digest = Array(SHA384.hash(data: z))
            case 10: digest = Array(SHA512.hash(data: z))
            default: continue
            }
            defer { SecretBytes.wipe(&digest) }
            guard let kekLength = Self.aesKeyLength(r.wrapAlgorithm), digest.count >= kekLength else { continue }
            let kek = SymmetricKey(data: digest[0..<kekLength])
            guard let unwrapped = try? AES.KeyWrap.unwrap(wrapped, using: kek) else { continue }
            var m = unwrapped.withUnsafeBytes { Array($0) }
            defer { SecretBytes.wipe(&m) }
            // algorithm || key || checksum (2) || PKCS#5 padding
            guard let pad = m.last, pad >= 1, pad <= 8, m.count > Int(pad) + 3,
                m[(m.count - Int(pad))...].allSatisfy({ $0 == pad })
            else { continue }
            var body = Array(m[0..<(m.count - Int(pad))])
            defer { SecretBytes.wipe(&body) }
            if let sk = Self.checkedSessionKey(body) { return sk }
        }
        return nil
    }

    /// algorithm || key || 2-byte checksum -> the session key, if consistent.
    private static func checkedSessionKey(_ m: [UInt8]) -> SessionKey? {
        guard m.count >= 3, let length = aesKeyLength(m[0]), m.count == 1 + length + 2 else { return nil }
        let key = m[1..<(1 + length)]
        var sum = 0
        for b in key { sum = (sum + Int(b)) & 0xffff }
        guard sum == Int(m[m.count - 2]) << 8 | Int(m[m.count - 1]) else { return nil }
        return SessionKey(algorithm: m[0], key: SymmetricKey(data: key))
    }

    /// SKESK v4 with a simple, salted or iterated-and-salted S2K.
    private func symmetricSessionKey(_ b: [UInt8]) -> SessionKey? {
        guard let passphrase, b.count >= 4, b[0] == 4, let keyLength = Self.aesKeyLength(b[1]) else { return nil }
        var i = 2
        let type = b[i]
        guard i + 1 < b.count else { return nil }
        let hash = b[i + 1]
        i += 2
        var salt: [UInt8] = []
        var count = 0
        switch type {
        case 0: break
        case 1, 3:
            guard b.count >= i + 8 else { return nil }
            salt = Array(b[i..<(i + 8)])
            i += 8
            if type == 3 {
                guard i < b.count else { return nil }
                let c = Int(b[i])
                count = (16 + (c & 15)) << ((c >> 4) + 6)
                i += 1
            }
        default: return nil
        }
        guard
            var derived = passphrase.withBytes({
                Self.s2k(hash: hash, passphrase: $0, salt: salt, count: count, length: keyLength)
            })
        else { return nil }
        defer { SecretBytes.wipe(&derived) }
        if i == b.count { return SessionKey(algorithm: b[1], key: SymmetricKey(data: derived)) }
        // An encrypted session key: CFB with a zero IV under the S2K key.
        let encrypted = Array(b[i...])
        guard let iv = try? AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16)),
            let plain = try? AES._CFB.decrypt(encrypted, using: SymmetricKey(data: derived), iv: iv)
        else { return nil }
        var m = Array(plain)
        defer { SecretBytes.wipe(&m) }
        guard m.count >= 17, let length = Self.aesKeyLength(m[0]), m.count == 1 + length else { return nil }
        return SessionKey(algorithm: m[0], key: SymmetricKey(data: m[1...]))
    }

    /// OpenPGP S2K (RFC 4880 3.7.1): simple, salted, iterated and salted (`count` > 0).
    static func s2k(hash: UInt8, passphrase: UnsafeBufferPointer<UInt8>, salt: [UInt8], count: Int, length: Int)
        -> [UInt8]?
    {
        guard [2, 8, 9, 10].contains(hash) else { return nil }
        var unit = salt
        unit.append(contentsOf: passphrase)
        defer { SecretBytes.wipe(&unit) }
        let total = max(count, unit.count)
        var block: [UInt8] = []
        let reps = max(1, 65536 / max(unit.count, 1))
        for _ in 0..<reps { block.append(contentsOf: unit) }
        defer { SecretBytes.wipe(&block) }
        var out: [UInt8] = []
        var preload = 0
        while out.count < length {
            func run<H: HashFunction>(_ h: inout H) {
                if preload > 0 { h.update(data: [UInt8](repeating: 0, count: preload)) }
                var left = total
                while left > 0 {
                    let n = min(left, block.count)
                    block.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    left -= n
                }
                out.append(contentsOf: h.finalize())
            }
            switch hash {
            case 2:
                var h = Insecure.SHA1()
                run(&h)
            case 8:
                var h = SHA256()
                run(&h)
            case 9:
                var h = SHA384()
                run(&h)
            default:
                var h = SHA512()
                run(&h)
            }
            preload += 1
        }
        let key = Array(out.prefix(length))
        SecretBytes.wipe(&out)
        return key
    }

    static func aesKeyLength(_ algorithm: UInt8) -> Int? {
        switch algorithm {
        case 7: 16
        case 8: 24
        case 9: 32
        default: nil
        }
    }

    /// SEIPD v1: AES-CFB with a zero IV over prefix || data || MDC packet. Returns the packets
    /// inside if the quick check and the MDC hold.
    static func openSEIPD(_ body: [UInt8], _ sk: SessionKey) -> [UInt8]? {
        guard aesKeyLength(sk.algorithm) != nil, body.count >= 1 + 18 + 22,
            let iv = try? AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16)),
            var decrypted = try? AES._CFB.decrypt(body[1...], using: sk.key, iv: iv)
        else { return nil }
        var p = Array(decrypted)
        decrypted.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 { memset(base, 0, raw.count) }
        }
        defer { SecretBytes.wipe(&p) }
        let n = p.count
        guard p[14] == p[16], p[15] == p[17], p[n - 22] == 0xD3, p[n - 21] == 0x14 else { return nil }
        let mdc = Array(Insecure.SHA1.hash(data: p[0..<(n - 20)]))
        var diff: UInt8 = 0
        for k in 0..<20 { diff |= mdc[k] ^ p[n - 20 + k] }
        guard diff == 0 else { return nil }
        return Array(p[18..<(n - 22)])
    }

    /// The data of the one literal packet among `p`'s packets (signatures skipped, "compressed"
    /// packets with algorithm 0 opened), or nil.
    private static func literal(in p: UnsafeRawBufferPointer, depth: Int) -> [UInt8]? {
        guard depth < 4 else { return nil }
        var i = 0
        var found: [UInt8]? = nil
        while i < p.count {
            guard let pkt = packet(p, at: i) else { return nil }
            i = pkt.end
            switch pkt.tag {
            case 2, 4, 10: continue
            case 8:
                guard found == nil, pkt.body.first == 0 else { return nil }
                found = pkt.body.withUnsafeBytes {
                    literal(in: UnsafeRawBufferPointer(rebasing: $0[1...]), depth: depth + 1)
                }
                if found == nil { return nil }
            case 11:
                let b = pkt.body
                guard found == nil, b.count >= 6 else { return nil }
                let nameLength = Int(b[1])
                guard b.count >= 2 + nameLength + 4 else { return nil }
                found = Array(b[(2 + nameLength + 4)...])
            default:
                return nil
            }
        }
        return found
    }
}
