/// `plain`: files are their own plaintext. Streamed, so a file of any size is counted in chunks.
package final class PlainKey: CipherKey {
    package static let shared = PlainKey()

    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) -> PlainKey { shared }

    package var kind: CipherKind { .plain }
    package var mode: DecryptionMode { .streamed }
    /// Nothing decrypts: every plain key reads every plain file.
    package func fingerprint(into fingerprint: inout KeyFingerprint) {}

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: ciphertext)
    }

    package func makeStreamDecryptor() -> any StreamDecryptor { Passthrough() }

    struct Passthrough: StreamDecryptor {
        mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
            throws(CipherFailure)
        {
            emit(chunk)
        }
        mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {}
    }
}
