import Foundation
import Testing

@testable import CryptCount

struct BiographerVector: Decodable {
    var cipher: String
    var password: String
    var plaintext: String?
    var ciphertext_hex: String
    var expect: String?
}

@Suite struct BiographerTests {
    static func vectors() throws -> [BiographerVector]? {
        guard let shared = TestPaths.shared else { return nil }
        let data = try Data(contentsOf: shared.appendingPathComponent("seed/biographer-vectors.json"))
        return try JSONDecoder().decode([BiographerVector].self, from: data)
    }

    @Test func seedVectors() throws {
        guard let vectors = try Self.vectors() else {
            print("skipping: shared/seed/biographer-vectors.json not found (set CRYPTCOUNT_SHARED)")
            return
        }
        #expect(vectors.count >= 6)
        for v in vectors {
            let key = try BiographerKey(password: Array(v.password.utf8), chained: v.cipher == "biographer")
            let c = try #require([UInt8](hex: v.ciphertext_hex))
            var out: [UInt8] = []
            if v.expect == "decrypt_failed" {
                #expect(throws: CipherFailure.self) {
                    try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
                }
                continue
            }
            let plaintext = try #require(v.plaintext)
            try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
            #expect(out == Array(plaintext.utf8), "\(v.cipher) \(plaintext.prefix(20))")
            if v.cipher == "biographer-v0" {
                #expect(key.encrypt(Array(plaintext.utf8), iv: []) == c)
            }
        }
    }

    @Test func roundTripBothVariants() throws {
        for chained in [true, false] {
            let key = try BiographerKey(password: Array("pässwörd".utf8), chained: chained)
            for text in ["", "a", "Dear diary, café 🙂\n", String(repeating: "xyz ", count: 1000)] {
                let c = key.encrypt(Array(text.utf8), iv: [1, 2, 3, 4, 5, 6, 7, 8])
                var out: [UInt8] = []
                try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
                #expect(out == Array(text.utf8))
            }
        }
    }

    @Test func badLengthIsBadFormat() throws {
        let key = try BiographerKey(password: Array("k".utf8), chained: true)
        var out: [UInt8] = []
        for n in [0, 7, 9, 23] {
            let c = [UInt8](repeating: 0x41, count: n)
            #expect(throws: CipherFailure.self) { try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) } }
            do {
                try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
            } catch let e as CipherFailure {
                guard case .badFormat = e else { Issue.record("expected badFormat for \(n), got \(e)"); continue }
            }
        }
        let v0 = try BiographerKey(password: Array("k".utf8), chained: false)
        let odd = [UInt8](repeating: 0x41, count: 3)
        #expect(throws: CipherFailure.badFormat("length is odd, not a biographer-v0 file")) {
            try odd.withUnsafeBytes { try v0.decrypt(whole: $0, into: &out) }
        }
    }

    @Test func emptyPasswordIsRejected() {
        #expect(throws: SecretError.self) { try BiographerKey(password: [], chained: true) }
    }
}
