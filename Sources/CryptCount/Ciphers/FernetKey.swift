import CFastBase64
import Crypto
import CryptoExtras
import Foundation

/// `fernet`: tokens of Python's `cryptography.fernet` (spec: version 0x80, 8-byte big-endian
/// timestamp, 16-byte IV, AES-128-CBC ciphertext with PKCS#7, HMAC-SHA256 over all of that;
/// url-safe base64 with padding). Whitespace around and inside the token (a wrapped token) and
/// the `+`/`/` alphabet are allowed, as Python's decoder allows them.
///
/// Failure mapping (Python raises `InvalidToken` for all of these): data that is not a Fernet
/// token at all (not url-safe base64, wrong version byte, shorter than the smallest token) is
/// `badFormat`; a TTL violation, a MAC that no key matches, a misaligned ciphertext or bad
/// padding is `decryptFailed`. The MAC is checked, in constant time, before any plaintext is
/// used: the one-pass path (`FernetFusedContext`) decrypts alongside the MAC into the output
/// buffer and zeroes it unless the MAC, the padding and the ttl hold; the step-by-step path
/// checks the MAC before decrypting, and alone reports failures.
package final class FernetKey: CipherKey {
    struct KeyPair: Sendable {
        let signing: SymmetricKey
        let encryption: SymmetricKey
        /// The same key prepared for the one-pass path; nil where the CPU lacks SHA-NI or AES-NI.
        let fused: FernetFusedContext?
    }

    /// Tried in order, like `MultiFernet`.
    let keys: [KeyPair]
    /// Maximum token age in seconds; nil means no age check (as Python without `ttl`).
    package let ttl: Int?

    /// With a ttl the same token turns from valid to expired, so its plaintext is not cached.
    package var plaintextIsCacheable: Bool { ttl == nil }
    /// Seconds since the epoch; injectable so tests can use the spec vectors' `now`.
    let clock: @Sendable () -> Int64

    /// Python's `_MAX_CLOCK_SKEW`.
    static let maxClockSkew: Int128 = 60
    /// version + timestamp + IV + one block + MAC.
    static let minimumTokenBytes = 1 + 8 + 16 + 16 + 32

    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> FernetKey
    {
        try FernetKey(secret: secret, options: options)
    }

    /// Version byte 0x80 and a timestamp below 2^32 seconds (before 2106) encode as `gAAAAA`
    /// and a seventh character of `A`-`D` (the timestamp's top 32 bits are zero; `gAAAAA` alone
    /// bounds it by 2^36); the rest of the prefix is base64 (either alphabet) and `=`, broken
    /// by line ends only (a wrapped token), then optional trailing whitespace: so text that
    /// merely starts like a token ("gAAAAABpX3k2 and then words") is not taken for one.
    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < prefix.count, ASCII.isWhitespace(prefix[i]) { i += 1 }
        guard prefix[i...].starts(with: tokenStart), i + 6 < prefix.count,
            (UInt8(ascii: "A")...UInt8(ascii: "D")).contains(prefix[i + 6])
        else { return false }
        var characters = 0
        var trailing = false
        for b in prefix[i...] {
            if Base64.isURLSafe(b) || Base64.isStandardCharacter(b) || b == UInt8(ascii: "=") {
                guard !trailing else { return false }
                characters += 1
            } else if b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") {
                continue
            } else if ASCII.isWhitespace(b) {
                trailing = true
            } else {
                return false
            }
        }
        return characters >= 16
    }

    static let tokenStart: [UInt8] = Array("gAAAAA".utf8)

    package var kind: CipherKind { .fernet }
    package var mode: DecryptionMode { .wholeFile }
    package func makeStreamDecryptor() -> any StreamDecryptor { WholeFileStreamAdapter(key: self) }

    /// The keys in order (MultiFernet tries them in order; the first that verifies decrypts).
    /// The ttl is not material: a key with one is never cached.
    package func fingerprint(into fingerprint: inout KeyFingerprint) {
        fingerprint.add(int: keys.count)
        for pair in keys {
            fingerprint.add(pair.signing)
            fingerprint.add(pair.encryption)
        }
    }

    package func applying(_ options: CipherOptions) throws(SecretError) -> any CipherKey {
        guard let t = options.ttlSeconds, t != ttl else { return self }
        return try with(ttlSeconds: t)
    }

    package convenience init(secret: SecretInput?, options: CipherOptions = CipherOptions()) throws(SecretError) {
        try self.init(secret: secret, options: options, clock: FernetKey.systemNow)
    }

    init(secret: SecretInput?, options: CipherOptions, clock: @escaping @Sendable () -> Int64) throws(SecretError) {
        switch secret {
        case .none:
            throw SecretError("a Fernet key is required")
        case .text(let b), .bytes(let b):
            keys = [try Self.parseKey(b)]
        case .list(let items):
            guard !items.isEmpty else { throw SecretError("the list of Fernet keys is empty") }
            var parsed: [KeyPair] = []
            for item in items {
                switch item {
                case .text(let b), .bytes(let b): parsed.append(try Self.parseKey(b))
                default: throw SecretError("each Fernet key must be a string or binary")
                }
            }
            keys = parsed
        case .map:
            throw SecretError("a Fernet secret is a key or an array of keys, not a map")
        }
        if let t = options.ttlSeconds, t < 0 { throw SecretError("ttl must not be negative") }
        ttl = options.ttlSeconds
        self.clock = clock
    }

    private init(keys: [KeyPair], ttl: Int?, clock: @escaping @Sendable () -> Int64) {
        self.keys = keys
        self.ttl = ttl
        self.clock = clock
    }

    /// The same keys with another ttl (a request's `ttl` over an unlocked key's).
    package func with(ttlSeconds: Int?) throws(SecretError) -> FernetKey {
        if let t = ttlSeconds, t < 0 { throw SecretError("ttl must not be negative") }
        return FernetKey(keys: keys, ttl: ttlSeconds, clock: clock)
    }

    static func systemNow() -> Int64 {
        Int64(Date().timeIntervalSince1970.rounded(.down))
    }

    /// A key is url-safe base64 of 32 bytes: signing key, then encryption key.
    static func parseKey(_ text: SecretBytes) throws(SecretError) -> KeyPair {
        var raw: [UInt8] = []
        defer { SecretBytes.wipe(&raw) }
        let decoded = text.withBytes { b in
            let trimmed = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: ASCII.trimmingWhitespace(b[...])))
            return Base64.decode(trimmed, alphabet: .either, padding: .required, canonical: false, appendingTo: &raw)
        }
        guard decoded, raw.count == 32 else { throw SecretError("a Fernet key must be url-safe base64 of 32 bytes") }
        return KeyPair(
            signing: SymmetricKey(data: raw[0..<16]), encryption: SymmetricKey(data: raw[16..<32]),
            fused: raw.withUnsafeBytes { FernetFusedContext(key: $0) })
    }

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        let token = UnsafeRawBufferPointer(rebasing: ASCII.trimmingWhitespace(ciphertext[...]))
        guard !token.isEmpty else {
            output.removeAll(keepingCapacity: true)
            throw .badFormat("empty file, not a Fernet token")
        }
        // One buffer for everything: the token is decoded into `output`, authenticated there,
        // decrypted in place and moved to its start. `output` is reused from file to file, so
        // sizing it rarely allocates or writes.
        let room = Base64.maxDecodedCount(token.count)
        if output.count < room {
            output.append(contentsOf: repeatElement(0, count: room - output.count))
        } else {
            output.removeLast(output.count - room)
        }
        // The one pass (decode, authenticate and decrypt together) for tokens that verify under
        // a key; anything else (a failure, an expired token) takes the step-by-step path below,
        // which reports exactly why.
        for key in keys {
            guard let fused = key.fused else { break }
            var timestamp: UInt64 = 0
            let opened = output.withUnsafeMutableBytes { fused.open(token, into: $0, timestamp: &timestamp) }
            guard let opened else { continue }
            if ttlFailure(timestamp: timestamp) == nil {
                output.removeLast(output.count - opened)
                return
            }
            // Expired: nothing of it may be counted; the path below reports the ttl failure.
            output.withUnsafeMutableBytes { if let p = $0.baseAddress { explicit_bzero(p, opened) } }
            break
        }
        let result = output.withUnsafeMutableBytes { decrypt(token: token, buffer: $0) }
        switch result {
        case .success(let count):
            output.removeLast(output.count - count)
        case .failure(let failure):
            output.removeAll(keepingCapacity: true)
            throw failure
        }
    }

    /// Decodes `token` into `buffer`, then authenticates and decrypts there: the plaintext's
    /// length, the plaintext being at the start of `buffer`.
    private func decrypt(token: UnsafeRawBufferPointer, buffer: UnsafeMutableRawBufferPointer) -> Result<
        Int, CipherFailure
    > {
        func decode() -> Int? {
            Base64.decode(token, alphabet: .urlSafe, padding: .required, canonical: false, into: buffer)
                ?? Self.decodeLeniently(token, into: buffer)
        }
        guard let count = decode() else { return .failure(.badFormat("not url-safe base64, not a Fernet token")) }
        guard count > 0, buffer[0] == 0x80 else {
            return .failure(.badFormat("wrong version byte, not a Fernet token"))
        }
        guard count >= Self.minimumTokenBytes else { return .failure(.badFormat("too short for a Fernet token")) }

        if ttl != nil {
            var timestamp: UInt64 = 0
            for b in buffer[1..<9] { timestamp = timestamp << 8 | UInt64(b) }
            if let failure = ttlFailure(timestamp: timestamp) { return .failure(failure) }
        }

        let macStart = count - 32
        let body = 25..<macStart
        var lastFailure = CipherFailure.decryptFailed("the MAC does not match (wrong key or tampered token)")
        var intact = true
        for key in keys {
            // A key whose MAC matched but whose padding did not has decrypted the body in place:
            // the next key (same signing key, another encryption key) needs the token again.
            if !intact {
                guard decode() == count else { return .failure(lastFailure) }
                intact = true
            }
            guard FernetPrimitives.macMatches(buffer, signed: 0..<macStart, using: key.signing) else { continue }
            guard body.count % 16 == 0 else {
                lastFailure = .decryptFailed("the ciphertext is not a whole number of AES blocks")
                continue
            }
            intact = false
            guard let plain = FernetPrimitives.decryptCBC(buffer, iv: 9, body: body, using: key.encryption) else {
                lastFailure = .decryptFailed("bad padding after decryption")
                continue
            }
            if let dst = buffer.baseAddress, plain > 0 {
                (dst).copyMemory(from: dst + body.lowerBound, byteCount: plain)
            }
            return .success(plain)
        }
        return .failure(lastFailure)
    }

    /// Python's `urlsafe_b64decode` also reads a token wrapped onto lines (whitespace inside it)
    /// or written in the `+`/`/` alphabet, so those are decoded here, from a copy without the
    /// whitespace. Python also skips any other stray character; that is still `badFormat` here.
    private static func decodeLeniently(_ token: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer)
        -> Int?
    {
        let compact = token.filter { !ASCII.isWhitespace($0) }
        return compact.withUnsafeBytes {
            Base64.decode($0, alphabet: .either, padding: .required, canonical: false, into: buffer)
        }
    }

    /// Why a token with this timestamp is refused under the ttl, or nil (always nil without one).
    private func ttlFailure(timestamp: UInt64) -> CipherFailure? {
        guard let ttl else { return nil }
        let now = Int128(clock())
        if Int128(timestamp) + Int128(ttl) < now { return .decryptFailed("the token has expired (ttl)") }
        if now + Self.maxClockSkew < Int128(timestamp) {
            return .decryptFailed("the token's timestamp is too far in the future")
        }
        return nil
    }

    /// Makes a token (tests and demos): the same layout Python writes.
    package func encrypt(_ plain: [UInt8], timestamp: UInt64, iv: [UInt8]) throws -> String {
        guard let key = keys.first else { return "" }
        var data: [UInt8] = [0x80]
        for shift in stride(from: 56, through: 0, by: -8) {
            data.append(UInt8(truncatingIfNeeded: timestamp >> UInt64(shift)))
        }
        data += iv
        data += try AES._CBC.encrypt(plain, using: key.encryption, iv: AES._CBC.IV(ivBytes: iv))
        data += HMAC<SHA256>.authenticationCode(for: data, using: key.signing)
        return Base64.encode(data, alphabet: .urlSafe, padded: true)
    }
}

