import Crypto
import Foundation

/// Decrypts one age file as it arrives: binary, or ASCII armor (detected from the first byte:
/// `a` is binary, whitespace or `-` is armor). Plaintext is released one authenticated 64 KiB
/// chunk at a time; memory is bounded by the header (at most `maxHeaderBytes`) plus one chunk.
struct AgeDecryptor: StreamDecryptor {
    let owner: AgeKey
    private enum Mode { case undecided, binary, armored }
    private var mode = Mode.undecided
    private var armor = AgeArmorDecoder()
    private var core = AgeBinaryDecoder()
    private var decoded: [UInt8] = []

    init(owner: AgeKey) { self.owner = owner }

    mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        if mode == .undecided {
            guard let first = chunk.first else { return }
            if first == UInt8(ascii: "a") {
                mode = .binary
            } else if first == UInt8(ascii: "-") || AgeArmorDecoder.isSpace(first) {
                mode = .armored
            } else {
                throw .badFormat("not an age file")
            }
        }
        switch mode {
        case .undecided:
            return
        case .binary:
            try core.feed(chunk, owner: owner, emit: emit)
        case .armored:
            decoded.removeAll(keepingCapacity: true)
            try armor.feed(chunk, into: &decoded)
            try feedDecoded(emit: emit)
        }
    }

    mutating func finish(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        switch mode {
        case .undecided:
            throw .badFormat("empty file, not an age file")
        case .binary:
            try core.finish(owner: owner, emit: emit)
        case .armored:
            decoded.removeAll(keepingCapacity: true)
            try armor.finish(into: &decoded)
            try feedDecoded(emit: emit)
            do throws(CipherFailure) {
                try core.finish(owner: owner, emit: emit)
            } catch {
                throw Self.insideArmor(error)
            }
        }
    }

    private mutating func feedDecoded(emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        guard !decoded.isEmpty else { return }
        var failure: CipherFailure?
        let bytes = decoded
        bytes.withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try core.feed(raw, owner: owner, emit: emit)
            } catch {
                failure = error
            }
        }
        if let failure { throw Self.insideArmor(failure) }
    }

    /// A file with a valid armor begin line is an age file: what is wrong inside is
    /// decrypt_failed. (Otherwise the code would depend on where reads split the file: the
    /// armor's own errors further on surface first when more of it is read at once.)
    private static func insideArmor(_ failure: CipherFailure) -> CipherFailure {
        if case .badFormat(let m) = failure { return .decryptFailed("armored content: \(m)") }
        return failure
    }
}

/// The binary age format: header lines until the MAC line, then a 16-byte nonce and the
/// STREAM payload (64 KiB plaintext chunks, ChaCha20-Poly1305, counter nonce with a final flag).
struct AgeBinaryDecoder {
    static let maxHeaderBytes = 1 << 20
    static let chunkPlain = 64 * 1024
    static let chunkSealed = chunkPlain + 16

    private var inHeader = true
    private var header: [UInt8] = []
    private var lineStart = 0
    private var versionChecked = false
    private var payloadKey: SymmetricKey?
    private var nonce: [UInt8] = []
    private var sealed: [UInt8] = []
    private var counter: UInt64 = 0

    /// The payload key, once the header and the payload nonce are read (`AgeStreamPayload`).
    var streamKey: SymmetricKey? { !inHeader && nonce.count == 16 ? payloadKey : nil }

    mutating func feed(
        _ input: UnsafeRawBufferPointer, owner: AgeKey, emit: (UnsafeRawBufferPointer) -> Void
    ) throws(CipherFailure) {
        var rest = input[...]
        // Room for a one-recipient header without growing (most files).
        if inHeader && header.isEmpty { header.reserveCapacity(512) }
        while inHeader, !rest.isEmpty {
            if let nl = rest.firstIndex(of: 0x0a) {
                header.append(contentsOf: rest[rest.startIndex...nl])
                rest = rest[(nl + 1)...]
                try checkSize()
                try endOfLine(owner: owner)
                lineStart = header.count
            } else {
                header.append(contentsOf: rest)
                rest = rest[rest.endIndex...]
                try checkSize()
            }
        }
        guard !inHeader else { return }
        try feedPayload(rest, emit: emit)
    }

