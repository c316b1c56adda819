import Foundation
import Testing

@testable import CryptCount

struct FernetSpecVector: Decodable {
    var token: String
    var now: String
    var ttlSec: Int?
    var src: String?
    var secret: String
    var iv: [UInt8]?
    var desc: String?

    // The Fernet spec's own field names.
    enum CodingKeys: String, CodingKey {
        case token, now, src, secret, iv, desc
        case ttlSec = "ttl_sec"
    }

    var nowSeconds: Int64? {
        guard let date = ISO8601DateFormatter().date(from: now) else { return nil }
        return Int64(date.timeIntervalSince1970)
    }
}

func decryptWhole(_ key: any CipherKey, _ bytes: [UInt8]) -> Result<[UInt8], CipherFailure> {
    var out: [UInt8] = []
    var failure: CipherFailure?
    bytes.withUnsafeBytes { raw in
        do throws(CipherFailure) {
            try key.decrypt(whole: raw, into: &out)
        } catch {
            failure = error
        }
    }
    if let failure { return .failure(failure) }
    return .success(out)
}

@Suite struct FernetTests {
    static func vectors(_ name: String) throws -> [FernetSpecVector]? {
        guard let dir = TestPaths.vectors?.appendingPathComponent("fernet"),
            FileManager.default.fileExists(atPath: dir.path)
        else { return nil }
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return try JSONDecoder().decode([FernetSpecVector].self, from: data)
    }

    static func key(_ v: FernetSpecVector) throws -> FernetKey {
        let now = try #require(v.nowSeconds)
        return try FernetKey(
            secret: .text(copying: Array(v.secret.utf8)), options: CipherOptions(ttlSeconds: v.ttlSec), clock: { now })
    }

