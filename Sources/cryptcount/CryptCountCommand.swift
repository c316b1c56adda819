import ArgumentParser
import CryptCount

@main
struct CryptCountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cryptcount",
        abstract: "Decrypt files in memory and count terms in them, as a coprocess or one shot.",
        version: CryptCountVersion.string,
        subcommands: [
            ServeCommand.self, FrameCommand.self, UnframeCommand.self, CountCommand.self, EncryptCommand.self,
        ]
    )
}
