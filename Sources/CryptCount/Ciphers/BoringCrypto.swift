import CCryptoBoringSSL
import Crypto

#if canImport(Glibc)
    import Glibc
#endif

/// The per-file hot paths' primitives over the caller's memory: BoringSSL (the library
/// swift-crypto is built on, with its SHA-NI, AES-NI and AVX2 code) called directly. swift-crypto's
/// `HMAC`, `HKDF`, `SHA256` and `AES._CBC` go through generic `DataProtocol` code, `Data` copies
/// and allocations that cost more than the cryptography on files of a few KiB (measured for
/// issue 14: Fernet and age cold). The only file that imports BoringSSL; keys stay in
/// swift-crypto's `SymmetricKey` and are read in place.
enum BoringCrypto {
    /// HMAC-SHA256 of `data` under `key`, into `out` (32 bytes).
    static func hmacSHA256(key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, into out: inout SHA256Bytes)
        -> Bool
    {
        var length: UInt32 = 0
        let done = withUnsafeMutableBytes(of: &out.bytes) { o in
            CCryptoBoringSSL_HMAC(
                CCryptoBoringSSL_EVP_sha256(), key.baseAddress, key.count,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                o.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
        }
        return done != nil && length == 32
    }

    /// Whether `mac` (32 bytes) is the HMAC-SHA256 of `data` under `key`, compared in constant time.
    static func hmacSHA256Matches(key: SymmetricKey, data: UnsafeRawBufferPointer, mac: UnsafeRawBufferPointer)
        -> Bool
    {
        key.withUnsafeBytes { hmacSHA256Matches(key: $0, data: data, mac: mac) }
    }

    /// The same with the key's bytes.
    static func hmacSHA256Matches(
        key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, mac: UnsafeRawBufferPointer
    )
        -> Bool
    {
        guard mac.count == 32, let expected = mac.baseAddress else { return false }
        var computed = SHA256Bytes()
        guard hmacSHA256(key: key, data: data, into: &computed) else { return false }
        return withUnsafeBytes(of: &computed.bytes) { c in
            CCryptoBoringSSL_CRYPTO_memcmp(c.baseAddress, expected, 32) == 0
        }
    }

    /// SHA-256 of `data`, as a value (no allocation; a cache key).
    static func sha256(_ data: UnsafeRawBufferPointer) -> Digest256 {
        var out = SHA256Bytes()
        withUnsafeMutableBytes(of: &out.bytes) { o in
            _ = CCryptoBoringSSL_SHA256(
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                o.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        return Digest256(words: out.bytes)
    }

    /// HKDF-SHA256 (RFC 5869, extract then expand) into a new 32-byte key; nil only if BoringSSL
    /// refuses (it does not for these sizes). The intermediate bytes are wiped.
    static func hkdfSHA256(
        secret: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer, info: UnsafeRawBufferPointer
    ) -> SymmetricKey? {
        var out = SHA256Bytes()
        defer { out.wipe() }
        guard hkdfSHA256(secret: secret, salt: salt, info: info, into: &out) else { return nil }
        return withUnsafeBytes(of: &out.bytes) { SymmetricKey(data: $0) }
    }

    /// HKDF-SHA256 into 32 bytes of the caller's (a key used once and wiped by the caller, with
    /// no `SymmetricKey` allocated for it).
    static func hkdfSHA256(
        secret: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer, info: UnsafeRawBufferPointer,
        into out: inout SHA256Bytes
    ) -> Bool {
        // An empty salt still gets a real address: BoringSSL's HMAC reads a null key as "keep
        // the previous key".
        var empty: UInt8 = 0
        let ok = withUnsafeMutableBytes(of: &out.bytes) { o in
            withUnsafeBytes(of: &empty) { e in
                CCryptoBoringSSL_HKDF(
                    o.baseAddress?.assumingMemoryBound(to: UInt8.self), 32, CCryptoBoringSSL_EVP_sha256(),
                    secret.baseAddress?.assumingMemoryBound(to: UInt8.self), secret.count,
                    (salt.count > 0 ? salt.baseAddress : e.baseAddress)?.assumingMemoryBound(to: UInt8.self),
                    salt.count, info.baseAddress?.assumingMemoryBound(to: UInt8.self), info.count)
            }
        }
        return ok == 1
    }

    /// AES-128-CBC decryption of `text` in place (a whole number of blocks), IV `iv` (16 bytes).
    static func aes128CBCDecryptInPlace(
        _ text: UnsafeMutableRawBufferPointer, iv: UnsafeRawBufferPointer, key: SymmetricKey
    ) -> Bool {
        guard text.count % 16 == 0, iv.count == 16, let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        var ivCopy = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &ivCopy) { $0.copyMemory(from: iv) }
        var schedule = AES_KEY()
        defer { withUnsafeMutableBytes(of: &schedule) { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } } }
        let keyed = key.withUnsafeBytes { k -> Bool in
            guard let kp = k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count == 16 else { return false }
            return CCryptoBoringSSL_AES_set_decrypt_key(kp, 128, &schedule) == 0
        }
        guard keyed else { return false }
        // AES_cbc_encrypt decrypts in place (in == out) and advances the IV copy.
        withUnsafeMutableBytes(of: &ivCopy) { ivp in
            CCryptoBoringSSL_AES_cbc_encrypt(
                base, base, text.count, &schedule, ivp.baseAddress?.assumingMemoryBound(to: UInt8.self), AES_DECRYPT)
        }
        return true
    }

    /// X25519 (RFC 7748) of a 32-byte `scalar` (clamped by BoringSSL) and a 32-byte u-coordinate
    /// `point`, into `out`'s first 32 bytes. False for a low-order point (`out` then holds zeros)
    /// or wrong sizes (nothing written).
    static func x25519(
        scalar: UnsafeRawBufferPointer, point: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard scalar.count == 32, point.count == 32, out.count >= 32,
            let s = scalar.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let u = point.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let o = out.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return false }
        return CCryptoBoringSSL_X25519(o, s, u) == 1
    }

