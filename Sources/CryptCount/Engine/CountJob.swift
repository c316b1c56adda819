import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Totals sent in a request's `done`.
package struct CountSummary: Sendable, Equatable {
    package var files: Int
    package var failed: Int
    package var skipped: Int
    package var counts: [Int]
    package var words: Int?
    package var elapsedMicros: UInt64
    package var cancelled: Bool
}

/// Where a job's results go. The engine reports each file's outcome and then the totals; what
/// becomes of them (order, grouping, encoding, writing) is the sink's business.
package protocol CountSink: AnyObject, Sendable {
    /// One file's outcome. Called on worker threads, concurrently and in any order of `index`.
    /// Whatever the sink writes for it must be handed on before it returns: `jobFinished` comes
    /// only after every call has returned.
    func fileFinished(index: Int, outcome: FileOutcome)
    /// The totals, once. On a worker thread, or on the reader thread for a request with no files
    /// or a cancel that finds nothing running.
    func jobFinished(_ summary: CountSummary)
}

/// One `count` request in flight: which files are left to hand out, and the running totals.
/// Dispatch state belongs to the pool's lock; totals to the job's own lock.
package final class CountJob: @unchecked Sendable {
    package let id: RequestID
    package let files: [WireBytes]
    package let plan: SearchPlan
    package let keys: KeyChoice
    /// The sink wants results in index order (it keeps early ones until the gap closes): the
    /// scheduler then runs at most a window of files ahead of the lowest unfinished one, which
    /// bounds what the sink keeps.
    package let ordered: Bool
    let startedMicros: UInt64
    let sink: CountSink

    // Guarded by the pool's monitor.
    var nextIndex = 0
    var outstanding = 0
    var cancelled = false
    /// Nothing is left to run; the id stays in flight until the `done` is handed to the output.
    var finished = false
    /// The `done`'s contents are fixed (a cancel read from now on no longer changes them).
    var sealed = false
    /// Split files with ranges still to hand out (a split file counts once in `outstanding`).
    var splits: [SplitFile] = []
    /// Files handed out in a group but never started (the request was cancelled first): they
    /// count as never dispatched.
    var notStarted = 0

    // Guarded by `resultLock`.
    private let resultLock = Monitor()
    private var sent = 0
    private var failed = 0
    private var totals: [Int]
    private var words = 0
    /// Ordered mode: which files the sink has taken, for the scheduler's window.
    private var taken = InOrder<Void>()

    package init(
        id: RequestID, files: [WireBytes], plan: SearchPlan, keys: KeyChoice, ordered: Bool, sink: CountSink
    ) {
        self.id = id
        self.files = files
        self.plan = plan
        self.keys = keys
        self.ordered = ordered
        self.sink = sink
        self.totals = [Int](repeating: 0, count: plan.terms.count)
        self.startedMicros = monotonicMicros()
    }

    /// Lowest index whose outcome the sink has not taken yet (ordered mode), readable without the
    /// result lock: the scheduler consults it while holding the pool's lock.
    private let lowestUnfinished = Atomic<Int>(0)
    var lowestUnfinishedHint: Int { lowestUnfinished.load(ordering: .relaxed) }

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

    /// Records one finished file and hands it to the sink (outside the lock: the sink may wait
    /// for the parent to read, and the job's other workers must not wait behind it).
    func complete(index: Int, outcome: FileOutcome) {
        resultLock.withLock { tally(outcome) }
        sink.fileFinished(index: index, outcome: outcome)
        guard ordered else { return }
        resultLock.withLock {
            taken.add(index, ()) { _, _ in }
            lowestUnfinished.store(taken.next, ordering: .relaxed)
        }
    }

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
package func monotonicMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec / 1000)
}
