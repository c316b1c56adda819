import ArgumentParser
import CryptCount

#if canImport(Glibc)
    import Glibc
#endif

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

    /// As the parser's own, except that `count` ends a usage error (a bad option or operand)
    /// with status 1, as its help says (`count` keeps 2 for failed files); other commands keep
    /// the parser's 64.
    static func main() {
        do {
            var command = try CountCommand.quick(CommandLine.arguments.dropFirst()) ?? parseAsRoot()
            try command.run()
        } catch let code as ExitCode where code != .validationFailure {
            // As exit(withError:) does for an ExitCode (no message), without building its
            // message (which reflects on the whole command tree).
            Glibc.exit(code.rawValue)
        } catch {
            let isCount = CommandLine.arguments.dropFirst().first == "count"
            if isCount && exitCode(for: error) == .validationFailure {
                try? writeAll(fd: 2, Array((fullMessage(for: error) + "\n").utf8))
                Glibc.exit(1)
            }
            exit(withError: error)
        }
    }
}
