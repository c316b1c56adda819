import Crypto

/// Identifies a key's material without holding it: an HMAC of (cipher, secret, options) under
/// a random per-process key. Equal secrets give equal identities, so a file decrypted through
/// an inline secret and through a named key with the same secret share one cache entry.
public struct KeyIdentity: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    /// The identity of `plain`, which has no secret.
    static let plain = KeyIdentity(high: 0, low: 0)

    private static let processKey = SymmetricKey(size: .bits256)

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(cipher: String, secret: SecretInput?, options: CipherOptions) {
        var hmac = HMAC<SHA256>(key: Self.processKey)
        var bytes: [UInt8] = []
        Self.append(string: Array(cipher.utf8), to: &bytes)
        Self.append(secret, to: &bytes)
        Self.append(int: options.iterations ?? -1, to: &bytes)
        Self.append(int: options.ttlSeconds ?? -1, to: &bytes)
        hmac.update(data: bytes)
        SecretBytes.wipe(bytes)
        self = Self(mac: hmac)
    }

    /// The first 128 bits of a finished HMAC.
    private init(mac: HMAC<SHA256>) {
        let bytes = Array(mac.finalize())
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<8 { h = (h << 8) | UInt64(bytes[i]) }
        for i in 8..<16 { l = (l << 8) | UInt64(bytes[i]) }
        high = h
        low = l
    }

    /// The identity of a key used with other options than it was unlocked with.
    func applying(_ options: CipherOptions) -> KeyIdentity {
        var hmac = HMAC<SHA256>(key: Self.processKey)
        var bytes: [UInt8] = []
        Self.append(int: Int(truncatingIfNeeded: high), to: &bytes)
        Self.append(int: Int(truncatingIfNeeded: low), to: &bytes)
        Self.append(int: options.iterations ?? -1, to: &bytes)
        Self.append(int: options.ttlSeconds ?? -1, to: &bytes)
        hmac.update(data: bytes)
        return KeyIdentity(mac: hmac)
    }

    // A canonical, unambiguous serialisation: tag, length, content.
    private static func append(string: [UInt8], to out: inout [UInt8]) {
        append(int: string.count, to: &out)
        out.append(contentsOf: string)
    }

    private static func append(int: Int, to out: inout [UInt8]) {
        let v = UInt64(bitPattern: Int64(int))
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    private static func append(_ secret: SecretInput?, to out: inout [UInt8]) {
        switch secret {
        case .none:
            out.append(0)
        case .text(let b)?:
            out.append(1)
            append(string: b, to: &out)
        case .bytes(let b)?:
            out.append(2)
            append(string: b, to: &out)
        case .list(let items)?:
            out.append(3)
            append(int: items.count, to: &out)
            for item in items { append(item, to: &out) }
        case .map(let m)?:
            out.append(4)
            append(int: m.count, to: &out)
            for k in m.keys.sorted() {
                append(string: Array(k.utf8), to: &out)
                append(m[k], to: &out)
            }
        }
    }
}

/// A key ready for use by workers: the cipher key and its cache identity.
public final class UnlockedKey: Sendable {
    public let key: any CipherKey
    public let identity: KeyIdentity

    public init(key: any CipherKey, identity: KeyIdentity) {
        self.key = key
        self.identity = identity
    }

    public var cipherName: String { key.cipherName }

    /// This key with a request's options (`iter`, `ttl`) over its own; itself when they change nothing.
    public func applying(_ options: CipherOptions) throws(SecretError) -> UnlockedKey {
        guard options != CipherOptions() else { return self }
        let applied = try CipherRegistry.applying(options, to: key)
        if applied === key { return self }
        return UnlockedKey(key: applied, identity: identity.applying(options))
    }

    /// Builds a key from a secret; errors are `SecretError`s safe to show.
    public static func make(cipher: String, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> UnlockedKey
    {
        let key = try CipherRegistry.makeKey(cipher: cipher, secret: secret, options: options)
        let identity =
            cipher == "plain" ? KeyIdentity.plain : KeyIdentity(cipher: cipher, secret: secret, options: options)
        return UnlockedKey(key: key, identity: identity)
    }
}
