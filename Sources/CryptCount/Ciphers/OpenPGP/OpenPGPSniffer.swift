/// Recognises an OpenPGP message from its first bytes: the ASCII armor header, or a binary
/// message that starts with a session-key packet (public-key PKESK, tag 1, or symmetric SKESK,
/// tag 3), old or new packet format, with a known packet version. Pure, no librnp.
package enum OpenPGPSniffer {
    static let armor: [UInt8] = Array("-----BEGIN PGP MESSAGE-----".utf8)

    /// True for an encrypted OpenPGP message (what `auto` hands to the `openpgp` cipher).
    static func isEncryptedMessage(_ prefix: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < prefix.count, ASCII.isWhitespace(prefix[i]) { i += 1 }
        if prefix[i...].starts(with: armor) { return true }
        guard let (tag, body) = packetHeader(prefix) else { return false }
        guard body < prefix.count else { return false }
        let version = prefix[body]
        switch tag {
        case 1: return version == 3 || version == 6
        case 3: return version == 4 || version == 5 || version == 6
        default: return false
        }
    }

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
