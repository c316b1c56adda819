#if canImport(Glibc)
    import Glibc
#endif

/// Linux's O_PATH (not exported by the Glibc module): open a name without opening the file.
private let openPathOnly: Int32 = 0o10000000

/// Reads, decrypts and counts one file at a time. One per worker thread: its buffers are reused
/// from file to file, so the steady state allocates nothing but result arrays.
final class FileProcessor {
    let config: EngineConfig
    let cache: PlaintextCache
    let stats: EngineStats
    /// The whole file, for formats read whole (and small plain files).
    private var input: UnsafeMutableRawBufferPointer
    /// A group's files read ahead (`readGroup`), one after the other. Ciphertext only.
    private var ahead = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Files of a group up to this size are read ahead whole (once: their pass decrypts them from
    /// `ahead`); bigger ones are opened ahead and read as usual.
    static let aheadFileLimit = 256 << 10
    /// Plaintext of whole-file formats.
    private var plain: [UInt8] = []
    /// The current path, NUL-terminated.
    private var pathBuffer: [UInt8] = []
    /// Chunk size for streamed reading.
    static let chunkSize = 1 << 20
    /// Piece size for a plain file's ranges (pread from the page cache, scanned in place). Measured
    /// on 256 MiB cached, one core (AMD EPYC, 1 MiB L2): the copy takes 20 ms of CPU in 256 KiB
    /// pieces, 14.7 in 1 MiB, 14.3 in 2 MiB, the same in 4 MiB. On an Intel Xeon VM (2 MiB L2),
    /// `pread` and memchr over 1 GiB on two threads took 71-73 ms in 512 KiB or 1 MiB pieces and
    /// 85-90 in 2 MiB ones (the piece no longer stays in L2 for the scan): 1 MiB suits both.
    static let plainPieceBytes = 1 << 20
    /// What `auto` reads a file that no cipher recognises with.
    static let plainKey = UnlockedKey(key: PlainKey.shared)
    /// Plain files up to this size are read in one piece and counted in place.
    static let wholePlainLimit = 8 << 20

    init(config: EngineConfig, cache: PlaintextCache, stats: EngineStats) {
        self.config = config
        self.cache = cache
        self.stats = stats
        // Small first (grown on demand): it is wiped whole when the processor goes, and a 1 MiB
        // buffer a one-shot run never filled cost 256 page faults to wipe.
        input = .allocate(byteCount: 1 << 16, alignment: 64)
    }

    deinit {
        Self.release(input)
        Self.release(ahead)
    }

    /// Makes `input` hold at least `n` bytes, keeping its first `keeping` bytes (a file read
    /// whole that grew past the buffer keeps what was read before it).
    private func ensureInput(_ n: Int, keeping: Int = 0) {
        Self.grow(&input, toHold: n, keeping: keeping)
    }

    /// Replaces `buffer` by one of at least `n` bytes (doubling) holding its first `keeping`
    /// bytes; nothing when it is big enough already.
    private static func grow(_ buffer: inout UnsafeMutableRawBufferPointer, toHold n: Int, keeping: Int) {
        guard n > buffer.count else { return }
        var size = max(buffer.count, 1 << 16)
        while size < n { size = size > (1 << 40) ? n : size * 2 }
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        let kept = min(keeping, buffer.count)
        if kept > 0 { grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[0..<kept])) }
        release(buffer)
        buffer = grown
    }

    /// Frees a buffer of this worker's alone, zeroed first: `input` may hold plaintext (a split
    /// age or openssl range is decrypted into it; `ahead` holds ciphertext only).
    private static func release(_ buffer: UnsafeMutableRawBufferPointer) {
        if let p = buffer.baseAddress { explicit_bzero(p, buffer.count) }
        buffer.deallocate()
    }

    // MARK: - Opening

    private struct Opened {
        var fd: Int32
        var identity: FileIdentity
    }

    private static func failure(forErrno e: Int32, what: String) -> FileOutcome {
        let reason = String(cString: strerror(e))
        switch e {
        case ENOENT, ENOTDIR, ENAMETOOLONG:
            return .failed(.notFound, "\(what): \(reason)")
        case EACCES, EPERM:
            return .failed(.permissionDenied, "\(what): \(reason)")
        case EISDIR:
            return .failed(.notAFile, "\(what): is a directory")
        default:
            return .failed(.ioError, "\(what): \(reason)")
        }
    }

    private static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    /// Opens a path for reading, refusing anything that is not a regular file without ever
    /// opening it for reading (so a FIFO cannot block and a device is not touched).
    ///
    /// Without allowed roots the name is checked with stat(2): a cache hit then needs no other
    /// system call, and a miss opens the name and makes sure it is the very file that was
    /// checked (device and inode). With allowed roots the name is opened with O_PATH (no side
    /// effects, no blocking), the root check is made on what was opened (via /proc/self/fd),
    /// and that same file is reopened, so a path swapped under us cannot redirect the read.
    /// `cacheOnly`: on a miss, stop before opening the file (the result then has fd -1 and no hit).
    private func open(
        _ path: [UInt8], key: KeyIdentity?, cacheHit: inout PlaintextCache.Entry?, cacheOnly: Bool = false
    ) -> Result<Opened, FileFailure> {
        if path.isEmpty { return .failure(FileFailure(.notFound, "the path is empty")) }
        if path.contains(0) { return .failure(FileFailure(.notFound, "the path contains a NUL byte")) }
        // A NUL-terminated copy in a buffer kept from file to file.
        pathBuffer.removeAll(keepingCapacity: true)
        pathBuffer.append(contentsOf: path)
        pathBuffer.append(0)

        var st = stat()
        var pathFD: Int32 = -1
        defer { if pathFD >= 0 { close(pathFD) } }
        if config.allowedRoots.isEmpty {
            if withCString(pathBuffer, { fstatat(AT_FDCWD, $0, &st, 0) }) != 0 {
                return .failure(FileFailure(outcome: Self.failure(forErrno: errno, what: "cannot open")))
            }
        } else {
            pathFD = withCString(pathBuffer) { Glibc.open($0, openPathOnly | O_CLOEXEC) }
            if pathFD < 0 {
                let e = errno
                // A path that cannot be opened is still refused when it lies outside: otherwise
                // not_found against permission_denied would tell which files exist there.
                if Self.resolvesOutside(path, roots: config.allowedRoots) {
                    return .failure(FileFailure(.outsideRoot, "the path resolves outside every allowed root"))
                }
                return .failure(FileFailure(outcome: Self.failure(forErrno: e, what: "cannot open")))
            }
            if fstat(pathFD, &st) != 0 {
                return .failure(FileFailure(outcome: Self.failure(forErrno: errno, what: "cannot stat")))
            }
            guard let real = Self.realPath(ofFD: pathFD) else {
                return .failure(FileFailure(.outsideRoot, "cannot resolve the opened file's path"))
            }
            guard Self.isUnderAllowedRoot(real, roots: config.allowedRoots) else {
                return .failure(FileFailure(.outsideRoot, "the path resolves outside every allowed root"))
            }
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            return .failure(FileFailure(.notAFile, "\(Self.kindName(st.st_mode)), not a regular file"))
        }
        let identity = FileIdentity(st)
        if let key, let entry = cache.lookup(PlaintextCache.Key(file: identity, key: key), countingMiss: !cacheOnly) {
            cacheHit = entry
            return .success(Opened(fd: -1, identity: identity))
        }
        if cacheOnly { return .success(Opened(fd: -1, identity: identity)) }
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY
        let reopen = pathFD >= 0 ? Array("/proc/self/fd/\(pathFD)\0".utf8) : pathBuffer
        let fd = withCString(reopen) { Glibc.open($0, flags) }
        if fd < 0 { return .failure(FileFailure(outcome: Self.failure(forErrno: errno, what: "cannot open"))) }
        var st2 = stat()
        if fstat(fd, &st2) != 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino
            || st2.st_mode & S_IFMT != S_IFREG
        {
            close(fd)
            return .failure(FileFailure(.ioError, "the file was replaced while being opened"))
        }
        return .success(Opened(fd: fd, identity: identity))
    }

    static func realPath(ofFD fd: Int32) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = withCString(Array("/proc/self/fd/\(fd)\0".utf8)) { link in
            buf.withUnsafeMutableBufferPointer { b -> Int in
                guard let bp = b.baseAddress else { return -1 }
                return readlink(link, UnsafeMutableRawPointer(bp).assumingMemoryBound(to: CChar.self), b.count - 1)
            }
        }
        guard n > 0 && n < buf.count - 1 else { return nil }
        return Array(buf[0..<n])
    }

    /// Where a path that could not be opened lies: its longest leading part that opens (O_PATH),
    /// resolved, then the rest of its components taken by name (`..` removes one). Outside every
    /// root: true.
    static func resolvesOutside(_ path: [UInt8], roots: [[UInt8]]) -> Bool {
        let slash = UInt8(ascii: "/")
        var rest: [ArraySlice<UInt8>] = []  // the components after `head`, last first
        var head = path[...]
        while let cut = head.lastIndex(of: slash) {
            rest.append(head[head.index(after: cut)...])
            head = head[..<cut]
            if let real = resolved(head.isEmpty ? [slash] : Array(head)) {
                return !isUnderAllowedRoot(appending(rest.reversed(), to: real), roots: roots)
            }
            if head.isEmpty { return true }
        }
        rest.append(head)  // a relative path's first component: below the working directory
        guard let real = resolved(Array(".".utf8)) else { return true }
        return !isUnderAllowedRoot(appending(rest.reversed(), to: real), roots: roots)
    }

    /// The resolved path of what `path` names, or nil when it cannot be opened.
    private static func resolved(_ path: [UInt8]) -> [UInt8]? {
        let fd = withCString(path + [0]) { Glibc.open($0, openPathOnly | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return realPath(ofFD: fd)
    }

    /// `base` (an absolute resolved path) followed by `names`, `.` and `..` taken by name.
    private static func appending(_ names: ReversedCollection<[ArraySlice<UInt8>]>, to base: [UInt8]) -> [UInt8] {
        let slash = UInt8(ascii: "/")
        var out = base
        for name in names {
            if name.isEmpty || name.elementsEqual(".".utf8) { continue }
            if name.elementsEqual("..".utf8) {
                if let cut = out.lastIndex(of: slash) { out.removeSubrange(Swift.max(cut, 1)...) }
                continue
            }
            if out.last != slash { out.append(slash) }
            out.append(contentsOf: name)
        }
        return out
    }

    static func isUnderAllowedRoot(_ path: [UInt8], roots: [[UInt8]]) -> Bool {
        for root in roots {
            if root == [UInt8(ascii: "/")] { return true }
            if path.count >= root.count && path.starts(with: root)
                && (path.count == root.count || path[root.count] == UInt8(ascii: "/"))
            {
                return true
            }
        }
        return false
    }

    // MARK: - Processing

    /// Whether a file's plaintext under this key goes to (and comes from) the plaintext cache.
    static func cachesPlaintext(_ key: UnlockedKey) -> Bool {
        key.identity != .plain && key.key.plaintextIsCacheable
    }

    /// A plaintext cache hit, counted.
    private func count(_ hit: PlaintextCache.Entry, plan: SearchPlan, cipher: String?) -> FileOutcome {
        stats.addPlain(hit.plaintext.count)
        let result = hit.plaintext.withUnsafeBytes { plan.count($0) }
        return .counted(CountedFile(result: result, bytes: hit.plaintext.count, cached: true, cipher: cipher))
    }

    /// A file's outcome from the plaintext cache alone, if it is there (single cacheable key) and
    /// holds at most `maxBytes`; nil otherwise, without opening the file (the caller then runs it
    /// as usual). Costs one stat(2) and a count of at most `maxBytes`.
    func countIfCached(path: [UInt8], keys: KeyChoice, plan: SearchPlan, maxBytes: Int) -> FileOutcome? {
        guard cache.isEnabled, case .single(let k) = keys, Self.cachesPlaintext(k) else { return nil }
        var hit: PlaintextCache.Entry? = nil
        guard case .success = open(path, key: k.identity, cacheHit: &hit, cacheOnly: true), let hit,
            hit.plaintext.count <= maxBytes
        else { return nil }
        return count(hit, plan: plan, cipher: nil)
    }

    func process(path: [UInt8], keys: KeyChoice, plan: SearchPlan) -> Processed {
        // Which key's cache entries apply is known up front except for `auto`, where the sniff
        // decides; `auto` looks the cache up after sniffing.
        var cacheKey: KeyIdentity? = nil
        if case .single(let k) = keys, Self.cachesPlaintext(k) { cacheKey = k.identity }
        var hit: PlaintextCache.Entry? = nil
        let opened: Opened
        switch open(path, key: cacheKey, cacheHit: &hit) {
        case .failure(let f): return .outcome(.failed(f.code, f.message))
        case .success(let o): opened = o
        }
        if let hit {
            var auto: String? = nil
            if case .auto = keys { auto = hit.cipher }
            return .outcome(count(hit, plan: plan, cipher: auto))
        }
        defer { close(opened.fd) }

        switch keys {
        case .single(let key):
            return decryptAndCount(fd: opened.fd, identity: opened.identity, key: key, plan: plan, reportCipher: false)
        case .auto(let candidates):
            return processAuto(fd: opened.fd, identity: opened.identity, keys: candidates, plan: plan)
        }
    }

    private func processAuto(fd: Int32, identity: FileIdentity, keys: [UnlockedKey], plan: SearchPlan) -> Processed {
        // Sniff from the first bytes, then rewind.
        let probe = UnsafeMutableRawBufferPointer(rebasing: input[0..<min(input.count, CipherKind.sniffLength)])
        let n = pread(fd, probe.baseAddress, probe.count, 0)
        if n < 0 { return .outcome(Self.failure(forErrno: errno, what: "cannot read")) }
        let kind = CipherKind.sniff(UnsafeRawBufferPointer(rebasing: probe[0..<n]))
        let key: UnlockedKey
        if let kind {
            guard let k = keys.first(where: { $0.kind == kind }) else {
                return .outcome(
                    .failed(
                        .decryptFailed, "the file looks like \(kind.name), but no \(kind.name) key was given",
                        cipher: kind.name))
            }
            key = k
        } else {
            key = Self.plainKey
        }
        if Self.cachesPlaintext(key), let hit = cache.lookup(PlaintextCache.Key(file: identity, key: key.identity)) {
            return .outcome(count(hit, plan: plan, cipher: hit.cipher))
        }
        switch decryptAndCount(fd: fd, identity: identity, key: key, plan: plan, reportCipher: true) {
        case .outcome(let o): return .outcome(o.sniffed(as: key.cipherName))
        case .split(let s): return .split(s)
        }
    }

    /// Reads the whole file into `input`. Fails with too_large past `limit` (checked while
    /// reading too, since the file may grow).
    private func readWhole(fd: Int32, sizeHint: Int, limit: Int) -> Result<Int, FileFailure> {
        if sizeHint > limit {
            return .failure(
                FileFailure(.tooLarge, "the file is \(sizeHint) bytes; the limit is \(limit) (--max-file-size)"))
        }
        ensureInput(sizeHint + 1)
        var total = 0
        while true {
            if total == input.count {
                if total > limit { break }
                ensureInput(total + 1, keeping: total)
            }
            let asked = input.count - total
            let n = retryOnEINTR { Glibc.read(fd, input.baseAddress.map { $0 + total }, asked) }
            if n > 0 {
                total += n
                stats.addRead(n)
                // The size fstat gave, and a short read: the end of the file, without the read(2)
                // that would return 0. (A file that grew fills the buffer further and reads on.)
                if total == sizeHint && n < asked { break }
                continue
            }
            if n == 0 { break }
            return .failure(FileFailure(outcome: Self.failure(forErrno: errno, what: "cannot read")))
        }
        if total > limit {
            return .failure(FileFailure(.tooLarge, "the file grew past the limit of \(limit) bytes (--max-file-size)"))
        }
        return .success(total)
    }

    private func decryptAndCount(
        fd: Int32, identity: FileIdentity, key: UnlockedKey, plan: SearchPlan, reportCipher: Bool
    )
        -> Processed
    {
        if let split = splitSource(fd: fd, identity: identity, key: key, plan: plan, reportCipher: reportCipher) {
            return .split(split)
        }
        return .outcome(
            decryptAndCountWhole(fd: fd, identity: identity, key: key, plan: plan, reportCipher: reportCipher))
    }

    private func decryptAndCountWhole(
        fd: Int32, identity: FileIdentity, key: UnlockedKey, plan: SearchPlan, reportCipher: Bool
    )
        -> FileOutcome
    {
        let cipher = reportCipher ? key.cipherName : nil
        let size = Int(clamping: identity.size)
        let cacheKey = PlaintextCache.Key(file: identity, key: key.identity)
        let cacheable = cache.isEnabled && Self.cachesPlaintext(key)

        if key.key.mode == .wholeFile {
            let total: Int
            switch readWhole(fd: fd, sizeHint: size, limit: config.maxFileSize) {
            case .success(let n): total = n
            case .failure(let f): return .failed(f.code, f.message)
            }
            do throws(CipherFailure) {
                try key.key.decrypt(whole: UnsafeRawBufferPointer(rebasing: input[0..<total]), into: &plain)
            } catch {
                return Self.outcome(for: error)
            }
            stats.addPlain(plain.count)
            let result = plain.withUnsafeBytes { plan.count($0) }
            // A file that changed size while read is not cached under its old identity.
            if cacheable && total == size {
                plain.withUnsafeBytes {
                    cache.insert(cacheKey, plaintext: $0, cipher: key.cipherName, owner: key)
                }
            }
            return .counted(CountedFile(result: result, bytes: plain.count, cached: false, cipher: cipher))
        }
        if key.identity == .plain && size <= Self.wholePlainLimit {
            switch readWhole(fd: fd, sizeHint: size, limit: Self.wholePlainLimit) {
            case .success(let total):
                stats.addPlain(total)
                let result = plan.count(UnsafeRawBufferPointer(rebasing: input[0..<total]))
                return .counted(CountedFile(result: result, bytes: total, cached: false, cipher: cipher))
            case .failure(let f) where f.code == .tooLarge:
                // It grew while read: start again, streaming.
                if lseek(fd, 0, SEEK_SET) < 0 { return Self.failure(forErrno: errno, what: "cannot rewind") }
            case .failure(let f):
                return .failed(f.code, f.message)
            }
        }
        return streamAndCount(
            fd: fd, key: key, plan: plan, cacheKey: cacheable ? cacheKey : nil, sizeHint: size, cipher: cipher)
    }

    /// `preread`: the whole file, already read (a group's file): decrypted from it, not from `fd`.
    private func streamAndCount(
        fd: Int32, key: UnlockedKey, plan: SearchPlan, cacheKey: PlaintextCache.Key?, sizeHint: Int, cipher: String?,
        preread: UnsafeRawBufferPointer? = nil
    )
        -> FileOutcome
    {
        ensureInput(Self.chunkSize)
        var scanner = plan.makeScanner()
        var plainBytes = 0
        let keepLimit = cache.maxEntryBytes
        var keep: [UInt8]? = nil
        if cacheKey != nil {
            // Room for the whole plaintext up front (within the entry limit), so growing leaves
            // no unwiped copies behind in freed memory.
            keep = []
            keep?.reserveCapacity(min(sizeHint, keepLimit))
        }
        // Ours alone (never shared), so zeroing it in place is safe; done on every way out.
        defer { Self.wipe(&keep) }
        let sink: (UnsafeRawBufferPointer) -> Void = { chunk in
            plainBytes += chunk.count
            scanner.feed(chunk)
            if keep != nil {
                if plainBytes <= keepLimit {
                    keep?.append(contentsOf: chunk)
                } else {
                    Self.wipe(&keep)
                    keep = nil
                }
            }
        }
        let chunk = UnsafeMutableRawBufferPointer(rebasing: input[0..<Self.chunkSize])
        if let preread {
            // As the loop below does for a file that one read returns whole.
            var decryptor = key.key.makeStreamDecryptor()
            do throws(CipherFailure) {
                if !preread.isEmpty { try decryptor.feed(preread, emit: sink) }
                try decryptor.finish(emit: sink)
            } catch {
                return Self.outcome(for: error)
            }
        } else if let puller = key.key as? any PullingCipherKey {
            // The cipher's library reads the file itself, through this reader.
            var readErrno: Int32 = 0
            do throws(CipherFailure) {
                try puller.decrypt(
                    pulling: { buf in
                        let n = retryOnEINTR { Glibc.read(fd, buf.baseAddress, buf.count) }
                        if n >= 0 {
                            self.stats.addRead(n)
                            return n
                        }
                        readErrno = errno
                        return -1
                    }, emit: sink)
            } catch {
                if readErrno != 0 { return Self.failure(forErrno: readErrno, what: "cannot read") }
                return Self.outcome(for: error)
            }
        } else {
            var decryptor = key.key.makeStreamDecryptor()
            var total = 0
            while true {
                let n = retryOnEINTR { Glibc.read(fd, chunk.baseAddress, chunk.count) }
                if n < 0 { return Self.failure(forErrno: errno, what: "cannot read") }
                if n == 0 { break }
                stats.addRead(n)
                total += n
                do throws(CipherFailure) {
                    try decryptor.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<n]), emit: sink)
                } catch {
                    return Self.outcome(for: error)
                }
                // As in readWhole: the size fstat gave, and a short read, is the end of the file
                // without the read(2) that would return 0 (a small file costs one read).
                if total == sizeHint && n < chunk.count { break }
            }
            do throws(CipherFailure) {
                try decryptor.finish(emit: sink)
            } catch {
                return Self.outcome(for: error)
            }
        }
        stats.addPlain(plainBytes)
        let result = scanner.finish()
        if let cacheKey, keep != nil {
            keep?.withUnsafeBytes { cache.insert(cacheKey, plaintext: $0, cipher: key.cipherName, owner: key) }
        }
        return .counted(CountedFile(result: result, bytes: plainBytes, cached: false, cipher: cipher))
    }

    // MARK: - Groups of files

    /// One file of a group, as `readGroup` left it for its own pass (`processGroupFile`).
    enum GroupFile {
        /// Its outcome is known without decrypting (it cannot be opened, it is not a file).
        case outcome(FileOutcome)
        /// Its plaintext is cached.
        case cached(PlaintextCache.Entry)
        /// Read whole into `ahead` at this range; the file is closed.
        case read(FileIdentity, Range<Int>)
        /// Opened (checked as `open` checks), to be read as usual.
        case opened(Int32, FileIdentity)
    }

    /// Opens the files of a group (consecutive files of one request with a single key whose
    /// `fileGroupWidth` is above 1), reads the small ones whole, and lets the key prepare them
    /// all at once (`CipherKey.prepare(files:)`). Each file then goes through
    /// `processGroupFile`, or `discard` if it is not to be started: every one, exactly once.
    func readGroup(paths: [[UInt8]], key: UnlockedKey, plan: SearchPlan) -> [GroupFile] {
        var cacheKey: KeyIdentity? = nil
        if Self.cachesPlaintext(key) { cacheKey = key.identity }
        // Read ahead only what the usual pass would read in one piece and never split.
        let streamed = key.key.mode == .streamed && !(key.key is any PullingCipherKey)
        let splits = config.workers > 1 && plan.splittable
        var files: [GroupFile] = []
        files.reserveCapacity(paths.count)
        var used = 0
        for path in paths {
            var hit: PlaintextCache.Entry? = nil
            let opened: Opened
            switch open(path, key: cacheKey, cacheHit: &hit) {
            case .failure(let f):
                files.append(.outcome(.failed(f.code, f.message)))
                continue
            case .success(let o): opened = o
            }
            if let hit {
                files.append(.cached(hit))
                continue
            }
            let size = Int(clamping: opened.identity.size)
            guard streamed, size <= Self.aheadFileLimit, size <= Self.chunkSize,
                !splits || size / 2 < max(1, config.rangeBytes)
            else {
                files.append(.opened(opened.fd, opened.identity))
                continue
            }
            switch readAhead(fd: opened.fd, size: size, at: used) {
            case .some(let n):
                close(opened.fd)
                files.append(.read(opened.identity, used..<(used + n)))
                used += n
            case .none:
                // A read error or a file that grew: the usual pass reads it again (and reports it).
                if lseek(opened.fd, 0, SEEK_SET) < 0 {
                    let outcome = Self.failure(forErrno: errno, what: "cannot rewind")
                    close(opened.fd)
                    files.append(.outcome(outcome))
                } else {
                    files.append(.opened(opened.fd, opened.identity))
                }
            }
        }
        var starts: [UnsafeRawBufferPointer] = []
        for file in files {
            if case .read(_, let r) = file { starts.append(UnsafeRawBufferPointer(rebasing: ahead[r])) }
        }
        if starts.count > 1 { key.key.prepare(files: starts) }
        return files
    }

    /// Reads a file of `size` bytes whole into `ahead` at `offset`: its length, or nil on a read
    /// error or if it holds more than `size` bytes. Stops where the usual streamed pass stops.
    private func readAhead(fd: Int32, size: Int, at offset: Int) -> Int? {
        let room = size + 1
        Self.grow(&ahead, toHold: offset + room, keeping: offset)
        var total = 0
        while total < room {
            let asked = room - total
            let n = retryOnEINTR { Glibc.read(fd, ahead.baseAddress.map { $0 + offset + total }, asked) }
            if n < 0 { return nil }
            if n == 0 { break }
            stats.addRead(n)
            total += n
            if total == size && n < asked { break }
        }
        return total > size ? nil : total
    }

    /// A file of a group: its own pass, as `process` would run it.
    func processGroupFile(_ file: GroupFile, key: UnlockedKey, plan: SearchPlan) -> Processed {
        switch file {
        case .outcome(let o):
            return .outcome(o)
        case .cached(let hit):
            return .outcome(count(hit, plan: plan, cipher: nil))
        case .opened(let fd, let identity):
            defer { close(fd) }
            return decryptAndCount(fd: fd, identity: identity, key: key, plan: plan, reportCipher: false)
        case .read(let identity, let range):
            let size = Int(clamping: identity.size)
            let cacheable = cache.isEnabled && Self.cachesPlaintext(key)
            let cacheKey = PlaintextCache.Key(file: identity, key: key.identity)
            return .outcome(
                streamAndCount(
                    fd: -1, key: key, plan: plan, cacheKey: cacheable ? cacheKey : nil, sizeHint: size, cipher: nil,
                    preread: UnsafeRawBufferPointer(rebasing: ahead[range])))
        }
    }

    /// A file of a group that will not be started (its request was cancelled).
    func discard(_ file: GroupFile) {
        if case .opened(let fd, _) = file { close(fd) }
    }

    // MARK: - Split files

    /// A split of this file into ranges for idle workers, when it is big enough to gain from one.
    private func splitSource(fd: Int32, identity: FileIdentity, key: UnlockedKey, plan: SearchPlan, reportCipher: Bool)
        -> SplitSource?
    {
        guard config.workers > 1, plan.splittable else { return nil }
        let size = Int(clamping: identity.size)
        let rangeBytes = max(1, config.rangeBytes)
        // At least two ranges.
        guard size / 2 >= rangeBytes else { return nil }
        let reader: RangeReader
        var plainSize = size
        if key.identity == .plain {
            reader = .plain
        } else if let age = key.key as? AgeKey {
            // A file the cache would keep is read in order (and kept).
            if cache.isEnabled && key.key.plaintextIsCacheable && size <= cache.maxEntryBytes { return nil }
            let want = min(size, AgeBinaryDecoder.maxHeaderBytes + 16)
            ensureInput(want)
            var got = 0
            while got < want {
                let n = retryOnEINTR { pread(fd, input.baseAddress.map { $0 + got }, want - got, off_t(got)) }
                if n <= 0 { return nil }
                got += n
            }
            stats.addRead(got)
            guard
                let payload = AgeStreamPayload.open(
                    prefix: UnsafeRawBufferPointer(rebasing: input[0..<got]), fileSize: size, owner: age)
            else { return nil }
            reader = .age(payload)
            plainSize = payload.plainSize
            guard plainSize / 2 >= rangeBytes else { return nil }
        } else if let openssl = key.key as? OpenSSLKey {
            if cache.isEnabled && key.key.plaintextIsCacheable && size <= cache.maxEntryBytes { return nil }
            guard let payload = OpenSSLStreamPayload.open(fd: fd, fileSize: size, owner: openssl) else { return nil }
            reader = .openssl(payload)
            plainSize = payload.plainSize
            guard plainSize / 2 >= rangeBytes else { return nil }
        } else {
            return nil
        }
        let own = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return nil }
        return SplitSource(
            fd: own, size: plainSize, rangeBytes: rangeBytes, reader: reader, key: key,
            cipher: reportCipher ? key.cipherName : nil)
    }

    /// Counts range `r` of a split file. The worker that records the last range merges them and
    /// gets the file's outcome; the others get nil.
    func countRange(_ split: SplitFile, _ r: Int) -> FileOutcome? {
        let part = countPart(split, r, carry: nil)
        guard split.record(r, part) else { return nil }
        return merge(split)
    }

    private func countPart(_ split: SplitFile, _ r: Int, carry: [Int]?) -> RangeCount? {
        let isPlain = if case .plain = split.reader { true } else { false }
        let room = isPlain ? Self.plainPieceBytes : Self.chunkSize
        ensureInput(room)
        let (start, end) = split.bounds(r)
        let scratch = UnsafeMutableRawBufferPointer(rebasing: input[0..<room])
        let fd = split.fd
        let stats = self.stats
        switch split.reader {
        case .plain:
            return split.job.plan.countRange(start: start, end: end, size: split.size, carry: carry, scratch: scratch) {
                offset, buf in
                let n = retryOnEINTR { pread(fd, buf.baseAddress, buf.count, off_t(offset)) }
                if n > 0 { stats.addRead(n) }
                return n
            }
        case .age(let payload):
            var sealed: [UInt8] = []
            let few = UnsafeMutableRawBufferPointer(
                rebasing: scratch[0..<min(scratch.count, AgeStreamPayload.preferredReadBytes)])
            return split.job.plan.countRange(start: start, end: end, size: split.size, carry: carry, scratch: few) {
                offset, buf in
                let n = payload.read(fd: fd, offset: offset, into: buf, sealed: &sealed)
                if n > 0 { stats.addRead(n) }
                return n
            }
        case .openssl(let payload):
            var room: [UInt8] = []
            return split.job.plan.countRange(start: start, end: end, size: split.size, carry: carry, scratch: scratch) {
                offset, buf in
                let n = payload.read(fd: fd, offset: offset, into: buf, scratch: &room)
                if n > 0 { stats.addRead(n) }
                return n
            }
        }
    }

    private func merge(_ split: SplitFile) -> FileOutcome {
        let plan = split.job.plan
        if let parts = split.takeParts(),
            let result = plan.mergeRanges(
                parts, starts: split.starts, recount: { k, carry in self.countPart(split, k, carry: carry) })
        {
            stats.addPlain(split.size)
            return .counted(CountedFile(result: result, bytes: split.size, cached: false, cipher: split.cipher))
        }
        // A range failed (a read error, a file that shrank, a chunk that does not authenticate):
        // the file is read again in one pass, which reports exactly what it would have unsplit.
        if lseek(split.fd, 0, SEEK_SET) < 0 { return Self.failure(forErrno: errno, what: "cannot rewind") }
        let outcome = streamAndCount(
            fd: split.fd, key: split.key, plan: plan, cacheKey: nil, sizeHint: split.size, cipher: split.cipher)
        return split.cipher == nil ? outcome : outcome.sniffed(as: split.key.cipherName)
    }

    /// Zeroes a plaintext copy this worker alone holds.
    private static func wipe(_ bytes: inout [UInt8]?) {
        bytes?.withUnsafeMutableBytes { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } }
    }

    static func outcome(for failure: CipherFailure) -> FileOutcome {
        switch failure {
        case .badFormat(let m): .failed(.badFormat, m)
        case .decryptFailed(let m): .failed(.decryptFailed, m)
        }
    }
}

/// A per-file failure on its way to becoming an outcome.
struct FileFailure: Error {
    var code: FileErrorCode
    var message: String

    init(_ code: FileErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    init(outcome: FileOutcome) {
        if case .failed(let c, let m, _) = outcome {
            code = c
            message = m
        } else {
            code = .ioError
            message = "unexpected"
        }
    }
}
