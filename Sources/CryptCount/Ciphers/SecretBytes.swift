#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// Secret material in memory of its own, written once and zeroed when the last reference goes
/// (after `forget`, once no request in flight uses the key). The memory comes from
/// `SecureMemory`: out of core dumps, and locked in RAM under `--lock-memory`. Never printed:
/// its description is a placeholder, so a stray interpolation cannot leak it.
package final class SecretBytes: @unchecked Sendable, Equatable, CustomStringConvertible,
    CustomDebugStringConvertible
{
    // Immutable after init; only deinit writes again, when nothing else can read.
    private let block: SecureMemory.Block
    private var storage: UnsafeMutableRawBufferPointer { block.bytes }

    package init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let n = bytes.count
        block = SecureMemory.allocate(n)  // zeroed, at least n bytes
        _ = UnsafeMutableBufferPointer(rebasing: block.bytes.bindMemory(to: UInt8.self)[0..<n]).initialize(from: bytes)
        count = n
    }

    deinit {
        SecureMemory.free(block)  // zeroes it first
    }

    package let count: Int
    package var isEmpty: Bool { count == 0 }

    /// Read access to the bytes.
    package func withBytes<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: storage.baseAddress?.assumingMemoryBound(to: UInt8.self), count: count))
    }

    /// A copy, for APIs that want an array (e.g. swift-crypto's SymmetricKey); keep it short-lived.
    package var bytes: [UInt8] { withBytes { Array($0) } }

    /// Zeroes a transient working copy of a secret that this code owns (a local `var`). Through
    /// `withUnsafeMutableBytes`, so copy-on-write holds: if anything else shares the storage, it
    /// gets a copy of its own first and keeps its bytes; a shared buffer is never written.
    package static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 { memset(base, 0, raw.count) }
        }
    }

    /// Same bytes (not constant time: for tests and request equality, not for authentication).
    package static func == (a: SecretBytes, b: SecretBytes) -> Bool {
        a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }
    }

    package var description: String { "<secret>" }
    package var debugDescription: String { "<secret>" }
}
