/// One `count` request's responses. The engine reports each file's outcome here (from any worker,
/// in any order) and then the totals; this puts results in index order if the request asked,
/// groups them into `files` frames if it asked for a batch (or compact results), keeps a
/// one-file request's result and a batch's last frame to go out with its `done` (one write(2),
/// one wake-up of the parent), encodes, and hands frames to the single `OutputWriter`.
final class ResultStream: CountSink, @unchecked Sendable {
    let id: RequestID
    let files: [WireBytes]
    let options: SearchOptions
    let ordered: Bool
    /// Plain successes packed as arrays (the request's `compact`).
    let compact: Bool
    private let output: OutputWriter
    private let encoders: EncoderPool
    /// Packs results straight into `batch`, used only under `lock`; nil when results do not
    /// share `files` frames. Immutable, so whether it is nil is read without the lock: `batch`
    /// itself is only ever touched under it (even reading it races with a worker's append).
    private let batchEncoder: ResponseEncoder?

    private let lock = Monitor()
    // Guarded by `lock`.
    private var pending = InOrder<FileOutcome>()  // ordered: finished but not yet written
    private var batch: FileBatch?  // nil: one `file` frame per result
    private var held: [UInt8]? = nil  // a one-file request's result, sent with `done`

    init(
        id: RequestID, files: [WireBytes], options: SearchOptions, ordered: Bool, batch: Int, compact: Bool,
        output: OutputWriter, encoders: EncoderPool
    ) {
        self.id = id
        self.files = files
        self.options = options
        self.ordered = ordered
        self.compact = compact
        self.output = output
        self.encoders = encoders
        // Compact results exist only inside `files` frames (a frame of its own is always a map
        // with an id and a type), so with batch 1 each goes in a frame of one.
        if batch > 1 || compact {
            // A one-file request's result is not flushed by the count: it waits for `done` (one
            // write, one wake-up of the parent), as `held` does for a `file` frame.
            self.batch = FileBatch(
                limit: files.count == 1 ? Int.max : batch,
                room: ResponseEncoder.filesRoom(id, maxFrame: encoders.maxFrame))
            self.batchEncoder = ResponseEncoder(maxFrame: encoders.maxFrame)
        } else {
            self.batchEncoder = nil
        }
    }

    func fileFinished(index: Int, outcome: FileOutcome) {
        guard index < files.count else { return }
        if batchEncoder != nil {
            // Packed into the batch under the lock by the stream's own encoder: one lock a result
            // and no frame allocated (a pooled encoder cost two more locks, and its frame an
            // allocation and a copy, together a fifth of what a cold biographer file costs
            // besides reading and decrypting it). Packing takes under a microsecond, so workers
            // seldom wait for each other; a full batch is encoded and written outside the lock,
            // unless results go in order.
            if ordered {
                lock.withLock {
                    pending.add(index, outcome) { i, ready in send(batchFile(i, ready)) }
                }
            } else {
                send(lock.withLock { batchFile(index, outcome) })
            }
            return
        }
        if !ordered {
            // Encoded and written outside the lock: holding it across a write that waits for the
            // parent would serialise every worker of the request behind one write(2) per file.
            deliver(encodeFile(index, outcome), locked: false)
            return
        }
        // Under the lock from arrival to hand-off, so frames (and batches) leave in index order.
        lock.withLock {
            pending.add(index, outcome) { i, ready in deliver(encodeFile(i, ready), locked: true) }
        }
    }

    func jobFinished(_ summary: CountSummary) {
        let (rest, kept) = lock.withLock { () -> ((Int, [UInt8])?, [UInt8]?) in
            defer { held = nil }
            return (batch?.take(), held)
        }
        let done = encoders.with { $0.done(id, summary) }
        if let (count, payloads) = rest {
            // The last results and `done` in one write: one wake-up of the parent, as for a
            // one-file request's held `file` frame below.
            var last = encoders.with { $0.files(id, count: count, payloads: payloads) }
            last.append(contentsOf: done)
            output.send(last)
        } else if var kept {
            kept.append(contentsOf: done)
            output.send(kept)
        } else {
            output.send(done)
        }
        Log.debug("request \(id) done: \(summary.files) files, \(summary.failed) failed, \(summary.skipped) skipped")
    }

