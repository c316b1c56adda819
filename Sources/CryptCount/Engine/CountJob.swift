import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Totals sent in a request's `done`.
public struct CountSummary: Sendable, Equatable {
    public var files: Int
    public var failed: Int
    public var skipped: Int
    public var counts: [Int]
    public var words: Int?
    public var elapsedMicros: UInt64
    public var cancelled: Bool
}

/// Where a job's results go, in the order they must be written. Called on worker threads (and,
/// for a `done` forced by a cancel, on the reader thread); `worker` is the calling worker's slot
/// (or -1), so the receiver can keep one encoder per thread. Each call must have handed its
/// frame to the output before it returns: that is what keeps `done` after every `file`.
public protocol CountObserver: AnyObject, Sendable {
    func fileFinished(_ job: CountJob, index: Int, outcome: FileOutcome, worker: Int)
    func jobFinished(_ job: CountJob, summary: CountSummary, worker: Int)
}

/// One `count` request in flight: which files are left to hand out, and the running totals.
/// Dispatch state belongs to the pool's lock; results and totals to the job's own lock.
public final class CountJob: @unchecked Sendable {
    public let id: RequestID
    public let files: [WireBytes]
    public let plan: SearchPlan
    public let keys: KeyChoice
    public let ordered: Bool
    /// Most file results per `files` frame; 1: one `file` frame each.
    public let batch: Int
    let startedMicros: UInt64
    let observer: CountObserver

    // Guarded by the pool's monitor.
    var nextIndex = 0
    var outstanding = 0
    var cancelled = false
    var finished = false

    // Guarded by `resultLock`.
    private let resultLock = Monitor()
    private var sent = 0
    private var failed = 0
    private var totals: [Int]
    private var words = 0
    private var pending: [Int: FileOutcome] = [:]  // ordered mode: finished but not yet written
    private var nextToEmit = 0
    private var batchPayloads: [UInt8] = []  // packed `file` maps waiting for a `files` frame
    private var batchCount = 0
    private var held: [UInt8]? = nil  // a frame sent together with `done`

    /// Flushed when this many bytes of results wait, whatever `batch` says.
    static let batchBytesLimit = 256 << 10

    public init(
        id: RequestID, files: [WireBytes], plan: SearchPlan, keys: KeyChoice, ordered: Bool, batch: Int = 1,
        observer: CountObserver
    ) {
        self.id = id
        self.files = files
        self.plan = plan
        self.keys = keys
        self.ordered = ordered
        self.batch = max(1, batch)
        self.observer = observer
        self.totals = [Int](repeating: 0, count: plan.terms.count)
        self.startedMicros = monotonicMicros()
    }

    /// Lowest index not yet written (ordered mode), readable without the result lock: the
    /// scheduler consults it while holding the pool's lock.
    private let emitted = Atomic<Int>(0)
    var emittedHint: Int { emitted.load(ordering: .relaxed) }

    private func tally(_ outcome: FileOutcome) {
        sent += 1
        switch outcome {
        case .counted(let f):
            for i in 0..<min(totals.count, f.result.counts.count) { totals[i] &+= f.result.counts[i] }
            words &+= f.result.words ?? 0
        case .failed:
            failed += 1
        }
    }

    /// Records one finished file and writes what can be written.
    func complete(index: Int, outcome: FileOutcome, worker: Int) {
        if !ordered {
            // The frame is written outside the lock: holding it across a write that waits for
            // the parent would serialise every worker of the request behind one write(2) per
            // file. `done` still comes last: it needs `outstanding` at 0, which drops only after
            // this returns.
            resultLock.withLock { tally(outcome) }
            observer.fileFinished(self, index: index, outcome: outcome, worker: worker)
            return
        }
        resultLock.lock()
        defer { resultLock.unlock() }
        pending[index] = outcome
        while let next = pending.removeValue(forKey: nextToEmit) {
            tally(next)
            observer.fileFinished(self, index: nextToEmit, outcome: next, worker: worker)
            nextToEmit += 1
        }
        emitted.store(nextToEmit, ordering: .relaxed)
    }

    /// Adds one encoded `file` frame to the batch; returns what is to be sent now, in order:
    /// (count, packed maps) for a `files` frame, or (0, frame) for a result too big to share a
    /// frame. Only from `CountObserver.fileFinished`: in ordered mode that runs under the result
    /// lock already; unordered, workers call it concurrently, so the batch takes the lock here.
    func addToBatch(_ frame: [UInt8], maxPayload: Int) -> [(Int, [UInt8])] {
        if ordered { return addToBatchLocked(frame, maxPayload: maxPayload) }
        return resultLock.withLock { addToBatchLocked(frame, maxPayload: maxPayload) }
    }

    private func addToBatchLocked(_ frame: [UInt8], maxPayload: Int) -> [(Int, [UInt8])] {
        var out: [(Int, [UInt8])] = []
        let payload = frame.dropFirst(4)
        if payload.count > maxPayload {
            if let b = takeBatchLocked() { out.append(b) }
            out.append((0, frame))
            return out
        }
        if batchCount > 0 && batchPayloads.count + payload.count > maxPayload, let b = takeBatchLocked() {
            out.append(b)
        }
        batchPayloads.append(contentsOf: payload)
        batchCount += 1
        if batchCount >= batch || batchPayloads.count >= Self.batchBytesLimit, let b = takeBatchLocked() {
            out.append(b)
        }
        return out
    }

    private func takeBatchLocked() -> (Int, [UInt8])? {
        guard batchCount > 0 else { return nil }
        defer {
            batchPayloads = []
            batchCount = 0
        }
        return (batchCount, batchPayloads)
    }

    /// Keeps a result frame to be written with `done`. Only from `fileFinished` of a one-file
    /// request: one caller, and `done` is built only after it returns.
    func hold(_ frame: [UInt8]) {
        if held == nil { held = frame } else { held?.append(contentsOf: frame) }
    }

    /// The frames kept for `done`.
    func takeHeld() -> [UInt8]? {
        resultLock.withLock {
            defer { held = nil }
            return held
        }
    }

    /// The results still waiting for a `files` frame (sent before `done`).
    func takeBatch() -> (Int, [UInt8])? { resultLock.withLock { takeBatchLocked() } }

    /// Builds the `done` totals. `dispatched` and `cancelled` come from the pool's state.
    func summary(dispatched: Int, cancelled: Bool) -> CountSummary {
        resultLock.withLock {
            CountSummary(
                files: sent, failed: failed, skipped: files.count - dispatched, counts: totals,
                words: plan.options.words ? words : nil,
                elapsedMicros: monotonicMicros() &- startedMicros, cancelled: cancelled)
        }
    }
}

/// Microseconds on the monotonic clock.
public func monotonicMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec / 1000)
}
