import Synchronization

/// Decrypted text kept in memory (never on disk) so a repeated query skips reading and
/// decrypting. Keyed by the file's identity and the key's identity; bounded by a byte budget
/// with least-recently-used eviction. Sharded so workers rarely contend for a lock. Each entry
/// is a `SecureBuffer`: pages out of core dumps (locked under `--lock-memory`), zeroed when the
/// entry is evicted or purged and its last reader is done; an entry costs whole pages.
package final class PlaintextCache: Sendable {
    package struct Key: Hashable, Sendable {
        package var file: FileIdentity
        package var key: KeyIdentity
    }

    package struct Entry: Sendable {
        package var plaintext: SecureBuffer
        /// The cipher that produced it (for `auto`, which reports it).
        package var cipher: String
    }

    package struct Snapshot: Sendable, Equatable {
        package var entries: Int
        package var bytes: Int
        package var limit: Int
        package var hits: Int
        package var misses: Int
    }

    private struct Slot {
        var entry: Entry
        var lastUse: UInt64
        /// The key made by `unlock` (or given inline) that decrypted it, when a request's options
        /// made `Key.key` another identity (see `UnlockedKey.origin`).
        var origin: KeyIdentity
    }

    private struct Shard {
        var slots: [Key: Slot] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    /// Mutex is not copyable, so each shard's lives in a box of its own.
    private final class ShardBox: Sendable {
        let mutex = Mutex(Shard())
    }

    package let limit: Int
    private let shardLimit: Int
    private let shards: [ShardBox]

    package init(limitBytes: Int, shardCount: Int = 8) {
        limit = max(0, limitBytes)
        let n = max(1, shardCount)
        shardLimit = limit / n
        shards = (0..<n).map { _ in ShardBox() }
    }

    package var isEnabled: Bool { limit > 0 }

    /// Largest plaintext worth keeping: one entry may take at most a quarter of its shard.
    package var maxEntryBytes: Int { shardLimit / 4 }

    private func shard(for key: Key) -> ShardBox {
        let h = key.file.inode ^ key.file.device &* 31 ^ key.key.low
        return shards[Int(h % UInt64(shards.count))]
    }

    /// `countingMiss`: false for a look that is followed, on a miss, by the real one (which counts).
    package func lookup(_ key: Key, countingMiss: Bool = true) -> Entry? {
        guard isEnabled else { return nil }
        return shard(for: key).mutex.withLock { s in
            s.clock &+= 1
            guard var slot = s.slots[key] else {
                if countingMiss { s.misses += 1 }
                return nil
            }
            s.hits += 1
            slot.lastUse = s.clock
            s.slots[key] = slot
            return slot.entry
        }
    }

    /// What an entry costs in the budget: its pages plus bookkeeping.
    private static func cost(_ plaintext: SecureBuffer) -> Int { plaintext.capacity + 128 }

    /// Keeps a copy of `plaintext` (the caller's buffer stays its own). Too large, or no memory
    /// to put it in (under `--lock-memory`: the cache's share of RLIMIT_MEMLOCK is in use by
    /// entries still being read): not kept. Nor when `owner`, the key that decrypted it, is
    /// retired: checked under the shard's lock, which `purge` takes after the key was retired,
    /// so an entry is either purged or never kept.
    package func insert(_ key: Key, plaintext: UnsafeRawBufferPointer, cipher: String, owner: UnlockedKey? = nil) {
        guard isEnabled, let pages = SecureBuffer.cost(of: plaintext.count), pages + 128 <= maxEntryBytes,
            let buffer = SecureBuffer(copying: plaintext)
        else { return }
        let entry = Entry(plaintext: buffer, cipher: cipher)
        let size = Self.cost(buffer)
        shard(for: key).mutex.withLock { s in
            if owner?.isRetired == true { return }
            s.clock &+= 1
            if let old = s.slots[key] { s.bytes -= Self.cost(old.entry.plaintext) }
            s.slots[key] = Slot(entry: entry, lastUse: s.clock, origin: owner?.origin ?? key.key)
            s.bytes += size
            if s.bytes > shardLimit { Self.evict(&s, downTo: shardLimit - shardLimit / 8) }
        }
    }

    private static func evict(_ s: inout Shard, downTo target: Int) {
        // Oldest first. Sorting is O(n log n) but runs only when the budget overflows and then
        // frees an eighth of the shard, so its cost is spread over many inserts.
        let order = s.slots.sorted { $0.value.lastUse < $1.value.lastUse }
        for (key, slot) in order {
            if s.bytes <= target { break }
            s.slots[key] = nil
            s.bytes -= Self.cost(slot.entry.plaintext)
        }
    }

    /// Drops every entry decrypted with `key` (on `forget`), also under a request's options,
    /// except entries whose identity is in `keeping` (keys other names still hold).
    package func purge(key: KeyIdentity, keeping: Set<KeyIdentity> = []) {
        for shard in shards {
            shard.mutex.withLock { s in
                for (k, slot) in s.slots where (k.key == key || slot.origin == key) && !keeping.contains(k.key) {
                    s.slots[k] = nil
                    s.bytes -= Self.cost(slot.entry.plaintext)
                }
            }
        }
    }

    package func snapshot() -> Snapshot {
        var out = Snapshot(entries: 0, bytes: 0, limit: limit, hits: 0, misses: 0)
        for shard in shards {
            shard.mutex.withLock { s in
                out.entries += s.slots.count
                out.bytes += s.bytes
                out.hits += s.hits
                out.misses += s.misses
            }
        }
        return out
    }
}