/// A Fernet key prepared for `cfb64_fernet_open` (CFastBase64's one-pass Fernet): the HMAC's
/// inner and outer SHA-256 states and the AES-128 decryption schedule, computed once per key
/// instead of once per token. Secret: `SecureMemory`, as `SecretBytes` (out of core dumps,
/// locked under `--lock-memory`), zeroed when the key goes.
final class FernetFusedContext: @unchecked Sendable {
    // Written only in init; read by any thread after.
    private let block: SecureMemory.Block
    private var context: UnsafeMutableRawPointer? { block.bytes.baseAddress }

    /// From the key's 32 raw bytes; nil where the CPU lacks what the one pass needs.
    init?(key raw: UnsafeRawBufferPointer) {
        guard cfb64_fernet_supported() != 0, raw.count == 32,
            let k = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return nil }
        block = SecureMemory.allocate(Int(CFB64_FERNET_CONTEXT))  // zeroed, at least that many bytes
        // (A nil return from here on still runs deinit, which frees the block.)
        guard let context = block.bytes.baseAddress, block.bytes.count >= Int(CFB64_FERNET_CONTEXT) else { return nil }
        cfb64_fernet_prepare(k, k + 16, context.assumingMemoryBound(to: UInt8.self))
    }

    deinit {
        SecureMemory.free(block)  // zeroes it first
    }

    /// The plaintext's length at the start of `output`, when `token` (base64, trimmed) is a
    /// Fernet token that authenticates under this key and unpads; its timestamp in `timestamp`.
    /// Nil otherwise, with nothing of the token's plaintext left in `output`.
    func open(_ token: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, timestamp: inout UInt64)
        -> Int?
    {
        guard let src = token.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let dst = output.baseAddress?.assumingMemoryBound(to: UInt8.self), let context
        else { return nil }
        let n = cfb64_fernet_open(
            src, token.count, UnsafePointer(context.assumingMemoryBound(to: UInt8.self)), dst, output.count, &timestamp)
        return n >= 0 && n <= output.count ? n : nil
    }
}

