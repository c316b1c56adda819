/// A request id, chosen by the parent: an unsigned integer or a string (kept as raw bytes, so
/// it is echoed back exactly).
package enum RequestID: Hashable, Sendable, CustomStringConvertible {
    case number(UInt64)
    case text([UInt8])

    package var description: String {
        switch self {
        case .number(let n): "\(n)"
        // Shortened, control characters replaced: it goes into error messages and log lines.
        case .text(let t): "\"\(RequestDecoder.printable(String(decoding: t, as: UTF8.self)))\""
        }
    }
}

/// A path or term as sent: `str` or `bin`. The bytes are what is opened or matched; the kind is
/// kept so a path is echoed back with the same MessagePack type.
package struct WireBytes: Sendable, Hashable {
    package var bytes: [UInt8]
    package var isBinary: Bool

    package init(_ bytes: [UInt8], isBinary: Bool) {
        self.bytes = bytes
        self.isBinary = isBinary
    }
}

/// A secret-bearing cipher choice: a named key, or an inline cipher and secret.
package struct KeySelection: Sendable {
    package var keyName: String?
    package var keyNames: [String]?  // `"keys"`, for `"cipher": "auto"`
    package var cipher: String?
    package var secret: SecretInput?
    package var options: CipherOptions
}

package struct CountRequest: Sendable {
    package var files: [WireBytes]
    package var terms: [[UInt8]]
    package var key: KeySelection
    package var search: SearchOptions
    package var ordered: Bool
    /// Most file results per `files` frame (opt-in); 1 sends one `file` frame per file.
    package var batch: Int = 1
    /// Plain successes as arrays `[index, counts, bytes, cached(, words)]`, always in `files`
    /// frames (opt-in).
    package var compact: Bool = false
}

package struct UnlockRequest: Sendable {
    package var name: String
    package var cipher: String
    package var secret: SecretInput?
    package var options: CipherOptions
}

package enum Request: Sendable {
    case hello
    case unlock(UnlockRequest)
    case forget(name: String)
    case count(CountRequest)
    case cancel(target: RequestID?)
    case stats
    case shutdown

    /// Protocol op names, in the order `hello` lists them.
    package static let ops = ["hello", "unlock", "forget", "count", "cancel", "stats", "shutdown"]
}
