/// Recognises an OpenPGP message from its first bytes: the ASCII armor header, or a binary
/// message that starts with a session-key packet (public-key PKESK, tag 1, or symmetric SKESK,
/// tag 3), old or new packet format, with a known packet version and algorithms. Pure, no
/// librnp.
package enum OpenPGPSniffer {
    static let armor: [UInt8] = Array("-----BEGIN PGP MESSAGE-----".utf8)

    /// True for an encrypted OpenPGP message (what `auto` hands to the `openpgp` cipher).
    static func isEncryptedMessage(_ prefix: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < prefix.count, ASCII.isWhitespace(prefix[i]) { i += 1 }
        if prefix[i...].starts(with: armor) { return true }
        guard let (tag, body) = packetHeader(prefix) else { return false }
        // The packet's first bytes, as far as the prefix holds them (0 past its end).
        func at(_ k: Int) -> UInt8 { body + k < prefix.count ? prefix[body + k] : 0 }
        // Beyond the version, the algorithm bytes must be ones the RFCs assign: random bytes (a
        // biographer file, anything encrypted) pass the version check about one time in 2,900,
        // these checks too about one time in 250,000. Private/experimental ids (100-110) count.
        switch (tag, at(0)) {
        case (1, 3):  // PKESK v3: key id (8 bytes), algorithm
            return publicKey(at(9))
        case (1, 6):  // PKESK v6: n, then key version and fingerprint (n bytes), algorithm
            let n = Int(at(1))
            guard n == 0 || (n == 21 && at(2) == 4) || (n == 33 && at(2) == 6) else { return false }
            return publicKey(at(2 + n))
        case (3, 4):  // SKESK v4: cipher, S2K type
            return symmetric(at(1)) && s2k(at(2))
        case (3, 5):  // SKESK v5 (GnuPG 2.3+): cipher, AEAD mode, S2K type
            return symmetric(at(1)) && (1...3).contains(at(2)) && s2k(at(3))
        case (3, 6):  // SKESK v6: a count, cipher, AEAD mode
            return symmetric(at(2)) && (1...3).contains(at(3))
        default:
            return false
        }
    }

    /// Public-key algorithms that encrypt: RSA (1, 2), Elgamal (16, 20), ECDH (18), X25519 and
    /// X448 (25, 26).
    private static func publicKey(_ a: UInt8) -> Bool { [1, 2, 16, 18, 20, 25, 26].contains(a) || experimental(a) }
    /// Symmetric ciphers 1-13 (IDEA to Camellia).
    private static func symmetric(_ a: UInt8) -> Bool { (1...13).contains(a) || experimental(a) }
    /// S2K specifiers: simple, salted, iterated and salted, Argon2.
    private static func s2k(_ a: UInt8) -> Bool { [0, 1, 3, 4].contains(a) || experimental(a) }
    private static func experimental(_ a: UInt8) -> Bool { (100...110).contains(a) }

    /// Looser, for telling "not OpenPGP" from "OpenPGP that did not decrypt": the armor header
    /// or any binary packet header with a message packet tag.
    package static func looksLikeOpenPGP(_ prefix: [UInt8]) -> Bool {
        prefix.withUnsafeBytes { raw in
            if isEncryptedMessage(raw) { return true }
            guard let (tag, _) = packetHeader(raw) else { return false }
            return [1, 2, 3, 4, 8, 9, 11, 18, 20].contains(tag)
        }
    }

    /// The tag of the first packet and the offset of its body, if the first bytes are a
    /// well-formed packet header (RFC 4880 section 4.2).
    private static func packetHeader(_ p: UnsafeRawBufferPointer) -> (tag: Int, body: Int)? {
        guard p.count >= 2, p[0] & 0x80 != 0 else { return nil }
        let first = p[0]
        if first & 0x40 == 0 {
            // Old format: tag in bits 5-2, length type in bits 1-0 (3: indeterminate).
            let tag = Int((first >> 2) & 0x0f)
            switch first & 0x03 {
            case 0: return (tag, 2)
            case 1: return (tag, 3)
            case 2: return (tag, 5)
            default: return (tag, 1)
            }
        }
        let tag = Int(first & 0x3f)
        let l = p[1]
        switch l {
        case 0..<192: return (tag, 2)
        case 192..<224: return (tag, 3)
        case 255: return (tag, 6)
        default: return nil  // a partial length cannot start a session-key packet
        }
    }
}
