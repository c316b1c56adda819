/// Encodes responses as frames. One encoder per thread (it reuses its buffer). Map sizes are
/// counted as fields are packed (`map`, `field`), never written by hand.
package final class ResponseEncoder {
    private let w = MessagePackWriter()
    package let maxFrame: Int
    /// Fields packed so far into the innermost open map. Behind a pointer: a class's stored
    /// `var` is checked for exclusive access at run time on every `+= 1`.
    private let fields: UnsafeMutablePointer<Int>

    package init(maxFrame: Int) {
        self.maxFrame = maxFrame
        fields = .allocate(capacity: 1)
        fields.initialize(to: 0)
    }

    deinit { fields.deallocate() }

    /// A map holding the fields `body` packs.
    private func map(_ body: () -> Void) {
        let outer = fields.pointee
        fields.pointee = 0
        let header = w.beginMap()
        body()
        w.endMap(at: header, count: fields.pointee)
        fields.pointee = outer
    }

    /// The key of one field of the open map (its value follows).
    private func field(_ key: String) {
        fields.pointee += 1
        w.pack(key)
    }

    /// One response frame: `id`, `type`, then what `body` packs.
    private func frame(_ id: RequestID?, type: String, _ body: () -> Void = {}) -> [UInt8] {
        packFrame(id, type: type, body)
        return w.frameBytes()
    }

    /// Packs one response map (`id`, `type`, then what `body` packs) into the writer, alone;
    /// returns its size.
    @discardableResult
    private func packFrame(_ id: RequestID?, type: String, _ body: () -> Void = {}) -> Int {
        w.reset()
        map {
            field("id")
            switch id {
            case .none: w.packNil()
            case .number(let n)?: w.pack(n)
            case .text(let t)?: w.packString(t)
            }
            field("type")
            w.pack(type)
            body()
        }
        return w.count
    }

    private func packInts(_ values: [Int]) {
        w.packArrayHeader(values.count)
        for v in values { w.pack(v) }
    }

    package func ok(_ id: RequestID?) -> [UInt8] { frame(id, type: "ok") }

    package func error(_ id: RequestID?, _ code: String, _ message: String) -> [UInt8] {
        // A message may quote the request (an op, a key name): cut to fit.
        fitting(message, within: max(maxFrame, Self.responseFloor)) { packError(id, code, $0) }
        return w.frameBytes()
    }

    /// Packs what `pack` makes of `message` (returning its size), or of as much of it as keeps
    /// the payload within `limit` bytes.
    private func fitting(_ message: String, within limit: Int, _ pack: (String) -> Int) {
        let over = pack(message) - limit
        guard over > 0 else { return }
        _ = pack(Self.prefix(message, bytes: message.utf8.count - over))
    }

    private func packError(_ id: RequestID?, _ code: String, _ message: String) -> Int {
        packFrame(id, type: "error") {
            field("code")
            w.pack(code)
            field("message")
            w.pack(message)
        }
    }

    package func error(_ e: RequestError) -> [UInt8] { error(e.id, e.code.rawValue, e.message) }

    package struct HelloInfo: Sendable {
        package var ciphers: [String]
        package var ops: [String]
        package var workers: Int
        package var maxFrame: Int
        package var maxFileSize: Int
        package var cacheLimit: Int
        /// Optional protocol features this server has (`regex`: `count` takes `"regex": true`).
        package var features: [String] = ["regex"]
    }

    package func hello(_ id: RequestID, _ info: HelloInfo) -> [UInt8] {
        frame(id, type: "hello") {
            field("protocol")
            w.pack(CryptCountVersion.protocolVersion)
            field("server")
            w.pack("cryptcount")
            field("version")
            w.pack(CryptCountVersion.string)
            field("ciphers")
            w.packArrayHeader(info.ciphers.count)
            for c in info.ciphers { w.pack(c) }
            field("ops")
            w.packArrayHeader(info.ops.count)
            for o in info.ops { w.pack(o) }
            field("workers")
            w.pack(info.workers)
            field("max_frame")
            w.pack(info.maxFrame)
            field("max_file_size")
            w.pack(info.maxFileSize)
            field("cache_limit")
            w.pack(info.cacheLimit)
            field("features")
            w.packArrayHeader(info.features.count)
            for f in info.features { w.pack(f) }
        }
    }

    package struct StatsInfo: Sendable {
        package var uptimeMicros: UInt64
        package var requests: Int
        package var files: Int
        package var bytesRead: Int
        package var bytesPlain: Int
        package var errors: Int
        package var inFlight: Int
        package var workers: Int
        package var keys: Int
        package var cache: PlaintextCache.Snapshot
        /// Session-key caches (OpenPGP): messages whose session key came from a key's cache,
        /// and those that needed a public-key or S2K step.
        package var sessionKeyHits = 0
        package var sessionKeyMisses = 0
    }

    package func stats(_ id: RequestID, _ s: StatsInfo) -> [UInt8] {
        frame(id, type: "stats") {
            field("uptime_us")
            w.pack(s.uptimeMicros)
            field("requests")
            w.pack(s.requests)
            field("files")
            w.pack(s.files)
            field("bytes_read")
            w.pack(s.bytesRead)
            field("bytes_plain")
            w.pack(s.bytesPlain)
            field("errors")
            w.pack(s.errors)
            field("in_flight")
            w.pack(s.inFlight)
            field("workers")
            w.pack(s.workers)
            field("keys")
            w.pack(s.keys)
            field("cache")
            map {
                field("entries")
                w.pack(s.cache.entries)
                field("bytes")
                w.pack(s.cache.bytes)
                field("limit")
                w.pack(s.cache.limit)
                field("hits")
                w.pack(s.cache.hits)
                field("misses")
                w.pack(s.cache.misses)
            }
            field("session_keys")
            map {
                field("hits")
                w.pack(s.sessionKeyHits)
                field("misses")
                w.pack(s.sessionKeyMisses)
            }
        }
    }

    private func packPath(_ path: WireBytes) {
        field("path")
        if path.isBinary { w.packBinary(path.bytes) } else { w.packString(path.bytes) }
    }

    package func file(_ id: RequestID, index: Int, path: WireBytes, outcome: FileOutcome, options: SearchOptions)
        -> [UInt8]
    {
        packFile(id, index: index, path: path, outcome: outcome, options: options)
        return w.frameBytes()
    }

    /// The map `file(...)` frames, without its length prefix, lent to `body` from this encoder's
    /// own buffer (valid only during the call): a `files` batch copies it in, nothing allocated.
    /// With `compact`, a plain success is packed as the array `packCompactFile` describes instead,
    /// unless even that would not fit in a `files` frame (a tiny `max_frame` and many terms):
    /// the map then goes in a `file` frame of its own, as any result too big to share one.
    package func withFilePayload<R>(
        _ id: RequestID, index: Int, path: WireBytes, outcome: FileOutcome, options: SearchOptions,
        compact: Bool, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        if !compact || !packCompactFile(id, index: index, outcome: outcome) {
            packFile(id, index: index, path: path, outcome: outcome, options: options)
        }
        return w.withPackedBytes(body)
    }

    /// Packs a successful file result without offsets or a cipher name as `[index, counts, bytes,
    /// cached]` (and `words` fifth when asked for): no keys, no id, no path (the parent sent it
    /// at `index`). A Python parent decodes it about 7 times faster than the map. False, with
    /// nothing to use packed, for another outcome or an array too big for a `files` frame.
    private func packCompactFile(_ id: RequestID, index: Int, outcome: FileOutcome) -> Bool {
        guard case .counted(let f) = outcome, f.result.offsets == nil, f.cipher == nil else { return false }
        w.reset()
        let words = f.result.words
        w.packArrayHeader(words == nil ? 4 : 5)
        w.pack(index)
        packInts(f.result.counts)
        w.pack(f.bytes)
        w.pack(f.cached)
        if let words { w.pack(words) }
        return w.count <= Self.filesRoom(id, maxFrame: maxFrame)
    }

    private func packFile(_ id: RequestID, index: Int, path: WireBytes, outcome: FileOutcome, options: SearchOptions) {
        switch outcome {
        case .failed(let code, let message, let cipher):
            // Our own text, cut to fit (a count request is refused when not even a short one
            // would fit: `countFrameBound`).
            fitting(message, within: maxFrame) {
                packFailed(id, index: index, path: path, code: code, message: $0, cipher: cipher)
            }
        case .counted(let f):
            var result = f.result
            var size = packCounted(id, index: index, path: path, file: f, result: result, options: options)
            // Too big for one frame: cap every term's offsets (and snippets) at a number halved
            // until it fits, starting from the longest list, so the terms with few matches keep
            // theirs (halving every list emptied a term's single offset for another's thousands).
            guard size > maxFrame, let all = f.result.offsets else { return }
            var cap = all.map(\.count).max() ?? 0
            while size > maxFrame && cap > 0 {
                cap /= 2
                result.offsets = all.map { Array($0.prefix(cap)) }
                if let snippets = f.result.snippets { result.snippets = snippets.map { Array($0.prefix(cap)) } }
                result.truncated = true
                size = packCounted(id, index: index, path: path, file: f, result: result, options: options)
            }
        }
    }

    private func packFailed(
        _ id: RequestID, index: Int, path: WireBytes, code: FileErrorCode, message: String, cipher: String?
    ) -> Int {
        packFrame(id, type: "file") {
            field("index")
            w.pack(index)
            packPath(path)
            field("error")
            map {
                field("code")
                w.pack(code.rawValue)
                field("message")
                w.pack(message)
            }
            if let cipher {
                field("cipher")
                w.pack(cipher)
            }
        }
    }

    /// At most `bytes` UTF-8 bytes of `text`, cut at a character boundary.
    static func prefix(_ text: String, bytes: Int) -> String {
        var out = ""
        var used = 0
        for c in text {
            let n = c.utf8.count
            guard used + n <= bytes else { break }
            out.append(c)
            used += n
        }
        return out
    }

    /// The largest `file` or `done` frame payload a count request's results can need, offsets and
    /// snippets aside (they are cut to fit): every count at its widest (9 bytes), every field
    /// present, an error's message cut to `errorRoom` bytes. Above `max_frame` (and
    /// `responseFloor`), the request is refused (`bad_request`) rather than answered with
    /// frames the client did not allow.
    package static func countFrameBound(_ id: RequestID, longestPath: Int, terms: Int) -> Int {
        fieldsRoom + idRoom(id) + longestPath + 5 + max(5 + 9 * terms, errorRoom)
    }

    /// Keys and fixed-size values of a `file` frame (type, index, bytes, cached, words,
    /// truncated, cipher, error code) with room to spare.
    static let fieldsRoom = 160
    /// The shortest error message a file result is guaranteed.
    static let errorRoom = 64
    /// What a response that cannot be cut may take under a smaller `max_frame`: `hello` alone
    /// takes about 300 bytes, so a limit of a few dozen bytes (which tests of `frame_too_large`
    /// use) cannot hold every response; such a session still gets its answers.
    package static let responseFloor = 4096
    /// What a response that is not cut to fit takes besides its id: `hello` and `stats` are
    /// under 1 KiB.
    static let fixedRoom = 2048

    /// The longest string id a request may have: every response echoes it and must fit in
    /// `maxFrame` (or `responseFloor`).
    package static func longestID(maxFrame: Int) -> Int { max(maxFrame, responseFloor) - fixedRoom }

    private func packCounted(
        _ id: RequestID, index: Int, path: WireBytes, file f: CountedFile, result: SearchResult, options: SearchOptions
    ) -> Int {
        packFrame(id, type: "file") {
            field("index")
            w.pack(index)
            packPath(path)
            field("counts")
            packInts(result.counts)
            field("bytes")
            w.pack(f.bytes)
            field("cached")
            w.pack(f.cached)
            if let words = result.words {
                field("words")
                w.pack(words)
            }
            if let offsets = result.offsets {
                field("offsets")
                w.packArrayHeader(offsets.count)
                for o in offsets { packInts(o) }
            }
            if let snippets = result.snippets {
                field("snippets")
                w.packArrayHeader(snippets.count)
                for list in snippets {
                    w.packArrayHeader(list.count)
                    for s in list { w.pack(s) }
                }
            }
            if result.offsets != nil {
                field("truncated")
                w.pack(result.truncated)
            }
            if let cipher = f.cipher {
                field("cipher")
                w.pack(cipher)
            }
        }
    }

    /// Most payload bytes of packed `file` maps that one `files` frame for `id` can carry within
    /// `maxFrame` (the frame's own fields take the rest).
    package static func filesRoom(_ id: RequestID, maxFrame: Int) -> Int {
        maxFrame - 64 - idRoom(id)
    }

    /// Most bytes `id` takes packed.
    static func idRoom(_ id: RequestID) -> Int {
        if case .text(let t) = id { return t.count + 5 }
        return 9
    }

    /// A `files` frame: `count` file responses (their packed maps, concatenated) in one frame.
    package func files(_ id: RequestID, count: Int, payloads: [UInt8]) -> [UInt8] {
        frame(id, type: "files") {
            field("results")
            w.packArrayHeader(count)
            w.appendPacked(payloads[...])
        }
    }

    package func done(_ id: RequestID, _ s: CountSummary) -> [UInt8] {
        frame(id, type: "done") {
            field("files")
            w.pack(s.files)
            field("failed")
            w.pack(s.failed)
            field("skipped")
            w.pack(s.skipped)
            field("counts")
            packInts(s.counts)
            if let words = s.words {
                field("words")
                w.pack(words)
            }
            field("elapsed_us")
            w.pack(s.elapsedMicros)
            field("cancelled")
            w.pack(s.cancelled)
        }
    }
}
