/// Guesses a file's format from its first bytes, for `"cipher": "auto"`. Returns a cipher
/// name, or nil for plain text. Biographer files look like noise and cannot be recognised.
public enum CipherSniffer {
    public static func sniff(_ prefix: UnsafeRawBufferPointer) -> String? {
        nil
    }
}
