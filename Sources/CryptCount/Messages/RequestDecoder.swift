#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// Limits on what one request may carry (set by `serve` flags).
package struct RequestLimits: Sendable {
    package var maxFiles = 1_000_000
    package var maxTerms = 1_000
    package var maxTermBytes = 4096
    package var maxContext = 100
    /// The longest string `id`: every response echoes it, and each must fit in max_frame
    /// (`ResponseEncoder.longestID`).
    package var maxIDBytes = Int.max
    /// RE2's memory budget per regular expression (`--regex-max-mem`).
    package var regexMaxMemory = SearchOptions.defaultRegexMaxMemory
    package init() {}
}

/// Turns a frame's payload into a typed request, checking its shape: types, required fields,
/// ranges. What needs server state (is the key unlocked? is the id in use?) is checked later.
package struct RequestDecoder: Sendable {
    package var limits: RequestLimits

    package init(limits: RequestLimits = RequestLimits()) { self.limits = limits }

    /// Decodes the payload. On failure the error carries the request's id when it could be read.
    package func decode(_ payload: [UInt8]) -> Result<(RequestID, Request), RequestError> {
        let value: MessagePackValue
        do {
            value = try MessagePackDecoder.decode(payload)
        } catch {
            return .failure(RequestError(.badMsgpack, Self.describe(error)))
        }
        return decode(value)
    }

    static func describe(_ error: MessagePackDecodingError) -> String {
        switch error {
        case .empty: "the frame holds no MessagePack value"
        case .truncated: "the MessagePack value is truncated (a declared length runs past the frame)"
        case .malformed: "the frame is not valid MessagePack"
        case .trailingBytes: "bytes follow the MessagePack value in the frame"
        case .tooDeep: "the MessagePack value is nested too deeply"
        case .tooLarge: "the MessagePack value is too large to decode"
        }
    }

    package func decode(_ value: MessagePackValue) -> Result<(RequestID, Request), RequestError> {
        guard case .map(let pairs) = value else {
            return .failure(RequestError(.badRequest, "a request must be a map"))
        }
        // Read the id first, so that later errors can carry it.
        var fields: [String: MessagePackValue] = [:]
        var nonStringKey = false
        for pair in pairs {
            guard case .string(let k) = pair.key else {
                nonStringKey = true
                continue
            }
            // A `str` key that is not UTF-8 is still a string key: it names no field, so it is
            // ignored like any other unknown key.
            guard let key = String(validating: k, as: UTF8.self) else { continue }
            if fields[key] == nil { fields[key] = pair.value }
        }
        let id: RequestID
        switch fields["id"] {
        case .uint(let n): id = .number(n)
        case .string(let s):
            guard s.count <= limits.maxIDBytes else {
                return .failure(
                    RequestError(
                        .badRequest,
                        "\"id\" takes \(s.count) bytes; at most \(limits.maxIDBytes) fit in a response within max_frame"
                    ))
            }
            id = .text(s)
        case .none:
            return .failure(RequestError(.badRequest, "the request has no \"id\""))
        default:
            return .failure(RequestError(.badRequest, "\"id\" must be an unsigned integer or a string"))
        }
        if nonStringKey {
            return .failure(RequestError(.badRequest, "request keys must be strings", id: id))
        }
        var reader = FieldReader(fields: fields, id: id)
        do throws(RequestError) {
            let op = try reader.requiredString("op")
            let request: Request
            switch op {
            case "hello": request = .hello
            case "stats": request = .stats
            case "shutdown": request = .shutdown
            case "forget": request = .forget(name: try reader.requiredString("name"))
            case "cancel": request = .cancel(target: try reader.requestID("target"))
            case "unlock": request = .unlock(try decodeUnlock(&reader))
            case "count": request = .count(try decodeCount(&reader))
            default:
                throw RequestError(.unknownOp, "unknown op \"\(Self.printable(op))\"", id: id)
            }
            return .success((id, request))
        } catch {
            return .failure(error)
        }
    }

    private func decodeUnlock(_ r: inout FieldReader) throws(RequestError) -> UnlockRequest {
        let name = try r.requiredString("name")
        guard !name.isEmpty else { throw r.error("\"name\" must not be empty") }
        let cipher = try r.requiredString("cipher")
        return UnlockRequest(name: name, cipher: cipher, secret: try r.secret("secret"), options: try cipherOptions(&r))
    }

    private func cipherOptions(_ r: inout FieldReader) throws(RequestError) -> CipherOptions {
        var options = CipherOptions()
        if let iter = try r.optionalInt("iter", range: 1...OpenSSLKey.maxIterations) { options.iterations = iter }
        if let ttl = try r.optionalInt("ttl", range: 0...Int(Int32.max)) { options.ttlSeconds = ttl }
        return options
    }

    private func decodeCount(_ r: inout FieldReader) throws(RequestError) -> CountRequest {
        guard let filesValue = r.fields["files"] else { throw r.error("\"files\" is required") }
        guard case .array(let items) = filesValue else { throw r.error("\"files\" must be an array") }
        guard items.count <= limits.maxFiles else {
            throw r.error("\"files\" has \(items.count) entries; the limit is \(limits.maxFiles) (--max-files)")
        }
        var files: [WireBytes] = []
        files.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            switch item {
            case .string(let b): files.append(WireBytes(b, isBinary: false))
            case .binary(let b): files.append(WireBytes(b, isBinary: true))
            default: throw r.error("\"files\"[\(i)] must be a string or binary")
            }
        }

        var terms: [[UInt8]] = []
        switch r.fields["terms"] {
        case .none, .nil?: break
        case .array(let items)?:
            guard items.count <= limits.maxTerms else {
                throw r.error("\"terms\" has \(items.count) entries; the limit is \(limits.maxTerms) (--max-terms)")
            }
            for (i, item) in items.enumerated() {
                let bytes: [UInt8]
                switch item {
                case .string(let b), .binary(let b): bytes = b
                default: throw r.error("\"terms\"[\(i)] must be a string or binary")
                }
                guard !bytes.isEmpty else {
                    throw r.error("\"terms\"[\(i)] is empty; an empty term matches nothing useful")
                }
                guard bytes.count <= limits.maxTermBytes else {
                    throw r.error(
                        "\"terms\"[\(i)] is \(bytes.count) bytes; the limit is \(limits.maxTermBytes) (--max-term-bytes)"
                    )
                }
                terms.append(bytes)
            }
        default:
            throw r.error("\"terms\" must be an array")
        }

        var search = SearchOptions()
        search.ignoreCase = try r.bool("ignore_case")
        search.wholeWord = try r.bool("whole_word")
        search.offsets = try r.bool("offsets")
        search.words = try r.bool("words")
        search.regex = try r.bool("regex")
        search.regexMaxMemory = limits.regexMaxMemory
        if let m = try r.optionalInt("max_offsets", range: 0...Int(Int32.max)) { search.maxOffsets = m }
        if let c = try r.optionalInt("context", range: 0...limits.maxContext) { search.context = c }
        let ordered = try r.bool("ordered")
        let batch = try r.optionalInt("batch", range: 1...65536) ?? 1
        let compact = try r.bool("compact")

        let keyName = try r.optionalString("key")
        var keyNames: [String]? = nil
        switch r.fields["keys"] {
        case .none, .nil?: break
        case .array(let items)?:
            var names: [String] = []
            for (i, item) in items.enumerated() {
                guard let s = item.stringValue else { throw r.error("\"keys\"[\(i)] must be a string") }
                names.append(s)
            }
            keyNames = names
        default:
            throw r.error("\"keys\" must be an array of key names")
        }
        let cipher = try r.optionalString("cipher")
        let secret = try r.secret("secret")
        if keyName != nil && secret != nil {
            throw r.error("give either \"key\" or an inline \"secret\", not both")
        }
        if keyName != nil && keyNames != nil {
            throw r.error("give either \"key\" or \"keys\", not both")
        }
        let selection = KeySelection(
            keyName: keyName, keyNames: keyNames, cipher: cipher, secret: secret, options: try cipherOptions(&r))
        return CountRequest(
            files: files, terms: terms, key: selection, search: search, ordered: ordered, batch: batch,
            compact: compact)
    }

    /// Text safe to put in an error message: at most 64 characters, no control characters.
    static func printable(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars.prefix(64) {
            out.unicodeScalars.append(ch.properties.generalCategory == .control ? "?" : ch)
        }
        return out
    }
}

