/// Guesses a file's cipher from its first bytes, for `"cipher":"auto"`. Pure: looks only at the
/// prefix it is given (a few hundred bytes are plenty). Returns nil for anything else, which
/// the engine treats as plain. Biographer files look like random text and cannot be sniffed.
public enum CipherSniffer {
    static let ageBinary: [UInt8] = Array("age-encryption.org/v1\n".utf8)
    static let ageArmor: [UInt8] = Array("-----BEGIN AGE ENCRYPTED FILE-----".utf8)
    static let openssl: [UInt8] = Array("Salted__".utf8)
    /// Version byte 0x80 and a timestamp below 2^32 seconds encode as `gAAAAA`.
    static let fernet: [UInt8] = Array("gAAAAA".utf8)

    /// How many leading bytes the sniffer wants to see.
    public static let prefixLength = 512

    public static func sniff(_ prefix: UnsafeRawBufferPointer) -> String? {
        if prefix.starts(with: ageBinary) { return "age" }
        if prefix.starts(with: openssl) { return "openssl" }
        if OpenPGPSniffer.isEncryptedMessage(prefix) { return "openpgp" }
        var i = 0
        while i < prefix.count, ASCII.isWhitespace(prefix[i]) { i += 1 }
        let rest = prefix[i...]
        if rest.starts(with: ageArmor) { return "age" }
        if rest.starts(with: fernet) {
            // The token runs to the end of the prefix or to trailing whitespace only.
            var j = i
            while j < prefix.count, isURLSafeBase64(prefix[j]) { j += 1 }
            let tokenLength = j - i
            while j < prefix.count, ASCII.isWhitespace(prefix[j]) { j += 1 }
            if j == prefix.count && tokenLength >= 16 { return "fernet" }
        }
        return nil
    }

    public static func sniff(_ prefix: [UInt8]) -> String? {
        prefix.withUnsafeBytes { sniff($0) }
    }

    private static func isURLSafeBase64(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
            || b == UInt8(ascii: "=")
    }
}
