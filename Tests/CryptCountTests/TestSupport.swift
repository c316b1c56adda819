import Foundation

@testable import CryptCount

/// Paths the tests share.
enum TestPaths {
    /// The package root (two levels above this file's folder).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `shared/` beside the clone (or `$CRYPTCOUNT_SHARED`), when present.
    static var shared: URL? {
        if let env = ProcessInfo.processInfo.environment["CRYPTCOUNT_SHARED"] {
            return URL(fileURLWithPath: env)
        }
        let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// The public conformance vectors: `$CRYPTCOUNT_VECTORS`, else `shared/vectors`.
    static var vectors: URL? {
        if let env = ProcessInfo.processInfo.environment["CRYPTCOUNT_VECTORS"] {
            return URL(fileURLWithPath: env)
        }
        guard let shared else { return nil }
        let url = shared.appendingPathComponent("vectors")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
}

extension Array where Element == UInt8 {
    init?(hex: String) {
        var out: [UInt8] = []
        var chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        while !chars.isEmpty {
            guard let b = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            chars.removeFirst(2)
        }
        self = out
    }
}

/// A key of the cipher named `cipher`, as an `unlock` would make it.
func makeKey(_ cipher: String, secret: SecretInput?, options: CipherOptions = CipherOptions()) throws(SecretError)
    -> any CipherKey
{
    guard let kind = CipherKind(rawValue: cipher) else { throw SecretError("unknown cipher \(cipher)") }
    return try kind.makeKey(secret: secret, options: options)
}

/// A fixed-seed SplitMix64 for the randomized tests: a failure reproduces from its seed.
struct Rng: RandomNumberGenerator {
    var state: UInt64
    init(state: UInt64) { self.state = state }
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// `n` random bytes.
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}