    @Test func specVerifyVectors() throws {
        guard let vectors = try Self.vectors("verify.json") else {
            print("skipping: Fernet spec vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        var passed = 0
        for v in vectors {
            let result = decryptWhole(try Self.key(v), Array(v.token.utf8))
            #expect(result == .success(Array((v.src ?? "").utf8)), "verify \(v.token.prefix(12))")
            if case .success(let p) = result, p == Array((v.src ?? "").utf8) { passed += 1 }
        }
        print("Fernet verify.json: \(passed) passed out of \(vectors.count)")
        #expect(!vectors.isEmpty)
    }

    @Test func specInvalidVectors() throws {
        guard let vectors = try Self.vectors("invalid.json") else {
            print("skipping: Fernet spec vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        var passed = 0
        for v in vectors {
            let result = decryptWhole(try Self.key(v), Array(v.token.utf8))
            guard case .failure(let failure) = result else {
                Issue.record("invalid vector decrypted: \(v.desc ?? "?")")
                continue
            }
            passed += 1
            // The documented mapping: not a token at all -> bad_format; the rest decrypt_failed.
            // The "not multiple of block size" vector decodes to 72 bytes, below the 73-byte
            // minimum (version, timestamp, IV, one block, MAC), so it is "too short" here.
            let notAToken = ["invalid base64", "too short", "payload size not multiple of block size"]
            let expected = notAToken.contains(v.desc ?? "") ? "bad_format" : "decrypt_failed"
            #expect(errorCode(failure) == expected, "\(v.desc ?? "?")")
        }
        print("Fernet invalid.json: \(passed) rejected out of \(vectors.count)")
        #expect(vectors.count >= 8)
    }

    /// generate.json: our test-only encrypter writes the spec's token byte for byte, so the
    /// layout (version, timestamp, IV, ciphertext, MAC, padded url-safe base64) matches.
    @Test func specGenerateVectors() throws {
        guard let vectors = try Self.vectors("generate.json") else {
            print("skipping: Fernet spec vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        for v in vectors {
            let key = try Self.key(v)
            let now = try #require(v.nowSeconds)
            let token = try key.encrypt(Array((v.src ?? "").utf8), timestamp: UInt64(now), iv: try #require(v.iv))
            #expect(token == v.token)
        }
    }

    @Test func ttlBoundariesAndSkew() throws {
        let secret = SecretInput.text(copying: Array("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=".utf8))
        let maker = try FernetKey(secret: secret)
        let token = Array(try maker.encrypt(Array("x".utf8), timestamp: 1000, iv: Array(0..<16)).utf8)
        func result(ttl: Int?, now: Int64) throws -> String {
            let key = try FernetKey(secret: secret, options: CipherOptions(ttlSeconds: ttl), clock: { now })
            switch decryptWhole(key, token) {
            case .success: return "ok"
            case .failure(let f): return errorCode(f)
            }
        }
        #expect(try result(ttl: 10, now: 1010) == "ok")
        #expect(try result(ttl: 10, now: 1011) == "decrypt_failed")
        #expect(try result(ttl: 10, now: 940) == "ok")  // exactly the 60 s skew
        #expect(try result(ttl: 10, now: 939) == "decrypt_failed")
        // Without ttl, Python checks neither age nor skew.
        #expect(try result(ttl: nil, now: 0) == "ok")
        #expect(try result(ttl: nil, now: Int64.max) == "ok")
        #expect(try result(ttl: Int.max, now: Int64.max) == "ok")
    }

    @Test func keyForms() throws {
        let good = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
        _ = try FernetKey(secret: .text(copying: Array(good.utf8)))
        _ = try FernetKey(secret: .bytes(copying: Array(good.utf8)))
        _ = try FernetKey(secret: .text(copying: Array((" " + good + "\n").utf8)))
        _ = try FernetKey(secret: .list([.text(copying: Array(good.utf8)), .bytes(copying: Array(good.utf8))]))
        for bad: SecretInput in [
            .text(copying: []), .text(copying: Array("not base64!".utf8)), .text(copying: Array(good.dropLast(4).utf8)),
            .text(copying: Array("YWJj".utf8)), .list([]), .list([.map([:])]), .map([:]),
            .text(copying: Array(good.dropLast().utf8)),  // missing padding
        ] {
            #expect(throws: SecretError.self) { try FernetKey(secret: bad) }
        }
        #expect(throws: SecretError.self) {
            try FernetKey(secret: .text(copying: Array(good.utf8)), options: CipherOptions(ttlSeconds: -1))
        }
        do {
            _ = try FernetKey(secret: .text(copying: Array("abc-secret-stuff".utf8)))
        } catch {
            #expect(!error.message.contains("abc-secret-stuff"))
        }
    }

    @Test func roundTripsAndFormatErrors() throws {
        let key = try FernetKey(secret: .text(copying: Array("kqC7Tr9ifEpZDkh8VqeVtCD0FJtGd_lt6q5k5I7Fe7A=".utf8)))
        for text in ["", "a", String(repeating: "0123456789abcdef", count: 3), "café 🙂\n"] {
            let token = try key.encrypt(Array(text.utf8), timestamp: 1, iv: Array(repeating: 7, count: 16))
            #expect(decryptWhole(key, Array(("\t" + token + " \n").utf8)) == .success(Array(text.utf8)))
        }
        for junk in ["", "   \n", "gAAAAA", "hello world", String(repeating: "A", count: 200)] {
            guard case .failure(let f) = decryptWhole(key, Array(junk.utf8)) else {
                Issue.record("junk decrypted")
                continue
            }
            #expect(errorCode(f) == "bad_format", "\(junk.prefix(10))")
        }
    }
}

/// Tokens made by Python's `cryptography` (the real tool), read by `FernetKey` with the same
/// keys as `MultiFernet`: every length around the AES block and the 32-character vector block,
/// large tokens, and two keys sharing a signing key (the first key's MAC matches, its
/// decryption fails or succeeds exactly as Python's does).
@Suite struct FernetPythonTests {
    @Test func tokensFromPythonCryptography() throws {
        let script = """
            import base64, json, os, sys
            from cryptography.fernet import Fernet, MultiFernet, InvalidToken
            s, e1, e2, other = os.urandom(16), os.urandom(16), os.urandom(16), os.urandom(32)
            a = base64.urlsafe_b64encode(s + e1)
            b = base64.urlsafe_b64encode(s + e2)
            c = base64.urlsafe_b64encode(other)
            cases = []
            for n in list(range(0, 70)) + [100, 1000, 4093, 65536 + 7, 300000]:
                for keys, maker in (([b], b), ([c, b], b), ([a, b], b), ([a], b), ([c], b)):
                    plain = os.urandom(n)
                    token = Fernet(maker).encrypt(plain)
                    try:
                        expect = MultiFernet([Fernet(k) for k in keys]).decrypt(token).hex()
                    except InvalidToken:
                        expect = None
                    cases.append({"keys": [k.decode() for k in keys], "token": token.decode(), "expect": expect})
            json.dump(cases, sys.stdout)
            """
        guard let output = TestTools.run(["python3", "-c", script]) else {
            print("skipping: python3 with cryptography is not available")
            return
        }
        struct Case: Decodable {
            var keys: [String]
            var token: String
            var expect: String?
        }
        let cases = try JSONDecoder().decode([Case].self, from: Data(output))
        #expect(cases.count == 75 * 5)
        var decrypted = 0
        for c in cases {
            let key = try FernetKey(secret: .list(c.keys.map { .text(copying: Array($0.utf8)) }))
            let result = decryptWhole(key, Array((c.token + "\n").utf8))
            switch (result, c.expect) {
            case (.success(let plain), let hex?):
                #expect(plain.map { String(format: "%02x", $0) }.joined() == hex)
                decrypted += 1
            case (.failure(let f), nil):
                #expect(errorCode(f) == "decrypt_failed")
            default:
                Issue.record("cryptcount and Python disagree on a \(c.token.count)-character token")
            }
        }
        #expect(decrypted >= 75 * 3)
    }
}
