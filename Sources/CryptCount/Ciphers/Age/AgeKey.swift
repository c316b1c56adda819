import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// `age`: age v1 files (c2sp.org/age), binary or ASCII-armored, for X25519
/// (`AGE-SECRET-KEY-1...`), hybrid post-quantum mlkem768x25519 (`AGE-SECRET-KEY-PQ-1...`) and
/// scrypt (passphrase) recipients. The payload is decrypted chunk by chunk (see
/// `AgeDecryptor`), so memory stays bounded for any file size.
///
/// File keys unwrapped from a header are cached by the header's SHA-256 (a bounded cache in
/// this object), so counting the same files again costs no X25519, ML-KEM or scrypt work.
/// The engine may hand it a group of files first (`prepare(files:)`): their X25519 shares are
/// then computed 8 at a time in SIMD lanes (`X25519Lanes`) and their file keys cached ahead.
package final class AgeKey: CipherKey {
    /// Work factors above 2^22 (4 GiB of scrypt memory) are refused, as age itself does.
    package static let maxScryptLogN = 22

    struct X25519Identity: Sendable {
        let key: Curve25519.KeyAgreement.PrivateKey
        let publicKey: [UInt8]
        /// The same private key as raw bytes, for `X25519Lanes` (batched unwraps).
        let scalar: SecretBytes
    }

    let x25519: [X25519Identity]
    let hybrid: [XWingMLKEM768X25519.PrivateKey]
    let passphrase: SecretBytes?

    enum Unwrapped: Sendable {
        case fileKey(SymmetricKey)
        case noMatch
    }

    /// Header SHA-256 -> unwrap outcome.
    let fileKeys = BoundedCache<Digest256, Unwrapped>(capacity: 4096)
    let scryptGate: ScryptGate
    /// How many scrypt derivations this key has run (tests check the cache with it).
    let scryptRuns = Atomic<Int>(0)

    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> AgeKey
    {
        try AgeKey(secret: secret)
    }

    static let binaryMagic: [UInt8] = Array("age-encryption.org/v1\n".utf8)
    static let armorMagic: [UInt8] = Array("-----BEGIN AGE ENCRYPTED FILE-----".utf8)

    /// The binary header's first line, or the armor's (after leading whitespace, as age allows).
    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool {
        if prefix.starts(with: binaryMagic) { return true }
        guard let first = prefix.firstIndex(where: { !ASCII.isWhitespace($0) }) else { return false }
        return prefix[first...].starts(with: armorMagic)
    }

    package var kind: CipherKind { .age }
    package var mode: DecryptionMode { .streamed }

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        try decryptWholeByStreaming(ciphertext, into: &output)
    }

    /// Identities by their public keys (a public key determines what its private key can
    /// unwrap), in a canonical order, and the passphrase: the same set of identities shares
    /// cache entries however it was written.
    package func fingerprint(into fingerprint: inout KeyFingerprint) {
        let x = x25519.map(\.publicKey).sorted { $0.lexicographicallyPrecedes($1) }
        let h = hybrid.map { Array($0.publicKey.rawRepresentation) }.sorted { $0.lexicographicallyPrecedes($1) }
        fingerprint.add(int: x.count)
        for key in x { fingerprint.add(bytes: key) }
        fingerprint.add(int: h.count)
        for key in h { fingerprint.add(bytes: key) }
        if let passphrase {
            fingerprint.add(int: 1)
            fingerprint.add(passphrase)
        } else {
            fingerprint.add(int: 0)
        }
    }

    package convenience init(secret: SecretInput?) throws(SecretError) {
        try self.init(secret: secret, scryptGate: .shared)
    }

    init(secret: SecretInput?, scryptGate: ScryptGate) throws(SecretError) {
        var texts: [SecretBytes] = []
        var pass: SecretBytes? = nil
        switch secret {
        case .none:
            throw SecretError("an age identity or passphrase is required")
        case .text(let b), .bytes(let b):
            texts = [b]
        case .list(let items):
            texts = try Self.identityTexts(.list(items))
        case .map(let m):
            if m.keys.contains(where: { $0 != "identities" && $0 != "passphrase" }) {
                throw SecretError("an age secret map has only \"identities\" and \"passphrase\"")
            }
            if let ids = m["identities"] { texts = try Self.identityTexts(ids) }
            switch m["passphrase"] {
            case .none: break
            case .text(let b)?, .bytes(let b)?:
                guard !b.isEmpty else { throw SecretError("the age passphrase is empty") }
                pass = b
            default:
                throw SecretError("the age passphrase must be a string or binary")
            }
            guard m["identities"] != nil || pass != nil else {
                throw SecretError("an age secret map needs \"identities\" or \"passphrase\"")
            }
        }
        var x: [X25519Identity] = []
        var h: [XWingMLKEM768X25519.PrivateKey] = []
        for text in texts {
            try text.withBytes { (b) throws(SecretError) in try Self.parseIdentities(b, x25519: &x, hybrid: &h) }
        }
        // Identities that were given must hold at least one key (a passphrase alone is fine).
        if !texts.isEmpty && x.isEmpty && h.isEmpty { throw SecretError("no age identity found") }
        if x.isEmpty && h.isEmpty && pass == nil { throw SecretError("no age identity or passphrase given") }
        x25519 = x
        hybrid = h
        passphrase = pass
        self.scryptGate = scryptGate
    }

    private static func identityTexts(_ value: SecretInput) throws(SecretError) -> [SecretBytes] {
        switch value {
        case .text(let b), .bytes(let b):
            return [b]
        case .list(let items):
            var out: [SecretBytes] = []
            for item in items {
                switch item {
                case .text(let b), .bytes(let b): out.append(b)
                default: throw SecretError("age identities must be strings")
                }
            }
            return out
        case .map:
            throw SecretError("age identities must be a string or an array of strings")
        }
    }

    /// Identity text: one key per line, `#` comments and blank lines allowed.
    static func parseIdentities(
        _ text: UnsafeBufferPointer<UInt8>, x25519: inout [X25519Identity],
        hybrid: inout [XWingMLKEM768X25519.PrivateKey]
    ) throws(SecretError) {
        var lineNumber = 0
        for raw in text.split(separator: 0x0a, omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = ASCII.trimmingWhitespace(raw)
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            // Copied out of the secret's own storage (never shared), so the copies can be wiped.
            guard case (let hrp, var data)? = Bech32.decode(line) else {
                throw SecretError("line \(lineNumber) of the age identities is not an age secret key")
            }
            defer { SecretBytes.wipe(&data) }
            guard data.count == 32 else {
                throw SecretError("line \(lineNumber) of the age identities is not an age secret key")
            }
            switch hrp {
            case "age-secret-key-":
                guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: data) else {
                    throw SecretError("line \(lineNumber) of the age identities is not a valid X25519 key")
                }
                x25519.append(
                    X25519Identity(
                        key: key, publicKey: Array(key.publicKey.rawRepresentation), scalar: SecretBytes(data)))
            case "age-secret-key-pq-":
                guard let key = try? XWingMLKEM768X25519.PrivateKey(seedRepresentation: data, publicKey: nil) else {
                    throw SecretError("line \(lineNumber) of the age identities is not a valid hybrid key")
                }
                hybrid.append(key)
            default:
                throw SecretError("line \(lineNumber) of the age identities is not an age secret key")
            }
        }
    }

    package func makeStreamDecryptor() -> any StreamDecryptor { AgeDecryptor(owner: self) }

    // MARK: Unwrapping the file key

    static let zeroNonce = [UInt8](repeating: 0, count: 12)
    static let headerInfo = Array("header".utf8)
    static let payloadInfo = Array("payload".utf8)
    static let x25519Info = Array("age-encryption.org/v1/X25519".utf8)
    static let scryptSaltPrefix = Array("age-encryption.org/v1/scrypt".utf8)
    static let hybridInfo = Data("age-encryption.org/mlkem768x25519".utf8)
    static let hybridSuite = HPKE.Ciphersuite(kem: .XWingMLKEM768X25519, kdf: .HKDF_SHA256, aead: .chaChaPoly)

    /// The file key for a parsed header, from the cache or by trying every identity against
    /// every recognised stanza. Verifies the header MAC.
    func fileKey(for header: AgeHeader, bytes: [UInt8]) throws(CipherFailure) -> SymmetricKey {
        let digest = bytes.withUnsafeBytes { BoringCrypto.sha256($0) }
        let fileKey: SymmetricKey
        switch fileKeys.value(for: digest) {
        case .fileKey(let k)?:
            fileKey = k
        case .noMatch?:
            throw Self.noMatch
        case nil:
            let result = try unwrap(header)
            fileKeys.insert(result, for: digest)
            guard case .fileKey(let k) = result else { throw Self.noMatch }
            fileKey = k
        }
        // The MAC key lives on the stack only (no SymmetricKey to allocate per file).
        var macKey = SHA256Bytes()
        defer { macKey.wipe() }
        let derived = fileKey.withUnsafeBytes { k in
            Self.headerInfo.withUnsafeBytes {
                BoringCrypto.hkdfSHA256(
                    secret: k, salt: UnsafeRawBufferPointer(start: nil, count: 0), info: $0, into: &macKey)
            }
        }
        let matches =
            derived
            && withUnsafeBytes(of: &macKey.bytes) { key in
                bytes.withUnsafeBytes { b in
                    header.mac.withUnsafeBytes { mac in
                        header.macCoverage <= b.count
                            && BoringCrypto.hmacSHA256Matches(
                                key: key, data: UnsafeRawBufferPointer(rebasing: b[0..<header.macCoverage]), mac: mac)
                    }
                }
            }
        guard matches else {
            throw .decryptFailed("the age header MAC does not match (tampered header)")
        }
        return fileKey
    }

    static let noMatch = CipherFailure.decryptFailed("no identity matches any recipient of this age file")

    static func malformed(_ what: String) -> CipherFailure { AgeHeaderParser.malformed(what) }

    /// `precomputed(stanza, identity)`: a shared secret computed ahead for that X25519 stanza
    /// and identity (by `prepare(files:)`), believed only if it opens the stanza.
    private func unwrap(
        _ header: AgeHeader, precomputed: (Int, Int) -> UnsafeRawBufferPointer? = { _, _ in nil }
    ) throws(CipherFailure) -> Unwrapped {
        // Check every recognised stanza's shape first, so a malformed header fails the same
        // way whichever identities the key holds.
        let hasScrypt = header.stanzas.contains { $0.type.elementsEqual("scrypt".utf8) }
        if hasScrypt && header.stanzas.count > 1 { throw Self.malformed("an scrypt stanza must be alone") }
        for s in header.stanzas {
            switch String(decoding: s.type, as: UTF8.self) {
            case "X25519":
                guard s.args.count == 2,
                    Self.decodes(s.args[1], toCount: 32),
                    s.body.count == 32
                else { throw Self.malformed("bad X25519 stanza") }
            case "mlkem768x25519":
                guard s.args.count == 2,
                    Self.decodes(s.args[1], toCount: 1120),
                    s.body.count == 32
                else { throw Self.malformed("bad mlkem768x25519 stanza") }
            case "scrypt":
                guard s.args.count == 3,
                    Self.decodes(s.args[1], toCount: 16),
                    Self.workFactor(s.args[2]) != nil,
                    s.body.count == 32
                else { throw Self.malformed("bad scrypt stanza") }
            default:
                continue
            }
        }
        for (index, s) in header.stanzas.enumerated() {
            switch String(decoding: s.type, as: UTF8.self) {
            case "X25519":
                if let k = try unwrapX25519(s, precomputed: { precomputed(index, $0) }) { return .fileKey(k) }
            case "mlkem768x25519":
                if let k = unwrapHybrid(s) { return .fileKey(k) }
            case "scrypt":
                if let k = try unwrapScrypt(s) { return .fileKey(k) }
            default:
                continue
            }
        }
        return .noMatch
    }

    /// Whether `arg` is canonical unpadded base64 of exactly `count` bytes (decoded into scratch:
    /// no array per stanza checked).
    static func decodes(_ arg: [UInt8], toCount count: Int) -> Bool {
        guard Base64.maxDecodedCount(arg.count) <= count + 2 else { return false }
        return withUnsafeTemporaryAllocation(byteCount: count + 2, alignment: 1) { buf in
            arg.withUnsafeBytes { Base64.decode($0, alphabet: .standard, padding: .forbidden, into: buf) } == count
        }
    }

    /// `^[1-9][0-9]*$`, at most `maxScryptLogN`.
    static func workFactor(_ arg: [UInt8]) -> Int? {
        guard let first = arg.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"), arg.count <= 2 else {
            return nil
        }
        var v = 0
        for c in arg {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int(c - UInt8(ascii: "0"))
        }
        return v <= maxScryptLogN ? v : nil
    }

    /// Opens a 32-byte stanza body (ChaCha20-Poly1305, zero nonce) into a 16-byte file key.
    private static func openBody(_ body: [UInt8], with wrapKey: SymmetricKey) -> SymmetricKey? {
        guard body.count == 32 else { return nil }
        // A copy of our own to open in place (32 bytes on the stack), wiped after.
        var box = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        defer { withUnsafeMutableBytes(of: &box) { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } } }
        return withUnsafeMutableBytes(of: &box) { b -> SymmetricKey? in
            body.withUnsafeBytes { b.copyMemory(from: $0) }
            guard
                let n = zeroNonce.withUnsafeBytes({
                    BoringCrypto.chachaPolyOpenInPlace(b, nonce: $0, key: wrapKey)
                }), n == 16
            else { return nil }
            return SymmetricKey(data: UnsafeRawBufferPointer(rebasing: b[0..<16]))
        }
    }

    private func unwrapX25519(_ s: AgeStanza, precomputed: (Int) -> UnsafeRawBufferPointer?) throws(CipherFailure)
        -> SymmetricKey?
    {
        guard !x25519.isEmpty else { return nil }
        // The HKDF salt is the share then our public key: 64 bytes on the stack (the share is
        // public; no array per file).
        var salt = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        // Room for the decoder's two spare bytes; a share of 32 bytes fills the first half.
        let decoded = withUnsafeMutableBytes(of: &salt) { b in
            s.args[1].withUnsafeBytes {
                Base64.decode(
                    $0, alphabet: .standard, padding: .forbidden,
                    into: UnsafeMutableRawBufferPointer(rebasing: b[0..<34]))
            }
        }
        guard decoded == 32 else { return nil }
        let peer = withUnsafeBytes(of: &salt) {
            try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: UnsafeRawBufferPointer(rebasing: $0[0..<32]))
        }
        guard let peer else { return nil }
        // The wrap key from a shared secret (HKDF; the salt's second half is our public key),
        // and the body opened with it.
        func open(with secret: UnsafeRawBufferPointer, publicKey: [UInt8]) -> SymmetricKey? {
            withUnsafeMutableBytes(of: &salt) { p in
                publicKey.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: p[32..<64]).copyMemory(from: $0) }
            }
            let wrapKey = withUnsafeBytes(of: &salt) { salt in
                Self.x25519Info.withUnsafeBytes { BoringCrypto.hkdfSHA256(secret: secret, salt: salt, info: $0) }
            }
            guard let wrapKey else { return nil }
            return Self.openBody(s.body, with: wrapKey)
        }
        for (index, id) in x25519.enumerated() {
            // A secret computed ahead (in SIMD lanes) is believed only if it is not zero and opens
            // the body; otherwise it is computed again here, as without it: a wrong lane can cost
            // time, never change a result.
            if let ahead = precomputed(index), ahead.count == 32, !ahead.allSatisfy({ $0 == 0 }),
                id.publicKey.count == 32, let k = open(with: ahead, publicKey: id.publicKey)
            {
                return k
            }
            guard let shared = try? id.key.sharedSecretFromKeyAgreement(with: peer) else { continue }
            // A low-order share gives the all-zero secret; the spec says to abort.
            let zero = shared.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }
            if zero { throw Self.malformed("X25519 share is a low-order point") }
            guard id.publicKey.count == 32 else { continue }
            if let k = shared.withUnsafeBytes({ open(with: $0, publicKey: id.publicKey) }) { return k }
        }
        return nil
    }

    // MARK: Unwrapping several files at once

    /// `X25519Lanes.compute`'s shape: (scalar, points, count, out).
    typealias Lanes = (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Int, UnsafeMutableRawBufferPointer) -> Void

    /// At most this many X25519 stanzas of one header are computed ahead (the rest, if reached,
    /// one at a time as usual).
    static let maxSharesAhead = 4

    package var fileGroupWidth: Int { x25519.isEmpty ? 1 : X25519Lanes.width }

    package func prepare(files: [UnsafeRawBufferPointer]) {
        // Without the wide kernel there is nothing to share: the lanes would be BoringSSL one
        // point at a time (each call building a key from the scalar, a base-point
        // multiplication, first), and unwrapping here only parses every header twice.
        guard X25519Lanes.isWide else { return }
        prepare(files: files) { X25519Lanes.compute(scalar: $0, points: $1, count: $2, into: $3) }
    }

    /// Unwraps the file keys of several binary age files (`files`: each file's first bytes, its
    /// whole header at least) into `fileKeys`, the X25519 of each identity computed for up to
    /// `X25519Lanes.width` shares at once. Each header then goes through the same `unwrap` as
    /// one file alone, with the shared secrets computed ahead (checked there), and its outcome
    /// is cached exactly as `fileKey(for:bytes:)` would have cached it (`lanes` nil: nothing is
    /// computed ahead, each header is simply unwrapped here); a header that fails
    /// (malformed, low-order share) caches nothing, and the file's own pass reports it. Headers
    /// already cached, armored files and anything not a complete binary header are left alone.
    func prepare(files: [UnsafeRawBufferPointer], lanes: Lanes?) {
        guard !x25519.isEmpty, !files.isEmpty else { return }
        struct Pending {
            var header: AgeHeader
            var digest: Digest256
            /// Stanza index -> index of its share in `points`.
            var shareOf: [Int: Int]
        }
        var pending: [Pending] = []
        var points: [UInt8] = []
        var digests = Set<Digest256>()
        for file in files {
            guard let bytes = Self.binaryHeader(file) else { continue }
            let digest = bytes.withUnsafeBytes { BoringCrypto.sha256($0) }
            guard fileKeys.value(for: digest) == nil, digests.insert(digest).inserted,
                let header = try? AgeHeaderParser.parse(bytes)
            else { continue }
            var shareOf: [Int: Int] = [:]
            for (index, s) in header.stanzas.enumerated() where shareOf.count < Self.maxSharesAhead {
                guard s.type.elementsEqual("X25519".utf8), s.args.count == 2 else { continue }
                var share = [UInt8](repeating: 0, count: 34)
                let n = share.withUnsafeMutableBytes { out in
                    s.args[1].withUnsafeBytes {
                        Base64.decode($0, alphabet: .standard, padding: .forbidden, into: out)
                    }
                }
                guard n == 32 else { continue }
                shareOf[index] = points.count / 32
                points.append(contentsOf: share[0..<32])
            }
            if !shareOf.isEmpty { pending.append(Pending(header: header, digest: digest, shareOf: shareOf)) }
        }
        let shares = points.count / 32
        guard shares > 0 else { return }
        guard let lanes else {
            for file in pending {
                if let result = try? unwrap(file.header) { fileKeys.insert(result, for: file.digest) }
            }
            return
        }
        // Identity n's secret with share i at (n * shares + i) * 32; wiped before it is freed.
        let secrets = UnsafeMutableRawBufferPointer.allocate(byteCount: x25519.count * shares * 32, alignment: 64)
        secrets.initializeMemory(as: UInt8.self, repeating: 0)
        defer {
            if let p = secrets.baseAddress { explicit_bzero(p, secrets.count) }
            secrets.deallocate()
        }
        let width = max(1, X25519Lanes.width)
        points.withUnsafeBytes { p in
            for (n, id) in x25519.enumerated() {
                id.scalar.withBytes { scalar in
                    var start = 0
                    while start < shares {
                        let count = min(width, shares - start)
                        let base = (n * shares + start) * 32
                        lanes(
                            UnsafeRawBufferPointer(scalar),
                            UnsafeRawBufferPointer(rebasing: p[(start * 32)..<((start + count) * 32)]), count,
                            UnsafeMutableRawBufferPointer(rebasing: secrets[base..<(base + count * 32)]))
                        start += count
                    }
                }
            }
        }
        for file in pending {
            let result = try? unwrap(file.header) { stanza, identity in
                guard let i = file.shareOf[stanza], identity < self.x25519.count else { return nil }
                let base = (identity * shares + i) * 32
                return UnsafeRawBufferPointer(rebasing: secrets[base..<(base + 32)])
            }
            if let result { fileKeys.insert(result, for: file.digest) }
        }
    }

    /// A binary age file's header as `AgeBinaryDecoder` collects it (the version line, then
    /// every line up to and including the first that starts with `---`), or nil.
    static func binaryHeader(_ file: UnsafeRawBufferPointer) -> [UInt8]? {
        guard file.starts(with: binaryMagic) else { return nil }
        let limit = min(file.count, AgeBinaryDecoder.maxHeaderBytes)
        var pos = binaryMagic.count
        while pos < limit {
            guard let end = file[pos..<limit].firstIndex(of: 0x0a) else { return nil }
            if file[pos..<end].starts(with: AgeHeaderParser.macPrefix) { return Array(file[0...end]) }
            pos = end + 1
        }
        return nil
    }

    private func unwrapHybrid(_ s: AgeStanza) -> SymmetricKey? {
        guard !hybrid.isEmpty, let enc = Base64.decode(s.args[1], alphabet: .standard, padding: .forbidden) else {
            return nil
        }
        for id in hybrid {
            guard
                var recipient = try? HPKE.Recipient(
                    privateKey: id, ciphersuite: Self.hybridSuite, info: Self.hybridInfo, encapsulatedKey: Data(enc)),
                let plain = try? recipient.open(s.body, authenticating: Data()),
                plain.count == 16
            else { continue }
            return SymmetricKey(data: plain)
        }
        return nil
    }

    private func unwrapScrypt(_ s: AgeStanza) throws(CipherFailure) -> SymmetricKey? {
        guard let passphrase,
            let salt = Base64.decode(s.args[1], alphabet: .standard, padding: .forbidden),
            let logN = Self.workFactor(s.args[2])
        else { return nil }
        let wrapKey: SymmetricKey
        do {
            scryptRuns.add(1, ordering: .relaxed)
            wrapKey = try scryptGate.run(cost: ScryptGate.cost(logN: logN)) { () throws -> SymmetricKey in
                try passphrase.withBytes { pw in
                    try KDF.Scrypt.deriveKey(
                        from: pw, salt: Self.scryptSaltPrefix + salt, outputByteCount: 32,
                        rounds: 1 << logN, blockSize: 8, parallelism: 1)
                }
            }
        } catch {
            throw .decryptFailed("scrypt key derivation failed")
        }
        return Self.openBody(s.body, with: wrapKey)
    }
}
