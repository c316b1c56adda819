/// The one rule for a secret read from a file, shared by `count` and `encrypt` (and followed by
/// the shell example and the Python driver): the file's bytes less exactly one trailing line
/// ending, `\n` or `\r\n`. So a file written by `echo`, by an editor, or on Windows holds the same
/// secret, and a secret that really ends in a newline is written with one more. `-` is stdin.
enum SecretFile {
    static func read(_ path: String) throws(IOFailure) -> [UInt8] {
        do {
            return strippingOneLineEnding(try readWholeFile(path))
        } catch let failure as IOFailure {
            throw failure
        } catch {
            throw IOFailure(message: "cannot read '\(path)'")
        }
    }

    static func strippingOneLineEnding(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        guard bytes.last == 0x0A else { return bytes }
        bytes.removeLast()
        if bytes.last == 0x0D { bytes.removeLast() }
        return bytes
    }
}
