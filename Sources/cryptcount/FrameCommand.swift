import ArgumentParser
import CryptCount

struct FrameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "frame", abstract: "(not yet implemented)")

    func run() throws {
        throw ValidationError("'frame' is not implemented yet")
    }
}
