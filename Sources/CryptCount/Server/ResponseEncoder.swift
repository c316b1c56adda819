/// Encodes responses as frames. One encoder per thread (it reuses its buffer).
public final class ResponseEncoder {
    private let w = MessagePackWriter()
    public let maxFrame: Int

    public init(maxFrame: Int) { self.maxFrame = maxFrame }

    private func packID(_ id: RequestID?) {
        w.pack("id")
        switch id {
        case .none: w.packNil()
        case .number(let n)?: w.pack(n)
        case .text(let t)?: w.packString(t)
        }
    }

    private func begin(_ id: RequestID?, type: String, fields: Int) {
        w.reset()
        w.packMapHeader(fields + 2)
        packID(id)
        w.pack("type")
        w.pack(type)
    }

    private func packInts(_ values: [Int]) {
        w.packArrayHeader(values.count)
        for v in values { w.pack(v) }
    }

    public func ok(_ id: RequestID?) -> [UInt8] {
        begin(id, type: "ok", fields: 0)
        return w.frameBytes()
    }

    public func error(_ id: RequestID?, _ code: String, _ message: String) -> [UInt8] {
        begin(id, type: "error", fields: 2)
        w.pack("code")
        w.pack(code)
        w.pack("message")
        w.pack(message)
        return w.frameBytes()
    }

    public func error(_ e: RequestError) -> [UInt8] { error(e.id, e.code.rawValue, e.message) }

    public struct HelloInfo: Sendable {
        public var ciphers: [String]
        public var ops: [String]
        public var workers: Int
        public var maxFrame: Int
        public var maxFileSize: Int
        public var cacheLimit: Int
        /// Optional protocol features this server has (`regex`: `count` takes `"regex": true`).
        public var features: [String] = ["regex"]
    }

    public func hello(_ id: RequestID, _ info: HelloInfo) -> [UInt8] {
        begin(id, type: "hello", fields: 10)
        w.pack("protocol")
        w.pack(CryptCountVersion.protocolVersion)
        w.pack("server")
        w.pack("cryptcount")
        w.pack("version")
        w.pack(CryptCountVersion.string)
        w.pack("ciphers")
        w.packArrayHeader(info.ciphers.count)
        for c in info.ciphers { w.pack(c) }
        w.pack("ops")
        w.packArrayHeader(info.ops.count)
        for o in info.ops { w.pack(o) }
        w.pack("workers")
        w.pack(info.workers)
        w.pack("max_frame")
        w.pack(info.maxFrame)
        w.pack("max_file_size")
        w.pack(info.maxFileSize)
        w.pack("cache_limit")
        w.pack(info.cacheLimit)
        w.pack("features")
        w.packArrayHeader(info.features.count)
        for f in info.features { w.pack(f) }
        return w.frameBytes()
    }

    public struct StatsInfo: Sendable {
        public var uptimeMicros: UInt64
        public var requests: Int
        public var files: Int
        public var bytesRead: Int
        public var bytesPlain: Int
        public var errors: Int
        public var inFlight: Int
        public var workers: Int
        public var keys: Int
        public var cache: PlaintextCache.Snapshot
    }

    public func stats(_ id: RequestID, _ s: StatsInfo) -> [UInt8] {
        begin(id, type: "stats", fields: 10)
        w.pack("uptime_us")
        w.pack(s.uptimeMicros)
        w.pack("requests")
        w.pack(s.requests)
        w.pack("files")
        w.pack(s.files)
        w.pack("bytes_read")
        w.pack(s.bytesRead)
        w.pack("bytes_plain")
        w.pack(s.bytesPlain)
        w.pack("errors")
        w.pack(s.errors)
        w.pack("in_flight")
        w.pack(s.inFlight)
        w.pack("workers")
        w.pack(s.workers)
        w.pack("keys")
        w.pack(s.keys)
        w.pack("cache")
        w.packMapHeader(5)
        w.pack("entries")
        w.pack(s.cache.entries)
        w.pack("bytes")
        w.pack(s.cache.bytes)
        w.pack("limit")
        w.pack(s.cache.limit)
        w.pack("hits")
        w.pack(s.cache.hits)
        w.pack("misses")
        w.pack(s.cache.misses)
        return w.frameBytes()
    }

