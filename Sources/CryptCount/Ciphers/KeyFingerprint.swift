import Crypto

/// What a key can decrypt, summarised without holding it: an HMAC, under a random per-process
/// key, of the key material a cipher actually decrypts with, as the key parsed it (not the
/// secret as sent). Two keys with equal fingerprints decrypt the same files, whatever form the
/// secret came in (`K`, `[K]`, `K` as bin, `K` with whitespace the cipher ignores); keys that
/// differ in anything that decrypts differ here. The plaintext cache is keyed by it.
package struct KeyFingerprint: Sendable {
    private static let processKey = SymmetricKey(size: .bits256)
    private var mac: HMAC<SHA256>

    init(kind: CipherKind) {
        mac = HMAC<SHA256>(key: Self.processKey)
        add(bytes: Array(kind.rawValue.utf8))
    }

    /// Adds bytes, length-prefixed so that concatenations cannot collide.
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        add(int: bytes.count)
        mac.update(data: bytes)
    }

    mutating func add(bytes: [UInt8]) {
        bytes.withUnsafeBytes { add($0) }
    }

    mutating func add(_ secret: SecretBytes) {
        secret.withBytes { add(UnsafeRawBufferPointer($0)) }
    }

    mutating func add(_ key: SymmetricKey) {
        key.withUnsafeBytes { add($0) }
    }

    mutating func add(int: Int) {
        withUnsafeBytes(of: Int64(int).bigEndian) { mac.update(data: $0) }
    }

    /// The first 128 bits of the HMAC.
    func finalize() -> (high: UInt64, low: UInt64) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, byte) in mac.finalize().enumerated() where i < 16 {
            if i < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        return (high, low)
    }
}
