/// A request id, chosen by the parent: an unsigned integer or a string (kept as raw bytes, so
/// it is echoed back exactly).
public enum RequestID: Hashable, Sendable, CustomStringConvertible {
    case number(UInt64)
    case text([UInt8])

    public var description: String {
        switch self {
        case .number(let n): "\(n)"
        // Shortened, control characters replaced: it goes into error messages and log lines.
        case .text(let t): "\"\(RequestDecoder.printable(String(decoding: t, as: UTF8.self)))\""
        }
    }
}

/// A path or term as sent: `str` or `bin`. The bytes are what is opened or matched; the kind is
/// kept so a path is echoed back with the same MessagePack type.
public struct WireBytes: Sendable, Hashable {
    public var bytes: [UInt8]
    public var isBinary: Bool

    public init(_ bytes: [UInt8], isBinary: Bool) {
        self.bytes = bytes
        self.isBinary = isBinary
    }
}

/// A secret-bearing cipher choice: a named key, or an inline cipher and secret.
public struct KeySelection: Sendable {
    public var keyName: String?
    public var keyNames: [String]?  // `"keys"`, for `"cipher": "auto"`
    public var cipher: String?
    public var secret: SecretInput?
    public var options: CipherOptions
}

public struct CountRequest: Sendable {
    public var files: [WireBytes]
    public var terms: [[UInt8]]
    public var key: KeySelection
    public var search: SearchOptions
    public var ordered: Bool
    /// Most file results per `files` frame (opt-in); 1 sends one `file` frame per file.
    public var batch: Int = 1
}

public struct UnlockRequest: Sendable {
    public var name: String
    public var cipher: String
    public var secret: SecretInput?
    public var options: CipherOptions
}

public enum Request: Sendable {
    case hello
    case unlock(UnlockRequest)
    case forget(name: String)
    case count(CountRequest)
    case cancel(target: RequestID?)
    case stats
    case shutdown

    /// Protocol op names, in the order `hello` lists them.
    public static let ops = ["hello", "unlock", "forget", "count", "cancel", "stats", "shutdown"]
}
