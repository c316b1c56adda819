/// Why a file could not be turned into plaintext. Messages never include secret material.
public enum CipherFailure: Error, Equatable, Sendable {
    /// Not this cipher's format (per-file error `bad_format`).
    case badFormat(String)
    /// Wrong key, or tampered or truncated data (per-file error `decrypt_failed`).
    case decryptFailed(String)
}

/// Why a secret cannot be a key of a cipher (request error `bad_secret`).
public struct SecretError: Error, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A secret as the parent sent it, independent of the wire encoding.
public enum SecretInput: Sendable, Equatable {
    /// A MessagePack `str` (UTF-8 bytes, not necessarily valid).
    case text([UInt8])
    /// A MessagePack `bin`.
    case bytes([UInt8])
    case list([SecretInput])
    case map([String: SecretInput])
}

extension SecretInput {
    /// Zeroes the secret's bytes in place, in the storage every copy of these arrays shares (the
    /// decoded MessagePack values of the request included), so they are not freed with the secret
    /// still in them. Only once nothing will read them again: keys copy what they keep.
    public func wipe() {
        switch self {
        case .text(let b), .bytes(let b):
            SecretBytes.wipe(b)
        case .list(let items):
            for item in items { item.wipe() }
        case .map(let m):
            for value in m.values { value.wipe() }
        }
    }
}

/// Per-request or per-key cipher options (`iter` for openssl, `ttl` for fernet).
public struct CipherOptions: Sendable, Equatable, Hashable {
    public var iterations: Int?
    public var ttlSeconds: Int?
    public init(iterations: Int? = nil, ttlSeconds: Int? = nil) {
        self.iterations = iterations
        self.ttlSeconds = ttlSeconds
    }
}

/// Receives a file's ciphertext piece by piece and hands out plaintext as it becomes available.
/// One decryptor serves one file, on one thread.
public protocol StreamDecryptor {
    /// The next piece of the file. Plaintext that is now known is passed to `emit`.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure)
    /// End of the file: emits the rest, or throws if the file is incomplete or trailing data follows.
    mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure)
}

/// A streaming cipher whose library pulls its input (librnp): instead of being fed, it reads the
/// file through `read` (bytes read into the buffer, 0 at the end, -1 on a read error the caller
/// reports) and passes plaintext to `emit` as it goes, in bounded memory.
public protocol PullingCipherKey: CipherKey {
    func decrypt(pulling read: (UnsafeMutableRawBufferPointer) -> Int, emit: (UnsafeRawBufferPointer) -> Void)
        throws(CipherFailure)
}

/// An unlocked key: a parsed secret, ready to decrypt files of one cipher. Shared by all worker
/// threads, so implementations are immutable or guard their caches themselves. Secret material
/// lives in `SecretBytes` (or a crypto library's key type), so it is zeroed when the last
/// request using the key lets go of it.
public protocol CipherKey: AnyObject, Sendable {
    /// The cipher's protocol name, e.g. `"biographer"`.
    var cipherName: String { get }

    /// True for formats that must be read whole (subject to `--max-file-size`); such keys
    /// implement `decrypt(whole:into:)`. Otherwise the key implements `makeStreamDecryptor()`.
    var readsWholeFile: Bool { get }

    /// Decrypts a whole file. `output` is a reusable buffer: its old contents are replaced.
    func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure)

    /// A fresh decryptor for one file of a streaming format.
    func makeStreamDecryptor() -> any StreamDecryptor

    /// False when a file's decryption can change without the file changing (a Fernet key with
    /// a ttl: the same token expires), so its plaintext must not be cached.
    var plaintextIsCacheable: Bool { get }
}

extension CipherKey {
    public var plaintextIsCacheable: Bool { true }

    public func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        // Streaming formats can still decrypt a buffer: feed it in one piece.
        var decryptor = makeStreamDecryptor()
        output.removeAll(keepingCapacity: true)
        try decryptor.feed(ciphertext) { output.append(contentsOf: $0) }
        try decryptor.finish { output.append(contentsOf: $0) }
    }

    public func makeStreamDecryptor() -> any StreamDecryptor {
        WholeFileStreamAdapter(key: self)
    }
}

/// Lets a whole-file cipher be driven like a streaming one (tests, `auto`): it buffers the
/// ciphertext and decrypts at `finish`.
public struct WholeFileStreamAdapter: StreamDecryptor {
    let key: any CipherKey
    var ciphertext: [UInt8] = []
    var plaintext: [UInt8] = []

    public init(key: any CipherKey) { self.key = key }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
        throws(CipherFailure)
    {
        ciphertext.append(contentsOf: chunk)
    }

    public mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
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
