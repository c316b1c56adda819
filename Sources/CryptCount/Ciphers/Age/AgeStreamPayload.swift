import Crypto

#if canImport(Glibc)
    import Glibc
#endif

/// An age file's STREAM payload opened for random access, so ranges of one big file can be
/// decrypted by several workers: chunk i (64 KiB of plaintext, 16 bytes of tag) is sealed under
/// the payload key with a nonce of the counter i and a flag set on the last chunk only. Which
/// chunk is last follows from the file's size, so every chunk is opened with the flag its place
/// demands: a truncated or extended file fails to authenticate exactly as when read in order.
struct AgeStreamPayload: Sendable {
    let key: SymmetricKey
    /// File offset of chunk 0.
    let payloadOffset: Int
    let sealedSize: Int
    let chunkCount: Int
    let plainSize: Int

    /// From the first bytes of a binary age file (the header and the payload nonce; the whole
    /// header must be in `prefix`) and its size. Nil when the file is not a plain binary age
    /// file whose chunk layout adds up (armor, an empty or malformed last chunk...): such a file
    /// is read in order, which reports what is wrong with it.
    static func open(prefix: UnsafeRawBufferPointer, fileSize: Int, owner: AgeKey) -> AgeStreamPayload? {
        guard prefix.first == UInt8(ascii: "a") else { return nil }
        // The header ends with the line starting with "---" (the MAC line), as the decoder reads it.
        var lineStart = 0
        var headerEnd: Int? = nil
        var i = 0
        while i < prefix.count {
            if prefix[i] == 0x0A {
                if i - lineStart >= 3 && prefix[lineStart] == 0x2D && prefix[lineStart + 1] == 0x2D
                    && prefix[lineStart + 2] == 0x2D && lineStart > 0
                {
                    headerEnd = i + 1
                    break
                }
                lineStart = i + 1
            }
            i += 1
        }
        guard let headerEnd, headerEnd + 16 <= prefix.count else { return nil }
        var decoder = AgeBinaryDecoder()
        do throws(CipherFailure) {
            try decoder.feed(UnsafeRawBufferPointer(rebasing: prefix[0..<(headerEnd + 16)]), owner: owner) { _ in }
        } catch {
            return nil
        }
        guard let key = decoder.streamKey else { return nil }
        let offset = headerEnd + 16
        let sealed = fileSize - offset
        let unit = AgeBinaryDecoder.chunkSealed
        guard sealed > 16 else { return nil }
        let (q, r) = sealed.quotientAndRemainder(dividingBy: unit)
        let chunks = q + (r > 0 ? 1 : 0)
        let last = sealed - (chunks - 1) * unit
        // An empty last chunk after others, or a runt shorter than a tag: read in order.
        guard last > 16 else { return nil }
        return AgeStreamPayload(
            key: key, payloadOffset: offset, sealedSize: sealed, chunkCount: chunks, plainSize: sealed - 16 * chunks)
    }

    /// How much plaintext a range asks for per read: a few whole chunks, so what is decrypted is
    /// still in this core's L2 cache when it is counted (a 1 MiB buffer is not, measured for
    /// issue 14 target 3).
    static let preferredReadBytes = 4 * AgeBinaryDecoder.chunkSealed

    /// Decrypts plaintext from `offset` into `out`, whole chunks read with `pread` from `fd`.
    /// Returns the bytes given (fewer than `out.count` when the next whole chunk would not fit:
    /// the caller asks again), 0 at the end, -1 when a read fails or a chunk does not
    /// authenticate.
    ///
    /// A chunk that starts at `offset` and fits in `out` with its tag is read into `out` and
    /// opened there in place (no copy; the tag's 16 bytes are overwritten by the next chunk).
    /// Otherwise (a range's margins, an unaligned start) the chunk is opened in `sealed`
    /// (scratch, grown to `chunkSealed` bytes once) and the wanted part copied.
    func read(fd: Int32, offset: Int, into out: UnsafeMutableRawBufferPointer, sealed: inout [UInt8]) -> Int {
        let unitPlain = AgeBinaryDecoder.chunkPlain
        let unit = AgeBinaryDecoder.chunkSealed
        guard let dst = out.baseAddress else { return out.isEmpty ? 0 : -1 }
        var given = 0
        var pos = offset
        while given < out.count && pos < plainSize {
            let c = pos / unitPlain
            let within = pos - c * unitPlain
            let start = c * unit
            let length = min(unit, sealedSize - start)
            let room = out.count - given
            if within == 0 && length <= room {
                let box = UnsafeMutableRawBufferPointer(start: dst + given, count: length)
                // An empty chunk here would loop forever: only a wholly empty payload has one.
                guard let opened = readAndOpen(fd: fd, chunk: c, at: start, into: box), opened > 0 else { return -1 }
                given += opened
                pos += opened
                continue
            }
            // A whole chunk would fit in a later call: give what is done.
            if within == 0 && given > 0 { break }
            if sealed.count < unit { sealed = [UInt8](repeating: 0, count: unit) }
            let opened = sealed.withUnsafeMutableBytes { b -> Int? in
                readAndOpen(fd: fd, chunk: c, at: start, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<length]))
            }
            guard let opened else { return -1 }
            let take = min(opened - within, room)
            guard take > 0 else { return -1 }
            sealed.withUnsafeBytes { p in
                guard let src = p.baseAddress else { return }
                (dst + given).copyMemory(from: src + within, byteCount: take)
            }
            given += take
            pos += take
        }
        return given
    }

    /// Reads sealed chunk `c` (at payload offset `start`, `box.count` bytes) into `box` and opens
    /// it there: the plaintext's length, or nil.
    private func readAndOpen(fd: Int32, chunk c: Int, at start: Int, into box: UnsafeMutableRawBufferPointer) -> Int? {
        guard let base = box.baseAddress else { return nil }
        var got = 0
        while got < box.count {
            let n = retryOnEINTR { pread(fd, base + got, box.count - got, off_t(payloadOffset + start + got)) }
            if n <= 0 { return nil }
            got += n
        }
        // The STREAM nonce: 11-byte big-endian counter, then the last-chunk flag.
        var nonce = (UInt64(0), UInt32(0))
        return withUnsafeMutableBytes(of: &nonce) { n -> Int? in
            for k in 0..<8 { n[3 + k] = UInt8(truncatingIfNeeded: UInt64(c) >> UInt64(56 - 8 * k)) }
            n[11] = c == chunkCount - 1 ? 1 : 0
            return BoringCrypto.chachaPolyOpenInPlace(box, nonce: UnsafeRawBufferPointer(rebasing: n[0..<12]), key: key)
        }
    }
}
