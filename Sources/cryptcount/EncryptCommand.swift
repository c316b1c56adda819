import ArgumentParser
import CryptCount

struct EncryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Encrypt a file in the seed diary's format (for tests and demos; a toy cipher).",
        discussion: """
            The password is the content of --secret-file less exactly one trailing line ending \
            (\\n or \\r\\n), as `count --secret-file` reads it; it is never taken from the command \
            line. `-` as INPUT or OUTPUT means stdin or stdout. \
            biographer files get a fresh random 8-byte iv (each byte in 1...254), as the seed app \
            wrote them. Errors: a message on stderr and exit status 2.
            """
    )

    @Option(help: "biographer or biographer-v0.")
    var cipher: String

    @Option(help: "File holding the password (one trailing \\n or \\r\\n is stripped; - is stdin).")
    var secretFile: String

    @Argument(help: "Plaintext file, or - for stdin.")
    var input: String

    @Argument(help: "Ciphertext file to write, or - for stdout.")
    var output: String

    func run() throws {
        let chained: Bool
        switch cipher {
        case "biographer": chained = true
        case "biographer-v0": chained = false
        default:
            printError("encrypt", "unsupported cipher '\(cipher)' (encrypt writes biographer or biographer-v0)")
            throw ExitCode(2)
        }
        do {
            if input == "-" && secretFile == "-" {
                printError("encrypt", "the secret file and the input cannot both be stdin")
                throw ExitCode(2)
            }
            let password = try SecretFile.read(secretFile)
            let key: BiographerKey
            do {
                key = try BiographerKey(password: password, chained: chained)
            } catch {
                printError("encrypt", "bad secret in '\(secretFile)': \(error.message)")
                throw ExitCode(2)
            }
            let plain = try readWholeFile(input)
            var rng = SystemRandomNumberGenerator()
            let iv = (0..<8).map { _ in UInt8.random(in: 1...254, using: &rng) }
            try writeWholeFile(output, key.encrypt(plain, iv: iv))
        } catch let failure as IOFailure {
            printError("encrypt", failure.message)
            throw ExitCode(2)
        }
    }
}
