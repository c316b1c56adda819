#if canImport(Glibc)
    import Glibc
#endif

/// What happened to one file of a `count` request.
package enum FileOutcome: Sendable {
    case counted(CountedFile)
    /// `cipher`: for `"cipher": "auto"`, what the file was sniffed as, once it was.
    case failed(FileErrorCode, String, cipher: String? = nil)
}

package struct CountedFile: Sendable {
    package var result: SearchResult
    /// Plaintext length.
    package var bytes: Int
    /// Served from the plaintext cache.
    package var cached: Bool
    /// The cipher used, reported for `"cipher": "auto"` only.
    package var cipher: String?
}

extension FileOutcome {
    /// The outcome, a failure saying which cipher `auto` chose for the file.
    func sniffed(as cipher: String) -> FileOutcome {
        if case .failed(let code, let message, _) = self { return .failed(code, message, cipher: cipher) }
        return self
    }
}

/// How a request's files are decrypted.
package enum KeyChoice: Sendable {
    case single(UnlockedKey)
    /// `"cipher": "auto"`: each file is sniffed and decrypted with the first key of its kind.
    case auto([UnlockedKey])
}

/// Engine-wide settings (from `serve` flags).
package struct EngineConfig: Sendable {
    package var workers = 2
    package var cacheBytes = 256 << 20
    package var maxFileSize = 1 << 30
    /// Canonical absolute paths; empty means no restriction.
    package var allowedRoots: [[UInt8]] = []
    /// Bytes of responses that may wait for the parent to read before workers pause.
    package var outputHighWater = 8 << 20
    /// Files of at least two ranges of this many plaintext bytes are split between idle workers.
    /// `CRYPTCOUNT_RANGE_BYTES` overrides it (tests force tiny ranges with it).
    package var rangeBytes = EngineConfig.defaultRangeBytes
    package static let defaultRangeBytes = 8 << 20
    package init() {
        if let v = getenv("CRYPTCOUNT_RANGE_BYTES"), let n = Int(String(cString: v)), n >= 1 { rangeBytes = n }
    }
}
