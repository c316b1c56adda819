import CryptCount

/// The one rule for a secret read from a file, shared by `count` and `encrypt` (and followed by
/// the shell example and the Python driver): the file's bytes less exactly one trailing line
/// ending, `\n` or `\r\n`. So a file written by `echo`, by an editor, or on Windows holds the same
/// secret, and a secret that really ends in a newline is written with one more. `-` is stdin.
enum SecretFile {
    /// The secret, in storage of its own; the file's bytes read on the way are zeroed.
    static func read(_ path: String) throws(IOFailure) -> SecretBytes {
        var raw: [UInt8]
        do {
            raw = try readWholeFile(path)
        } catch let failure as IOFailure {
            throw failure
        } catch {
            throw IOFailure(message: "cannot read '\(path)'")
        }
        defer { SecretBytes.wipe(&raw) }
        return SecretBytes(raw[..<lengthLessOneLineEnding(raw)])
    }

    /// How many bytes stay once exactly one trailing `\n` or `\r\n` is dropped.
    static func lengthLessOneLineEnding(_ bytes: [UInt8]) -> Int {
        guard bytes.last == 0x0A else { return bytes.count }
        return bytes.count >= 2 && bytes[bytes.count - 2] == 0x0D ? bytes.count - 2 : bytes.count - 1
    }
}