    /// ChaCha20-Poly1305 (RFC 8439) opening of `sealed` (ciphertext then 16-byte tag) in place,
    /// no associated data: the plaintext's length (at the start of `sealed`), or nil when it does
    /// not authenticate (what `sealed` then holds is unspecified).
    static func chachaPolyOpenInPlace(
        _ sealed: UnsafeMutableRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SymmetricKey
    ) -> Int? {
        guard sealed.count >= 16, nonce.count == 12, let base = sealed.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return nil }
        var context = EVP_AEAD_CTX()
        let keyed = key.withUnsafeBytes { k -> Bool in
            guard k.count == 32, let kp = k.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            return CCryptoBoringSSL_EVP_AEAD_CTX_init(
                &context, CCryptoBoringSSL_EVP_aead_chacha20_poly1305(), kp, 32, 16, nil) == 1
        }
        guard keyed else { return nil }
        defer {
            CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(&context)
            // The cleanup leaves ChaCha20's key in the context.
            withUnsafeMutableBytes(of: &context) { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } }
        }
        var length = 0
        // BoringSSL allows `in` and `out` to be the same buffer.
        let opened = CCryptoBoringSSL_EVP_AEAD_CTX_open(
            &context, base, &length, sealed.count, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self), 12, base,
            sealed.count, nil, 0)
        return opened == 1 && length == sealed.count - 16 ? length : nil
    }
}

/// 32 bytes on the stack (a digest, a MAC, a derived key), wiped by `wipe()` where secret.
struct SHA256Bytes {
    var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    mutating func wipe() {
        withUnsafeMutableBytes(of: &bytes) { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } }
    }
}

/// A SHA-256 digest as four words: hashed and compared as a dictionary key in four steps.
struct Digest256: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    init(words: (UInt64, UInt64, UInt64, UInt64)) {
        (a, b, c, d) = words
    }
}
