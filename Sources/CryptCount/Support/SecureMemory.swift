import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Memory for key material and cached plaintext: anonymous pages of our own, marked
/// MADV_DONTDUMP (left out of core dumps even when dumps are allowed) and, after
/// `enableLocking`, locked in RAM with mlock (never written to swap), as gpg-agent does with
/// its secure memory. Freed memory is zeroed (explicit_bzero, which the optimiser keeps) before
/// it is reused or unmapped.
///
/// Small secrets share pages: a slab of 64 KiB chunks cut into power-of-two slots (16 bytes to
/// 2 KiB), kept for reuse, never unmapped. Anything larger gets pages of its own.
package enum SecureMemory {
    /// What `--lock-memory` keeps for key material on top of the cache budget: the slab grows
    /// by 64 KiB chunks, so this is 16 chunks, room for thousands of keys.
    package static let keyReserve = 1 << 20

    package static let pageSize: Int = {
        let n = sysconf(Int32(_SC_PAGESIZE))
        return n > 0 ? n : 4096
    }()

    private static let locking = Atomic<Bool>(false)
    /// Locked bytes the plaintext cache may hold (RLIMIT_MEMLOCK less `keyReserve`).
    private static let cacheLockCap = Atomic<Int>(Int.max)
    private static let cacheLocked = Atomic<Int>(0)
    private static let warnedUnlocked = Atomic<Bool>(false)

    /// Locks every later allocation in RAM. Call once at start-up, before any secret arrives.
    /// `limit`: RLIMIT_MEMLOCK in bytes (nil: unlimited, or CAP_IPC_LOCK).
    package static func enableLocking(limit: Int?) {
        cacheLockCap.store(limit.map { max(0, $0 - keyReserve) } ?? Int.max, ordering: .relaxed)
        locking.store(true, ordering: .releasing)
    }

    package static var isLocking: Bool { locking.load(ordering: .acquiring) }

    /// Bytes of cached plaintext currently locked.
    package static var lockedCacheBytes: Int { cacheLocked.load(ordering: .relaxed) }

    /// `n` rounded up to whole pages; nil when that overflows.
    static func pageRounded(_ n: Int) -> Int? {
        let (sum, overflow) = max(n, 1).addingReportingOverflow(pageSize - 1)
        return overflow ? nil : sum / pageSize * pageSize
    }

    /// Fresh zeroed pages, MADV_DONTDUMP; nil when they cannot be mapped. `populate` faults
    /// them in at once (cheaper than a fault per page when they are about to be written).
    static func mapPages(_ size: Int, populate: Bool) -> UnsafeMutableRawPointer? {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0),
            p != UnsafeMutableRawPointer(bitPattern: -1)
        else { return nil }
        _ = madvise(p, size, MADV_DONTDUMP)
        return p
    }

    static func warnUnlocked(_ what: String) {
        if !warnedUnlocked.exchange(true, ordering: .relaxed) {
            Log.error("--lock-memory: cannot lock \(what) (\(String(cString: strerror(errno)))); it stays unlocked")
        }
    }

    // MARK: - Key material

    /// Storage for one secret; give it back with `free`.
    package struct Block: @unchecked Sendable {
        package let bytes: UnsafeMutableRawBufferPointer
        /// A slab slot class, or -1 for pages of its own.
        fileprivate let slotClass: Int
    }

    private static let slotSizes = [16, 32, 64, 128, 256, 512, 1024, 2048]
    private static let chunkSize = 64 << 10

    private struct Slab {
        // Addresses, not pointers: what crosses the lock is plain data.
        var free: [[UInt]] = Array(repeating: [], count: 8)
        var chunk: UInt = 0
        var used = 0
    }

    private static let slab = Mutex(Slab())

    /// Zeroed storage for at least `count` bytes (never less than one).
    package static func allocate(_ count: Int) -> Block {
        let n = max(count, 1)
        if let cls = slotSizes.firstIndex(where: { $0 >= n }),
            let address = slab.withLock({ s in takeSlot(cls, &s) }),
            let p = UnsafeMutableRawPointer(bitPattern: address)
        {
            return Block(bytes: UnsafeMutableRawBufferPointer(start: p, count: slotSizes[cls]), slotClass: cls)
        }
        if let size = pageRounded(n), let p = mapPages(size, populate: false) {
            if isLocking && mlock(p, size) != 0 { warnUnlocked("key memory") }
            return Block(bytes: UnsafeMutableRawBufferPointer(start: p, count: size), slotClass: -1)
        }
        // Out of address space for secrets: the heap is better than failing (and the process
        // is about to be in trouble anyway). Marked as its own class so `free` can tell.
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        return Block(bytes: UnsafeMutableRawBufferPointer(start: p, count: n), slotClass: -2)
    }

    private static func takeSlot(_ cls: Int, _ s: inout Slab) -> UInt? {
        if let p = s.free[cls].popLast() { return p }
        let size = slotSizes[cls]
        if s.chunk == 0 || s.used + size > chunkSize {
            // The rest of an old chunk is left; slots freed later refill the lists.
            guard let c = mapPages(chunkSize, populate: true) else { return nil }
            if isLocking && mlock(c, chunkSize) != 0 { warnUnlocked("key memory") }
            s.chunk = UInt(bitPattern: c)
            s.used = 0
        }
        let p = s.chunk + UInt(s.used)
        s.used += size
        return p
    }

    /// Zeroes the block and gives it back.
    package static func free(_ block: Block) {
        guard let p = block.bytes.baseAddress else { return }
        explicit_bzero(p, block.bytes.count)
        switch block.slotClass {
        case -1: munmap(p, block.bytes.count)
        case -2: p.deallocate()
        default:
            let address = UInt(bitPattern: p)
            slab.withLock { s in s.free[block.slotClass].append(address) }
        }
    }
}

