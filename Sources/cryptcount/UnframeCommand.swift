import ArgumentParser
import CryptCount

struct UnframeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unframe", abstract: "(not yet implemented)")

    func run() throws {
        throw ValidationError("'unframe' is not implemented yet")
    }
}
