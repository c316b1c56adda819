/// Follows the top-level packet framing of a binary OpenPGP message as its bytes pass (headers
/// read, bodies skipped by their lengths, partial lengths included) to find bytes after the
/// encrypted data packet, which ends a message (RFC 4880 11.3): librnp stops there and ignores
/// the rest, gpg calls such a file manipulated. Only framing: nothing is decrypted or kept.
final class OpenPGPFraming {
    private enum State {
        /// Reading a packet header: its bytes so far.
        case header([UInt8])
        /// Inside a body: bytes left in this stretch, and whether a partial length follows it.
        case body(left: Int, partial: Bool, encrypted: Bool)
        /// Reading the length of a body's next partial stretch.
        case partialLength([UInt8], encrypted: Bool)
        /// After the encrypted data packet: any byte is trailing data.
        case ended
        /// Not framing this follows (old-format indeterminate length, a malformed header):
        /// librnp decides.
        case untracked
    }

    private var state = State.header([])
    /// Bytes were seen after the encrypted data packet.
    private(set) var trailing = false

    /// Symmetrically encrypted, symmetrically encrypted and integrity protected, and AEAD
    /// encrypted data.
    private static let encryptedTags: Set<Int> = [9, 18, 20]

    /// `source`, with every byte it gives passing through `consume`.
    func observing(_ source: @escaping OpenPGPStream.Reader) -> OpenPGPStream.Reader {
        { [self] buf in
            let n = source(buf)
            if n > 0 { consume(UnsafeRawBufferPointer(rebasing: buf[0..<n])) }
            return n
        }
    }

    /// Reads what is left of `read` (a reader from `observing`), until the end or the first
    /// trailing byte.
    func drain(_ read: OpenPGPStream.Reader) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !trailing, scratch.withUnsafeMutableBytes({ read($0) }) > 0 {}
        SecretBytes.wipe(&scratch)
    }

    static let trailingMessage = "data follows the encrypted message (the file was extended, or holds two messages)"

    func consume(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while i < bytes.count {
            switch state {
            case .ended:
                trailing = true
                state = .untracked
                return
            case .untracked:
                return
            case .body(let left, let partial, let encrypted):
                let n = min(left, bytes.count - i)
                i += n
                if n < left {
                    state = .body(left: left - n, partial: partial, encrypted: encrypted)
                } else {
                    state = partial ? .partialLength([], encrypted: encrypted) : Self.after(encrypted: encrypted)
                }
            case .header(var h):
                h.append(bytes[i])
                i += 1
                state = Self.header(h)
            case .partialLength(var l, let encrypted):
                l.append(bytes[i])
                i += 1
                state = Self.partialLength(l, encrypted: encrypted)
            }
        }
    }

    private static func after(encrypted: Bool) -> State { encrypted ? .ended : .header([]) }

    /// The state after `h`, a header's bytes so far.
    private static func header(_ h: [UInt8]) -> State {
        guard let first = h.first, first & 0x80 != 0 else { return .untracked }
        if first & 0x40 == 0 {
            let encrypted = encryptedTags.contains(Int((first >> 2) & 0x0f))
            let size: Int
            switch first & 0x03 {
            case 0: size = 1
            case 1: size = 2
            case 2: size = 4
            default: return .untracked
            }
            guard h.count == 1 + size else { return .header(h) }
            let length = h[1...].reduce(0) { $0 << 8 | Int($1) }
            return body(length, partial: false, encrypted: encrypted)
        }
        let encrypted = encryptedTags.contains(Int(first & 0x3f))
        guard h.count > 1 else { return .header(h) }
        switch newLength(h[1...]) {
        case nil: return .header(h)
        case (let length, let partial)?: return body(length, partial: partial, encrypted: encrypted)
        }
    }

    private static func partialLength(_ l: [UInt8], encrypted: Bool) -> State {
        switch newLength(l[...]) {
        case nil: return .partialLength(l, encrypted: encrypted)
        case (let length, let partial)?: return body(length, partial: partial, encrypted: encrypted)
        }
    }

    private static func body(_ length: Int, partial: Bool, encrypted: Bool) -> State {
        if length == 0 && !partial { return after(encrypted: encrypted) }
        return .body(left: length, partial: partial, encrypted: encrypted)
    }

    /// A new-format length (RFC 4880 4.2.2) from its bytes so far, or nil while incomplete.
    private static func newLength(_ l: ArraySlice<UInt8>) -> (Int, Bool)? {
        var bytes = l.makeIterator()
        return OpenPGPStream.newLength { bytes.next().map(Int.init) }
    }
}
