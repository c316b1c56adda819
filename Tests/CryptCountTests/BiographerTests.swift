import Foundation
import Testing

@testable import CryptCount

struct BiographerVector: Decodable {
    var cipher: String
    var password: String
    var plaintext: String?
    var ciphertextHex: String
    var expect: String?

    // The vector file's own field names.
    enum CodingKeys: String, CodingKey {
        case cipher, password, plaintext, expect
        case ciphertextHex = "ciphertext_hex"
    }
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
            let c = try #require([UInt8](hex: v.ciphertextHex))
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
                guard case .badFormat = e else {
                    Issue.record("expected badFormat for \(n), got \(e)")
                    continue
                }
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

    /// The format's decrypter written the way the spec states it (byte loops, four unhex passes),
    /// to check the vectorised one against, including which inputs fail.
    static func referenceDecrypt(_ c: [UInt8], password pw: [UInt8], chained: Bool) -> [UInt8]? {
        let amount = BiographerKey.shift(for: pw)
        var d = c.indices.map { (c[$0] ^ pw[$0 % pw.count]) &- amount }
        var t = d
        if chained {
            if d.count > 8 {
                for i in stride(from: d.count - 1, through: 8, by: -1) { d[i] ^= d[i - 8] }
            }
            t = Array(d.dropFirst(8))
        }
        for _ in 0..<(chained ? 4 : 1) {
            guard t.count % 2 == 0 else { return nil }
            var u: [UInt8] = []
            for m in 0..<(t.count / 2) {
                let a = Hex.nibble[Int(t[2 * m])]
                let b = Hex.nibble[Int(t[2 * m + 1])]
                if a > 15 || b > 15 { return nil }
                u.append(a << 4 | b)
            }
            t = u
        }
        return t
    }

    /// Every length around the 16-byte vector and 256-byte block edges, passwords of many
    /// lengths (the mask's phase), upper-case digits, and single corrupted bytes anywhere.
    @Test func vectorisedMatchesReference() throws {
        var rng = SystemRandomNumberGenerator()
        for chained in [true, false] {
            for pwLength in [1, 2, 3, 7, 8, 16, 17, 31, 64, 255, 300] {
                let pw = (0..<pwLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let key = try BiographerKey(password: pw, chained: chained)
                for n in [0, 1, 2, 15, 16, 17, 31, 127, 128, 129, 255, 256, 257, 300, 1000] {
                    let plain = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    let iv = (0..<8).map { _ in UInt8.random(in: 1...254, using: &rng) }
                    var c = key.encrypt(plain, iv: iv)
                    var out: [UInt8] = [9, 9, 9]
                    try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
                    #expect(out == plain, "chained \(chained) pw \(pwLength) n \(n)")
                    guard !c.isEmpty else { continue }
                    for _ in 0..<6 {
                        let i = Int.random(in: 0..<c.count, using: &rng)
                        let old = c[i]
                        c[i] = UInt8.random(in: 0...255, using: &rng)
                        let expected = Self.referenceDecrypt(c, password: pw, chained: chained)
                        var got: [UInt8]? = nil
                        var o: [UInt8] = []
                        do {
                            try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &o) }
                            got = o
                        } catch {}
                        #expect(got == expected, "chained \(chained) pw \(pwLength) n \(n) byte \(i)")
                        c[i] = old
                    }
                }
            }
        }
    }

    @Test func upperCaseHexDecodes() throws {
        // v0 with an upper-case hex text: encrypt by hand (shift, then XOR).
        let pw = Array("pw".utf8)
        let key = try BiographerKey(password: pw, chained: false)
        let text = Array("Hi there, a longer line so that the vector path runs as well as the tail.....".utf8)
        let hex = Array(text.map { String(format: "%02X", $0) }.joined().utf8)
        let amount = BiographerKey.shift(for: pw)
        let c = hex.indices.map { (hex[$0] &+ amount) ^ pw[$0 % pw.count] }
        var out: [UInt8] = []
        try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
        #expect(out == text)
    }
}
