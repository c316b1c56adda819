import ArgumentParser
import CryptCount

/// `--cipher`: one of the registered ciphers, or `auto` (sniff each file). The names, the help
/// and the completions come from `CipherKind`, so a new cipher needs nothing here.
enum CipherChoice: ExpressibleByArgument, Equatable {
    case one(CipherKind)
    case auto

    init?(argument: String) {
        if argument == "auto" {
            self = .auto
        } else if let kind = CipherKind(rawValue: argument) {
            self = .one(kind)
        } else {
            return nil
        }
    }

    var name: String {
        switch self {
        case .one(let kind): kind.name
        case .auto: "auto"
        }
    }

    static var allValueStrings: [String] { CipherKind.allCases.map(\.name) + ["auto"] }
    var defaultValueDescription: String { name }
}