    /// Rejects non-age data early and caps the header's size.
    private mutating func checkSize() throws(CipherFailure) {
        if !versionChecked {
            let n = min(header.count, AgeHeaderParser.versionPrefix.count)
            guard header[0..<n].elementsEqual(AgeHeaderParser.versionPrefix[0..<n]) else {
                throw .badFormat("not an age file")
            }
            if header.count > 256 { throw .badFormat("not an age file (version line too long)") }
        }
        if header.count > Self.maxHeaderBytes { throw .decryptFailed("the age header is too large") }
    }

    private mutating func endOfLine(owner: AgeKey) throws(CipherFailure) {
        let line = header[lineStart..<(header.count - 1)]
        if !versionChecked {
            // The v1 line with a CR LF end: an age v1 file whose header breaks the spec's strict
            // rules, like a CR elsewhere in it (not another version).
            if line.last == 0x0D && line.dropLast().elementsEqual(AgeHeaderParser.versionLine) {
                throw .decryptFailed("malformed age header (a CR before the version line's newline)")
            }
            guard line.elementsEqual(AgeHeaderParser.versionLine) else {
                throw .badFormat("unsupported age version (only age-encryption.org/v1)")
            }
            versionChecked = true
            return
        }
        guard line.starts(with: AgeHeaderParser.macPrefix) else { return }
        let parsed = try AgeHeaderParser.parse(header)
        let fileKey = try owner.fileKey(for: parsed, bytes: header)
        inHeader = false
        header = []
        payloadKey = fileKey
    }

    private mutating func feedPayload(
        _ input: Slice<UnsafeRawBufferPointer>, emit: (UnsafeRawBufferPointer) -> Void
    ) throws(CipherFailure) {
        var rest = input
        if nonce.count < 16 {
            let take = min(16 - nonce.count, rest.count)
            nonce.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            if nonce.count == 16, let fileKey = payloadKey {
                payloadKey = fileKey.withUnsafeBytes { k in
                    nonce.withUnsafeBytes { salt in
                        AgeKey.payloadInfo.withUnsafeBytes { BoringCrypto.hkdfSHA256(secret: k, salt: salt, info: $0) }
                    }
                }
                guard payloadKey != nil else { throw .decryptFailed("the age payload key cannot be derived") }
            }
        }
        while !rest.isEmpty {
            // A full chunk with more data after it cannot be the last one.
            if sealed.count == Self.chunkSealed { try openChunk(final: false, emit: emit) }
            let take = min(Self.chunkSealed - sealed.count, rest.count)
            sealed.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
        }
    }

    private mutating func openChunk(final: Bool, emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        guard let key = payloadKey, sealed.count >= 16 else {
            throw .decryptFailed("truncated age payload")
        }
        if final && sealed.count == 16 && counter > 0 {
            throw .decryptFailed("the last age payload chunk is empty")
        }
        // The STREAM nonce: 11-byte big-endian counter, then the last-chunk flag.
        var nonceBytes = (UInt64(0), UInt32(0))
        let opened = withUnsafeMutableBytes(of: &nonceBytes) { n -> Int? in
            for i in 0..<8 { n[3 + i] = UInt8(truncatingIfNeeded: counter >> UInt64(56 - 8 * i)) }
            n[11] = final ? 1 : 0
            // Opened in place: `sealed` is this decoder's own buffer, emptied below either way.
            return sealed.withUnsafeMutableBytes { box in
                BoringCrypto.chachaPolyOpenInPlace(box, nonce: UnsafeRawBufferPointer(rebasing: n[0..<12]), key: key)
            }
        }
        guard let opened else {
            sealed.removeAll(keepingCapacity: true)
            throw .decryptFailed(
                "age payload chunk \(counter) does not authenticate (tampered, truncated or trailing data)")
        }
        guard counter < UInt64.max else { throw .decryptFailed("too many age payload chunks") }
        counter += 1
        sealed.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<opened])) }
        sealed.removeAll(keepingCapacity: true)
    }

    mutating func finish(owner: AgeKey, emit: (UnsafeRawBufferPointer) -> Void) throws(CipherFailure) {
        if inHeader {
            if header.isEmpty { throw .badFormat("empty file, not an age file") }
            if !versionChecked { throw .badFormat("not an age file") }
            throw .decryptFailed("truncated age header")
        }
        guard nonce.count == 16 else { throw .decryptFailed("truncated age file: the payload nonce is missing") }
        guard !sealed.isEmpty else { throw .decryptFailed("truncated age payload: no final chunk") }
        try openChunk(final: true, emit: emit)
    }
}