/// Cached plaintext in pages of its own (see `SecureMemory`): left out of core dumps, locked
/// in RAM under `--lock-memory`, zeroed and unmapped when the last reader lets go.
package final class SecureBuffer: @unchecked Sendable {
    // Written once in init; only deinit writes again, when nothing else can read.
    private let base: UnsafeMutableRawPointer
    package let count: Int
    /// Bytes mapped (whole pages): what the buffer costs in memory and in RLIMIT_MEMLOCK.
    package let capacity: Int
    private let locked: Bool

    /// What a buffer of `count` bytes costs; nil when that is beyond any mapping.
    package static func cost(of count: Int) -> Int? { SecureMemory.pageRounded(count) }

    /// A copy of `bytes`; nil when the pages cannot be mapped or, under `--lock-memory`, the
    /// cache's share of RLIMIT_MEMLOCK is used up (the caller then simply does not cache).
    package init?(copying bytes: UnsafeRawBufferPointer) {
        guard let size = SecureMemory.pageRounded(bytes.count) else { return nil }
        let lock = SecureMemory.isLocking
        if lock && !SecureMemory.reserveCacheLock(size) { return nil }
        guard let p = SecureMemory.mapPages(size, populate: true) else {
            if lock { SecureMemory.releaseCacheLock(size) }
            return nil
        }
        if lock && mlock(p, size) != 0 {
            munmap(p, size)
            SecureMemory.releaseCacheLock(size)
            return nil
        }
        if let src = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: src, byteCount: bytes.count) }
        base = p
        count = bytes.count
        capacity = size
        locked = lock
    }

    deinit {
        // Only the bytes written can be non-zero: the rest of the pages was never touched.
        explicit_bzero(base, count)
        munmap(base, capacity)
        if locked { SecureMemory.releaseCacheLock(capacity) }
    }

    package func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

extension SecureMemory {
    fileprivate static func reserveCacheLock(_ n: Int) -> Bool {
        let after = cacheLocked.wrappingAdd(n, ordering: .relaxed).newValue
        if after <= cacheLockCap.load(ordering: .relaxed) { return true }
        cacheLocked.wrappingSubtract(n, ordering: .relaxed)
        return false
    }

    fileprivate static func releaseCacheLock(_ n: Int) {
        cacheLocked.wrappingSubtract(n, ordering: .relaxed)
    }
}
