import ArgumentParser
import CryptCount

struct EncryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encrypt", abstract: "(not yet implemented)")

    func run() throws {
        throw ValidationError("'encrypt' is not implemented yet")
    }
}
