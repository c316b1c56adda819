import Crypto
import Foundation

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

    /// Decrypts plaintext from `offset` into `out` (whole chunks read with `pread` from `fd`;
    /// `sealed` is scratch of `chunkSealed` bytes). Returns the bytes given, 0 at the end, -1 when
    /// a read fails or a chunk does not authenticate.
    func read(fd: Int32, offset: Int, into out: UnsafeMutableRawBufferPointer, sealed: inout [UInt8]) -> Int {
        let unitPlain = AgeBinaryDecoder.chunkPlain
        let unit = AgeBinaryDecoder.chunkSealed
        var given = 0
        var pos = offset
        while given < out.count && pos < plainSize {
            let c = pos / unitPlain
            let within = pos - c * unitPlain
            let start = c * unit
            let length = min(unit, sealedSize - start)
            if sealed.count < length { sealed = [UInt8](repeating: 0, count: unit) }
            var got = 0
            while got < length {
                let n = sealed.withUnsafeMutableBytes { b in
                    retryOnEINTR {
                        pread(fd, b.baseAddress.map { $0 + got }, length - got, off_t(payloadOffset + start + got))
                    }
                }
                if n <= 0 { return -1 }
                got += n
            }
            var nonce = [UInt8](repeating: 0, count: 12)
            for k in 0..<8 { nonce[3 + k] = UInt8(truncatingIfNeeded: UInt64(c) >> UInt64(56 - 8 * k)) }
            nonce[11] = c == chunkCount - 1 ? 1 : 0
            let plain: Data
            do {
                let box = try ChaChaPoly.SealedBox(
                    nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: sealed[0..<(length - 16)],
                    tag: sealed[(length - 16)..<length])
                plain = try ChaChaPoly.open(box, using: key)
            } catch {
                return -1
            }
            let take = min(plain.count - within, out.count - given)
            guard take > 0 else { return -1 }
            plain.withUnsafeBytes { p in
                guard let src = p.baseAddress, let dst = out.baseAddress else { return }
                (dst + given).copyMemory(from: src + within, byteCount: take)
            }
            given += take
            pos += take
        }
        return given
    }
}
