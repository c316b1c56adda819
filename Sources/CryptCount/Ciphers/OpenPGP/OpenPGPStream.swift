import Crypto
import CryptoExtras
import Foundation

/// The streaming half of the fast path: armored messages and messages larger than
/// `OpenPGPFastPath.maxMessage`, any size, in bounded memory. The key packets (PKESK, SKESK)
/// and the start of the SEIPD v1 packet are read from the first, already buffered, bytes of the
/// file; if the session key is cached, or one of the key packets yields it here (X25519, RSA,
/// S2K) and the quick check holds, the SEIPD packet is decrypted here as the file is read
/// (AES-CFB, MDC checked at the end), and the packets inside (compressed data, literal data,
/// signatures: an unencrypted OpenPGP message) are handed to librnp, which decompresses them
/// and emits the literal data. Anything else is declined before a byte is emitted, and librnp
/// reads the whole file as before.
///
/// Armor (`-----BEGIN PGP MESSAGE-----`) is decoded here, streaming; its CRC-24 line is not
/// checked (RFC 9580 6.1: the MDC is the integrity check).
enum OpenPGPStream {
    /// Bytes read per step (ciphertext, armor).
    static let chunk = 64 << 10
    /// At most this many key packets, each at most this large (an RSA-16384 PKESK is ~2 KiB).
    static let maxKeyPackets = 64
    static let maxKeyPacket = 16 << 10

    /// A reader: fills the buffer, returns the count, 0 at the end, -1 on an error.
    typealias Reader = (UnsafeMutableRawBufferPointer) -> Int

    /// The file: the bytes already buffered, then (once `commit` is set) the rest from the
    /// engine. Before the commit, needing more than the buffered bytes declines the fast path,
    /// so librnp can still be given the file from its start.
    final class RawInput {
        let buffered: [UInt8]
        let filled: Int
        let ended: Bool
        let pull: Reader
        var position = 0
        var committed = false

        init(buffered: [UInt8], filled: Int, ended: Bool, pull: @escaping Reader) {
            self.buffered = buffered
            self.filled = filled
            self.ended = ended
            self.pull = pull
        }

        func read(_ buf: UnsafeMutableRawBufferPointer) -> Int {
            if position < filled {
                let n = min(buf.count, filled - position)
                buffered.withUnsafeBytes { src in
                    if let dst = buf.baseAddress, let s = src.baseAddress {
                        dst.copyMemory(from: s + position, byteCount: n)
                    }
                }
                position += n
                return n
            }
            if ended { return 0 }
            guard committed else { return -1 }
            return pull(buf)
        }
    }

    /// Buffered byte access over a reader.
    final class ByteReader {
        private let source: Reader
        private var buf = [UInt8](repeating: 0, count: OpenPGPStream.chunk)
        private var pos = 0
        private var end = 0
        private(set) var failed = false

        init(_ source: @escaping Reader) { self.source = source }

        private func fill() -> Bool {
            guard !failed else { return false }
            pos = 0
            end = 0
            let n = buf.withUnsafeMutableBytes { source($0) }
            if n < 0 { failed = true }
            if n <= 0 { return false }
            end = n
            return true
        }

        func byte() -> UInt8? {
            if pos == end, !fill() { return nil }
            defer { pos += 1 }
            return buf[pos]
        }

        /// Exactly `count` bytes, or nil.
        func bytes(_ count: Int) -> [UInt8]? {
            var out: [UInt8] = []
            while out.count < count {
                if pos == end, !fill() { return nil }
                let n = min(count - out.count, end - pos)
                out.append(contentsOf: buf[pos..<(pos + n)])
                pos += n
            }
            return out
        }

