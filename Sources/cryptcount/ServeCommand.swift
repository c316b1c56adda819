import ArgumentParser
import CryptCount

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "(not yet implemented)")

    func run() throws {
        throw ValidationError("'serve' is not implemented yet")
    }
}
