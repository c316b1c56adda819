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
            var command = try quickCount() ?? parseAsRoot()
            try command.run()
        } catch {
            let isCount = CommandLine.arguments.dropFirst().first == "count"
            if isCount && exitCode(for: error) == .validationFailure {
                try? writeAll(fd: 2, Array((fullMessage(for: error) + "\n").utf8))
                Glibc.exit(1)
            }
            exit(withError: error)
        }
    }

    /// `cryptcount count ...` parsed as the `count` command alone, without the whole command
    /// tree: a one-shot run starts faster. Anything the command alone does not accept as is
    /// (help, a usage error, an option of the root) gives nil, and the full parser then parses
    /// the command line as before, with its own messages.
    private static func quickCount() -> ParsableCommand? {
        let arguments = CommandLine.arguments.dropFirst()
        guard arguments.first == "count" else { return nil }
        return try? CountCommand.parse(Array(arguments.dropFirst()))
    }
}
