#if canImport(Glibc)
    import Glibc
#endif

/// One recipient stanza: `-> arg arg ...` then a base64 body wrapped at 64 columns.
struct AgeStanza {
    /// All arguments, the type first.
    var args: [[UInt8]]
    var body: [UInt8]

    var type: [UInt8] { args.first ?? [] }
}

/// A parsed age v1 header (the bytes up to and including the MAC line).
struct AgeHeader {
    var stanzas: [AgeStanza]
    var mac: [UInt8]
    /// How many leading header bytes the MAC covers: everything up to and including `---`.
    var macCoverage: Int
}

/// Strict parser for the header ABNF of the age spec (c2sp.org/age): every deviation
/// (extra spaces, CR, bad base64, a long or missing final body line) is an error.
enum AgeHeaderParser {
    static let versionLine: [UInt8] = Array("age-encryption.org/v1".utf8)
    static let versionPrefix: [UInt8] = Array("age-encryption.org/".utf8)

    static func malformed(_ what: String) -> CipherFailure { .decryptFailed("malformed age header: \(what)") }

    static let macPrefix: [UInt8] = Array("---".utf8)
    static let stanzaPrefix: [UInt8] = Array("-> ".utf8)

    /// `header` holds the whole header and ends with the LF of the MAC line.
    static func parse(_ header: [UInt8]) throws(CipherFailure) -> AgeHeader {
        let parsed = header.withUnsafeBytes { h -> Result<AgeHeader, CipherFailure> in
            do throws(CipherFailure) {
                return .success(try parse(h))
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }

    /// The parser over the header's bytes, line by line in place: the only copies made are the
    /// stanzas' arguments and decoded bodies and the MAC (each age file's header is parsed once
    /// when it is counted cold, so its allocations show in the per-file cost).
    private static func parse(_ h: UnsafeRawBufferPointer) throws(CipherFailure) -> AgeHeader {
        guard let base = h.baseAddress, h.last == 0x0a else { throw malformed("bad version line") }
        var pos = 0
        // The next line (without its LF), or nil at the end; every line ends with LF.
        func nextLine() -> Range<Int>? {
            guard pos < h.count, let hit = memchr(base + pos, 0x0a, h.count - pos) else { return nil }
            let end = UnsafeRawPointer(hit) - base
            defer { pos = end + 1 }
            return pos..<end
        }
        func bytes(_ r: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: h[r]) }
        guard let first = nextLine(), bytes(first).elementsEqual(versionLine) else {
            throw malformed("bad version line")
        }
        var stanzas: [AgeStanza] = []
        while let r = nextLine() {
            let line = bytes(r)
            if line.starts(with: macPrefix) {
                // The MAC line: "--- " and 43 base64 characters, and it must be the last line.
                guard pos == h.count else { throw malformed("data after the MAC line") }
                var mac: [UInt8] = []
                guard line.count == 4 + 43, line[3] == 0x20,
                    Base64.decode(
                        UnsafeRawBufferPointer(rebasing: line[4...]), alphabet: .standard, padding: .forbidden,
                        appendingTo: &mac),
                    mac.count == 32
                else {
                    throw malformed("bad MAC line")
                }
                guard !stanzas.isEmpty else { throw malformed("no recipient stanza") }
                return AgeHeader(stanzas: stanzas, mac: mac, macCoverage: r.lowerBound + 3)
            }
            guard line.starts(with: stanzaPrefix) else { throw malformed("expected a stanza or the MAC line") }
            var args: [[UInt8]] = []
            var a = 3
            while true {
                var e = a
                while e < line.count && line[e] != 0x20 { e += 1 }
                let arg = line[a..<e]
                guard !arg.isEmpty, arg.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
                    throw malformed("bad stanza argument")
                }
                args.append(Array(arg))
                if e == line.count { break }
                a = e + 1
            }
            // Body lines: full 64-column lines, then one shorter (possibly empty) final line,
            // decoded line by line (a full line is 16 whole groups, so this equals decoding
            // their concatenation). A `---` or `->` line where a body line is due fails the
            // alphabet check.
            var body: [UInt8] = []
            while true {
                guard let b = nextLine() else { throw malformed("truncated stanza") }
                let bodyLine = bytes(b)
                guard bodyLine.count <= 64 else { throw malformed("bad stanza body line") }
                guard Base64.decode(bodyLine, alphabet: .standard, padding: .forbidden, appendingTo: &body) else {
                    if !bodyLine.allSatisfy(Base64.isStandardCharacter) { throw malformed("bad stanza body line") }
                    throw malformed("stanza body is not canonical base64")
                }
                if bodyLine.count < 64 { break }
            }
            stanzas.append(AgeStanza(args: args, body: body))
        }
        throw malformed("missing MAC line")
    }
}