        func read(_ dst: UnsafeMutableRawBufferPointer) -> Int {
            if pos == end, !fill() { return failed ? -1 : 0 }
            let n = min(dst.count, end - pos)
            buf.withUnsafeBytes { src in
                if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s + pos, byteCount: n) }
            }
            pos += n
            return n
        }
    }

    /// ASCII armor to binary, streaming. Header: optional whitespace, the BEGIN line, header
    /// lines, an empty line; then base64 up to the padding, the CRC line (`=`) or the END line.
    final class Dearmor {
        private let raw: ByteReader
        private var started = false
        private var done = false
        private(set) var failed = false
        private var group = Base64Group()
        private var lineStart = true
        private var out: [UInt8] = []
        private var outPos = 0

        init(_ raw: ByteReader) { self.raw = raw }

        /// Reads a line (without its end), at most `limit` bytes; nil at the end or if longer.
        private func line(limit: Int) -> [UInt8]? {
            var l: [UInt8] = []
            while let b = raw.byte() {
                if b == UInt8(ascii: "\n") {
                    if l.last == UInt8(ascii: "\r") { l.removeLast() }
                    return l
                }
                guard l.count < limit else { return nil }
                l.append(b)
            }
            return nil
        }

        private func header() -> Bool {
            var b = raw.byte()
            var skipped = 0
            while let c = b, c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d {
                skipped += 1
                guard skipped < 4096 else { return false }
                b = raw.byte()
            }
            guard let first = b, let rest = line(limit: 256) else { return false }
            var begin = [first] + rest
            while let c = begin.last, c == 0x20 || c == 0x09 { begin.removeLast() }
            guard begin == Array("-----BEGIN PGP MESSAGE-----".utf8) else { return false }
            for _ in 0..<64 {
                guard let l = line(limit: 1024) else { return false }
                if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
                // A header line is "Key: value"; a base64 line would mean a missing blank line.
                guard l.contains(UInt8(ascii: ":")) else { return false }
            }
            return false
        }

        /// Decodes the next stretch of base64 into `out`; false at the end or on an error.
        private func decodeMore() -> Bool {
            out.removeAll(keepingCapacity: true)
            outPos = 0
            while !done && out.count < OpenPGPStream.chunk {
                guard let c = raw.byte() else {
                    // The armor must end with its END line (or at least a CRC or padding).
                    failed = true
                    return false
                }
                switch c {
                case 0x0a:
                    lineStart = true
                    continue
                case 0x0d, 0x20, 0x09:
                    continue
                case UInt8(ascii: "="), UInt8(ascii: "-"):
                    // Padding, the CRC line or the END line: the data ends here.
                    if c == UInt8(ascii: "-") && !lineStart {
                        failed = true
                        return false
                    }
                    guard group.end(to: &out) else {
                        failed = true
                        return false
                    }
                    done = true
                default:
                    lineStart = false
                    let v = Base64.standardTable[Int(c)]
                    guard v != 0xFF else {
                        failed = true
                        return false
                    }
                    group.add(v, to: &out)
                }
            }
            return !out.isEmpty
        }

        func read(_ dst: UnsafeMutableRawBufferPointer) -> Int {
            if !started {
                started = true
                guard header() else {
                    failed = true
                    return -1
                }
            }
            if outPos == out.count, !decodeMore() { return failed ? -1 : 0 }
            let n = min(dst.count, out.count - outPos)
            out.withUnsafeBytes { src in
                if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s + outPos, byteCount: n) }
            }
            outPos += n
            return n
        }
    }

    /// A packet header read from a stream: the tag, the raw header bytes, and the first body
    /// part's length (`partial`: more parts follow; nil length: to the end, old format).
    struct Header {
        var tag: Int
        var raw: [UInt8]
        var length: Int?
        var partial: Bool
    }

    static func header(_ r: ByteReader) -> Header? {
        guard let first = r.byte(), first & 0x80 != 0 else { return nil }
        var raw = [first]
        func byte() -> Int? {
            guard let b = r.byte() else { return nil }
            raw.append(b)
            return Int(b)
        }
        if first & 0x40 == 0 {
            let tag = Int((first >> 2) & 0x0f)
            switch first & 0x03 {
            case 0:
                guard let a = byte() else { return nil }
                return Header(tag: tag, raw: raw, length: a, partial: false)
            case 1:
                guard let a = byte(), let b = byte() else { return nil }
                return Header(tag: tag, raw: raw, length: a << 8 | b, partial: false)
            case 2:
                guard let a = byte(), let b = byte(), let c = byte(), let d = byte() else { return nil }
                return Header(tag: tag, raw: raw, length: a << 24 | b << 16 | c << 8 | d, partial: false)
            default:
                return Header(tag: tag, raw: raw, length: nil, partial: false)
            }
        }
        guard let (length, partial) = newLength(byte) else { return nil }
        return Header(tag: Int(first & 0x3f), raw: raw, length: length, partial: partial)
    }

    /// A new-format body length: (length, partial).
    static func newLength(_ byte: () -> Int?) -> (Int, Bool)? {
        guard let a = byte() else { return nil }
        switch a {
        case 0..<192: return (a, false)
        case 192..<224:
            guard let b = byte() else { return nil }
            return ((a - 192) << 8 + b + 192, false)
        case 255:
            guard let b = byte(), let c = byte(), let d = byte(), let e = byte() else { return nil }
            return (b << 24 | c << 16 | d << 8 | e, false)
        default:
            return (1 << (a & 0x1f), true)
        }
    }

    /// A packet body over its (partial) lengths.
    final class Body {
        private let r: ByteReader
        private var left: Int?
        private var partial: Bool
        private(set) var failed = false

        init(_ r: ByteReader, _ h: Header) {
            self.r = r
            left = h.length
            partial = h.partial
        }

        func read(_ dst: UnsafeMutableRawBufferPointer) -> Int {
            while true {
                guard let l = left else {
                    // Old format, indeterminate length: to the end of the stream.
                    let n = r.read(dst)
                    if n < 0 { failed = true }
                    return n
                }
                if l > 0 {
                    let n = r.read(UnsafeMutableRawBufferPointer(rebasing: dst[0..<min(dst.count, l)]))
                    if n <= 0 {
                        // Truncated inside the body.
                        failed = true
                        return -1
                    }
                    left = l - n
                    return n
                }
                guard partial else { return 0 }
                guard let (length, more) = OpenPGPStream.newLength({ r.byte().map(Int.init) }) else {
                    failed = true
                    return -1
                }
                left = length
                partial = more
            }
        }

        /// Up to `count` bytes (fewer only at the end); nil on an error.
        func bytes(upTo count: Int) -> [UInt8]? {
            var out = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = out.withUnsafeMutableBytes { read(UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
                if n < 0 { return nil }
                if n == 0 { break }
                got += n
            }
            out.removeLast(count - got)
            return out
        }
    }

    /// SEIPD v1 decryption, streaming: AES-CFB (zero IV) over the body, the 18-byte prefix and
    /// the 22-byte MDC packet held back from the output, SHA-1 over all but the last 20 bytes.
    /// `read` gives the packets inside; -1 if the body is damaged, or the MDC fails at the end.
    final class SEIPDReader {
        private let body: Body
        private let key: SymmetricKey
        private var pendingCipher: [UInt8]
        private var iv = [UInt8](repeating: 0, count: 16)
        private var mdc = Insecure.SHA1()
        private var prefixLeft = 18
        private var tail: [UInt8] = []
        private var out: [UInt8] = []
        private var outPos = 0
        private var bodyEnded = false
        private(set) var verified = false
        private(set) var failed = false

        /// `first`: the body's first bytes, already read (for the quick check).
        init(body: Body, key: SymmetricKey, first: [UInt8]) {
            self.body = body
            self.key = key
            pendingCipher = first
            bodyEnded = first.count < OpenPGPStream.chunk
        }

        deinit {
            SecretBytes.wipe(&out)
            SecretBytes.wipe(&tail)
        }

        /// Whether `key` passes the quick check on the body's first bytes.
        static func quickCheck(_ first: [UInt8], _ key: SymmetricKey) -> Bool {
            guard first.count >= 18 + 22, let iv = try? AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16)),
                var p = try? AES._CFB.decrypt(first[0..<32], using: key, iv: iv)
            else { return false }
            defer { p.resetBytes(in: 0..<p.count) }
            return p[p.startIndex + 14] == p[p.startIndex + 16] && p[p.startIndex + 15] == p[p.startIndex + 17]
        }

        private func fail() -> Int {
            failed = true
            SecretBytes.wipe(&out)
            out.removeAll()
            outPos = 0
            return -1
        }

        /// Decrypts the next stretch into `out` (true), or checks the MDC at the end of the body
        /// (false; `verified` says how it went).
        private func step() -> Bool {
            if !bodyEnded && pendingCipher.count < OpenPGPStream.chunk {
                guard let more = body.bytes(upTo: OpenPGPStream.chunk) else { return false }
                // `bytes(upTo:)` returns fewer only at the end of the body.
                bodyEnded = more.count < OpenPGPStream.chunk
                pendingCipher += more
            }
            // Whole blocks, but for the body's last bytes.
            let n = bodyEnded ? pendingCipher.count : pendingCipher.count & ~15
            guard n > 0 else {
                finish()
                return false
            }
            guard let ivValue = try? AES._CFB.IV(ivBytes: iv),
                var plain = try? AES._CFB.decrypt(pendingCipher[0..<n], using: key, iv: ivValue)
            else { return false }
            if n >= 16 { iv = Array(pendingCipher[(n - 16)..<n]) }
            pendingCipher.removeFirst(n)
            var p = Array(plain)
            plain.resetBytes(in: 0..<plain.count)
            defer { SecretBytes.wipe(&p) }
            var start = 0
            if prefixLeft > 0 {
                start = min(prefixLeft, p.count)
                p.withUnsafeBytes { mdc.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<start])) }
                prefixLeft -= start
            }
            // Out: tail + p[start...] less its last 22 bytes, which become the new tail.
            SecretBytes.wipe(&out)
            out.removeAll(keepingCapacity: true)
            outPos = 0
            out += tail
            out.append(contentsOf: p[start...])
            let keep = min(22, out.count)
            SecretBytes.wipe(&tail)
            tail = Array(out[(out.count - keep)...])
            out.removeLast(keep)
            out.withUnsafeBytes { mdc.update(bufferPointer: $0) }
            return true
        }

        /// At the end of the body: the tail must be the MDC packet with the right hash.
        private func finish() {
            guard !verified, prefixLeft == 0, tail.count == 22, tail[0] == 0xD3, tail[1] == 0x14 else { return }
            tail.withUnsafeBytes { mdc.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<2])) }
            let digest = Array(mdc.finalize())
            var diff: UInt8 = 0
            for k in 0..<20 { diff |= digest[k] ^ tail[2 + k] }
            verified = diff == 0
        }

        func read(_ dst: UnsafeMutableRawBufferPointer) -> Int {
            guard !failed else { return -1 }
            while outPos == out.count {
                if !step() {
                    // The end: only a verified body ends cleanly.
                    return verified ? 0 : fail()
                }
            }
            let n = min(dst.count, out.count - outPos)
            out.withUnsafeBytes { src in
                if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s + outPos, byteCount: n) }
            }
            outPos += n
            return n
        }

        /// Reads to the end (what librnp left unread), so the MDC is checked.
        func drain() {
            var scratch = [UInt8](repeating: 0, count: 4096)
            while scratch.withUnsafeMutableBytes({ read($0) }) > 0 {}
            SecretBytes.wipe(&scratch)
        }
    }

    /// The outcome of a streaming attempt.
    enum Attempt {
        /// Not for this path; nothing was emitted and only buffered bytes were read.
        case declined
        /// Committed: `reader` gives the packets inside the SEIPD packet, decrypted.
        case committed(SEIPDReader, cacheKey: [UInt8], sessionKey: OpenPGPFastPath.SessionKey, hit: Bool)
    }
}