    private func encodeFile(_ index: Int, _ outcome: FileOutcome) -> [UInt8] {
        encoders.with { $0.file(id, index: index, path: files[index], outcome: outcome, options: options) }
    }

    /// Adds one result to the batch (the caller holds `lock`); returns what is to be sent now.
    private func batchFile(_ index: Int, _ outcome: FileOutcome) -> [FileBatch.Ready] {
        guard let batchEncoder else { return [] }
        return batchEncoder.withFilePayload(
            id, index: index, path: files[index], outcome: outcome, options: options, compact: compact
        ) { payload in
            batch?.add(payload: payload) ?? []
        }
    }

    /// Sends what a batch made ready, in order.
    private func send(_ ready: [FileBatch.Ready]) {
        for piece in ready {
            switch piece {
            case .alone(let frame): output.send(frame)
            case .batch(let count, let payloads):
                output.send(encoders.with { $0.files(id, count: count, payloads: payloads) })
            }
        }
    }

    /// Sends one `file` frame as the request asked (no batching). `locked`: the caller holds `lock`.
    private func deliver(_ frame: [UInt8], locked: Bool) {
        if files.count == 1 {
            // One caller only, and `done` is built after it returns.
            if locked { held = frame } else { lock.withLock { held = frame } }
        } else {
            output.send(frame)
        }
    }
}

/// Packed `file` maps (or compact arrays) waiting to share a `files` frame.
struct FileBatch {
    /// Most results per frame (the request's `batch`).
    let limit: Int
    /// Most payload bytes per frame (from the encoder).
    let room: Int
    /// Flushed when this many bytes of results wait, whatever `limit` says.
    static let bytesLimit = 256 << 10

    private var payloads: [UInt8] = []
    private var count = 0
    private var lastBytes = 0

    init(limit: Int, room: Int) {
        self.limit = limit
        self.room = room
    }

    enum Ready {
        /// A `files` frame to encode: `count` packed maps.
        case batch(Int, [UInt8])
        /// A `file` frame too big to share a frame, sent as it is.
        case alone([UInt8])
    }

    /// Adds one packed `file` map; returns what is to be sent now, in order.
    mutating func add(payload: UnsafeRawBufferPointer) -> [Ready] {
        var out: [Ready] = []
        if payload.count > room {
            if let (n, p) = take() { out.append(.batch(n, p)) }
            out.append(.alone(FrameHeader.encode(payload.count) + payload))
            return out
        }
        if count > 0 && payloads.count + payload.count > room, let (n, p) = take() {
            out.append(.batch(n, p))
        }
        // Room for as many bytes as the last batch took: growing from empty by doubling moved
        // each batch's bytes about ten times.
        if payloads.isEmpty { payloads.reserveCapacity(lastBytes) }
        payloads.append(contentsOf: payload)
        count += 1
        if count >= limit || payloads.count >= Self.bytesLimit, let (n, p) = take() {
            out.append(.batch(n, p))
        }
        return out
    }

    /// The results still waiting, if any.
    mutating func take() -> (Int, [UInt8])? {
        guard count > 0 else { return nil }
        defer {
            lastBytes = min(payloads.count, Self.bytesLimit)
            payloads = []
            count = 0
        }
        return (count, payloads)
    }
}

/// Response encoders for the threads that encode results at the same time (each encoder reuses
/// its buffer, so one is lent to one thread at a time).
final class EncoderPool: @unchecked Sendable {
    let maxFrame: Int
    private let lock = Monitor()
    private var free: [ResponseEncoder] = []  // guarded by `lock`

    init(maxFrame: Int) { self.maxFrame = maxFrame }

    func with<R>(_ body: (ResponseEncoder) -> R) -> R {
        let encoder = lock.withLock { free.popLast() } ?? ResponseEncoder(maxFrame: maxFrame)
        defer { lock.withLock { free.append(encoder) } }
        return body(encoder)
    }
}
