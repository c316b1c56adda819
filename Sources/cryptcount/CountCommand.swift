import ArgumentParser
import CryptCount

struct CountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "count", abstract: "(not yet implemented)")

    func run() throws {
        throw ValidationError("'count' is not implemented yet")
    }
}