extension OpenPGPFastPath {
    /// Reads the key packets and the start of the SEIPD packet from `r` and finds the session
    /// key (cache, else the key packets). Declines on anything it does not handle.
    func beginStream(_ r: OpenPGPStream.ByteReader, raw: OpenPGPStream.RawInput) -> OpenPGPStream.Attempt {
        var esks: [Packet] = []
        var keyPackets: [UInt8] = []
        while true {
            guard let h = OpenPGPStream.header(r) else { return .declined }
            switch h.tag {
            case 1, 3:
                guard esks.count < OpenPGPStream.maxKeyPackets, let length = h.length, !h.partial,
                    length <= OpenPGPStream.maxKeyPacket, let body = r.bytes(length)
                else { return .declined }
                keyPackets += h.raw + body
                esks.append(Packet(tag: h.tag, body: body, start: 0, end: 0))
                continue
            case 18:
                guard !esks.isEmpty else { return .declined }
                let body = OpenPGPStream.Body(r, h)
                guard let version = body.bytes(upTo: 1), version == [1],
                    let first = body.bytes(upTo: OpenPGPStream.chunk), first.count >= 18 + 22
                else { return .declined }
                let cacheKey = Array(SHA256.hash(data: keyPackets))
                if let cached = sessionKeys.value(for: cacheKey) {
                    guard OpenPGPStream.SEIPDReader.quickCheck(first, cached.key) else { return .declined }
                    raw.committed = true
                    return .committed(
                        OpenPGPStream.SEIPDReader(body: body, key: cached.key, first: first), cacheKey: cacheKey,
                        sessionKey: cached, hit: true)
                }
                for esk in esks {
                    guard let sk = sessionKey(from: esk), Self.aesKeyLength(sk.algorithm) != nil,
                        OpenPGPStream.SEIPDReader.quickCheck(first, sk.key)
                    else { continue }
                    raw.committed = true
                    return .committed(
                        OpenPGPStream.SEIPDReader(body: body, key: sk.key, first: first), cacheKey: cacheKey,
                        sessionKey: sk, hit: false)
                }
                return .declined
            default:
                return .declined
            }
        }
    }
}
