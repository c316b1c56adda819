import Foundation
import Testing

@testable import CryptCount

/// One case of Tests/Fixtures/ciphers/manifest.json (written by make_fixtures.py).
struct CipherFixture: Decodable, CustomStringConvertible {
    enum Secret: Decodable {
        case text(String)
        case list([String])
        case map([String: String])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                self = .text(s)
            } else if let l = try? c.decode([String].self) {
                self = .list(l)
            } else {
                self = .map(try c.decode([String: String].self))
            }
        }

        var input: SecretInput {
            switch self {
            case .text(let s): return .text(copying: Array(s.utf8))
            case .list(let l): return .list(l.map { .text(copying: Array($0.utf8)) })
            case .map(let m): return .map(m.mapValues { .text(copying: Array($0.utf8)) })
            }
        }
    }

    var file: String
    var cipher: String
    var secret: Secret
    var expect: String
    var sha256: String?
    var length: Int?
    var iter: Int?
    var ttl: Int?
    var now: Int64?
    var slow: Bool?

    // Never prints the secret (test-only, but the habit matters).
    var description: String { "\(cipher) \(file) expect \(expect)" }

    static let folder = TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/ciphers")

    static func all() throws -> [CipherFixture] {
        let data = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        return try JSONDecoder().decode([CipherFixture].self, from: data)
    }

    func bytes() throws -> [UInt8] {
        try Array(Data(contentsOf: Self.folder.appendingPathComponent(file)))
    }

    func key() throws -> any CipherKey {
        let options = CipherOptions(iterations: iter, ttlSeconds: ttl)
        if cipher == "fernet", let now {
            return try FernetKey(secret: secret.input, options: options, clock: { now })
        }
        return try makeKey(cipher, secret: secret.input, options: options)
    }
}

/// Decrypts `file` the way the engine would: whole for whole-file ciphers, else streamed.
func decryptAny(_ key: any CipherKey, _ file: [UInt8], piece: Int) -> (plain: [UInt8], error: CipherFailure?) {
    if key.mode == .wholeFile {
        var out: [UInt8] = []
        var failure: CipherFailure?
        file.withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try key.decrypt(whole: raw, into: &out)
            } catch {
                failure = error
            }
        }
        return (out, failure)
    }
    return decryptStreaming(key, file, piece: piece)
}

func errorCode(_ failure: CipherFailure?) -> String {
    switch failure {
    case .none: return "ok"
    case .badFormat?: return "bad_format"
    case .decryptFailed?: return "decrypt_failed"
    }
}

@Suite struct CipherFixtureTests {
    /// Every fixture made by the real tools (Python cryptography, age, rage, openssl).
    @Test func manifestCases() throws {
        let cases = try CipherFixture.all()
        #expect(cases.count >= 40)
        var seen: Set<String> = []
        for c in cases {
            seen.insert(c.cipher)
            let key = try c.key()
            let file = try c.bytes()
            let pieces = c.slow == true ? [file.count + 1] : [file.count + 1, 4096, 13]
            for piece in pieces {
                let (plain, error) = decryptAny(key, file, piece: piece)
                #expect(errorCode(error) == c.expect, "\(c) piece \(piece): \(String(describing: error))")
                if c.expect == "ok" {
                    #expect(plain.count == c.length, "\(c)")
                    #expect(sha256Hex(plain) == c.sha256, "\(c)")
                }
            }
        }
        #expect(seen == ["fernet", "age", "openssl"])
    }

    /// Failure messages describe the problem, never the secret.
    @Test func messagesHoldNoSecret() throws {
        for c in try CipherFixture.all() where c.expect != "ok" && c.slow != true {
            let (_, error) = decryptAny(try c.key(), try c.bytes(), piece: 4096)
            let message: String
            switch error {
            case .badFormat(let m)?, .decryptFailed(let m)?: message = m
            case nil: continue
            }
            switch c.secret {
            case .text(let s):
                for line in s.split(separator: "\n") where !line.hasPrefix("#") {
                    #expect(!message.contains(line))
                }
            case .list(let l):
                for s in l { #expect(!message.contains(s)) }
            case .map(let m):
                for s in m.values { #expect(!message.contains(s)) }
            }
        }
    }

    @Test func registryNames() {
        #expect(
            CipherKind.allCases.map(\.name) == [
                "plain", "biographer", "biographer-v0", "fernet", "age", "openssl", "openpgp",
            ])
        for kind in CipherKind.allCases {
            #expect(kind.needsSecret == (kind != .plain))
            if kind.needsSecret {
                #expect(throws: SecretError.self) { try kind.makeKey(secret: nil) }
            }
        }
    }
}

@Suite struct CipherOptionTests {
    @Test func requestOptionsOverrideUnlockedOnes() throws {
        let fernetSecret = SecretInput.text(copying: Array("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=".utf8))
        let fernet = try makeKey("fernet", secret: fernetSecret)
        let withTTL = try fernet.applying(CipherOptions(ttlSeconds: 30))
        #expect((withTTL as? FernetKey)?.ttl == 30)
        #expect((fernet as? FernetKey)?.ttl == nil)
        #expect(throws: SecretError.self) { try fernet.applying(CipherOptions(ttlSeconds: -1)) }

        let openssl = try makeKey("openssl", secret: .text(copying: Array("pw".utf8)))
        let iter = try openssl.applying(CipherOptions(iterations: 1000))
        #expect((iter as? OpenSSLKey)?.iterations == 1000)
        #expect((openssl as? OpenSSLKey)?.iterations == 10_000)
        #expect(throws: SecretError.self) { try openssl.applying(CipherOptions(iterations: 0)) }
        // The fixture made with -iter 1000 decrypts through the overridden key.
        let file = try Array(Data(contentsOf: CipherFixture.folder.appendingPathComponent("openssl_iter1000.bin")))
        let reKeyed = try makeKey("openssl", secret: .text(copying: Array("correct horse battery staple".utf8)))
            .applying(CipherOptions(iterations: 1000))
        #expect(decryptStreaming(reKeyed, file, piece: 64).error == nil)

        // No options, or options of other ciphers: the same key object.
        #expect(try fernet.applying(CipherOptions()) === fernet)
        #expect(try fernet.applying(CipherOptions(iterations: 5)) === fernet)
        #expect(try PlainKey.shared.applying(CipherOptions(ttlSeconds: 5)) === PlainKey.shared)
    }
}

@Suite struct CipherConcurrencyTests {
    /// One key object serves many worker threads at once (shared caches included).
    @Test func keysAreSharedSafelyAcrossThreads() throws {
        let cases = try CipherFixture.all().filter { $0.slow != true && $0.now == nil }
        // One key per (cipher, secret, options), as an unlock would make.
        var keys: [String: any CipherKey] = [:]
        var work: [(any CipherKey, [UInt8], CipherFixture)] = []
        for c in cases {
            let id = "\(c.cipher)|\(c.secret)|\(c.iter ?? 0)|\(c.ttl ?? -1)"
            let key = try keys[id] ?? c.key()
            keys[id] = key
            work.append((key, try c.bytes(), c))
        }
        let jobs = work
        let mismatches = Counter()
        DispatchQueue.concurrentPerform(iterations: jobs.count * 4) { i in
            let (key, file, c) = jobs[i % jobs.count]
            let (plain, error) = decryptAny(key, file, piece: 1000 + i)
            if errorCode(error) != c.expect || (c.expect == "ok" && sha256Hex(plain) != c.sha256) {
                mismatches.enter()
            }
        }
        #expect(mismatches.value == 0)
    }
}
