/// `plain`: files are their own plaintext. Streamed, so a file of any size is counted in chunks.
public final class PlainKey: CipherKey {
    public static let shared = PlainKey()

    public var cipherName: String { "plain" }
    public var readsWholeFile: Bool { false }

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
