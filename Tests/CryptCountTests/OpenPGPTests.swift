import Foundation
import Testing

@testable import CryptCount

/// The `openpgp` cipher on fixtures made by gpg (Tests/Fixtures/ciphers/openpgp_*); the Python
/// suite (Tests/python/test_openpgp.py) covers public-key messages made by gpg at test time.
extension CipherKind {
    /// The sniffed kind's name, for short expectations.
    static func sniffName(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { raw in sniff(UnsafeRawBufferPointer(rebasing: raw.prefix(sniffLength)))?.name }
    }
}

@Suite struct OpenPGPTests {
    static let passphrase = SecretInput.text(copying: Array("correct horse battery staple".utf8))
    static let text = Array("Dear diary, the rain. The rain again.\nThe theme of the thesis.\n".utf8)

    static func fixture(_ name: String) throws -> [UInt8] {
        try Array(Data(contentsOf: CipherFixture.folder.appendingPathComponent(name)))
    }

    static func decrypt(_ key: OpenPGPKey, _ file: [UInt8]) -> Result<[UInt8], CipherFailure> {
        var out: [UInt8] = []
        let failure: CipherFailure? = file.withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try key.decrypt(whole: raw, into: &out)
                return nil
            } catch {
                return error
            }
        }
        if let failure { return .failure(failure) }
        return .success(out)
    }

    @Test func symmetricFixtures() throws {
        let key = try OpenPGPKey(secret: Self.passphrase)
        for name in ["openpgp_sym.gpg", "openpgp_sym_zlib.gpg", "openpgp_sym_aes128.gpg", "openpgp_sym_armored.asc"] {
            #expect(try Self.decrypt(key, Self.fixture(name)) == .success(Self.text), "\(name)")
        }
    }

    /// The session key of a message is derived once; the next decryption takes it from the cache.
    @Test func sessionKeyCache() throws {
        let key = try OpenPGPKey(secret: Self.passphrase)
        let file = try Self.fixture("openpgp_sym.gpg")
        #expect(Self.decrypt(key, file) == .success(Self.text))
        #expect(key.fastPath.keyOperations.load(ordering: .relaxed) == 1)
        #expect(Self.decrypt(key, file) == .success(Self.text))
        #expect(key.fastPath.keyOperations.load(ordering: .relaxed) == 1)
        // Another key object has a cache of its own.
        let other = try OpenPGPKey(secret: Self.passphrase)
        #expect(Self.decrypt(other, file) == .success(Self.text))
        #expect(other.fastPath.keyOperations.load(ordering: .relaxed) == 1)
    }

    /// Compressed and armored messages too: the session key is derived once, then cached (the
    /// fast path decrypts, librnp unpacks what is inside).
    @Test func sessionKeyCacheCompressedAndArmored() throws {
        for name in ["openpgp_sym_zlib.gpg", "openpgp_sym_armored.asc"] {
            let key = try OpenPGPKey(secret: Self.passphrase)
            let file = try Self.fixture(name)
            for _ in 0..<3 {
                #expect(Self.decrypt(key, file) == .success(Self.text), "\(name)")
                #expect(key.fastPath.keyOperations.load(ordering: .relaxed) == 1, "\(name)")
            }
            #expect(key.fastPath.sessionKeys.count == 1)
            // A wrong passphrase never gets the cached session key: its own cache, and a failure.
            let wrong = try OpenPGPKey(secret: .text(copying: Array("not it".utf8)))
            guard case .failure(.decryptFailed) = Self.decrypt(wrong, file) else {
                Issue.record("a wrong passphrase must fail on \(name)")
                continue
            }
            #expect(wrong.fastPath.sessionKeys.count == 0)
        }
    }

    @Test func failures() throws {
        let key = try OpenPGPKey(secret: Self.passphrase)
        let wrong = try OpenPGPKey(secret: .text(copying: Array("not it".utf8)))
        let file = try Self.fixture("openpgp_sym.gpg")
        guard case .failure(.decryptFailed) = Self.decrypt(wrong, file) else {
            Issue.record("a wrong passphrase must fail")
            return
        }
        var tampered = file
        tampered[tampered.count - 30] ^= 1
        guard case .failure(.decryptFailed) = Self.decrypt(key, tampered) else {
            Issue.record("a tampered message must fail")
            return
        }
        guard case .failure(.decryptFailed(let why)) = Self.decrypt(key, try Self.fixture("openpgp_nomdc.gpg")) else {
            Issue.record("a message without MDC must be refused")
            return
        }
        #expect(why.contains("integrity"))
        guard case .failure(.badFormat) = Self.decrypt(key, Array("just text\n".utf8)) else {
            Issue.record("text is not OpenPGP")
            return
        }
    }

    @Test func secretShapes() {
        for bad: SecretInput in [
            .text(copying: [UInt8]()), .text(copying: [UInt8]([0x61, 0x00])), .list([]), .map([:]),
            .map(["passphrase": .text(copying: [UInt8]())]),
            .map(["keys": .text(copying: Array("x".utf8)), "gnupg_home": .text(copying: Array("/tmp".utf8))]),
            .map(["keys": .text(copying: Array("not a key".utf8))]), .map(["other": .text(copying: [UInt8]([0x61]))]),
            .map([
                "gnupg_home": .text(copying: Array("/nonexistent/cryptcount-test".utf8)),
                "passphrase": .text(copying: [UInt8]([0x61])),
            ]),
        ] {
            #expect(throws: SecretError.self) { try OpenPGPKey(secret: bad) }
        }
    }

    @Test func sniffing() throws {
        #expect(CipherKind.sniffName(try Self.fixture("openpgp_sym.gpg")) == "openpgp")
        #expect(CipherKind.sniffName(try Self.fixture("openpgp_sym_armored.asc")) == "openpgp")
        #expect(CipherKind.sniffName(Array("\n-----BEGIN PGP MESSAGE-----\n".utf8)) == "openpgp")
        #expect(CipherKind.sniffName(Array("-----BEGIN PGP SIGNATURE-----\n".utf8)) == nil)
        #expect(CipherKind.sniffName([0x84, 0x5e, 0x07]) == nil)  // PKESK tag, unknown version
        #expect(CipherKind.sniffName(Self.text) == nil)
        // Version right, algorithms not: an unknown public-key algorithm (PKESK v3), cipher or
        // S2K type (SKESK v4).
        let keyID = [UInt8](repeating: 7, count: 8)
        #expect(CipherKind.sniffName([0x84, 0x5e, 3] + keyID + [18] + [UInt8](repeating: 1, count: 40)) == "openpgp")
        #expect(CipherKind.sniffName([0x84, 0x5e, 3] + keyID + [99] + [UInt8](repeating: 1, count: 40)) == nil)
        #expect(CipherKind.sniffName([0x8c, 0x0d, 4, 9, 3, 2] + [UInt8](repeating: 0, count: 40)) == "openpgp")
        #expect(CipherKind.sniffName([0x8c, 0x0d, 4, 14, 3, 2] + [UInt8](repeating: 0, count: 40)) == nil)
        #expect(CipherKind.sniffName([0x8c, 0x0d, 4, 9, 2, 2] + [UInt8](repeating: 0, count: 40)) == nil)
    }

    /// Random bytes (a biographer file, anything encrypted) are taken for OpenPGP rarely: about 1
    /// prefix in 2,900 has a session-key packet header with a known version; with the algorithm
    /// bytes checked too, about 1 in 250,000. A fixed generator: the same prefixes every run.
    @Test func randomBytesAreRarelyOpenPGP() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var sniffed = 0
        var prefix = [UInt8](repeating: 0, count: 48)
        for _ in 0..<300_000 {
            for k in stride(from: 0, to: prefix.count, by: 8) {
                state &+= 0x9E37_79B9_7F4A_7C15  // splitmix64
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                withUnsafeBytes(of: z) { prefix.replaceSubrange(k..<(k + 8), with: $0) }
            }
            if CipherKind.sniffName(prefix) == "openpgp" { sniffed += 1 }
        }
        #expect(sniffed < 15, "\(sniffed) of 300,000 random prefixes sniffed as OpenPGP (about 100 before)")
    }

    /// gpg-agent's extended key format converts to one canonical S-expression, which a wrong
    /// passphrase does not open.
    @Test func gnupgKeyFile() throws {
        let file = try Self.fixture("gnupg_ext.key")
        let key = try #require(GnuPGKeyFile.canonicalKey(file))
        var i = 0
        #expect(GnuPGProtectedKey.parse(key, &i) != nil && i == key.count)
        #expect(key.starts(with: Array("(21:protected-private-key(3:ecc".utf8)))
        guard case .wrongPassphrase = GnuPGProtectedKey.unprotect(key, passphrase: SecretBytes(Array("nope".utf8)))
        else {
            Issue.record("a wrong passphrase must not open the key")
            return
        }
        guard case .unprotected(let open) = GnuPGProtectedKey.unprotect(key, passphrase: SecretBytes(Array("pw".utf8)))
        else {
            Issue.record("the right passphrase must open the key")
            return
        }
        #expect(open.bytes.starts(with: Array("(11:private-key(3:ecc".utf8)))
    }

    /// A `Key:` value that is not exactly one list is no key (found by the gnupg-key fuzzer, whose
    /// input is kept in Tests/Fuzz/corpus-crashers): a bare atom, two lists, a stray hint.
    @Test func gnupgKeyFileNeedsOneList() {
        for value in ["Created: 15071111T203203", "(a)(b)", "(a) b", "[x] (a)", "(a [b)", "(a"] {
            #expect(GnuPGKeyFile.canonicalKey(Array("Key: \(value)\n".utf8)) == nil, "\(value)")
        }
        for (value, canonical) in [("(a b)", "(1:a1:b)"), ("(a [h] #6869# (c \"d\"))", "(1:a[1:h]2:hi(1:c1:d))")] {
            #expect(GnuPGKeyFile.canonicalKey(Array("Key: \(value)\n".utf8)) == Array(canonical.utf8), "\(value)")
        }
    }

    /// Quoted strings take every escape libgcrypt reads (gpg-agent writes salts and nonces with
    /// `\x00` or `\b` in them), and nothing else.
    @Test func gnupgQuotedStringEscapes() {
        let cases: [(String, [UInt8])] = [
            (#""a\b\t\v\n\f\rz""#, [0x61, 8, 9, 11, 10, 12, 13, 0x7a]),
            (#""\"\'\\""#, [0x22, 0x27, 0x5c]),
            (#""w\x00\xfF\x7e""#, [0x77, 0, 0xff, 0x7e]),
            (#""\000\101\377\777""#, [0, 0x41, 0xff, 0xff]),
            ("\"a\\\nb\\\r\nc\\\n\rd\\\re\"", Array("abcde".utf8)),  // backslash-newline joins
            ("\"\u{e9}\u{b2}\"", [0xc3, 0xa9, 0xc2, 0xb2]),  // bytes as they are
        ]
        for (quoted, want) in cases {
            var i = 1
            let bytes = Array(quoted.utf8)
            #expect(GnuPGKeyFile.unquote(bytes, &i) == want && i == bytes.count, "\(quoted)")
        }
        for bad in [#""\q""#, #""\x4""#, #""\xg0""#, #""\08""#, #""\7""#, #""abc"#, #""\"#] {
            var i = 1
            #expect(GnuPGKeyFile.unquote(Array(bad.utf8), &i) == nil, "\(bad)")
        }
    }

    /// The `Key:` value is joined as gpg-agent joins it: one leading space and the trailing
    /// whitespace off each line, nothing between lines (a break may fall inside any atom), a
    /// blank line a newline; the name without case; a comment or another name ends it.
    @Test func gnupgKeyValueContinuations() {
        let file = "Created: 1\nkey: (a \"x\n  y\" #61\n 62#\n tok\n en)\t \r\n# c\nLabel: x\n (not this)\n"
        #expect(GnuPGKeyFile.keyItem(Array(file.utf8)) == Array("(a \"x y\" #6162#token)".utf8))
        #expect(GnuPGKeyFile.canonicalKey(Array(file.utf8)) == Array("(1:a3:x y2:ab5:token)".utf8))
        // A blank line is a newline; the line after it loses all its leading whitespace.
        let blank = "Key: (a\n\n     b)\n"
        #expect(GnuPGKeyFile.keyItem(Array(blank.utf8)) == Array("(a\nb)".utf8))
        #expect(GnuPGKeyFile.canonicalKey(Array(blank.utf8)) == Array("(1:a1:b)".utf8))
        // So a backslash, a blank line: the quoted string goes on (libgcrypt's line continuation).
        let joined = "Key: (a \"x\\\n\n   y\")\n"
        #expect(GnuPGKeyFile.canonicalKey(Array(joined.utf8)) == Array("(1:a2:xy)".utf8))
    }
}

/// `OpenPGPFraming` finds bytes after the encrypted data packet, whatever the length formats and
/// however the bytes are split into reads.
@Suite struct OpenPGPFramingTests {
    /// Feeds `bytes` in pieces of `piece` bytes; whether trailing data was seen.
    private func trailing(_ bytes: [UInt8], piece: Int) -> Bool {
        let framing = OpenPGPFraming()
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + piece)
            bytes[i..<end].withUnsafeBytes { framing.consume($0) }
            i = end
        }
        return framing.trailing
    }

    @Test func messagesAndTheirExtensions() {
        let skesk: [UInt8] = [0xC3, 4] + [1, 2, 3, 4]  // new format, tag 3, 4 bytes
        let oldSED: [UInt8] = [0x80 | 9 << 2 | 1, 0x01, 0x2C] + [UInt8](repeating: 7, count: 300)  // old format, tag 9
        let twoOctet: [UInt8] = [0xD2, 0xC0 + 1, 0x10] + [UInt8](repeating: 9, count: 464)  // 256 + 0x10 + 192 bytes
        let fiveOctet: [UInt8] = [0xD2, 0xFF, 0, 0, 0x01, 0x00] + [UInt8](repeating: 9, count: 256)
        // Partial lengths: 512, 1024, then a final 5 bytes.
        let partial: [UInt8] =
            [0xD2, 0xE9] + [UInt8](repeating: 1, count: 512) + [0xEA] + [UInt8](repeating: 2, count: 1024) + [5]
            + [UInt8](repeating: 3, count: 5)
        for message in [skesk + oldSED, skesk + twoOctet, skesk + fiveOctet, skesk + partial, skesk + skesk + partial] {
            for piece in [1, 2, 3, 7, 64, 4096] {
                #expect(!trailing(message, piece: piece), "whole message, piece \(piece)")
                #expect(trailing(message + [0], piece: piece), "one byte more, piece \(piece)")
                #expect(trailing(message + message, piece: piece), "two messages, piece \(piece)")
            }
            #expect(!trailing(Array(message.dropLast()), piece: 5), "truncated: librnp's to judge")
        }
        // Not framing this follows: an old-format packet of indeterminate length runs to the
        // end; a first byte without bit 7 is not OpenPGP.
        #expect(!trailing([0x80 | 9 << 2 | 3] + [UInt8](repeating: 1, count: 100), piece: 10))
        #expect(!trailing([0x41] + [UInt8](repeating: 1, count: 100), piece: 10))
    }
}