    private func packPath(_ path: WireBytes) {
        w.pack("path")
        if path.isBinary { w.packBinary(path.bytes) } else { w.packString(path.bytes) }
    }

    public func file(_ id: RequestID, index: Int, path: WireBytes, outcome: FileOutcome, options: SearchOptions)
        -> [UInt8]
    {
        switch outcome {
        case .failed(let code, let message):
            begin(id, type: "file", fields: 3)
            w.pack("index")
            w.pack(index)
            packPath(path)
            w.pack("error")
            w.packMapHeader(2)
            w.pack("code")
            w.pack(code.rawValue)
            w.pack("message")
            w.pack(message)
            return w.frameBytes()
        case .counted(let f):
            var result = f.result
            var frame = encodeCounted(id, index: index, path: path, file: f, result: result, options: options)
            // Too big for one frame: halve the offsets (and snippets) until it fits.
            while frame.count - 4 > maxFrame, let offsets = result.offsets, offsets.contains(where: { !$0.isEmpty }) {
                result.offsets = offsets.map { Array($0.prefix($0.count / 2)) }
                if let snippets = result.snippets { result.snippets = snippets.map { Array($0.prefix($0.count / 2)) } }
                result.truncated = true
                frame = encodeCounted(id, index: index, path: path, file: f, result: result, options: options)
            }
            return frame
        }
    }

    private func encodeCounted(
        _ id: RequestID, index: Int, path: WireBytes, file f: CountedFile, result: SearchResult, options: SearchOptions
    ) -> [UInt8] {
        var fields = 5
        if result.words != nil { fields += 1 }
        if result.offsets != nil { fields += 2 }  // offsets + truncated
        if result.snippets != nil { fields += 1 }
        if f.cipher != nil { fields += 1 }
        begin(id, type: "file", fields: fields)
        w.pack("index")
        w.pack(index)
        packPath(path)
        w.pack("counts")
        packInts(result.counts)
        w.pack("bytes")
        w.pack(f.bytes)
        w.pack("cached")
        w.pack(f.cached)
        if let words = result.words {
            w.pack("words")
            w.pack(words)
        }
        if let offsets = result.offsets {
            w.pack("offsets")
            w.packArrayHeader(offsets.count)
            for o in offsets { packInts(o) }
        }
        if let snippets = result.snippets {
            w.pack("snippets")
            w.packArrayHeader(snippets.count)
            for list in snippets {
                w.packArrayHeader(list.count)
                for s in list { w.pack(s) }
            }
        }
        if result.offsets != nil {
            w.pack("truncated")
            w.pack(result.truncated)
        }
        if let cipher = f.cipher {
            w.pack("cipher")
            w.pack(cipher)
        }
        return w.frameBytes()
    }

    /// A `files` frame: `count` file responses (their packed maps, concatenated) in one frame.
    public func files(_ id: RequestID, count: Int, payloads: [UInt8]) -> [UInt8] {
        begin(id, type: "files", fields: 1)
        w.pack("results")
        w.packArrayHeader(count)
        w.appendPacked(payloads[...])
        return w.frameBytes()
    }

    public func done(_ id: RequestID, _ s: CountSummary) -> [UInt8] {
        begin(id, type: "done", fields: s.words == nil ? 6 : 7)
        w.pack("files")
        w.pack(s.files)
        w.pack("failed")
        w.pack(s.failed)
        w.pack("skipped")
        w.pack(s.skipped)
        w.pack("counts")
        packInts(s.counts)
        if let words = s.words {
            w.pack("words")
            w.pack(words)
        }
        w.pack("elapsed_us")
        w.pack(s.elapsedMicros)
        w.pack("cancelled")
        w.pack(s.cancelled)
        return w.frameBytes()
    }
}
