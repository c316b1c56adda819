import Foundation

/// The worker threads and the scheduler that feeds them. Requests in flight share the workers
/// round-robin, one file at a time (or a small group of consecutive files, for a key that gains
/// from seeing them together: `CipherKey.fileGroupWidth`), so a one-file request is served
/// between two files of a 100,000-file one. A worker takes the next file only after the job's sink has taken the
/// previous result, and the server's sink blocks while the parent is not reading: that is the
/// backpressure that keeps memory bounded.
package final class WorkerPool: @unchecked Sendable {
    package let config: EngineConfig
    package let cache: PlaintextCache
    package let stats: EngineStats

    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var jobs: [CountJob] = []
    private var byID: [RequestID: CountJob] = [:]
    private var cursor = 0
    /// Finished jobs whose `done` is still being written, or whose worker still holds them.
    private var finishing = 0
    /// Cancels waiting for a finished target's `done` to be handed to the output.
    private var doneWaiters = 0
    /// Threads in `waitUntilIdle`: only they need a wake-up when the last job ends.
    private var idleWaiters = 0
    private var threads: [Thread] = []

    /// Counts cached one-file requests on the submitting (reader) thread; used only there.
    private let submitterProcessor: FileProcessor
    /// Largest cached plaintext counted on the submitting thread: tens of microseconds of work
    /// at most, so the next frame (a cancel, another request) is read without noticeable delay.
    package static let inlineLimit = 256 << 10

    /// In ordered mode, how far past the lowest unfinished file a request may run ahead.
    private let orderedWindow: Int

    package init(config: EngineConfig) {
        self.config = config
        self.cache = PlaintextCache(limitBytes: config.cacheBytes)
        self.stats = EngineStats()
        self.orderedWindow = max(8, config.workers * 4)
        self.submitterProcessor = FileProcessor(config: config, cache: cache, stats: stats)
    }

    package func start() {
        for slot in 0..<max(1, config.workers) {
            let processor = FileProcessor(config: config, cache: cache, stats: stats)
            let box = ProcessorBox(processor)
            let thread = Thread { [self] in self.run(processor: box.processor) }
            thread.name = "cryptcount-worker-\(slot)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Requests in flight: not yet finished (one whose `done` is being written is not counted: a
    /// parent that has read that `done` and asks for `stats` must not find it).
    package var inFlight: Int { monitor.withLock { byID.values.count { !$0.finished } } }

    /// Whether a request with this id runs. One that has finished and whose `done` is being
    /// written is waited for (briefly): its id is free once that `done` is queued for output,
    /// before which a parent cannot have read it. So a parent that reuses an id as soon as it
    /// reads the `done` finds it free, and one that reuses it sooner gets no second `done`
    /// before the first.
    package func isInFlight(_ id: RequestID) -> Bool {
        monitor.withLock {
            guard let job = byID[id] else { return false }
            guard job.finished else { return true }
            waitForDone(job)
            return false
        }
    }

    /// With the monitor held: waits until a finished job's `done` is handed to the output.
    private func waitForDone(_ job: CountJob) {
        doneWaiters += 1
        while byID[job.id] === job { monitor.wait() }
        doneWaiters -= 1
    }

    /// Adds a request. Returns false (and adds nothing) if its id is already in flight.
    package func submit(_ job: CountJob) -> Bool {
        monitor.lock()
        if let running = byID[job.id], running.finished { waitForDone(running) }
        if byID[job.id] != nil {
            monitor.unlock()
            return false
        }
        byID[job.id] = job
        // No files: it is finished as soon as it exists.
        if finishIfComplete(job) {
            monitor.unlock()
            sendDone(job)
            return true
        }
        jobs.append(job)
        // Idle workers all wait on the monitor; one file needs one of them (waking every worker
        // for it costs the others a futile wake-up, and on a small machine, the parent CPU time).
        if job.files.count == 1 { monitor.signal() } else { monitor.broadcast() }
        monitor.unlock()
        return true
    }

    /// Runs a one-file request to the end on the calling thread if its file's plaintext is
    /// cached and small (at most `inlineLimit` bytes), and returns true; otherwise does nothing
    /// and returns false (`submit` it then). A tiny cached request then costs no hand-off to a
    /// worker and back, two thread wake-ups each waiting for a CPU on a loaded machine. The
    /// caller checks the id is not in flight; call from one thread only (the reader).
    package func runIfCached(_ job: CountJob) -> Bool {
        guard job.files.count == 1,
            let outcome = submitterProcessor.countIfCached(
                path: job.files[0].bytes, keys: job.keys, plan: job.plan, maxBytes: Self.inlineLimit)
        else { return false }
        stats.addFile()
        job.complete(index: 0, outcome: outcome)
        job.sink.jobFinished(job.summary(dispatched: 1, cancelled: false))
        return true
    }

    /// Stops handing out a request's files; its `done` follows once running files finish. Read
    /// before the target's `done` is sent, a cancel makes it say `"cancelled": true`; when
    /// nothing of the target is left running, this returns once that `done` is handed to the
    /// output, so the cancel's `ok` comes after it.
    package func cancel(_ id: RequestID) {
        monitor.lock()
        guard let job = byID[id] else {
            monitor.unlock()
            return
        }
        if job.finished {
            // Its `done` is about to be written: counted as cancelled unless already sealed.
            if !job.sealed { job.cancelled = true }
            waitForDone(job)
            monitor.unlock()
            return
        }
        job.cancelled = true
        let finished = finishIfComplete(job)
        monitor.unlock()
        if finished { sendDone(job) }
    }

    /// Writes a finished job's `done` (`writeDone`), then lets `waitUntilIdle` know it is
    /// written. Call without the monitor held.
    private func sendDone(_ job: CountJob) {
        writeDone(job)
        monitor.lock()
        finishing -= 1
        if idleWaiters > 0 && byID.isEmpty && finishing == 0 { monitor.broadcast() }
        monitor.unlock()
    }

    /// Seals a finished job's totals, hands them to its sink, and only then frees its id: until
    /// its `done` is queued for output, a frame reusing the id and a cancel of it wait for it
    /// (`isInFlight`, `cancel`). Call without the monitor held.
    private func writeDone(_ job: CountJob) {
        let summary = monitor.withLock {
            job.sealed = true
            return job.summary(dispatched: job.nextIndex - job.notStarted, cancelled: job.cancelled)
        }
        job.sink.jobFinished(summary)
        monitor.withLock {
            if byID[job.id] === job { byID[job.id] = nil }
            // `waitUntilIdle` is woken later, when `finishing` drops (this job still counts there).
            if doneWaiters > 0 { monitor.broadcast() }
        }
    }

    /// Blocks until no request is in flight and every `done` has been handed to the output.
    package func waitUntilIdle() {
        monitor.lock()
        idleWaiters += 1
        while !byID.isEmpty || finishing > 0 { monitor.wait() }
        idleWaiters -= 1
        monitor.unlock()
    }

    /// With the monitor held: if nothing is left to run, marks the job finished and returns
    /// true; its `done` is then written after unlocking (`writeDone`).
    private func finishIfComplete(_ job: CountJob) -> Bool {
        guard !job.finished, job.outstanding == 0, job.cancelled || job.nextIndex >= job.files.count else {
            return false
        }
        job.finished = true
        finishing += 1
        if let i = jobs.firstIndex(where: { $0 === job }) {
            jobs.remove(at: i)
            if cursor > i { cursor -= 1 }
        }
        return true
    }

    /// Work for a worker: a file of a request, or a range of a split file.
    private enum Work {
        case file(CountJob, Int)
        case range(SplitFile, Int)
        /// Consecutive files for a key that gains from seeing them together (`fileGroupWidth`).
        case group(CountJob, UnlockedKey, Range<Int>)
    }

    /// With the monitor held: how many files from `job.nextIndex` on to hand out as one group
    /// (0: none). Only while plenty are left, so the tail still spreads over every worker; never
    /// for ordered requests (a cancel inside a group would leave a gap their sink waits on).
    private func groupSize(_ job: CountJob) -> (UnlockedKey, Int)? {
        guard !job.ordered, case .single(let key) = job.keys else { return nil }
        let width = min(key.key.fileGroupWidth, 64)
        guard width > 1 else { return nil }
        let left = job.files.count - job.nextIndex
        guard left >= (max(1, config.workers) + 1) * width else { return nil }
        return (key, width)
    }

    /// With the monitor held: the next piece of work in round-robin order over the requests, if
    /// any. Within a request, ranges of its split files come before its next file (a big file
    /// is finished by every idle worker first), but a request never waits for another's ranges.
    private func nextWork() -> Work? {
        let n = jobs.count
        guard n > 0 else { return nil }
        for step in 0..<n {
            let i = (cursor + step) % n
            let job = jobs[i]
            // Ranges are handed out even after a cancel: their file is already running.
            if let split = job.splits.first {
                let r = split.nextRange
                split.nextRange += 1
                if split.nextRange >= split.rangeCount { job.splits.removeFirst() }
                cursor = (i + 1) % n
                return .range(split, r)
            }
            guard !job.cancelled, job.nextIndex < job.files.count else { continue }
            if job.ordered && job.nextIndex >= job.lowestUnfinishedHint + orderedWindow { continue }
            let index = job.nextIndex
            cursor = (i + 1) % n
            if let (key, width) = groupSize(job) {
                job.nextIndex += width
                job.outstanding += width
                return .group(job, key, index..<(index + width))
            }
            job.nextIndex += 1
            job.outstanding += 1
            return .file(job, index)
        }
        return nil
    }

    /// Runs the submitted work on the calling thread, as a worker, until no request is in
    /// flight: a one-shot run with one worker starts no thread and hands nothing between
    /// threads (each hand-off is a wake-up, which waits for a CPU on a loaded machine).
    package func runHereUntilIdle() {
        run(processor: FileProcessor(config: config, cache: cache, stats: stats), untilIdle: true)
    }

    private func run(processor: FileProcessor, untilIdle: Bool = false) {
        var sentDone = false
        monitor.lock()
        defer { monitor.unlock() }
        while true {
            if sentDone {
                // Counted as written only now, once this thread's references to the job (and so
                // to its keys) are gone: a key's last release, which may tear down a crypto
                // library's state, then happens on the thread that waited, never racing exit().
                sentDone = false
                finishing -= 1
                if idleWaiters > 0 && byID.isEmpty && finishing == 0 { monitor.broadcast() }
            }
            guard let work = nextWork() else {
                if untilIdle && byID.isEmpty && finishing == 0 { return }
                if untilIdle && threads.isEmpty {
                    // Work that this thread alone cannot take now (never expected): workers, not a hang.
                    monitor.unlock()
                    start()
                    monitor.lock()
                }
                monitor.wait()
                continue
            }
            monitor.unlock()

            let job: CountJob
            let index: Int
            let outcome: FileOutcome
            switch work {
            case .file(let j, let i):
                switch processor.process(path: j.files[i].bytes, keys: j.keys, plan: j.plan) {
                case .outcome(let o):
                    (job, index, outcome) = (j, i, o)
                case .split(let source):
                    // Idle workers join in; this one takes a range too on its next turn.
                    let split = SplitFile(job: j, index: i, source: source)
                    monitor.lock()
                    j.splits.append(split)
                    monitor.broadcast()
                    continue
                }
            case .range(let split, let r):
                guard let o = processor.countRange(split, r) else {
                    monitor.lock()
                    continue
                }
                (job, index, outcome) = (split.job, split.index, o)
            case .group(let j, let key, let range):
                let sent = runGroup(j, key: key, range: range, processor: processor)
                monitor.lock()
                if sent { sentDone = true }
                continue
            }
            stats.addFile()
            if case .failed = outcome { stats.addError() }
            job.complete(index: index, outcome: outcome)

            monitor.lock()
            job.outstanding -= 1
            if job.ordered { monitor.broadcast() }
            if finishIfComplete(job) {
                monitor.unlock()
                writeDone(job)
                monitor.lock()
                sentDone = true
            }
        }
    }
}

extension WorkerPool {
    /// Runs a group of files (`Work.group`) on this worker: reads them and lets the key prepare
    /// them together, then runs and completes each in turn as a single file. A cancel is
    /// honoured between files: the group's files not yet started get no result and count as
    /// never dispatched (`skipped`), as they would have without the group. Call without the
    /// monitor held; returns without it, true if this call sent the request's `done`.
    fileprivate func runGroup(_ job: CountJob, key: UnlockedKey, range: Range<Int>, processor: FileProcessor) -> Bool {
        let files = processor.readGroup(paths: range.map { job.files[$0].bytes }, key: key, plan: job.plan)
        Log.debug("request \(job.id): files \(range.lowerBound)..<\(range.upperBound) as one group")
        for (k, index) in range.enumerated() {
            if k > 0 && monitor.withLock({ job.cancelled }) {
                for file in files[k...] { processor.discard(file) }
                let left = range.count - k
                let finished = monitor.withLock {
                    job.outstanding -= left
                    job.notStarted += left
                    return finishIfComplete(job)
                }
                guard finished else { return false }
                writeDone(job)
                return true
            }
            switch processor.processGroupFile(files[k], key: key, plan: job.plan) {
            case .outcome(let outcome):
                stats.addFile()
                if case .failed = outcome { stats.addError() }
                job.complete(index: index, outcome: outcome)
                if monitor.withLock({
                    job.outstanding -= 1
                    return finishIfComplete(job)
                }) {
                    writeDone(job)
                    return true
                }
            case .split(let source):
                let split = SplitFile(job: job, index: index, source: source)
                monitor.withLock {
                    job.splits.append(split)
                    monitor.broadcast()
                }
            }
        }
        return false
    }
}

/// Hands a non-Sendable per-thread object to the thread that will own it.
private final class ProcessorBox: @unchecked Sendable {
    let processor: FileProcessor
    init(_ p: FileProcessor) { processor = p }
}
