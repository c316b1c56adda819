import Crypto
import Foundation
import Testing

@testable import CryptCount

@Suite struct AgeTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        try Array(Data(contentsOf: CipherFixture.folder.appendingPathComponent(name)))
    }

    static func identityText() throws -> String {
        String(decoding: try fixture("age_identity.txt"), as: UTF8.self)
    }

    static func newIdentity(pq: Bool = false) -> String {
        let seed = (0..<32).map { _ in UInt8.random(in: 0...255) }
        return Bech32.encode(hrp: pq ? "age-secret-key-pq-" : "age-secret-key-", data: seed).uppercased()
    }

    @Test func identityTextForms() throws {
        let text = try Self.identityText()
        #expect(text.contains("# public key:"))  // age-keygen's comments are accepted
        let key = try AgeKey(secret: .text(copying: Array(text.utf8)))
        #expect(key.x25519.count == 1 && key.hybrid.isEmpty && key.passphrase == nil)
        let many = "\n# two keys\r\n" + Self.newIdentity() + "\r\n\n  " + Self.newIdentity(pq: true) + "  \n"
        let both = try AgeKey(secret: .bytes(copying: Array(many.utf8)))
        #expect(both.x25519.count == 1 && both.hybrid.count == 1)
        let lower = try AgeKey(secret: .text(copying: Array(Self.newIdentity().lowercased().utf8)))
        #expect(lower.x25519.count == 1)
        let listed = try AgeKey(
            secret: .list([.text(copying: Array(Self.newIdentity().utf8)), .text(copying: Array(text.utf8))]))
        #expect(listed.x25519.count == 2)
        let mapped = try AgeKey(
            secret: .map([
                "identities": .text(copying: Array(Self.newIdentity().utf8)),
                "passphrase": .text(copying: Array("pw".utf8)),
            ]))
        #expect(mapped.x25519.count == 1 && mapped.passphrase != nil)
        let passOnly = try AgeKey(secret: .map(["passphrase": .bytes(copying: [0xff, 0x01])]))
        #expect(passOnly.x25519.isEmpty && passOnly.passphrase != nil)
    }

    @Test func malformedSecretsAreRejectedWithoutEchoingThem() throws {
        let good = Self.newIdentity()
        var flipped = Array(good.utf8)
        flipped[30] = flipped[30] == UInt8(ascii: "Q") ? UInt8(ascii: "P") : UInt8(ascii: "Q")
        let mixed = String(good.prefix(20)) + good.dropFirst(20).lowercased()
        let recipient = Bech32.encode(hrp: "age", data: Array(repeating: 1, count: 32))
        let short = Bech32.encode(hrp: "age-secret-key-", data: Array(repeating: 1, count: 31)).uppercased()
        let cases: [SecretInput] = [
            .text(copying: []), .text(copying: Array("# only a comment\n\n".utf8)), .text(copying: flipped),
            .text(copying: Array(mixed.utf8)),
            .text(copying: Array(recipient.utf8)), .text(copying: Array(short.utf8)),
            .text(copying: Array("hunter2".utf8)),
            .text(copying: Array((good + "\nhunter2").utf8)), .list([]), .list([.map([:])]), .map([:]),
            .map(["passphrase": .text(copying: [])]), .map(["passphrase": .list([])]),
            .map(["identities": .text(copying: Array(good.utf8)), "extra": .text(copying: [1])]),
            .map(["identities": .list([])]), .map(["identities": .map([:])]),
        ]
        for secret in cases {
            do {
                _ = try AgeKey(secret: secret)
                Issue.record("accepted a malformed age secret")
            } catch {
                #expect(!error.message.contains("hunter2"))
                #expect(!error.message.contains(String(good.suffix(20))))
            }
        }
        #expect(throws: SecretError.self) { try AgeKey(secret: nil) }
    }

    @Test func fileKeysAreCachedPerHeader() throws {
        let key = try AgeKey(secret: .text(copying: Array(try Self.identityText().utf8)))
        let small = try Self.fixture("age_small.age")
        let large = try Self.fixture("age_large.age")
        for file in [small, large, small, large] {
            #expect(decryptStreaming(key, file, piece: 8192).error == nil)
        }
        #expect(key.fileKeys.count == 2)
        // A header no identity matches is remembered too.
        let other = try AgeKey(secret: .text(copying: Array(Self.newIdentity().utf8)))
        for _ in 0..<2 { #expect(errorCode(decryptStreaming(other, small, piece: 100).error) == "decrypt_failed") }
        #expect(other.fileKeys.count == 1)
    }

    /// A second pass over a passphrase file does not run scrypt again (rage's work factor 2^19).
    @Test func scryptRunsOncePerHeader() throws {
        let gate = ScryptGate(budget: 64 << 20)
        let key = try AgeKey(
            secret: .map(["passphrase": .text(copying: Array("test-only passphrase".utf8))]), scryptGate: gate)
        let file = try Self.fixture("rage_passphrase.age")
        #expect(decryptStreaming(key, file, piece: 1 << 20).error == nil)
        #expect(decryptStreaming(key, file, piece: 1 << 20).error == nil)
        #expect(key.scryptRuns.load(ordering: .relaxed) == 1)
        // A run above the budget takes the whole budget, alone.
        #expect(gate.peakBytes == 64 << 20)
    }

    @Test func scryptGateKeepsConcurrentMemoryWithinBudget() {
        let gate = ScryptGate(budget: 1000)
        let inside = Counter()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            gate.run(cost: i % 2 == 0 ? 400 : 5000) {
                inside.enter()
                for _ in 0..<10_000 { _ = inside.value }
                inside.leave()
            }
        }
        #expect(gate.peakBytes <= 1000)
        #expect(gate.peakBytes >= 400)
        #expect(ScryptGate.cost(logN: 18) == 256 << 20)
        #expect(ScryptGate.shared.budget >= 256 << 20)
    }

    @Test func workFactorSyntax() {
        for (text, value) in [("1", 1), ("10", 10), ("22", 22)] {
            #expect(AgeKey.workFactor(Array(text.utf8)) == value)
        }
        for bad in ["", "0", "01", "23", "100", "+5", "-1", "1a", "0x10", " 9", "99999999999999999999"] {
            #expect(AgeKey.workFactor(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func formatDetection() throws {
        let key = try AgeKey(secret: .text(copying: Array(try Self.identityText().utf8)))
        let small = try Self.fixture("age_small.age")
        let cases: [([UInt8], String)] = [
            ([], "bad_format"),
            (Array("hello".utf8), "bad_format"),
            (Array("age-encryption.org/v2\n-> X\n\n--- x\n".utf8), "bad_format"),
            (Array("age-encryption.org/v1".utf8), "bad_format"),  // not even a version line
            (Array("age-encryption.org/v1\n".utf8), "decrypt_failed"),
            ([0x20] + small, "bad_format"),  // leading whitespace is for armor only
            (Array("\n\n-----BEGIN PGP MESSAGE-----\n".utf8), "bad_format"),
            (Array("-----BEGIN AGE ENCRYPTED FILE-----\n".utf8), "decrypt_failed"),
            (Array(small.prefix(40)), "decrypt_failed"),
            (Array(small.prefix(small.count - 1)), "decrypt_failed"),
        ]
        for (file, code) in cases {
            #expect(errorCode(decryptStreaming(key, file, piece: 3).error) == code, "\(file.prefix(24))")
        }
        // An endless first line is cut short, not buffered.
        let long = Array("age-encryption.org/".utf8) + [UInt8](repeating: 0x76, count: 10_000)
        #expect(errorCode(decryptStreaming(key, long, piece: 100).error) == "bad_format")
        let header = Array("age-encryption.org/v1\n".utf8) + [UInt8](repeating: 0x41, count: 2 << 20)
        #expect(errorCode(decryptStreaming(key, header, piece: 1 << 16).error) == "decrypt_failed")
    }

    /// Armored and binary forms of the same file give the same plaintext, in any pieces.
    @Test func armorMatchesBinary() throws {
        let key = try AgeKey(secret: .text(copying: Array(try Self.identityText().utf8)))
        let armored = try Self.fixture("age_large_armored.age")
        let text = String(decoding: armored, as: UTF8.self)
        let crlf = Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let spaced = Array(("\n \t" + text + "\n\n  ").utf8)
        let reference = decryptStreaming(key, armored, piece: armored.count)
        #expect(reference.error == nil && reference.plain.count > 130_000)
        for file in [crlf, spaced] {
            for piece in [file.count, 4097, 65] {
                let r = decryptStreaming(key, file, piece: piece)
                #expect(r.error == nil && r.plain == reference.plain)
            }
        }
        var badChar = armored
        badChar[100] = UInt8(ascii: "*")
        #expect(errorCode(decryptStreaming(key, badChar, piece: 999).error) == "decrypt_failed")
    }

    @Test func hybridIdentityDecryptsCCTVStyleFile() throws {
        // The hybrid path needs a file made by a PQ-capable age; the CCTV suite has them.
        guard let dir = TestPaths.vectors?.appendingPathComponent("age-cctv"),
            let data = try? Array(Data(contentsOf: dir.appendingPathComponent("hybrid"))),
            let v = AgeVector(name: "hybrid", data: data)
        else {
            print("skipping: age CCTV vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        let key = try AgeKey(secret: .text(copying: Array(v.identities.joined(separator: "\n").utf8)))
        #expect(key.hybrid.count == 1)
        let r = decryptStreaming(key, v.file, piece: 50)
        #expect(r.error == nil && sha256Hex(r.plain) == v.payload)
    }
}

/// A tiny thread-safe counter for the gate test.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func enter() {
        lock.lock()
        n += 1
        lock.unlock()
    }
    func leave() {
        lock.lock()
        n -= 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return n
    }
}
