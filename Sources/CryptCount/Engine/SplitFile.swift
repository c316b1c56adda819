#if canImport(Glibc)
    import Glibc
#endif

/// How a split file's plaintext is read at any offset.
enum RangeReader: Sendable {
    /// The file is the plaintext.
    case plain
    /// An age file's STREAM payload, chunk by chunk.
    case age(AgeStreamPayload)
    /// An openssl enc file's CBC blocks.
    case openssl(OpenSSLStreamPayload)
}

/// A big file whose plaintext is counted as independent ranges by whichever workers are idle
/// (see `RangeScan`). It owns a descriptor of its own (pread only, so workers share it); the
/// worker that finishes the last range merges the counts and reports the file's one result.
final class SplitFile: @unchecked Sendable {
    let job: CountJob
    let index: Int
    let fd: Int32
    /// Plaintext length (from the size fstat gave when the file was opened).
    let size: Int
    let rangeBytes: Int
    let rangeCount: Int
    let reader: RangeReader
    /// What a failed split is read again with in one pass.
    let key: UnlockedKey
    /// Reported cipher (`auto`).
    let cipher: String?

    /// Next range to hand out; guarded by the pool's monitor.
    var nextRange = 0

    private let lock = Monitor()
    // Guarded by `lock`.
    private var parts: [RangeCount?]
    private var remaining: Int
    private var failed = false

    init(job: CountJob, index: Int, source: SplitSource) {
        self.job = job
        self.index = index
        fd = source.takeDescriptor()
        size = source.size
        rangeBytes = source.rangeBytes
        rangeCount = max(1, (source.size + source.rangeBytes - 1) / source.rangeBytes)
        reader = source.reader
        key = source.key
        cipher = source.cipher
        parts = [RangeCount?](repeating: nil, count: rangeCount)
        remaining = rangeCount
    }

    deinit { if fd >= 0 { close(fd) } }

    func bounds(_ r: Int) -> (start: Int, end: Int) {
        let start = r * rangeBytes
        return (start, min(size, start + rangeBytes))
    }

    var starts: [Int] { (0..<rangeCount).map { bounds($0).start } }

    /// Records range `r` (nil: it failed). True for the call that recorded the last range: its
    /// caller merges.
    func record(_ r: Int, _ part: RangeCount?) -> Bool {
        lock.withLock {
            if let part { parts[r] = part } else { failed = true }
            remaining -= 1
            return remaining == 0
        }
    }

    /// Every range's counts, once all are recorded and none failed.
    func takeParts() -> [RangeCount]? {
        lock.withLock {
            guard !failed else { return nil }
            let all = parts.compactMap { $0 }
            parts = []
            return all.count == rangeCount ? all : nil
        }
    }
}

/// What `FileProcessor` hands back instead of an outcome when a file is to be split.
final class SplitSource: @unchecked Sendable {
    private var fd: Int32
    let size: Int
    let rangeBytes: Int
    let reader: RangeReader
    let key: UnlockedKey
    let cipher: String?

    init(fd: Int32, size: Int, rangeBytes: Int, reader: RangeReader, key: UnlockedKey, cipher: String?) {
        self.fd = fd
        self.key = key
        self.size = size
        self.rangeBytes = rangeBytes
        self.reader = reader
        self.cipher = cipher
    }

    func takeDescriptor() -> Int32 {
        let d = fd
        fd = -1
        return d
    }

    deinit { if fd >= 0 { close(fd) } }
}

/// A file's processing: its outcome, or a split for the pool to share out.
enum Processed {
    case outcome(FileOutcome)
    case split(SplitSource)
}
