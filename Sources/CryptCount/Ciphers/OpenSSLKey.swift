import Crypto
import CryptoExtras
import Foundation

/// `openssl`: files from `openssl enc -aes-256-cbc -pbkdf2 [-iter N]`: `Salted__`, an 8-byte
/// salt, then AES-256-CBC with PKCS#7, key and IV from PBKDF2-HMAC-SHA256(password, salt, N)
/// (48 bytes: 32 key, 16 IV). Decrypted as a stream, so files of any size are counted in chunks.
///
/// The format has no MAC: a wrong password is only noticed when the final padding is invalid,
/// so about one wrong-password file in 256 still "decrypts" (to garbage) instead of failing.
///
/// `openssl enc -a` (base64, lines of 64 characters, or one line with `-A`) is read too: its
/// text starts with `U2FsdGVk`, the base64 of `Salted`, and is decoded as it streams in.
package final class OpenSSLKey: CipherKey {
    package static let defaultIterations = 10_000
    /// PBKDF2 takes a 32-bit count; far above any real use, and keeps one derivation bounded.
    package static let maxIterations = 100_000_000

    static let magic: [UInt8] = Array("Salted__".utf8)
    /// How `openssl enc -a` output starts: the base64 of `Salted__`'s first 7 bytes and 4 bits
    /// of the eighth.
    static let base64Magic: [UInt8] = Array("U2FsdGVkX1".utf8)

    struct Derived: Sendable {
        let key: SymmetricKey
        let iv: SymmetricKey  // secret-derived too, so it is kept in zeroing storage
    }

    struct CacheKey: Hashable, Sendable {
        let salt: [UInt8]
        let iterations: Int
    }

    private let password: SecretBytes
    package let iterations: Int
    /// PBKDF2 results per salt, so a repeated query does not pay the derivation again.
    let derivedKeys: BoundedCache<CacheKey, Derived>

    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> OpenSSLKey
    {
        try OpenSSLKey(password: SecretInput.password(secret), iterations: options.iterations)
    }

    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.starts(with: magic) || prefix.starts(with: base64Magic)
    }

    package var kind: CipherKind { .openssl }
    package var mode: DecryptionMode { .streamed }

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        try decryptWholeByStreaming(ciphertext, into: &output)
    }

    package func fingerprint(into fingerprint: inout KeyFingerprint) {
        fingerprint.add(password)
        fingerprint.add(int: iterations)
    }

    package func applying(_ options: CipherOptions) throws(SecretError) -> any CipherKey {
        guard let iter = options.iterations, iter != iterations else { return self }
        return try with(iterations: iter)
    }

    package convenience init(password: [UInt8], iterations: Int? = nil) throws(SecretError) {
        try self.init(password: SecretBytes(password), iterations: iterations)
    }

    package init(password: SecretBytes, iterations: Int? = nil) throws(SecretError) {
        guard !password.isEmpty else { throw SecretError("the password is empty") }
        let iter = iterations ?? Self.defaultIterations
        guard iter >= 1, iter <= Self.maxIterations else {
            throw SecretError("iter must be between 1 and \(Self.maxIterations)")
        }
        self.password = password
        self.iterations = iter
        self.derivedKeys = BoundedCache(capacity: 4096)
    }

    private init(password: SecretBytes, iterations: Int, cache: BoundedCache<CacheKey, Derived>) {
        self.password = password
        self.iterations = iterations
        self.derivedKeys = cache
    }

    /// The same password with another iteration count (a request's `iter` over an unlocked
    /// key's). The derived-key cache is shared: its entries are keyed by salt and count.
    package func with(iterations: Int) throws(SecretError) -> OpenSSLKey {
        guard iterations >= 1, iterations <= Self.maxIterations else {
            throw SecretError("iter must be between 1 and \(Self.maxIterations)")
        }
        return OpenSSLKey(password: password, iterations: iterations, cache: derivedKeys)
    }

    func derive(salt: [UInt8]) throws(CipherFailure) -> Derived {
        let cacheKey = CacheKey(salt: salt, iterations: iterations)
        if let hit = derivedKeys.value(for: cacheKey) { return hit }
        let material: SymmetricKey
        do {
            material = try password.withBytes { pw in
                try KDF.Insecure.PBKDF2.deriveKey(
                    from: pw, salt: salt, using: .sha256, outputByteCount: 48, unsafeUncheckedRounds: iterations)
            }
        } catch {
            throw .decryptFailed("key derivation failed")
        }
        let derived = material.withUnsafeBytes { raw in
            Derived(key: SymmetricKey(data: raw[0..<32]), iv: SymmetricKey(data: raw[32..<48]))
        }
        derivedKeys.insert(derived, for: cacheKey)
        return derived
    }

    package func makeStreamDecryptor() -> any StreamDecryptor { Armored(inner: Decryptor(owner: self)) }

    /// Binary files go straight to `Decryptor`; a file whose first 8 bytes are `U2FsdGVk`
    /// (`openssl enc -a`) is base64-decoded on the way.
    struct Armored: StreamDecryptor {
        enum Form {
            /// The first bytes, until there are 8 to tell the two forms apart.
            case undecided([UInt8])
            case binary
            case text(Base64Lines)
        }
        var inner: Decryptor
        var form = Form.undecided([])

        init(inner: Decryptor) { self.inner = inner }

        mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
            throws(CipherFailure)
        {
            guard case .undecided(var head) = form else { return try pass(chunk, emit: emit) }
            let take = min(8 - head.count, chunk.count)
            head.append(contentsOf: chunk.prefix(take))
            guard head.count == 8 else {
                form = .undecided(head)
                return
            }
            form = head.starts(with: OpenSSLKey.base64Magic.prefix(8)) ? .text(Base64Lines()) : .binary
            try Self.withBytes(head) { raw throws(CipherFailure) in try pass(raw, emit: emit) }
            try pass(UnsafeRawBufferPointer(rebasing: chunk[take...]), emit: emit)
        }

        mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
            switch form {
            case .undecided(let head):
                // Shorter than 8 bytes: the binary form says what is wrong.
                form = .binary
                try Self.withBytes(head) { raw throws(CipherFailure) in try inner.feed(raw, emit: emit) }
            case .binary:
                break
            case .text(var lines):
                let rest = try lines.finish()
                form = .text(lines)
                try Self.withBytes(rest) { raw throws(CipherFailure) in try inner.feed(raw, emit: emit) }
            }
            try inner.finish(emit: emit)
        }

        private mutating func pass(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
            throws(CipherFailure)
        {
            guard !chunk.isEmpty else { return }
            guard case .text(var lines) = form else { return try inner.feed(chunk, emit: emit) }
            let decoded = try lines.decode(chunk)
            form = .text(lines)
            try Self.withBytes(decoded) { raw throws(CipherFailure) in try inner.feed(raw, emit: emit) }
        }

        /// `bytes.withUnsafeBytes`, keeping the body's typed error.
        private static func withBytes(
            _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(CipherFailure) -> Void
        ) throws(CipherFailure) {
            var failure: CipherFailure?
            bytes.withUnsafeBytes { raw in
                do throws(CipherFailure) { try body(raw) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Streaming base64 (standard alphabet) as `openssl enc -a` writes it: line breaks anywhere
    /// are skipped, `=` padding ends the data (only line breaks may follow), and a last group
    /// without its padding is taken as openssl's decoder takes it.
    struct Base64Lines {
        private var group = Base64Group()
        private var padded = false

        mutating func decode(_ text: UnsafeRawBufferPointer) throws(CipherFailure) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(text.count / 4 * 3 + 3)
            for b in text {
                if b == 0x0A || b == 0x0D { continue }
                if b == UInt8(ascii: "=") {
                    // Padding ends the data (a second `=` is the rest of it).
                    if !padded {
                        guard group.end(to: &out) else { throw Self.invalid }
                        padded = true
                    }
                    continue
                }
                let v = Base64.standardTable[Int(b)]
                guard v != 0xFF, !padded else { throw Self.invalid }
                group.add(v, to: &out)
            }
            return out
        }

        /// The bytes of an unpadded last group.
        mutating func finish() throws(CipherFailure) -> [UInt8] {
            var out: [UInt8] = []
            guard group.end(to: &out) else { throw Self.invalid }
            return out
        }

        static let invalid = CipherFailure.badFormat("not valid base64 (the text of `openssl enc -a`)")
    }

    struct Decryptor: StreamDecryptor {
        let owner: OpenSSLKey
        /// `Salted__` and the salt, while they arrive.
        var header: [UInt8] = []
        var key: SymmetricKey?
        /// The IV of the next block to decrypt: the previous ciphertext block.
        var chain: [UInt8] = []
        /// Ciphertext not yet decrypted. The last (possibly partial) block always stays here,
        /// so the padding can be checked at the end.
        var pending: [UInt8] = []
        var total = 0

        /// Decrypt in batches of at least this much, to keep per-call overhead low.
        static let batch = 64 * 1024

        init(owner: OpenSSLKey) { self.owner = owner }

        mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
            throws(CipherFailure)
        {
            var input = chunk[...]
            if key == nil {
                let need = 16 - header.count
                let take = min(need, input.count)
                header.append(contentsOf: input.prefix(take))
                input = input.dropFirst(take)
                if header.count >= 8, !header.starts(with: OpenSSLKey.magic) {
                    throw .badFormat("no Salted__ header, not an openssl enc file")
                }
                guard header.count == 16 else { return }
                let derived = try owner.derive(salt: Array(header[8..<16]))
                key = derived.key
                chain = derived.iv.withUnsafeBytes { Array($0) }
            }
            pending.append(contentsOf: input)
            total &+= input.count
            if pending.count > Self.batch { try drain(emit: emit) }
        }

        /// Decrypts every whole block but the last one held back.
        private mutating func drain(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
            guard let key, pending.count > 16 else { return }
            let n = (pending.count - 1) / 16 * 16
            guard n > 0 else { return }
            let plain: Data
            do {
                plain = try AES._CBC.decrypt(
                    pending[0..<n], using: key, iv: AES._CBC.IV(ivBytes: chain), noPadding: true)
            } catch {
                throw .decryptFailed("AES-CBC decryption failed")
            }
            chain = Array(pending[(n - 16)..<n])
            pending.removeFirst(n)
            plain.withUnsafeBytes { emit($0) }
        }

        mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
            guard key != nil else {
                throw .badFormat(
                    header.isEmpty ? "empty file, not an openssl enc file" : "too short for an openssl enc file")
            }
            guard total >= 16, total % 16 == 0 else {
                throw .badFormat("the ciphertext is not a whole number of AES blocks")
            }
            try drain(emit: emit)
            guard let key, pending.count == 16 else {
                throw .badFormat("the ciphertext is not a whole number of AES blocks")
            }
            do {
                let last = try AES._CBC.decrypt(pending, using: key, iv: AES._CBC.IV(ivBytes: chain))
                pending.removeAll()
                last.withUnsafeBytes { emit($0) }
            } catch {
                throw .decryptFailed("bad padding after decryption (wrong password or damaged file)")
            }
        }
    }

    /// Makes a file as `openssl enc -aes-256-cbc -pbkdf2 -iter N` does (tests and demos).
    package func encrypt(_ plain: [UInt8], salt: [UInt8]) throws -> [UInt8] {
        let derived = try derive(salt: salt)
        let iv = derived.iv.withUnsafeBytes { Array($0) }
        let body = try AES._CBC.encrypt(plain, using: derived.key, iv: AES._CBC.IV(ivBytes: iv))
        return Self.magic + salt + Array(body)
    }
}

/// An `openssl enc` file's CBC body opened for random access, so ranges of one big file can be
/// decrypted by several workers: block i needs only ciphertext block i - 1 (or the derived IV).
/// The padding of the last block is checked up front; a file whose size or padding is wrong is
/// not split, and reading it in order reports what is wrong.
struct OpenSSLStreamPayload: Sendable {
    let key: SymmetricKey
    let iv: SymmetricKey
    let cipherSize: Int
    let plainSize: Int

    static func open(fd: Int32, fileSize: Int, owner: OpenSSLKey) -> OpenSSLStreamPayload? {
        let cipherSize = fileSize - 16
        guard cipherSize >= 32, cipherSize % 16 == 0 else { return nil }
        var head = [UInt8](repeating: 0, count: 16)
        var tail = [UInt8](repeating: 0, count: 32)
        guard readFully(fd, &head, at: 0), readFully(fd, &tail, at: fileSize - 32),
            head.starts(with: OpenSSLKey.magic)
        else { return nil }
        let derived: OpenSSLKey.Derived
        do throws(CipherFailure) {
            derived = try owner.derive(salt: Array(head[8..<16]))
        } catch {
            return nil
        }
        let last: Data
        do {
            last = try AES._CBC.decrypt(
                tail[16..<32], using: derived.key, iv: AES._CBC.IV(ivBytes: Array(tail[0..<16])))
        } catch {
            return nil
        }
        return OpenSSLStreamPayload(
            key: derived.key, iv: derived.iv, cipherSize: cipherSize, plainSize: cipherSize - 16 + last.count)
    }

    private static func readFully(_ fd: Int32, _ buf: inout [UInt8], at offset: Int) -> Bool {
        let want = buf.count
        var got = 0
        while got < want {
            let n = buf.withUnsafeMutableBytes { b in
                retryOnEINTR { pread(fd, b.baseAddress.map { $0 + got }, want - got, off_t(offset + got)) }
            }
            if n <= 0 { return false }
            got += n
        }
        return true
    }

    /// Decrypts plaintext from `offset` into `out` (`scratch` is reused ciphertext room).
    /// Returns the bytes given, 0 at the end, -1 when a read fails.
    func read(fd: Int32, offset: Int, into out: UnsafeMutableRawBufferPointer, scratch: inout [UInt8]) -> Int {
        let length = min(out.count, plainSize - offset)
        guard length > 0 else { return 0 }
        let first = offset / 16
        let end = (offset + length + 15) / 16
        let from = max(0, first - 1)
        let count = (end - from) * 16
        if scratch.count != count { scratch = [UInt8](repeating: 0, count: count) }
        guard Self.readFully(fd, &scratch, at: 16 + from * 16) else { return -1 }
        let chain: [UInt8] = first == 0 ? iv.withUnsafeBytes { Array($0) } : Array(scratch[0..<16])
        let body = scratch[(first == 0 ? 0 : 16)...]
        let plain: Data
        do {
            plain = try AES._CBC.decrypt(body, using: key, iv: AES._CBC.IV(ivBytes: chain), noPadding: true)
        } catch {
            return -1
        }
        let within = offset - first * 16
        guard plain.count >= within + length else { return -1 }
        plain.withUnsafeBytes { p in
            guard let src = p.baseAddress, let dst = out.baseAddress else { return }
            dst.copyMemory(from: src + within, byteCount: length)
        }
        return length
    }
}
