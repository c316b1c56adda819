import Crypto
import CryptoExtras
import Foundation

/// `fernet`: tokens of Python's `cryptography.fernet` (spec: version 0x80, 8-byte big-endian
/// timestamp, 16-byte IV, AES-128-CBC ciphertext with PKCS#7, HMAC-SHA256 over all of that;
/// url-safe base64 with padding). Whitespace around the token is allowed.
///
/// Failure mapping (Python raises `InvalidToken` for all of these): data that is not a Fernet
/// token at all (not url-safe base64, wrong version byte, shorter than the smallest token) is
/// `badFormat`; a TTL violation, a MAC that no key matches, a misaligned ciphertext or bad
/// padding is `decryptFailed`. The MAC is checked, in constant time, before any decryption.
package final class FernetKey: CipherKey {
    struct KeyPair: Sendable {
        let signing: SymmetricKey
        let encryption: SymmetricKey
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

    /// Version byte 0x80 and a timestamp below 2^32 seconds encode as `gAAAAA`; the token runs
    /// to the end of the prefix or to trailing whitespace only.
    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < prefix.count, ASCII.isWhitespace(prefix[i]) { i += 1 }
        guard prefix[i...].starts(with: tokenStart) else { return false }
        var j = i
        while j < prefix.count, Base64.isURLSafe(prefix[j]) || prefix[j] == UInt8(ascii: "=") { j += 1 }
        let tokenLength = j - i
        while j < prefix.count, ASCII.isWhitespace(prefix[j]) { j += 1 }
        return j == prefix.count && tokenLength >= 16
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
        return KeyPair(signing: SymmetricKey(data: raw[0..<16]), encryption: SymmetricKey(data: raw[16..<32]))
    }

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        output.removeAll(keepingCapacity: true)
        let token = ASCII.trimmingWhitespace(ciphertext[...])
        guard !token.isEmpty else { throw .badFormat("empty file, not a Fernet token") }
        var data: [UInt8] = []
        data.reserveCapacity(token.count / 4 * 3)
        guard
            Base64.decode(
                UnsafeRawBufferPointer(rebasing: token), alphabet: .urlSafe, padding: .required, canonical: false,
                appendingTo: &data)
        else {
            throw .badFormat("not url-safe base64, not a Fernet token")
        }
        guard data.first == 0x80 else { throw .badFormat("wrong version byte, not a Fernet token") }
        guard data.count >= Self.minimumTokenBytes else { throw .badFormat("too short for a Fernet token") }

        if let ttl {
            var timestamp: UInt64 = 0
            for b in data[1..<9] { timestamp = timestamp << 8 | UInt64(b) }
            let now = Int128(clock())
            if Int128(timestamp) + Int128(ttl) < now { throw .decryptFailed("the token has expired (ttl)") }
            if now + Self.maxClockSkew < Int128(timestamp) {
                throw .decryptFailed("the token's timestamp is too far in the future")
            }
        }

        let macStart = data.count - 32
        let signed = data[0..<macStart]
        let mac = data[macStart...]
        let iv = data[9..<25]
        let body = data[25..<macStart]
        var lastFailure = CipherFailure.decryptFailed("the MAC does not match (wrong key or tampered token)")
        for key in keys {
            guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: key.signing) else {
                continue
            }
            guard body.count % 16 == 0 else {
                lastFailure = .decryptFailed("the ciphertext is not a whole number of AES blocks")
                continue
            }
            do {
                let plain = try AES._CBC.decrypt(body, using: key.encryption, iv: AES._CBC.IV(ivBytes: iv))
                plain.withUnsafeBytes { output.append(contentsOf: $0) }
                return
            } catch {
                lastFailure = .decryptFailed("bad padding after decryption")
            }
        }
        throw lastFailure
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
