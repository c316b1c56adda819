/// The ciphers this build knows. Adding one is its key type's file plus a case here and its
/// arm in `keyType`: the CLI, `hello`, the registry and the sniffer all iterate this enum.
package enum CipherKind: String, CaseIterable, Sendable, Hashable {
    case plain
    case biographer
    case biographerV0 = "biographer-v0"
    case fernet
    case age
    case openssl
    case openpgp

    /// The registration: which key type reads files of this kind.
    var keyType: any CipherKey.Type {
        switch self {
        case .plain: PlainKey.self
        case .biographer, .biographerV0: BiographerKey.self
        case .fernet: FernetKey.self
        case .age: AgeKey.self
        case .openssl: OpenSSLKey.self
        case .openpgp: OpenPGPKey.self
        }
    }

    /// The protocol name, as requests and responses spell it.
    package var name: String { rawValue }

    /// Whether `sniff` can tell this kind's files apart (`auto` reads others as plain).
    package var canBeSniffed: Bool {
        switch self {
        case .plain, .biographer, .biographerV0: false
        default: true
        }
    }

    /// Whether a key of this kind needs a secret at all.
    package var needsSecret: Bool { self != .plain }

    /// Parses `secret` into a key of this kind. Errors describe what is wrong with the secret's
    /// shape, never its content.
    package func makeKey(secret: SecretInput?, options: CipherOptions = CipherOptions()) throws(SecretError)
        -> any CipherKey
    {
        try keyType.make(self, secret: secret, options: options)
    }

    /// The kind whose format `prefix` (a file's first bytes) shows, for `"cipher": "auto"`;
    /// nil for anything no cipher recognises (the engine reads it as plain).
    package static func sniff(_ prefix: UnsafeRawBufferPointer) -> CipherKind? {
        for kind in allCases where kind.keyType.recognises(prefix) { return kind }
        return nil
    }

    /// How many leading bytes `sniff` wants to see.
    package static let sniffLength = 512
}
