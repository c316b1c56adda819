#if canImport(Glibc)
    import Glibc
#endif

/// Settings for `cryptcount serve`.
package struct ServerConfig: Sendable {
    package var engine = EngineConfig()
    package var maxFrame = 16 << 20
    package var limits = RequestLimits()
    /// Requests in flight beyond which new ones get `busy`.
    package var maxInFlight = 256
    package var inputFD: Int32 = 0
    package var outputFD: Int32 = 1
    /// After answering a request on the reading thread, poll stdin without blocking for up to
    /// this many microseconds before blocking (`--spin-us`; 0: block at once). See
    /// `FrameReader.spin(micros:)`.
    package var spinMicros = ServerConfig.defaultSpinMicros
    package static let defaultSpinMicros = 100
    package init() {}
}

/// How `serve` ended; the process exit status.
package enum ServeExit: Int32, Sendable {
    case clean = 0
    case inputError = 1
    case outputClosed = 3
}

/// The coprocess: reads requests on one thread (the caller's), runs `count` jobs on the worker
/// pool, and writes every response through one `OutputWriter`.
package final class Server: @unchecked Sendable {
    package let config: ServerConfig
    let pool: WorkerPool
    let output: OutputWriter
    let decoder: RequestDecoder
    let startedMicros = monotonicMicros()

    /// Keys by name. Touched only by the reader thread; workers hold references to the keys
    /// of their own jobs, so `forget` never pulls a key from under a running request.
    private var keys: [String: UnlockedKey] = [:]
    /// Compiled term sets of recent requests (reader thread only).
    private let plans = SearchPlanCache()
    /// The reader thread's encoder; result streams borrow theirs from `encoders`.
    private let readerEncoder: ResponseEncoder
    private let encoders: EncoderPool

    package init(config: ServerConfig) {
        self.config = config
        self.pool = WorkerPool(config: config.engine)
        self.output = OutputWriter(fd: config.outputFD, highWater: config.engine.outputHighWater) { error in
            Log.warn("stdout closed (\(String(cString: strerror(error)))); exiting")
            _exit(ServeExit.outputClosed.rawValue)
        }
        var limits = config.limits
        limits.maxIDBytes = min(limits.maxIDBytes, ResponseEncoder.longestID(maxFrame: config.maxFrame))
        self.decoder = RequestDecoder(limits: limits)
        self.readerEncoder = ResponseEncoder(maxFrame: config.maxFrame)
        self.encoders = EncoderPool(maxFrame: config.maxFrame)
    }

    // MARK: - Reader loop

    /// Serves until end of input or `shutdown`; returns the exit status.
    package func run() -> ServeExit {
        pool.start()
        var reader = FrameReader(fd: config.inputFD, maxFrame: config.maxFrame)
        reader.watchFD = config.outputFD
        while true {
            switch reader.next() {
            case .frame(var payload):
                stats.addRequest()
                let step = handle(payload, moreWaiting: reader.hasBufferedInput)
                // The frame may hold a secret; nothing else refers to it now, so this zeroes it in place.
                payload.withUnsafeMutableBytes { raw in
                    if let base = raw.baseAddress { memset(base, 0, raw.count) }
                }
                switch step {
                case .stop:
                    finish()
                    return .clean
                case .answered:
                    // The parent may well send its next request at once (request-reply loop).
                    reader.spin(micros: config.spinMicros)
                case .dispatched:
                    break  // the answer comes from a worker: leave the CPU to the workers
                }
            case .empty:
                stats.addRequest()
                reply(RequestError(.badFrame, "a frame of length zero holds no request"))
            case .tooLarge(let declared):
                stats.addRequest()
                reply(
                    RequestError(
                        .frameTooLarge,
                        "the frame declares \(declared) bytes; the limit is \(config.maxFrame) (--max-frame); its payload is skipped"
                    ))
            case .end:
                finish()
                return .clean
            case .truncated:
                reply(RequestError(.badFrame, "input ended inside a frame"))
                finish()
                return .inputError
            case .truncatedWhileSkipping:
                Log.warn("input ended inside an oversize frame")
                finish()
                return .inputError
            case .readError(let code):
                Log.error("cannot read stdin: \(String(cString: strerror(code)))")
                finish()
                return .inputError
            case .outputClosed:
                Log.warn("stdout closed; exiting")
                return .outputClosed
            }
        }
    }

    private var stats: EngineStats { pool.stats }

    /// Drops every key (their secret bytes are zeroed as the last reference goes).
    package func forgetAllKeys() {
        keys.removeAll()
    }

    /// Lets in-flight requests finish and their responses reach the parent.
    private func finish() {
        pool.waitUntilIdle()
        output.drain()
    }

    private func reply(_ error: RequestError) {
        stats.addError()
        output.send(readerEncoder.error(error))
    }

    /// `answered`: the request's terminal response was sent from this thread; `dispatched`: it
    /// went to the workers.
    private enum Next { case answered, dispatched, stop }

    /// `moreWaiting`: further frames are already read; a cached one-file count then goes to the
    /// workers like any other, so a burst of them runs in parallel rather than one by one here.
    private func handle(_ payload: [UInt8], moreWaiting: Bool) -> Next {
        let decoded = decoder.decode(payload)
        let id: RequestID
        let request: Request
        switch decoded {
        case .failure(let error):
            if let eid = error.id, pool.isInFlight(eid) {
                reply(.duplicate(eid))
            } else {
                reply(error)
            }
            return .answered
        case .success(let (i, r)):
            id = i
            request = r
        }
        if pool.isInFlight(id) {
            reply(.duplicate(id))
            return .answered
        }
        do throws(RequestError) {
            switch request {
            case .hello:
                output.send(readerEncoder.hello(id, helloInfo))
            case .stats:
                output.send(readerEncoder.stats(id, statsInfo))
            case .unlock(let u):
                try unlock(u, id: id)
                output.send(readerEncoder.ok(id))
            case .forget(let name):
                guard let key = keys.removeValue(forKey: name) else {
                    throw RequestError(
                        .unknownKey, "no key is unlocked under the name \"\(RequestDecoder.printable(name))\"", id: id)
                }
                dropped(key)
                output.send(readerEncoder.ok(id))
            case .cancel(let target):
                if let target { pool.cancel(target) }
                output.send(readerEncoder.ok(id))
            case .count(let c):
                if try !startCount(c, id: id, inline: !moreWaiting) { return .dispatched }
            case .shutdown:
                // Frames after this one are never read; in-flight requests finish first.
                finish()
                output.send(readerEncoder.ok(id))
                output.drain()
                return .stop
            }
        } catch {
            reply(error)
        }
        return .answered
    }

    private var helloInfo: ResponseEncoder.HelloInfo {
        ResponseEncoder.HelloInfo(
            ciphers: CipherKind.allCases.map(\.name) + ["auto"], ops: Request.ops,
            workers: max(1, config.engine.workers),
            maxFrame: config.maxFrame, maxFileSize: config.engine.maxFileSize, cacheLimit: pool.cache.limit)
    }

    private var statsInfo: ResponseEncoder.StatsInfo {
        ResponseEncoder.StatsInfo(
            uptimeMicros: monotonicMicros() &- startedMicros, requests: stats.requests, files: stats.files,
            bytesRead: stats.bytesRead, bytesPlain: stats.bytesPlain, errors: stats.errors, inFlight: pool.inFlight,
            workers: max(1, config.engine.workers), keys: keys.count, cache: pool.cache.snapshot(),
            sessionKeyHits: SessionKeyStats.hits, sessionKeyMisses: SessionKeyStats.misses)
    }

    private func makeKey(cipher: String, secret: SecretInput?, options: CipherOptions, id: RequestID)
        throws(RequestError)
        -> UnlockedKey
    {
        guard let kind = CipherKind(rawValue: cipher) else {
            throw RequestError(.unknownCipher, "unknown cipher \"\(RequestDecoder.printable(cipher))\"", id: id)
        }
        if kind.needsSecret && secret == nil {
            throw RequestError(.badRequest, "cipher \"\(cipher)\" needs a \"secret\"", id: id)
        }
        do throws(SecretError) {
            return try UnlockedKey.make(kind: kind, secret: secret, options: options)
        } catch {
            throw RequestError(.badSecret, "the secret is not a valid \(cipher) key: \(error.message)", id: id)
        }
    }

    private func unlock(_ u: UnlockRequest, id: RequestID) throws(RequestError) {
        let key = try makeKey(cipher: u.cipher, secret: u.secret, options: u.options, id: id)
        // Unlocking an existing name replaces its key: the old one is dropped as by `forget`.
        if let old = keys.updateValue(key, forKey: u.name) { dropped(old) }
    }

    /// A key left the key store (`forget`, or replaced by `unlock`): drop its plaintexts unless
    /// another name still holds the same secret.
    private func dropped(_ key: UnlockedKey) {
        key.retire()  // before the purge: requests still running with it cache nothing more
        let held = Set(keys.values.map(\.identity))
        if !held.contains(key.identity) {
            pool.cache.purge(key: key.identity, keeping: held)
        }
    }

    private func namedKey(_ name: String, id: RequestID) throws(RequestError) -> UnlockedKey {
        guard let key = keys[name] else {
            throw RequestError(
                .unknownKey, "no key is unlocked under the name \"\(RequestDecoder.printable(name))\"", id: id)
        }
        return key
    }

    private func resolveKeys(_ sel: KeySelection, id: RequestID) throws(RequestError) -> KeyChoice {
        if sel.cipher == "auto" || sel.keyNames != nil {
            if let c = sel.cipher, c != "auto" {
                throw RequestError(.badRequest, "\"keys\" goes with \"cipher\": \"auto\"", id: id)
            }
            if sel.secret != nil {
                throw RequestError(
                    .badRequest, "\"cipher\": \"auto\" takes unlocked keys (\"keys\"), not a secret", id: id)
            }
            var list: [UnlockedKey] = []
            for name in (sel.keyName.map { [$0] } ?? []) + (sel.keyNames ?? []) {
                let key = try namedKey(name, id: id)
                // A key auto can never pick (its files cannot be recognised) is a mistake to report.
                guard key.kind == .plain || key.kind.canBeSniffed else {
                    throw RequestError(
                        .badRequest,
                        "key \"\(RequestDecoder.printable(name))\" is a \(key.cipherName) key; \"cipher\": \"auto\" cannot recognise \(key.cipherName) files: name the cipher",
                        id: id)
                }
                // The request's options override each key's, as they do for a single key.
                do throws(SecretError) {
                    list.append(try key.applying(sel.options))
                } catch {
                    throw RequestError(
                        .badRequest,
                        "the options do not fit key \"\(RequestDecoder.printable(name))\": \(error.message)", id: id)
                }
            }
            return .auto(list)
        }
        if let name = sel.keyName {
            let key = try namedKey(name, id: id)
            if let c = sel.cipher, c != key.cipherName {
                if CipherKind(rawValue: c) == nil {
                    throw RequestError(.unknownCipher, "unknown cipher \"\(RequestDecoder.printable(c))\"", id: id)
                }
                throw RequestError(
                    .badRequest, "key \"\(RequestDecoder.printable(name))\" is for \(key.cipherName), not \(c)", id: id)
            }
            do throws(SecretError) {
                return .single(try key.applying(sel.options))
            } catch {
                throw RequestError(
                    .badRequest, "the options do not fit key \"\(RequestDecoder.printable(name))\": \(error.message)",
                    id: id)
            }
        }
        return .single(try makeKey(cipher: sel.cipher ?? "plain", secret: sel.secret, options: sel.options, id: id))
    }

    /// Returns true when the request was answered on this thread (a small cached file), false
    /// when it went to the workers.
    private func startCount(_ c: CountRequest, id: RequestID, inline: Bool) throws(RequestError) -> Bool {
        // Every frame of the answer must fit in max_frame (both directions use the same framing),
        // or in the few KiB a response may always take (see `ResponseEncoder.responseFloor`).
        // A loop, not `lazy.map(\.bytes.count)`: a key path there is projected at run time,
        // 0.5 ms of a 2,000-file request spent before any worker starts.
        var longestPath = 0
        for f in c.files { longestPath = max(longestPath, f.bytes.count) }
        let need = ResponseEncoder.countFrameBound(id, longestPath: longestPath, terms: c.terms.count)
        if need > max(config.maxFrame, ResponseEncoder.responseFloor) {
            throw RequestError(
                .badRequest,
                "its file and done responses could need \(need) bytes, more than max_frame (\(config.maxFrame), --max-frame): send fewer terms or shorter paths",
                id: id)
        }
        let keys = try resolveKeys(c.key, id: id)
        let plan: SearchPlan
        do throws(SearchPlanError) {
            plan = try plans.plan(terms: c.terms, options: c.search)
        } catch {
            throw RequestError(.badRequest, error.message, id: id)
        }
        if pool.inFlight >= config.maxInFlight {
            throw RequestError(
                .busy, "\(config.maxInFlight) requests are in flight (--max-in-flight); retry when one is done", id: id)
        }
        let stream = ResultStream(
            id: id, files: c.files, options: plan.options, ordered: c.ordered, batch: c.batch, compact: c.compact,
            output: output, encoders: encoders)
        let job = CountJob(id: id, files: c.files, plan: plan, keys: keys, ordered: c.ordered, sink: stream)
        // A small cached file is answered here and now (see `runIfCached`): the request-reply
        // pattern, where its latency is all that counts.
        if inline && pool.runIfCached(job) { return true }
        if !pool.submit(job) {
            throw .duplicate(id)
        }
        return false
    }
}

extension RequestError {
    /// A frame whose id belongs to a request in flight.
    static func duplicate(_ id: RequestID) -> RequestError {
        RequestError(.duplicateID, "id \(id) belongs to a request still in flight", id: id)
    }
}
