import Foundation
import Testing

@testable import CryptCount

@Suite struct OpenSSLTests {
    static func key(_ pw: String = "pw", iter: Int? = 1000) throws -> OpenSSLKey {
        try OpenSSLKey(password: Array(pw.utf8), iterations: iter)
    }

    @Test func roundTripsAtBlockEdgesInAnyPieces() throws {
        let key = try Self.key()
        let salt: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
        for n in [0, 1, 15, 16, 17, 31, 32, 4095, 70_000, 200_003] {
            let plain = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let file = try key.encrypt(plain, salt: salt)
            #expect(file.count == 16 + (n / 16 + 1) * 16)
            for piece in [file.count + 1, 65_536, 1000, 17, 1] where piece >= 17 || n < 5000 {
                let (out, error) = decryptStreaming(key, file, piece: piece)
                #expect(error == nil, "n \(n) piece \(piece)")
                #expect(out == plain, "n \(n) piece \(piece)")
            }
        }
    }

    /// `openssl enc -a`: 64-character lines (or one line, `-A`, or CRLF ends), fed in pieces that
    /// split the first 8 bytes, the lines and the base64 groups anywhere.
    @Test func base64FormInAnyPieces() throws {
        let key = try Self.key()
        let salt: [UInt8] = [1, 3, 5, 7, 9, 11, 13, 15]
        for n in [0, 1, 15, 16, 47, 4095, 70_000] {
            let plain = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            let text = Array(Base64.encode(try key.encrypt(plain, salt: salt)).utf8)
            let lines = stride(from: 0, to: text.count, by: 64).flatMap { text[$0..<min($0 + 64, text.count)] + [0x0A] }
            let crlf = lines.flatMap { $0 == 0x0A ? [0x0D, 0x0A] : [$0] }
            for (form, file) in [("lines", lines), ("one line", text), ("crlf", crlf)] {
                for piece in [file.count + 1, 1000, 7, 1] where piece >= 7 || n < 5000 {
                    let (out, error) = decryptStreaming(key, file, piece: piece)
                    #expect(error == nil, "n \(n) \(form) piece \(piece)")
                    #expect(out == plain, "n \(n) \(form) piece \(piece)")
                }
            }
            var bad = lines
            bad[bad.count / 2] = UInt8(ascii: "*")
            #expect(errorCode(decryptStreaming(key, bad, piece: 5).error) == "bad_format")
            #expect(errorCode(decryptStreaming(key, text + Array("\nQUJD".utf8), piece: 9).error) == "bad_format")
        }
        #expect(errorCode(decryptStreaming(key, Array("U2FsdGVk".utf8), piece: 3).error) == "bad_format")
        #expect(errorCode(decryptStreaming(key, Array("U2Fsd".utf8), piece: 3).error) == "bad_format")
    }

    @Test func derivedKeysAreCachedPerSalt() throws {
        let key = try Self.key()
        let a = try key.encrypt(Array("one".utf8), salt: [1, 1, 1, 1, 1, 1, 1, 1])
        let b = try key.encrypt(Array("two".utf8), salt: [1, 1, 1, 1, 1, 1, 1, 1])
        let c = try key.encrypt(Array("three".utf8), salt: [2, 2, 2, 2, 2, 2, 2, 2])
        #expect(key.derivedKeys.count == 2)
        for file in [a, b, c, a] { #expect(decryptStreaming(key, file, piece: 64).error == nil) }
        #expect(key.derivedKeys.count == 2)
    }

    @Test func formatErrors() throws {
        let key = try Self.key()
        let good = try key.encrypt(Array("hello there".utf8), salt: [1, 2, 3, 4, 5, 6, 7, 8])
        let cases: [([UInt8], String)] = [
            ([], "bad_format"),
            (Array("Salted_".utf8), "bad_format"),
            (Array("Not salted at all, just text".utf8), "bad_format"),
            (Array(good.prefix(16)), "bad_format"),  // header, no ciphertext
            (Array(good.prefix(20)), "bad_format"),  // misaligned
            (Array(good.dropLast(1)), "bad_format"),
            (good + [0], "bad_format"),
        ]
        for (file, code) in cases {
            #expect(errorCode(decryptStreaming(key, file, piece: 7).error) == code, "\(file.count) bytes")
        }
        // The last ciphertext block decrypted under a flipped previous block: pad byte > 16.
        var tampered = good
        tampered[tampered.count - 17] ^= 0x80
        #expect(errorCode(decryptStreaming(key, tampered, piece: 5).error) == "decrypt_failed")
    }

    @Test func iterationsMatter() throws {
        let key1000 = try Self.key(iter: 1000)
        let key10000 = try Self.key(iter: nil)
        #expect(key10000.iterations == 10_000)
        let file = try key1000.encrypt(Array("secret diary".utf8), salt: [3, 3, 3, 3, 3, 3, 3, 3])
        #expect(decryptStreaming(key1000, file, piece: 100).plain == Array("secret diary".utf8))
        // Wrong iteration count: a different key; with this salt the padding check catches it.
        #expect(errorCode(decryptStreaming(key10000, file, piece: 100).error) == "decrypt_failed")
    }

    @Test func secretsAndOptionsAreValidated() {
        #expect(throws: SecretError.self) { try OpenSSLKey(password: []) }
        for bad in [0, -5, OpenSSLKey.maxIterations + 1, Int.max] {
            #expect(throws: SecretError.self) { try OpenSSLKey(password: [1], iterations: bad) }
        }
        #expect(throws: SecretError.self) {
            try makeKey("openssl", secret: .list([.text(copying: [1])]))
        }
        #expect(throws: Never.self) {
            _ = try makeKey("openssl", secret: .bytes(copying: [0xff, 0x00]), options: CipherOptions(iterations: 1))
        }
    }

    /// Memory stays bounded by one batch plus the piece being fed, whatever the file size.
    @Test func streamingBuffersStayBounded() throws {
        let key = try Self.key(iter: 1)
        let plain = [UInt8](repeating: 0x61, count: 3 << 20)
        let file = try key.encrypt(plain, salt: [0, 0, 0, 0, 0, 0, 0, 0])
        var decryptor = OpenSSLKey.Decryptor(owner: key)
        var total = 0
        var maxPending = 0
        var offset = 0
        while offset < file.count {
            let end = min(file.count, offset + 10_000)
            try feedSlice(&decryptor, file[offset..<end]) { total += $0.count }
            maxPending = max(maxPending, decryptor.pending.count)
            offset = end
        }
        try decryptor.finish { total += $0.count }
        #expect(total == plain.count)
        #expect(maxPending <= OpenSSLKey.Decryptor.batch + 10_000 + 16)
    }
}
