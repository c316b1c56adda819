/// The ciphers this build knows, by protocol name, and how to turn a secret into a key.
public enum CipherRegistry {
    /// Protocol names, in the order `hello` lists them.
    public static let names: [String] = ["plain", "biographer", "biographer-v0", "fernet", "age", "openssl", "openpgp"]

    public static func isKnown(_ name: String) -> Bool { names.contains(name) }

    /// Whether the cipher takes a secret at all.
    public static func needsSecret(_ name: String) -> Bool { name != "plain" }

    /// Parses `secret` into a key for `cipher`. The caller has checked that the cipher is known.
    /// Errors describe what is wrong with the secret's shape, never its content.
    public static func makeKey(cipher: String, secret: SecretInput?, options: CipherOptions = CipherOptions())
        throws(SecretError) -> any CipherKey
    {
        switch cipher {
        case "plain":
            return PlainKey.shared
        case "biographer":
            return try BiographerKey(password: password(from: secret), chained: true)
        case "biographer-v0":
            return try BiographerKey(password: password(from: secret), chained: false)
        case "fernet":
            return try FernetKey(secret: secret, options: options)
        case "age":
            return try AgeKey(secret: secret)
        case "openssl":
            return try OpenSSLKey(password: password(from: secret), iterations: options.iterations)
        case "openpgp":
            return try OpenPGPKey(secret: secret)
        default:
            throw SecretError("unknown cipher")
        }
    }

    /// `key` with a request's options applied over the ones it was unlocked with (`ttl` for
    /// fernet, `iter` for openssl); other ciphers take no options and come back unchanged.
    public static func applying(_ options: CipherOptions, to key: any CipherKey) throws(SecretError) -> any CipherKey {
        if let fernet = key as? FernetKey, let ttl = options.ttlSeconds, ttl != fernet.ttl {
            return try fernet.with(ttlSeconds: ttl)
        }
        if let openssl = key as? OpenSSLKey, let iter = options.iterations, iter != openssl.iterations {
            return try openssl.with(iterations: iter)
        }
        return key
    }

    /// A password given as `str` or `bin`; empty is not a password.
    static func password(from secret: SecretInput?) throws(SecretError) -> [UInt8] {
        switch secret {
        case .text(let b), .bytes(let b):
            guard !b.isEmpty else { throw SecretError("the password is empty") }
            return b
        case .none:
            throw SecretError("a password is required")
        default:
            throw SecretError("the password must be a string or binary")
        }
    }
}