/// Typed access to a request's fields, producing `bad_request` errors that name the field.
struct FieldReader {
    let fields: [String: MessagePackValue]
    let id: RequestID

    func error(_ message: String) -> RequestError { RequestError(.badRequest, message, id: id) }

    /// A field that is absent or nil takes its default.
    private func present(_ key: String) -> MessagePackValue? {
        switch fields[key] {
        case .none, .nil?: return nil
        case let v?: return v
        }
    }

    func requiredString(_ key: String) throws(RequestError) -> String {
        guard let v = present(key) else { throw error("\"\(key)\" is required") }
        guard let s = v.stringValue else { throw error("\"\(key)\" must be a UTF-8 string") }
        return s
    }

    func optionalString(_ key: String) throws(RequestError) -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.stringValue else { throw error("\"\(key)\" must be a UTF-8 string") }
        return s
    }

    func bool(_ key: String) throws(RequestError) -> Bool {
        guard let v = present(key) else { return false }
        guard case .bool(let b) = v else { throw error("\"\(key)\" must be a boolean") }
        return b
    }

    func optionalInt(_ key: String, range: ClosedRange<Int>) throws(RequestError) -> Int? {
        guard let v = present(key) else { return nil }
        let n: Int
        switch v {
        case .uint(let u):
            guard u <= UInt64(range.upperBound) else {
                throw error("\"\(key)\" must be between \(range.lowerBound) and \(range.upperBound)")
            }
            n = Int(u)
        case .int(let i):
            guard i >= Int64(range.lowerBound) && i <= Int64(range.upperBound) else {
                throw error("\"\(key)\" must be between \(range.lowerBound) and \(range.upperBound)")
            }
            n = Int(i)
        default:
            throw error("\"\(key)\" must be an integer")
        }
        guard range.contains(n) else {
            throw error("\"\(key)\" must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return n
    }

    func requestID(_ key: String) throws(RequestError) -> RequestID? {
        guard let v = present(key) else { throw error("\"\(key)\" is required") }
        switch v {
        case .uint(let n): return .number(n)
        case .string(let s): return .text(s)
        case .int: return nil  // a negative id can name no request; cancelling it is a no-op
        default: throw error("\"\(key)\" must be an unsigned integer or a string")
        }
    }

    func secret(_ key: String) throws(RequestError) -> SecretInput? {
        guard let v = present(key) else { return nil }
        let s = Self.secretInput(v, depth: 0)
        // The secret now lives in SecretBytes of its own. The decoded value's arrays are scrap
        // that only this decode's own tree (and its copies here) shares, so they are zeroed in
        // place before they go back to the allocator.
        Self.scrub(v)
        guard let s else {
            throw RequestError(.badSecret, "\"\(key)\" must be a string, binary, an array or a map of those", id: id)
        }
        return s
    }

    static func secretInput(_ v: MessagePackValue, depth: Int) -> SecretInput? {
        guard depth < 4 else { return nil }
        switch v {
        case .string(let b): return .text(copying: b)
        case .binary(let b): return .bytes(copying: b)
        case .array(let items):
            var out: [SecretInput] = []
            for item in items {
                guard let s = secretInput(item, depth: depth + 1) else { return nil }
                out.append(s)
            }
            return .list(out)
        case .map(let pairs):
            var out: [String: SecretInput] = [:]
            for pair in pairs {
                guard let k = pair.key.stringValue, let s = secretInput(pair.value, depth: depth + 1) else {
                    return nil
                }
                out[k] = s
            }
            return .map(out)
        default:
            return nil
        }
    }

    /// Zeroes the bytes of every `str`/`bin` in a decoded secret value, in the storage that
    /// the request's decoded tree shares. Only for the secret's own subtree, whose arrays
    /// nothing outside this decoder holds: `SecretInput` copies what it keeps.
    private static func scrub(_ v: MessagePackValue) {
        switch v {
        case .string(let b), .binary(let b), .ext(_, let b):
            b.withUnsafeBytes { raw in
                if let base = raw.baseAddress, raw.count > 0 {
                    memset(UnsafeMutableRawPointer(mutating: base), 0, raw.count)
                }
            }
        case .array(let items):
            for item in items { scrub(item) }
        case .map(let pairs):
            for pair in pairs {
                scrub(pair.key)
                scrub(pair.value)
            }
        case .nil, .bool, .int, .uint, .float:
            break
        }
    }
}