/// HMAC-SHA256 and AES-128-CBC over a caller's buffer, without copies (`BoringCrypto`:
/// swift-crypto's `HMAC` and `AES._CBC` take and return `Data`, two copies and allocations per
/// token).
enum FernetPrimitives {
    /// Whether the 32 bytes after `signed` are the HMAC-SHA256 of `buffer[signed]` under `key`
    /// (compared in constant time).
    static func macMatches(_ buffer: UnsafeMutableRawBufferPointer, signed: Range<Int>, using key: SymmetricKey)
        -> Bool
    {
        guard signed.lowerBound >= 0, signed.upperBound + 32 <= buffer.count else { return false }
        let all = UnsafeRawBufferPointer(buffer)
        return BoringCrypto.hmacSHA256Matches(
            key: key, data: UnsafeRawBufferPointer(rebasing: all[signed]),
            mac: UnsafeRawBufferPointer(rebasing: all[signed.upperBound..<(signed.upperBound + 32)]))
    }

    /// Decrypts `buffer[body]` in place with AES-128-CBC (IV: the 16 bytes at `iv`) and checks the
    /// PKCS#7 padding in constant time: the plaintext's length (at `body.lowerBound`), or nil
    /// when the padding is bad.
    static func decryptCBC(_ buffer: UnsafeMutableRawBufferPointer, iv: Int, body: Range<Int>, using key: SymmetricKey)
        -> Int?
    {
        guard body.count >= 16, body.count % 16 == 0, iv >= 0, iv + 16 <= body.lowerBound,
            body.upperBound <= buffer.count
        else { return nil }
        let text = UnsafeMutableRawBufferPointer(rebasing: buffer[body])
        let ivBytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[iv..<(iv + 16)])
        guard BoringCrypto.aes128CBCDecryptInPlace(text, iv: ivBytes, key: key) else { return nil }
        // PKCS#7, in constant time (as Python's unpadder): the last byte n is 1...16 and the last
        // n bytes all equal n.
        let last = UInt32(text[body.count - 1])
        var bad: UInt32 = lessOrEqual(last, 0) | lessOrEqual(17, last)
        for k in 0..<16 {
            let byte = UInt32(text[body.count - 16 + k])
            let inPadding = lessOrEqual(UInt32(16 - k), last)
            bad |= inPadding & (byte ^ last)
        }
        return bad == 0 ? body.count - Int(last) : nil
    }

    /// All ones when a <= b (both below 2^31), else zero; without a branch.
    private static func lessOrEqual(_ a: UInt32, _ b: UInt32) -> UInt32 {
        UInt32(bitPattern: (Int32(bitPattern: a) - Int32(bitPattern: b) - 1) >> 31)
    }
}

/// ASCII helpers shared by the text-based formats.
enum ASCII {
    /// Space, tab, LF, VT, FF, CR (Python's `bytes.strip()` set).
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0d) }

    static func trimmingWhitespace<C: BidirectionalCollection>(_ s: C) -> C.SubSequence where C.Element == UInt8 {
        var lo = s.startIndex
        var hi = s.endIndex
        while lo < hi, isWhitespace(s[lo]) { lo = s.index(after: lo) }
        while hi > lo, isWhitespace(s[s.index(before: hi)]) { hi = s.index(before: hi) }
        return s[lo..<hi]
    }
}
