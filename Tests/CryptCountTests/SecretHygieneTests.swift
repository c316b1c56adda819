import Foundation
import Testing

@testable import CryptCount

/// Secrets never show through descriptions, reflection or dumps of the objects that hold them
/// (what a stray interpolation, a log line or a crash report would print).
@Suite struct SecretHygieneTests {
    static let password = "Zq7-hygiene-passw0rd-KX41"
    static let fernet = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
    static let age = "AGE-SECRET-KEY-1HU7ZNEEG4KH4SZ358GTD9YJETCRXXKM7YDQDQRSZD0E7W4YV4TQQJK5MZQ"

    static func renderings(_ value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped, maxDepth: 12)
        return ["\(value)", String(reflecting: value), dumped]
    }

    static func leaks(_ text: String) -> Bool {
        var forms = [password, fernet, age, String(age.dropFirst(16)), String(age.dropFirst(16)).lowercased()]
        if let raw = Data(
            base64Encoded: fernet.replacingOccurrences(of: "_", with: "/").replacingOccurrences(of: "-", with: "+"))
        {
            forms.append(raw.map { String(format: "%02x", $0) }.joined())
            forms.append(raw.map { String($0) }.joined(separator: ", "))
        }
        if forms.contains(where: { text.contains($0) }) { return true }
        // A byte array in a dump shows as its numbers, one per line: look for the secrets'
        // bytes as a run of the numbers in the text.
        let numbers = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        for secret in [password, age] {
            let bytes = secret.utf8.map { Int($0) }
            if numbers.count >= bytes.count,
                (0...(numbers.count - bytes.count)).contains(where: {
                    numbers[$0..<($0 + bytes.count)].elementsEqual(bytes)
                })
            {
                return true
            }
        }
        return false
    }

    @Test func theCheckSeesABareByteArray() {
        #expect(Self.leaks(Self.renderings(Array(Self.password.utf8))[2]))
        #expect(Self.leaks("\(Self.age.lowercased())"))
    }

    @Test func secretBytesNeverPrintsItsContent() {
        let s = SecretBytes(Array(Self.password.utf8))
        for r in Self.renderings(s) { #expect(!Self.leaks(r), "\(r)") }
        #expect("\(s)" == "<secret>")
        #expect(s.bytes == Array(Self.password.utf8))
    }

    @Test func keysNeverPrintTheirSecrets() throws {
        let keys: [any CipherKey] = [
            try makeKey("biographer", secret: .text(copying: Array(Self.password.utf8))),
            try makeKey("openssl", secret: .text(copying: Array(Self.password.utf8))),
            try makeKey("fernet", secret: .text(copying: Array(Self.fernet.utf8))),
            try makeKey("age", secret: .text(copying: Array(Self.age.utf8))),
            try makeKey("age", secret: .map(["passphrase": .text(copying: Array(Self.password.utf8))])),
        ]
        for key in keys {
            for r in Self.renderings(key) { #expect(!Self.leaks(r), "\(key.cipherName): \(r)") }
            let unlocked = UnlockedKey(key: key)
            for r in Self.renderings(unlocked) { #expect(!Self.leaks(r), "\(key.cipherName): \(r)") }
        }
    }

    @Test func secretErrorsNeverQuoteTheSecret() {
        let bad: [(String, SecretInput)] = [
            ("fernet", .text(copying: Array((Self.password + Self.password).utf8))),
            ("age", .text(copying: Array((Self.age + "x").utf8))),
            ("age", .text(copying: Array(Self.password.utf8))),
            ("age", .map(["identities": .text(copying: Array(Self.password.utf8)), "other": .text(copying: [])])),
            ("fernet", .list([.text(copying: Array(Self.fernet.utf8)), .text(copying: Array(Self.password.utf8))])),
        ]
        for (cipher, secret) in bad {
            do {
                _ = try makeKey(cipher, secret: secret)
                Issue.record("\(cipher) accepted a malformed secret")
            } catch {
                #expect(!Self.leaks(error.message), "\(cipher): \(error.message)")
                #expect(!error.message.contains(Self.password))
            }
        }
    }

    /// Decoding copies a request's secret into storage of its own and zeroes the decoded
    /// MessagePack value's bytes; what the request holds is intact and compares equal.
    @Test func decodingASecretLeavesNoArrayCopyBehind() throws {
        var payload = MessagePackWriter.encode(
            .map([
                MessagePackPair(.text("id"), .uint(1)), MessagePackPair(.text("op"), .text("unlock")),
                MessagePackPair(.text("name"), .text("k")), MessagePackPair(.text("cipher"), .text("biographer")),
                MessagePackPair(.text("secret"), .array([.text(Self.password)])),
            ]))
        let tree = try MessagePackDecoder.decode(payload)
        guard case .success(let (_, request)) = RequestDecoder(limits: RequestLimits()).decode(tree),
            case .unlock(let u) = request, case .list(let items)? = u.secret, case .text(let held)? = items.first
        else {
            Issue.record("the unlock request did not decode")
            return
        }
        #expect(held.bytes == Array(Self.password.utf8))
        guard case .array(let values)? = tree["secret"], case .string(let scrap)? = values.first else {
            Issue.record("the decoded tree has no secret")
            return
        }
        #expect(scrap.count == Self.password.utf8.count && scrap.allSatisfy { $0 == 0 })
        SecretBytes.wipe(&payload)
    }
}
