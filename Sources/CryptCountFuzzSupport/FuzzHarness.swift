import CryptCount
import CryptCountJSONLines

#if canImport(Glibc)
    import Glibc
#endif

/// The code paths the fuzzers drive, shared by the libFuzzer targets (Fuzz/) and the test that
/// replays every kept input (Tests/Fuzz/corpus-crashers). A crash is the main finding; besides,
/// each target checks invariants and returns a description of the first one broken (the fuzz
/// executables trap on it so libFuzzer keeps the input; the replay test fails on it).
public enum FuzzHarness {
    public static let targets = [
        "request", "frames", "secret", "biographer", "biographer-v0", "fernet", "age", "openssl", "search",
        "jsonl", "openpgp", "gnupg-key", "regex",
    ]

    /// Runs one input through `target`; nil when every invariant held.
    public static func run(_ target: String, _ data: [UInt8]) -> String? {
        switch target {
        case "request": return request(data)
        case "frames": return frames(data)
        case "secret": return secret(data)
        case "search": return search(data)
        case "regex": return regex(data)
        case "jsonl": return jsonLines(data)
        case "gnupg-key": return gnupgKey(data)
        case "biographer", "biographer-v0", "fernet", "age", "openssl", "openpgp":
            guard let key = keys[target] else { return "no test key for \(target)" }
            return cipherFile(key, data)
        default: return "unknown fuzz target \(target)"
        }
    }

    // MARK: - Messages

    private static let decoders: [RequestDecoder] = {
        var tight = RequestLimits()
        tight.maxFiles = 2
        tight.maxTerms = 2
        tight.maxTermBytes = 4
        tight.maxContext = 3
        return [RequestDecoder(), RequestDecoder(limits: tight)]
    }()

    /// A payload through MessagePack decoding and request decoding. A decoded value must survive
    /// re-encoding unchanged.
    static func request(_ data: [UInt8]) -> String? {
        for decoder in decoders { _ = decoder.decode(data) }
        guard let value = try? MessagePackDecoder.decode(data) else { return nil }
        let once = MessagePackWriter.encode(value)
        guard let again = try? MessagePackDecoder.decode(once) else {
            return "a decoded value does not decode after re-encoding"
        }
        if MessagePackWriter.encode(again) != once { return "re-encoding a decoded value is not stable" }
        return nil
    }

    /// A byte stream through the frame reader (read in small pieces from a pipe) and every
    /// payload through the request decoder; the events must be those of a reference splitter.
    static func frames(_ data: [UInt8]) -> String? {
        let input = Array(data.prefix(1 << 16))  // what one pipe holds without a reader
        for (maxFrame, readSize) in [(64, 16), (1 << 20, 7)] {
            let expected = referenceFrames(input, maxFrame: maxFrame)
            guard let got = readFrames(input, maxFrame: maxFrame, readSize: readSize) else { return nil }
            if got != expected {
                return "FrameReader(maxFrame: \(maxFrame), readSize: \(readSize)) gave \(got.count) events, "
                    + "the reference \(expected.count)"
            }
            for case .frame(let payload) in got { _ = decoders[0].decode(payload) }
        }
        return nil
    }

