import Synchronization

/// Process-wide tallies of the session-key caches (`stats`' `session_keys`): how many
/// messages took their session key from a key's cache, and how many needed a public-key or S2K
/// step (here or in librnp). Only counts: the caches themselves belong to each key.
package enum SessionKeyStats {
    private static let hitCount = Atomic<Int>(0)
    private static let missCount = Atomic<Int>(0)

    static func record(hit: Bool) {
        if hit {
            hitCount.add(1, ordering: .relaxed)
        } else {
            missCount.add(1, ordering: .relaxed)
        }
    }

    package static var hits: Int { hitCount.load(ordering: .relaxed) }
    package static var misses: Int { missCount.load(ordering: .relaxed) }
}
