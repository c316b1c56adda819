/// Why a file could not be turned into plaintext. Messages never include secret material.
package enum CipherFailure: Error, Equatable, Sendable {
    /// Not this cipher's format (per-file error `bad_format`).
    case badFormat(String)
    /// Wrong key, or tampered or truncated data (per-file error `decrypt_failed`).
    case decryptFailed(String)
}

/// Why a secret cannot be a key of a cipher (request error `bad_secret`).
package struct SecretError: Error, Equatable, Sendable {
    package var message: String
    package init(_ message: String) { self.message = message }
}

/// A secret as the parent sent it, independent of the wire encoding. Its bytes live only in
/// `SecretBytes`: storage of their own, shared by reference and zeroed when the last holder
/// lets go, so no copy-on-write array elsewhere ever aliases a secret and nothing has to be
/// wiped by hand.
package enum SecretInput: Sendable, Equatable {
    /// A MessagePack `str` (UTF-8 bytes, not necessarily valid).
    case text(SecretBytes)
    /// A MessagePack `bin`.
    case bytes(SecretBytes)
    case list([SecretInput])
    case map([String: SecretInput])

    /// A `str` secret holding a copy of `bytes`.
    package static func text<C: Collection>(copying bytes: C) -> SecretInput where C.Element == UInt8 {
        .text(SecretBytes(bytes))
    }

    /// A `bin` secret holding a copy of `bytes`.
    package static func bytes<C: Collection>(copying bytes: C) -> SecretInput where C.Element == UInt8 {
        .bytes(SecretBytes(bytes))
    }

    /// A password given as `str` or `bin` (exact bytes); empty is not a password.
    package static func password(_ secret: SecretInput?) throws(SecretError) -> SecretBytes {
        switch secret {
        case .text(let b)?, .bytes(let b)?:
            guard !b.isEmpty else { throw SecretError("the password is empty") }
            return b
        case .none:
            throw SecretError("a password is required")
        default:
            throw SecretError("the password must be a string or binary")
        }
    }

    /// The bytes of a `str` or `bin` secret.
    package var scalar: SecretBytes? {
        switch self {
        case .text(let b), .bytes(let b): b
        case .list, .map: nil
        }
    }
}

/// Per-request or per-key cipher options (`iter` for openssl, `ttl` for fernet).
package struct CipherOptions: Sendable, Equatable, Hashable {
    package var iterations: Int?
    package var ttlSeconds: Int?
    package init(iterations: Int? = nil, ttlSeconds: Int? = nil) {
        self.iterations = iterations
        self.ttlSeconds = ttlSeconds
    }
}

/// Receives a file's ciphertext piece by piece and hands out plaintext as it becomes available.
/// One decryptor serves one file, on one thread.
package protocol StreamDecryptor {
    /// The next piece of the file. Plaintext that is now known is passed to `emit`.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure)
    /// End of the file: emits the rest, or throws if the file is incomplete or trailing data follows.
    mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure)
}

/// A streaming cipher whose library pulls its input (librnp): instead of being fed, it reads the
/// file through `read` (bytes read into the buffer, 0 at the end, -1 on a read error the caller
/// reports) and passes plaintext to `emit` as it goes, in bounded memory.
package protocol PullingCipherKey: CipherKey {
    func decrypt(pulling read: (UnsafeMutableRawBufferPointer) -> Int, emit: (UnsafeRawBufferPointer) -> Void)
        throws(CipherFailure)
}

/// How a cipher's files are read.
package enum DecryptionMode: Sendable {
    /// Read whole (subject to `--max-file-size`), then `decrypt(whole:into:)`.
    case wholeFile
    /// Fed in chunks through `makeStreamDecryptor()`, so any size fits in bounded memory.
    case streamed
}

/// An unlocked key: a parsed secret, ready to decrypt files of one cipher. Shared by all worker
/// threads, so implementations are immutable or guard their caches themselves. Secret material
/// lives in `SecretBytes` (or a crypto library's key type), so it is zeroed when the last
/// request using the key lets go of it.
///
/// A cipher implements both reading paths: its natural one, and the other through the shared
/// helpers (`decryptWholeByStreaming`, `WholeFileStreamAdapter`), so `mode` alone decides.
package protocol CipherKey: AnyObject, Sendable {
    /// Makes a key of `kind` from a secret (the registration in `CipherKind` calls it).
    static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError) -> Self

    /// Whether `prefix`, a file's first bytes, is this cipher's format (for `auto`). Formats
    /// that cannot be recognised answer false.
    static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool

    var kind: CipherKind { get }

    var mode: DecryptionMode { get }

    /// Decrypts a whole file. `output` is a reusable buffer: its old contents are replaced.
    func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure)

    /// A fresh decryptor for one file.
    func makeStreamDecryptor() -> any StreamDecryptor

    /// This key with a request's options over the ones it was unlocked with; itself when they
    /// change nothing this cipher uses.
    func applying(_ options: CipherOptions) throws(SecretError) -> any CipherKey

    /// Feeds everything this key decrypts with into `fingerprint` (see `KeyFingerprint`).
    func fingerprint(into fingerprint: inout KeyFingerprint)

    /// False when a file's decryption can change without the file changing (a Fernet key with
    /// a ttl: the same token expires), so its plaintext must not be cached.
    var plaintextIsCacheable: Bool { get }

    /// How many consecutive files the engine may hand `prepare(files:)` at once; 1 (the
    /// default): the key gains nothing from seeing files together, and files are never grouped.
    var fileGroupWidth: Int { get }

    /// Work shared by several files, done before they are decrypted one by one (the age key
    /// unwraps their file keys with one X25519 pass over them all). `files`: each file's
    /// bytes, whole or at least its start. Only saves work: results stay those of each file
    /// alone, and a file this call skips or gets wrong is simply unwrapped on its own.
    func prepare(files: [UnsafeRawBufferPointer])
}

extension CipherKey {
    package var cipherName: String { kind.rawValue }
    package var plaintextIsCacheable: Bool { true }
    package var fileGroupWidth: Int { 1 }
    package func prepare(files: [UnsafeRawBufferPointer]) {}
    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool { false }
    package func applying(_ options: CipherOptions) throws(SecretError) -> any CipherKey { self }

    /// `decrypt(whole:into:)` for a streamed cipher: the buffer fed in one piece.
    package func decryptWholeByStreaming(_ ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8])
        throws(CipherFailure)
    {
        var decryptor = makeStreamDecryptor()
        output.removeAll(keepingCapacity: true)
        try decryptor.feed(ciphertext) { output.append(contentsOf: $0) }
        try decryptor.finish { output.append(contentsOf: $0) }
    }
}

/// `makeStreamDecryptor()` for a whole-file cipher (tests, fuzzing): it buffers the ciphertext
/// and decrypts at `finish`.
package struct WholeFileStreamAdapter: StreamDecryptor {
    let key: any CipherKey
    var ciphertext: [UInt8] = []
    var plaintext: [UInt8] = []

    package init(key: any CipherKey) { self.key = key }

    package mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
        throws(CipherFailure)
    {
        ciphertext.append(contentsOf: chunk)
    }

    package mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        let input = ciphertext
        var out = plaintext
        let failure: CipherFailure? = input.withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try key.decrypt(whole: raw, into: &out)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        plaintext = out
        plaintext.withUnsafeBytes { emit($0) }
    }
}