    private static func readFrames(_ input: [UInt8], maxFrame: Int, readSize: Int) -> [FrameEvent]? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        defer { close(fds[0]) }
        var off = 0
        while off < input.count {
            let n = input.withUnsafeBytes { write(fds[1], $0.baseAddress.map { $0 + off }, input.count - off) }
            if n <= 0 { break }
            off += n
        }
        close(fds[1])
        guard off == input.count else { return nil }
        var reader = FrameReader(fd: fds[0], maxFrame: maxFrame, readSize: readSize)
        var events: [FrameEvent] = []
        // Every event but the last consumes at least 4 bytes, so this bound is never reached
        // unless the reader loops.
        for _ in 0...(input.count / 4 + 2) {
            let e = reader.next()
            events.append(e)
            switch e {
            case .frame, .empty, .tooLarge: continue
            default: return events
            }
        }
        events.append(.readError(-1))
        return events
    }

    static func referenceFrames(_ input: [UInt8], maxFrame: Int) -> [FrameEvent] {
        var events: [FrameEvent] = []
        var pos = 0
        while true {
            let left = input.count - pos
            if left == 0 { return events + [.end] }
            if left < 4 { return events + [.truncated] }
            let n = Int(input[pos]) << 24 | Int(input[pos + 1]) << 16 | Int(input[pos + 2]) << 8 | Int(input[pos + 3])
            pos += 4
            if n == 0 {
                events.append(.empty)
            } else if n > maxFrame {
                events.append(.tooLarge(declared: UInt32(truncatingIfNeeded: n)))
                if n > input.count - pos { return events + [.truncatedWhileSkipping] }
                pos += n
            } else {
                if n > input.count - pos { return events + [.truncated] }
                events.append(.frame(Array(input[pos..<(pos + n)])))
                pos += n
            }
        }
    }

    // MARK: - Search and JSON Lines

    /// Byte 0: options (bit 0 ignore_case, 1 whole_word, 2 offsets, 3 words, 4-5 context,
    /// 6-7 max_offsets 0/1/3/1000); byte 1: term count (1-4); then per term a length byte
    /// (1-16) and its bytes; the rest is the text. The whole-text count and a chunked scan must
    /// agree, with and without the exact-term path; with exact matching, counts and offsets must be
    /// those of a naive scan.
    static func search(_ data: [UInt8]) -> String? {
        guard data.count >= 2 else { return nil }
        let flags = data[0]
        var options = SearchOptions()
        options.ignoreCase = flags & 1 != 0
        options.wholeWord = flags & 2 != 0
        options.offsets = flags & 4 != 0
        options.words = flags & 8 != 0
        options.context = Int(flags >> 4 & 3)
        options.maxOffsets = [0, 1, 3, 1000][Int(flags >> 6)]
        var pos = 2
        var terms: [[UInt8]] = []
        for _ in 0..<(Int(data[1] % 4) + 1) {
            guard pos < data.count else { break }
            let n = Int(data[pos] % 16) + 1
            pos += 1
            guard n <= data.count - pos else { break }
            terms.append(Array(data[pos..<(pos + n)]))
            pos += n
        }
        guard !terms.isEmpty, let plan = try? SearchPlan(terms: terms, options: options) else { return nil }
        let text = Array(data[pos...])
        let whole = plan.count(text)
        var rng = SplitMix(seed: fnv1a(data))
        var scanner = plan.makeScanner()
        var i = 0
        while i < text.count {
            let n = min(text.count - i, Int(rng.next() % 9) + 1)
            text.withUnsafeBytes { scanner.feed(UnsafeRawBufferPointer(rebasing: $0[i..<(i + n)])) }
            i += n
        }
        let chunked = scanner.finish()
        if chunked != whole { return "search: a chunked scan gives \(chunked), the whole text \(whole)" }
        // Short frequent terms have a path of their own; without it the result must be the same.
        if plan.hasExactTerms, let anchored = try? SearchPlan(terms: terms, options: options, exactLimit: 0),
            anchored.count(text) != whole
        {
            return "search: the exact-term path and the anchored prefilter disagree"
        }
        // ignore_case leaves caseless terms byte for byte too.
        for (t, term) in terms.enumerated() where !options.ignoreCase || TextUnits.isCaseless(term) {
            let naive = naiveOffsets(of: term, in: text)
            if options.wholeWord {
                if whole.counts[t] > naive.count { return "search: whole_word found more than exact matching" }
            } else {
                if whole.counts[t] != naive.count {
                    return "search: count \(whole.counts[t]), naive \(naive.count)"
                }
                if options.offsets, let offs = whole.offsets, offs[t] != Array(naive.prefix(options.maxOffsets)) {
                    return "search: offsets differ from a naive scan"
                }
            }
        }
        if options.words {
            let naive = text.split(whereSeparator: { $0 == 0x20 || (0x09...0x0d).contains($0) }).count
            if whole.words != naive { return "search: words \(String(describing: whole.words)), naive \(naive)" }
        }
        return nil
    }

    private static func naiveOffsets(of term: [UInt8], in text: [UInt8]) -> [Int] {
        var out: [Int] = []
        var i = 0
        while term.count <= text.count - i {
            if text[i..<(i + term.count)].elementsEqual(term) {
                out.append(i)
                i += term.count
            } else {
                i += 1
            }
        }
        return out
    }

    /// A JSON Lines line (`cryptcount frame`): parsing must not crash, and what parses must
    /// render to text that parses back to the same value.
    static func jsonLines(_ data: [UInt8]) -> String? {
        guard let value = try? JSONLines.parse(data) else { return nil }
        let text = JSONLines.render(value)
        guard let again = try? JSONLines.parse(text) else { return "jsonl: a rendered value does not parse" }
        if MessagePackWriter.encode(again) != MessagePackWriter.encode(value) {
            return "jsonl: render/parse is not stable"
        }
        return nil
    }

    // MARK: - Secrets

    /// The first byte picks a cipher and a shape; the rest is the secret. Parsing must not
    /// crash, and an error message must not quote the secret.
    static func secret(_ data: [UInt8]) -> String? {
        guard let selector = data.first else { return nil }
        let body = Array(data.dropFirst())
        let kinds = CipherKind.allCases
        let cipher = kinds[Int(selector & 0x07) % kinds.count]
        let input: SecretInput
        switch selector >> 3 & 0x03 {
        case 0: input = .text(copying: body)
        case 1: input = .bytes(copying: body)
        case 2:
            input = .list(
                body.split(separator: 0x0a, omittingEmptySubsequences: false).prefix(8).map {
                    .text(copying: Array($0))
                })
        default:
            let cut = body.firstIndex(of: 0x0a) ?? body.endIndex
            input = .map([
                "identities": .text(copying: Array(body[..<cut])),
                "passphrase": .text(copying: Array(body[cut...].dropFirst())),
            ])
        }
        do throws(SecretError) {
            _ = try UnlockedKey.make(kind: cipher, secret: input, options: CipherOptions())
        } catch {
            let message = Array(error.message.utf8)
            if body.count >= 8, contains(message, body) { return "a \(cipher.name) secret error quotes the secret" }
        }
        return nil
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }

    // MARK: - OpenPGP key files

    /// A `private-keys-v1.d` file through the extended-format converter and the OCB unwrap
    /// (with a small S2K cap, so an input cannot ask for seconds of hashing). What converts
    /// must be one well-formed canonical S-expression.
    static func gnupgKey(_ data: [UInt8]) -> String? {
        _ = OpenPGPSniffer.looksLikeOpenPGP(data)
        guard let key = GnuPGKeyFile.canonicalKey(data) else { return nil }
        if data.first != UInt8(ascii: "(") {
            var i = 0
            guard GnuPGProtectedKey.parse(key, &i) != nil, i == key.count else {
                return "gnupg-key: the converted key is not one canonical S-expression"
            }
        }
        _ = GnuPGProtectedKey.unprotect(key, passphrase: SecretBytes(Array("pw".utf8)), maxCount: 1 << 16)
        return nil
    }

    // MARK: - Cipher file parsers

    /// Fixed test keys: the secrets of the cipher fixtures (Tests/Fixtures/ciphers), so their
    /// files are useful seeds. Test material only.
    static let keys: [String: any CipherKey] = {
        var out: [String: any CipherKey] = [:]
        let secrets: [(String, SecretInput)] = [
            ("biographer", .text(copying: Array("hunter2".utf8))),
            ("biographer-v0", .text(copying: Array("hunter2".utf8))),
            ("fernet", .text(copying: Array("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=".utf8))),
            (
                "age",
                .text(copying: Array("AGE-SECRET-KEY-1HU7ZNEEG4KH4SZ358GTD9YJETCRXXKM7YDQDQRSZD0E7W4YV4TQQJK5MZQ".utf8))
            ),
            ("openssl", .text(copying: Array("correct horse battery staple".utf8))),
            ("openpgp", .text(copying: Array("correct horse battery staple".utf8))),
        ]
        for (cipher, secret) in secrets {
            out[cipher] = try? CipherKind(rawValue: cipher)?.makeKey(secret: secret)
        }
        return out
    }()

    private enum Outcome: Equatable, CustomStringConvertible {
        case plain([UInt8])
        case badFormat(String)
        case decryptFailed(String)

        static func == (a: Outcome, b: Outcome) -> Bool {
            switch (a, b) {
            case (.plain(let x), .plain(let y)): x == y
            case (.badFormat, .badFormat), (.decryptFailed, .decryptFailed): true
            default: false
            }
        }

        var description: String {
            switch self {
            case .plain(let p): "\(p.count) bytes of plaintext"
            case .badFormat(let m): "bad_format (\(m))"
            case .decryptFailed(let m): "decrypt_failed (\(m))"
            }
        }
    }

    /// A file decrypted whole and streamed in pseudo-random chunks (seeded by the input, so a
    /// replay is exact): both must agree on success, failure kind and plaintext.
    static func cipherFile(_ key: any CipherKey, _ data: [UInt8]) -> String? {
        var whole: [UInt8] = []
        let first: Outcome = data.withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try key.decrypt(whole: raw, into: &whole)
                return .plain(whole)
            } catch {
                return outcome(error)
            }
        }
        var rng = SplitMix(seed: fnv1a(data))
        let chunked = stream(key, data) { _ in
            rng.next() & 1 == 0 ? Int(rng.next() % 97) + 1 : Int(rng.next() % 70_000) + 1
        }
        if chunked != first { return "\(key.cipherName): chunked streaming gives \(chunked), whole-file \(first)" }
        if data.count <= 4096 {
            let bytewise = stream(key, data) { _ in 1 }
            if bytewise != first {
                return "\(key.cipherName): byte-by-byte streaming gives \(bytewise), whole-file \(first)"
            }
        }
        return nil
    }

    private static func stream(_ key: any CipherKey, _ data: [UInt8], nextSize: (Int) -> Int) -> Outcome {
        var decryptor = key.makeStreamDecryptor()
        var out: [UInt8] = []
        return data.withUnsafeBytes { raw -> Outcome in
            var pos = 0
            do throws(CipherFailure) {
                while pos < raw.count {
                    let n = max(1, min(nextSize(raw.count - pos), raw.count - pos))
                    try decryptor.feed(UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + n)])) {
                        out.append(contentsOf: $0)
                    }
                    pos += n
                }
                try decryptor.finish { out.append(contentsOf: $0) }
                return .plain(out)
            } catch {
                return outcome(error)
            }
        }
    }

    private static func outcome(_ f: CipherFailure) -> Outcome {
        switch f {
        case .badFormat(let m): .badFormat(m)
        case .decryptFailed(let m): .decryptFailed(m)
        }
    }

    private static func fnv1a(_ data: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    private struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }
}

