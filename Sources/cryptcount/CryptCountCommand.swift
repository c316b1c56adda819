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
            let arguments = Self.splittingJoinedValues(Array(CommandLine.arguments.dropFirst()))
            var command = try CountCommand.quick(arguments[...]) ?? parseAsRoot(arguments)
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

    /// `--term=V` and `--regexp=V` as two arguments where V begins with a combining mark (U+0301,
    /// a ZWJ): the `=` and the mark are then one Character, and the parser, which splits at a
    /// Character `=`, would call the whole argument an unknown option. Not after `--`, nor where
    /// the argument is itself an option's value.
    static func splittingJoinedValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        for (i, arg) in arguments.enumerated() {
            let previous = i > 0 ? arguments[i - 1] : ""
            guard !arguments[..<i].contains("--"), !["-t", "--term", "-e", "--regexp"].contains(previous),
                arg.utf8.starts(with: "--term=".utf8) || arg.utf8.starts(with: "--regexp=".utf8), !arg.contains("="),
                let eq = arg.utf8.firstIndex(of: UInt8(ascii: "="))
            else {
                out.append(arg)
                continue
            }
            out.append(String(decoding: arg.utf8[..<eq], as: UTF8.self))
            out.append(String(decoding: arg.utf8[arg.utf8.index(after: eq)...], as: UTF8.self))
        }
        return out
    }
}
