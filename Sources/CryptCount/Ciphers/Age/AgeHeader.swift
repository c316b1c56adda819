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

    /// `header` holds the whole header and ends with the LF of the MAC line.
    static func parse(_ header: [UInt8]) throws(CipherFailure) -> AgeHeader {
        // Line boundaries: every line ends with LF.
        var lines: [Range<Int>] = []
        var start = 0
        for i in header.indices where header[i] == 0x0a {
            lines.append(start..<i)
            start = i + 1
        }
        guard start == header.count, let first = lines.first, header[first].elementsEqual(versionLine) else {
            throw malformed("bad version line")
        }
        var stanzas: [AgeStanza] = []
        var k = 1
        while k < lines.count {
            let line = header[lines[k]]
            if line.starts(with: Array("---".utf8)) {
                // The MAC line: "--- " and 43 base64 characters, and it must be the last line.
                guard k == lines.count - 1 else { throw malformed("data after the MAC line") }
                guard line.count == 4 + 43, line[line.startIndex + 3] == 0x20,
                    let mac = Base64.decode(line.dropFirst(4), alphabet: .standard, padding: .forbidden),
                    mac.count == 32
                else {
                    throw malformed("bad MAC line")
                }
                guard !stanzas.isEmpty else { throw malformed("no recipient stanza") }
                return AgeHeader(stanzas: stanzas, mac: mac, macCoverage: lines[k].lowerBound + 3)
            }
            guard line.starts(with: Array("-> ".utf8)) else { throw malformed("expected a stanza or the MAC line") }
            let args = line.dropFirst(3).split(separator: 0x20, omittingEmptySubsequences: false)
            guard !args.isEmpty else { throw malformed("stanza without arguments") }
            for arg in args {
                guard !arg.isEmpty, arg.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
                    throw malformed("bad stanza argument")
                }
            }
            // Body lines: full 64-column lines, then one shorter (possibly empty) final line. A
            // `---` or `->` line where a body line is due fails the alphabet check.
            var body64: [UInt8] = []
            k += 1
            while true {
                guard k < lines.count else { throw malformed("truncated stanza") }
                let bodyLine = header[lines[k]]
                guard bodyLine.count <= 64, bodyLine.allSatisfy(Base64.isStandardCharacter) else {
                    throw malformed("bad stanza body line")
                }
                body64.append(contentsOf: bodyLine)
                k += 1
                if bodyLine.count < 64 { break }
            }
            guard let body = Base64.decode(body64, alphabet: .standard, padding: .forbidden) else {
                throw malformed("stanza body is not canonical base64")
            }
            stanzas.append(AgeStanza(args: args.map { Array($0) }, body: body))
        }
        throw malformed("missing MAC line")
    }
}
