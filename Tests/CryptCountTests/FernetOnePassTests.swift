import CFastBase64
import Foundation
import Testing

@testable import CryptCount

/// The one-pass Fernet path (`cfb64_fernet_open`: base64, HMAC-SHA256 and AES-128-CBC in one
/// pass over L1-sized pieces) against tokens made by Python's `cryptography`: it is called
/// directly, so a kernel that silently failed (and left the work to the step-by-step path)
/// would show here; and through `decrypt(whole:)`, which must agree with Python and with the
/// step-by-step path on every success and every failure.
@Suite struct FernetOnePassTests {
    struct Made: Decodable {
        var key: String
        var tokens: [Token]
        struct Token: Decodable {
            var token: String
            var plain: String
        }
    }

    /// Tokens of every length class: 0...80 bytes (each AES block count and base64 padding),
    /// around the kernel's 4096-character piece (3,072 bytes) and 32-character vector block,
    /// and up to ~70 KiB.
    static func pythonTokens() -> Made? {
        let script = """
            import json, os, sys
            from cryptography.fernet import Fernet
            key = Fernet.generate_key()
            f = Fernet(key)
            lengths = list(range(0, 81)) + [3000, 3015, 3016, 3031, 3032, 3047, 3048, 3063, 3064, 3072, 3080,
                                            6112, 6128, 6144, 9000, 65535, 65536, 70000, 71680]
            out = []
            for n in lengths:
                p = os.urandom(n)
                out.append({"token": f.encrypt(p).decode(), "plain": p.hex()})
            json.dump({"key": key.decode(), "tokens": out}, sys.stdout)
            """
        guard let output = TestTools.run(["python3", "-c", script]) else { return nil }
        return try? JSONDecoder().decode(Made.self, from: Data(output))
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// Runs the kernel alone on `token` (no whitespace): the plaintext, or nil; checks that a
    /// failure leaves no byte of plaintext behind in a buffer that held 0xAA before.
    static func openFused(_ key: FernetKey, _ token: [UInt8]) -> [UInt8]? {
        guard let fused = key.keys.first?.fused else { return nil }
        var out = [UInt8](repeating: 0xAA, count: Base64.maxDecodedCount(token.count))
        var timestamp: UInt64 = 0
        let n = token.withUnsafeBytes { t in
            out.withUnsafeMutableBytes { fused.open(t, into: $0, timestamp: &timestamp) }
        }
        guard let n else {
            #expect(out.allSatisfy { $0 == 0xAA || $0 == 0 }, "a failed token left bytes behind")
            return nil
        }
        return Array(out[0..<n])
    }

    @Test func everyLengthClassDecryptsInOnePass() throws {
        guard let made = Self.pythonTokens() else {
            print("skipping: python3 with cryptography is not available")
            return
        }
        let key = try FernetKey(secret: .text(copying: Array(made.key.utf8)))
        let onePass = cfb64_fernet_supported() != 0
        if !onePass { print("this CPU lacks SHA-NI or AES-NI: only the step-by-step path is tested") }
        var paddings = Set<Int>()
        for t in made.tokens {
            let token = Array(t.token.utf8)
            paddings.insert(token.reversed().prefix { $0 == UInt8(ascii: "=") }.count)
            if onePass {
                #expect(Self.openFused(key, token).map(Self.hex) == t.plain, "\(token.count) characters")
            }
            for wrapped in [t.token, t.token + "\n", "  " + t.token + "\r\n\t"] {
                guard case .success(let plain) = decryptWhole(key, Array(wrapped.utf8)) else {
                    Issue.record("a \(token.count)-character token failed")
                    continue
                }
                #expect(Self.hex(plain) == t.plain)
            }
        }
        #expect(paddings == [0, 1, 2])
    }

    /// A bit flipped in each region of the token (version, timestamp, IV, ciphertext, MAC):
    /// the one pass refuses it and leaves nothing; the key reports what the step-by-step path
    /// does (a changed version byte is not a Fernet token; anything else fails to decrypt).
    @Test func aFlippedBitAnywhereFails() throws {
        let key = try FernetKey(secret: .text(copying: Array("kqC7Tr9ifEpZDkh8VqeVtCD0FJtGd_lt6q5k5I7Fe7A=".utf8)))
        for size in [0, 15, 16, 100, 5000] {
            let plain = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let token = try key.encrypt(plain, timestamp: 1_700_000_000, iv: (0..<16).map { UInt8($0) })
            var raw = try #require(Base64.decode(Array(token.utf8), alphabet: .urlSafe, padding: .required))
            #expect(decryptWhole(key, Array(token.utf8)) == .success(plain))
            // Every byte of the small tokens; the header, a stride of the body and the end of the large one.
            let bytes =
                size < 1000
                ? Array(0..<raw.count)
                : Array(0..<32) + Array(stride(from: 32, to: raw.count - 64, by: 97))
                    + Array((raw.count - 64)..<raw.count)
            for i in bytes {
                for bit in [0, 5] {
                    raw[i] ^= 1 << bit
                    let tampered = Array(Base64.encode(raw, alphabet: .urlSafe, padded: true).utf8)
                    raw[i] ^= 1 << bit
                    if cfb64_fernet_supported() != 0 {
                        #expect(Self.openFused(key, tampered) == nil, "byte \(i) bit \(bit)")
                    }
                    guard case .failure(let f) = decryptWhole(key, tampered) else {
                        Issue.record("a token with byte \(i) changed decrypted")
                        continue
                    }
                    #expect(errorCode(f) == (i == 0 ? "bad_format" : "decrypt_failed"), "byte \(i)")
                }
            }
        }
    }

    /// Base64 the one pass must treat as the step-by-step path does: non-canonical last
    /// characters are accepted (as Python's decoder does); whitespace inside the token (a
    /// wrapped token) and the standard alphabet are accepted too, as Python does, through the
    /// step-by-step path; missing or extra padding and a stray character are refused (bad_format).
    @Test func base64EdgeCases() throws {
        let key = try FernetKey(secret: .text(copying: Array("kqC7Tr9ifEpZDkh8VqeVtCD0FJtGd_lt6q5k5I7Fe7A=".utf8)))
        for size in [16, 17, 18] {
            let plain = [UInt8](repeating: 0x41, count: size)
            let token = try key.encrypt(plain, timestamp: 1, iv: [UInt8](repeating: 9, count: 16))
            var chars = Array(token.utf8)
            let pads = chars.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            if pads > 0 {
                // Set the unused low bits of the last data character (non-canonical).
                let last = chars.count - pads - 1
                let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
                let value = try #require(alphabet.firstIndex(of: chars[last]))
                chars[last] = alphabet[value | (pads == 1 ? 0x3 : 0xF)]
                #expect(chars != Array(token.utf8))
                #expect(decryptWhole(key, chars) == .success(plain), "non-canonical, \(pads) padding")
                if cfb64_fernet_supported() != 0 { #expect(Self.openFused(key, chars) == plain) }
            }
            let original = Array(token.utf8)
            var accepted: [[UInt8]] = [
                Array(original.prefix(40)) + [UInt8(ascii: "\n")] + Array(original.dropFirst(40)),
                Array(original.prefix(40)) + Array(" \r\n\t".utf8) + Array(original.dropFirst(40)),
                stride(from: 0, to: original.count, by: 16).flatMap {
                    Array(original[$0..<min($0 + 16, original.count)]) + [UInt8(ascii: "\n")]
                },
            ]
            if let k = original.firstIndex(where: { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) {
                var std = original
                std[k] = std[k] == UInt8(ascii: "-") ? UInt8(ascii: "+") : UInt8(ascii: "/")
                accepted.append(std)
            }
            for a in accepted {
                #expect(decryptWhole(key, a) == .success(plain), "\(String(decoding: a, as: UTF8.self))")
            }
            var refused: [[UInt8]] = [
                original + Array("====".utf8),
                Array(original.prefix(40)) + [UInt8(ascii: ".")] + Array(original.dropFirst(40)),
            ]
            if pads > 0 { refused.append(Array(original.dropLast(pads))) }
            for r in refused {
                if cfb64_fernet_supported() != 0 { #expect(Self.openFused(key, r) == nil) }
                guard case .failure(let f) = decryptWhole(key, r) else {
                    Issue.record("malformed base64 decrypted")
                    continue
                }
                #expect(errorCode(f) == "bad_format")
            }
        }
    }

    /// An expired token that the one pass opens is still refused, with the ttl's message.
    @Test func ttlStillApplies() throws {
        let secret = SecretInput.text(copying: Array("kqC7Tr9ifEpZDkh8VqeVtCD0FJtGd_lt6q5k5I7Fe7A=".utf8))
        let key = try FernetKey(secret: secret, options: CipherOptions(ttlSeconds: 60), clock: { 2_000 })
        let plain = Array("a secret story".utf8)
        for (stamp, expect) in [
            (UInt64(1_000), CipherFailure.decryptFailed("the token has expired (ttl)")),
            (UInt64(3_000), .decryptFailed("the token's timestamp is too far in the future")),
        ] {
            let token = try key.encrypt(plain, timestamp: stamp, iv: [UInt8](repeating: 1, count: 16))
            if cfb64_fernet_supported() != 0 { #expect(Self.openFused(key, Array(token.utf8)) == plain) }
            #expect(decryptWhole(key, Array(token.utf8)) == .failure(expect))
        }
        let fresh = try key.encrypt(plain, timestamp: 1_990, iv: [UInt8](repeating: 1, count: 16))
        #expect(decryptWhole(key, Array(fresh.utf8)) == .success(plain))
    }
}