/// The strict ASCII armor of the age spec (RFC 7468 strict PEM, label `AGE ENCRYPTED FILE`):
/// whitespace only before the begin line and after the end line, lines of exactly 64 base64
/// characters except a last one of 1-64, canonical padding, LF or CRLF line ends, nothing else.
struct AgeArmorDecoder {
    static let beginLine: [UInt8] = Array("-----BEGIN AGE ENCRYPTED FILE-----".utf8)
    static let endLine: [UInt8] = Array("-----END AGE ENCRYPTED FILE-----".utf8)

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d }

    private enum State { case leading, begin, body, trailing }
    private var state = State.leading
    private var line: [UInt8] = []
    private var sawLastDataLine = false

    static func armorError(_ what: String) -> CipherFailure { .decryptFailed("malformed age armor: \(what)") }

    mutating func feed(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(CipherFailure) {
        var i = 0
        let n = input.count
        while i < n {
            switch state {
            case .leading:
                if Self.isSpace(input[i]) {
                    i += 1
                } else {
                    state = .begin
                }
            case .trailing:
                guard Self.isSpace(input[i]) else { throw Self.armorError("data after the end line") }
                i += 1
            case .begin, .body:
                var j = i
                while j < n, input[j] != 0x0a { j += 1 }
                let segment = UnsafeRawBufferPointer(rebasing: input[i..<j])
                let complete = j < n
                if line.isEmpty && complete {
                    // The usual case: the whole line is in this piece; no copy.
                    try checkLength(segment.count)
                    try endOfLine(segment, into: &out)
                } else {
                    line.append(contentsOf: segment)
                    try checkLength(line.count)
                    if complete {
                        let whole = line
                        line.removeAll(keepingCapacity: true)
                        var failure: CipherFailure?
                        whole.withUnsafeBytes { raw in
                            do throws(CipherFailure) {
                                try endOfLine(raw, into: &out)
                            } catch {
                                failure = error
                            }
                        }
                        if let failure { throw failure }
                    }
                }
                i = complete ? j + 1 : n
            }
        }
    }

    /// The begin line, or 64 columns, plus an optional CR.
    private func checkLength(_ count: Int) throws(CipherFailure) {
        if state == .begin && count > Self.beginLine.count + 1 { throw .badFormat("not an age armor begin line") }
        if count > 65 { throw Self.armorError("line too long") }
    }

    private mutating func endOfLine(_ raw: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(CipherFailure) {
        var l = raw
        if l.last == 0x0d { l = UnsafeRawBufferPointer(rebasing: l.dropLast()) }
        if state == .begin {
            guard l.elementsEqual(Self.beginLine) else { throw .badFormat("not an age armor begin line") }
            state = .body
            return
        }
        if l.count == Self.endLine.count && l.elementsEqual(Self.endLine) {
            state = .trailing
            return
        }
        guard !sawLastDataLine else { throw Self.armorError("a line follows the short last line") }
        guard !l.isEmpty, l.count <= 64, l.count % 4 == 0 else { throw Self.armorError("bad line length") }
        guard Base64.decode(l, alphabet: .standard, padding: .required, appendingTo: &out) else {
            throw Self.armorError("bad base64")
        }
        if l.count < 64 || l.last == UInt8(ascii: "=") { sawLastDataLine = true }
    }

    mutating func finish(into out: inout [UInt8]) throws(CipherFailure) {
        switch state {
        case .leading:
            throw .badFormat("empty file, not an age file")
        case .trailing:
            return
        case .begin, .body:
            // The end line may lack its line feed.
            var l = line[...]
            if l.last == 0x0d { l = l.dropLast() }
            if state == .body && l.elementsEqual(Self.endLine) {
                state = .trailing
                return
            }
            if state == .begin { throw .badFormat("not an age armor begin line") }
            throw Self.armorError("no end line")
        }
    }
}