extension FuzzHarness {
    /// Starting inputs for a target: well-formed examples the fuzzer can mutate (the cipher
    /// fixtures in Tests/Fixtures/ciphers are added by `make fuzz` too).
    /// The pattern compiler and the regex scan: `flags, pattern length, pattern, text`. A pattern
    /// is compiled or refused (naming index 0 and a position inside it); a compiled one gives the
    /// same result for any chunking, and offsets that increase.
    static func regex(_ data: [UInt8]) -> String? {
        guard data.count >= 2 else { return nil }
        let flags = data[0]
        var options = SearchOptions(regex: true)
        options.ignoreCase = flags & 1 != 0
        options.wholeWord = flags & 2 != 0
        options.offsets = flags & 4 != 0
        options.context = Int(flags >> 4 & 3)
        let n = min(Int(data[1]), data.count - 2)
        let pattern = Array(data[2..<(2 + n)])
        let text = Array(data[(2 + n)...])
        let plan: SearchPlan
        do throws(SearchPlanError) {
            plan = try SearchPlan(terms: [pattern], options: options)
        } catch {
            switch error {
            case .emptyMatch(let i), .emptyTerm(let i):
                return i == 0 ? nil : "regex: a refusal names term \(i)"
            case .badPattern(let i, let position, _):
                return i == 0 && position <= pattern.count
                    ? nil : "regex: bad position \(position) for \(pattern.count) bytes"
            }
        }
        let whole = plan.count(text)
        if let offsets = whole.offsets?.first, zip(offsets, offsets.dropFirst()).contains(where: { $0 >= $1 }) {
            return "regex: offsets do not increase"
        }
        var rng = SplitMix(seed: fnv1a(data))
        var scanner = plan.makeScanner()
        var i = 0
        while i < text.count {
            let k = min(text.count - i, Int(rng.next() % 9) + 1)
            text.withUnsafeBytes { scanner.feed(UnsafeRawBufferPointer(rebasing: $0[i..<(i + k)])) }
            i += k
        }
        let chunked = scanner.finish()
        return chunked == whole ? nil : "regex: a chunked scan gives \(chunked), the whole text \(whole)"
    }

