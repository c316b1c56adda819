#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the process's memory (keys, cached plaintext) out of core dumps and away from other
/// processes of the same user, as ssh-agent does; and checks `--lock-memory` against
/// RLIMIT_MEMLOCK before any secret arrives.
package enum ProcessHardening {
    /// PR_SET_DUMPABLE 0: no core dump, and a process of the same (non-root) user can neither
    /// ptrace this one nor read its /proc/<pid>/mem (root, with CAP_SYS_PTRACE, still can).
    /// RLIMIT_CORE 0 too, so a later change of the dumpable flag still writes no core.
    /// Returns what could not be done (empty when all went well).
    package static func forbidDumps() -> [String] {
        var failures: [String] = []
        if prctl(prSetDumpable, 0) != 0 { failures.append("prctl(PR_SET_DUMPABLE, 0): \(errnoText())") }
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(resource(RLIMIT_CORE.rawValue), &none) != 0 {
            failures.append("setrlimit(RLIMIT_CORE, 0): \(errnoText())")
        }
        return failures
    }

    /// Whether the kernel would dump this process (PR_GET_DUMPABLE).
    package static var isDumpable: Bool { prctl(prGetDumpable, 0) == 1 }

    /// How many bytes may be locked: RLIMIT_MEMLOCK, after raising the soft limit to the hard
    /// one; nil when there is no limit (unlimited, or CAP_IPC_LOCK, which mlock does not count).
    package static func memlockLimit() -> Int? {
        if hasCapability(14) { return nil }  // CAP_IPC_LOCK
        let which = resource(__RLIMIT_MEMLOCK.rawValue)
        var r = rlimit()
        guard getrlimit(which, &r) == 0 else { return 0 }
        if r.rlim_cur != r.rlim_max {
            var raised = rlimit(rlim_cur: r.rlim_max, rlim_max: r.rlim_max)
            if setrlimit(which, &raised) == 0 { r = raised }
        }
        return r.rlim_cur == rlim_t.max ? nil : Int(clamping: r.rlim_cur)
    }

    /// Turns `--lock-memory` on for `cacheBytes` of plaintext cache plus the keys, or says why
    /// it cannot be (the limit, what is needed, how to raise it) without turning anything on.
    package static func lockMemory(cacheBytes: Int) -> String? {
        let limit = memlockLimit()
        let needed = cacheBytes + SecureMemory.keyReserve
        if let limit, limit < needed {
            let kib = { (n: Int) in (n + 1023) / 1024 }
            let keys = "the keys (\(SecureMemory.keyReserve >> 20) MiB)"
            // `count` has no cache: only `serve`'s message names --cache-mb.
            let what = cacheBytes > 0 ? "the plaintext cache (\(cacheBytes >> 20) MiB, --cache-mb) and \(keys)" : keys
            var message = """
                --lock-memory: RLIMIT_MEMLOCK is \(kib(limit)) KiB, but locking \(what) needs \
                \(kib(needed)) KiB. Raise the limit (ulimit -l \(kib(needed)), prlimit --memlock=\(needed), \
                systemd LimitMEMLOCK=, the memlock item of /etc/security/limits.conf)
                """
            if limit >= SecureMemory.keyReserve && cacheBytes > 0 {
                message += " or lower --cache-mb (at most \((limit - SecureMemory.keyReserve) >> 20) fits)"
            }
            return message
        }
        SecureMemory.enableLocking(limit: limit)
        return nil
    }

    // prctl is variadic in C, which Swift does not import; glibc reads its arguments as
    // unsigned longs, so calling it through this fixed signature is the same call.
    private typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    private static let prctlFunction: Prctl? = {
        guard let handle = dlopen(nil, RTLD_NOW), let sym = dlsym(handle, "prctl") else { return nil }
        return unsafeBitCast(sym, to: Prctl.self)
    }()
    // <linux/prctl.h>'s PR_GET_DUMPABLE and PR_SET_DUMPABLE (not imported: see above).
    private static let prGetDumpable: Int32 = 3
    private static let prSetDumpable: Int32 = 4

    private static func prctl(_ option: Int32, _ arg: UInt) -> Int32 {
        guard let f = prctlFunction else {
            errno = ENOSYS
            return -1
        }
        return f(option, arg, 0, 0, 0)
    }

    private static func resource(_ raw: UInt32) -> __rlimit_resource_t { __rlimit_resource_t(raw) }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Whether capability `bit` is in this process's effective set (/proc/self/status CapEff).
    private static func hasCapability(_ bit: Int) -> Bool {
        guard let f = fopen("/proc/self/status", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("CapEff:") else { continue }
            let hex = text.dropFirst("CapEff:".count).trimmingWhitespace()
            guard let mask = UInt64(hex, radix: 16) else { return false }
            return mask & (1 << UInt64(bit)) != 0
        }
        return false
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return s
    }
}
