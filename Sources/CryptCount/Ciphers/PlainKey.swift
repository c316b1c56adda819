/// `plain`: files are their own plaintext. Streamed, so a file of any size is counted in chunks.
public final class PlainKey: CipherKey {
    public static let shared = PlainKey()

    public static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) -> PlainKey { shared }

    public var kind: CipherKind { .plain }
    public var mode: DecryptionMode { .streamed }
    /// Nothing decrypts: every plain key reads every plain file.
    public func fingerprint(into fingerprint: inout KeyFingerprint) {}

    public func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: ciphertext)
    }

    public func makeStreamDecryptor() -> any StreamDecryptor { Passthrough() }

    struct Passthrough: StreamDecryptor {
        mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
            throws(CipherFailure)
        {
            emit(chunk)
        }
        mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {}
    }
}