    public static func seeds(_ target: String) -> [[UInt8]] {
        let text = Array("Dear diary, the rain. The rain again.\nThe theme of the thesis.\n".utf8)
        switch target {
        case "request":
            return sampleRequests.map { MessagePackWriter.encode($0) }
        case "frames":
            let frames = sampleRequests.map { v -> [UInt8] in
                let p = MessagePackWriter.encode(v)
                return FrameHeader.encode(p.count) + p
            }
            return frames + [frames.joined().map { $0 }, [0, 0, 0, 0] + (frames.first ?? []), [0, 0, 1, 0, 0x41]]
        case "secret":
            return [
                [0x01] + Array("hunter2".utf8),
                [0x03] + Array("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=".utf8),
                [0x04]
                    + Array(
                        "# comment\nAGE-SECRET-KEY-1HU7ZNEEG4KH4SZ358GTD9YJETCRXXKM7YDQDQRSZD0E7W4YV4TQQJK5MZQ\n".utf8),
                [0x1c] + Array("AGE-SECRET-KEY-1HU7ZNEEG4KH4SZ358GTD9YJETCRXXKM7YDQDQRSZD0E7W4YV4TQQJK5MZQ\npass".utf8),
                [0x13] + Array("a\nb\ncw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=".utf8),
            ]
        case "search":
            return [
                [0x00, 0x01, 0x02] + Array("the theme of the thesis".utf8),
                [0x0f, 0x02, 0x02] + Array("caK".utf8) + [0x02] + Array("Straße \u{212A}elvin cat_cat ca".utf8),
                [0xfc, 0x00, 0x02] + Array("cat\nthe cat sat on\tthe mat cat".utf8),
            ]
        case "regex":
            let patterns = [#"\b\w+ing\b"#, "rain(y|fall|ed)?", #"(?i)h[eé]ron|\d{2,}"#, "(a|aa)*b", #"[^\s]+$"#, "x("]
            return patterns.enumerated().map { k, p in
                [UInt8(k * 37 & 0xff), UInt8(p.utf8.count)] + Array(p.utf8) + text + [0xFF, 0xC3] + Array("é a-b".utf8)
            }
        case "jsonl":
            return [
                Array(#"{"id":1,"op":"count","files":["a",{"$bin":"/w=="}],"terms":["x"],"max_offsets":-5}"#.utf8),
                Array(#"[1.5e300,null,true,{"$ext":[-3,"AQI="]},"\u00e9\ud83d\ude00"]"#.utf8),
            ]
        case "biographer", "biographer-v0":
            guard let key = keys[target] as? BiographerKey else { return [] }
            let iv: [UInt8] = target == "biographer" ? [9, 8, 7, 6, 5, 4, 3, 2] : []
            return [key.encrypt(text, iv: iv), key.encrypt([], iv: iv), key.encrypt(Array(text.prefix(3)), iv: iv)]
        case "fernet":
            guard let key = keys[target] as? FernetKey else { return [] }
            let iv = [UInt8](repeating: 7, count: 16)
            return [text, []].compactMap { try? Array(key.encrypt($0, timestamp: 1_700_000_000, iv: iv).utf8) }
        case "openssl":
            guard let key = keys[target] as? OpenSSLKey else { return [] }
            let salt: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
            let binary = [text, [], Array(repeating: 0x61, count: 40_000)].compactMap {
                try? key.encrypt($0, salt: salt)
            }
            // `openssl enc -a`: the same files as base64 in 64-character lines.
            let armored = binary.prefix(2).map { file -> [UInt8] in
                let b = Array(Base64.encode(file).utf8)
                return stride(from: 0, to: b.count, by: 64).flatMap { b[$0..<min($0 + 64, b.count)] + [0x0A] }
            }
            return binary + armored
        default:
            return []
        }
    }

    private static var sampleRequests: [MessagePackValue] {
        func req(_ fields: [(String, MessagePackValue)]) -> MessagePackValue {
            .map(fields.map { MessagePackPair(.text($0.0), $0.1) })
        }
        let files: MessagePackValue = .array([.text("/tmp/a.txt"), .binary([0x2f, 0xff, 0x00])])
        return [
            req([("id", .uint(1)), ("op", .text("hello"))]),
            req([("id", .text("s")), ("op", .text("stats"))]),
            req([
                ("id", .uint(3)), ("op", .text("unlock")), ("name", .text("k")), ("cipher", .text("openssl")),
                ("secret", .text("pw")), ("iter", .uint(1000)),
            ]),
            req([("id", .uint(4)), ("op", .text("forget")), ("name", .text("k"))]),
            req([("id", .uint(5)), ("op", .text("cancel")), ("target", .uint(4))]),
            req([("id", .uint(6)), ("op", .text("shutdown"))]),
            req([
                ("id", .uint(7)), ("op", .text("count")), ("files", files),
                ("terms", .array([.text("rain"), .binary([0xff])])),
                ("cipher", .text("fernet")), ("secret", .array([.text("k1"), .text("k2")])),
                ("ignore_case", .bool(true)),
                ("whole_word", .bool(false)), ("offsets", .bool(true)), ("max_offsets", .uint(10)),
                ("context", .uint(2)),
                ("words", .bool(true)), ("ordered", .bool(true)), ("ttl", .uint(60)),
            ]),
            req([
                ("id", .uint(8)), ("op", .text("count")), ("files", files), ("cipher", .text("auto")),
                ("keys", .array([.text("a"), .text("b")])),
            ]),
            req([("id", .uint(9)), ("op", .text("count")), ("files", files), ("key", .text("k")), ("iter", .int(-1))]),
            req([
                ("id", .uint(10)), ("op", .text("unlock")), ("name", .text("a")), ("cipher", .text("age")),
                (
                    "secret",
                    .map([
                        MessagePackPair(.text("identities"), .array([.text("x")])),
                        MessagePackPair(.text("passphrase"), .text("p")),
                    ])
                ),
            ]),
        ]
    }
}
