import Synchronization

/// The plaintext cache's notion of a key: its `KeyFingerprint`, which summarises the key
/// material the cipher parsed and decrypts with, never the secret as sent. So an entry is only
/// ever read by a key that could decrypt the file itself: equal identities mean equal material.
package struct KeyIdentity: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    /// The identity of `plain`, which has no secret (and whose files are never cached).
    static let plain = KeyIdentity(high: 0, low: 0)

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    package init(of key: any CipherKey) {
        guard key.kind != .plain else {
            self = .plain
            return
        }
        var fingerprint = KeyFingerprint(kind: key.kind)
        key.fingerprint(into: &fingerprint)
        (high, low) = fingerprint.finalize()
    }
}

/// A key ready for use by workers: the cipher key and its cache identity, derived from the key
/// itself so the two cannot disagree.
package final class UnlockedKey: Sendable {
    package let key: any CipherKey
    package let identity: KeyIdentity
    /// The identity of the key as it was made (unlocked, or given inline), before a request's
    /// options (`iter`) were applied: plaintexts decrypted with this key under other options
    /// are cached under another identity, and `forget` must drop them too.
    package let origin: KeyIdentity
    /// Set when the key is forgotten or replaced, shared with the keys made from it by a
    /// request's options: requests still running with it finish, but cache nothing more, so
    /// no plaintext decrypted with it stays cached after `forget`.
    private let retiredFlag: RetiredFlag

    package init(key: any CipherKey) {
        self.key = key
        self.identity = KeyIdentity(of: key)
        self.origin = identity
        self.retiredFlag = RetiredFlag()
    }

    private init(key: any CipherKey, from base: UnlockedKey) {
        self.key = key
        self.identity = KeyIdentity(of: key)
        self.origin = base.origin
        self.retiredFlag = base.retiredFlag
    }

    /// No longer held by any name (`forget`, or replaced by `unlock`).
    package func retire() { retiredFlag.value.store(true, ordering: .sequentiallyConsistent) }
    package var isRetired: Bool { retiredFlag.value.load(ordering: .sequentiallyConsistent) }

    package var cipherName: String { key.cipherName }
    package var kind: CipherKind { key.kind }

    /// This key with a request's options (`iter`, `ttl`) over its own; itself when they change nothing.
    package func applying(_ options: CipherOptions) throws(SecretError) -> UnlockedKey {
        let applied = try key.applying(options)
        return applied === key ? self : UnlockedKey(key: applied, from: self)
    }

    /// Builds a key from a secret; errors are `SecretError`s safe to show.
    package static func make(kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> UnlockedKey
    {
        UnlockedKey(key: try kind.makeKey(secret: secret, options: options))
    }
}

private final class RetiredFlag: Sendable {
    let value = Atomic<Bool>(false)
}
