import Foundation
import Testing

@testable import CryptCount

@Suite struct CipherSnifferTests {
    @Test func recognisesEachFormat() {
        let cases: [(String, String?)] = [
            ("age-encryption.org/v1\n-> X25519 abc\n", "age"),
            ("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl", "age"),
            ("\r\n \t-----BEGIN AGE ENCRYPTED FILE-----\n", "age"),
            ("Salted__\u{1}\u{2}\u{3}", "openssl"),
            (
                "gAAAAABpX3k2AAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==\n",
                "fernet"
            ),
            ("  gAAAAABpX3k2AAECAwQFBgcICQoLDA0ODy021cpG", "fernet"),
            ("", nil),
            ("Dear diary, today...", nil),
            ("age-encryption.org/v2\n", nil),
            (" age-encryption.org/v1\n", nil),
            ("-----BEGIN PGP MESSAGE-----\n", "openpgp"),
            ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n", nil),
            ("salted__", nil),
            ("gAAAAA", nil),  // too short to be a token
            ("gAAAAABpX3k2AAECAwQF but then words", nil),
            ("gAAAAABpX3k2AAECAwQF+/ABCDEFGH", "fernet"),  // the standard alphabet, read as Python does
            ("gAAAAABpX3k2AAECAwQF\nBgcICQoLDA0ODy02\r\n1cpG==\n", "fernet"),  // wrapped onto lines
            ("gAAAAABpX3k2AAECAwQF \nBgcICQoLDA0ODy02", nil),
            ("gAAAAABpX3k2AAECAwQF.BgcICQoLDA0ODy02", nil),
            // The seventh character bounds the timestamp: A-D before 2^32 s (2106), E on after.
            ("gAAAAADpX3k2AAECAwQFBgcICQoLDA0ODy021cpG", "fernet"),
            ("gAAAAAEAAAAFAAECAwQFBgcICQoLDA0ODy021cpG", nil),
            ("gAAAAA_pX3k2AAECAwQFBgcICQoLDA0ODy021cpG", nil),
        ]
        for (text, expected) in cases {
            #expect(sniff(Array(text.utf8)) == expected, "\(text.prefix(20))")
        }
    }

    @Test func biographerFilesAreNotSniffed() throws {
        let key = try BiographerKey(password: Array("pw".utf8), chained: true)
        let file = key.encrypt(Array("Dear diary".utf8), iv: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(sniff(file) == nil)
    }

    /// The fixtures made by the real tools sniff as their cipher (damaged ones included, as
    /// long as their start is intact).
    @Test func fixturesSniffAsTheirCipher() throws {
        let folder = CipherFixture.folder
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let bytes = try Array(Data(contentsOf: folder.appendingPathComponent(name)))
            let prefix = Array(bytes.prefix(CipherKind.sniffLength))
            let expected: String?
            if name.hasPrefix("age_") && name.hasSuffix(".age") || name.hasPrefix("rage_") && name.hasSuffix(".age") {
                expected = "age"
            } else if name.hasPrefix("openssl_") {
                expected = "openssl"
            } else if name.hasPrefix("openpgp_") {
                expected = "openpgp"
            } else if name.hasPrefix("fernet_") && name != "fernet_version.token" {
                expected = "fernet"
            } else {
                expected = nil
            }
            #expect(sniff(prefix) == expected, "\(name)")
        }
    }
}

private func sniff(_ bytes: [UInt8]) -> String? {
    bytes.withUnsafeBytes { CipherKind.sniff($0)?.name }
}
