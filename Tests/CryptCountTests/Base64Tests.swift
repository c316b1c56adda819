import CFastBase64
import Foundation
import Testing

@testable import CryptCount

/// The base64 decoder: the vectorised blocks against the scalar loop, and both alphabets against
/// Python's `base64` module (the decoder Python's Fernet and age's armor readers rely on).
@Suite struct Base64Tests {
    static let urlSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func decode(_ text: [UInt8], _ alphabet: Base64.Alphabet, vectorised: Bool = true) -> [UInt8]? {
        var out = [UInt8](repeating: 0xAA, count: Base64.maxDecodedCount(text.count))
        let n = text.withUnsafeBytes { t in
            out.withUnsafeMutableBytes { o in
                Base64.decode(
                    t, alphabet: alphabet, padding: .required, canonical: false, into: o, vectorised: vectorised)
            }
        }
        return n.map { Array(out[0..<$0]) }
    }

    /// Every byte value at every position of a 96-character text (three vector blocks), both
    /// alphabets: the vectorised decoder gives what the scalar loop gives, bytes or rejection.
    @Test func vectorisedMatchesScalarOnEverySubstitution() {
        if cfb64_vectorised() == 0 { print("note: no AVX2 on this CPU; the scalar loop decodes everything") }
        var rng = SystemRandomNumberGenerator()
        for (alphabet, chars) in [(Base64.Alphabet.urlSafe, Self.urlSafe), (.standard, Self.standard)] {
            // Every character of the alphabet, in every lane.
            let base = (0..<96).map { chars[($0 * 7 + Int.random(in: 0..<64, using: &rng)) % 64] }
            #expect(Self.decode(base, alphabet) == Self.decode(base, alphabet, vectorised: false))
            #expect(Self.decode(base, alphabet)?.count == 72)
            var rejected = 0
            for position in 0..<base.count {
                for byte in 0...255 {
                    var text = base
                    text[position] = UInt8(byte)
                    let fast = Self.decode(text, alphabet)
                    #expect(fast == Self.decode(text, alphabet, vectorised: false), "byte \(byte) at \(position)")
                    if fast == nil { rejected += 1 }
                }
            }
            // Per position, the 192 bytes outside the alphabet, except '=' as the last character
            // (padding; the unused low bits need not be zero here).
            #expect(rejected == 96 * 192 - 1)
        }
    }

    /// Random texts (long enough for vector blocks; characters of both alphabets, `=`,
    /// whitespace, bytes just outside the alphabet's ranges, and any byte) against Python's
    /// decoders: url-safe against `urlsafe_b64decode` (what Python's Fernet uses), standard
    /// against `b64decode(validate=True)`. Python is lenient where cryptcount is strict
    /// (PROTOCOL.md: a Fernet token is url-safe base64 with nothing but whitespace around it;
    /// age armor is strict base64): a text in the exact form decodes to Python's bytes, and
    /// anything else is rejected.
    @Test func matchesPythonOnRandomTexts() throws {
        var rng = SystemRandomNumberGenerator()
        let odd =
            Array("=+/-_ \t\n\r.,:@[`{~\u{7f}".utf8) + [
                0x00, 0x2c, 0x2e, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x80, 0xad, 0xff,
            ]
        var cases: [[UInt8]] = []
        for i in 0..<3000 {
            var length = Int.random(in: 0..<200, using: &rng)
            if i % 3 == 0 { length -= length % 4 }
            var text = (0..<length).map { _ in Self.urlSafe[Int.random(in: 0..<64, using: &rng)] }
            if i % 2 == 1 {
                for k in text.indices where Bool.random(using: &rng) {
                    text[k] = Self.standard[Self.urlSafe.firstIndex(of: text[k]) ?? 0]
                }
            }
            switch i % 5 {
            case 0:
                break
            case 1:
                // A few odd bytes anywhere.
                for _ in 0..<Int.random(in: 1...3, using: &rng) where !text.isEmpty {
                    text[Int.random(in: 0..<text.count, using: &rng)] = odd[Int.random(in: 0..<odd.count, using: &rng)]
                }
            case 2:
                // Padding variants.
                let pads = Int.random(in: 0...3, using: &rng)
                text.removeLast(min(pads, text.count))
                text += Array(repeating: UInt8(ascii: "="), count: pads)
            case 3:
                if !text.isEmpty {
                    text[Int.random(in: 0..<text.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            default:
                // Whitespace inside or around.
                let at = Int.random(in: 0...text.count, using: &rng)
                text.insert([0x20, 0x0a, 0x09, 0x0d][Int.random(in: 0..<4, using: &rng)], at: at)
            }
            cases.append(text)
        }
        let script = """
            import base64, binascii, sys
            for line in sys.stdin.buffer.read().split(b"\\n"):
                if not line:
                    continue
                mode, hexed = line.split(b" ")
                text = bytes.fromhex(hexed.decode())
                try:
                    if mode == b"u":
                        out = base64.urlsafe_b64decode(text)
                    else:
                        out = base64.b64decode(text, validate=True)
                    print("ok " + out.hex())
                except (binascii.Error, ValueError):
                    print("error")
            """
        var input: [UInt8] = []
        for mode in ["u", "s"] {
            for text in cases { input += Array("\(mode) \(text.map { String(format: "%02x", $0) }.joined())\n".utf8) }
        }
        guard let output = TestTools.run(["python3", "-c", script], input: input) else {
            print("skipping: python3 is not available")
            return
        }
        let answers = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        try #require(answers.count == 2 * cases.count)
        var agreed = 0
        var strictOnly = 0
        func hex(_ bytes: [UInt8]?) -> String {
            bytes.map { "ok " + $0.map { String(format: "%02x", $0) }.joined() } ?? "error"
        }
        for (k, text) in cases.enumerated() {
            let shown = String(decoding: text, as: UTF8.self).debugDescription
            for (alphabet, chars, python) in [
                (Base64.Alphabet.urlSafe, Self.urlSafe, answers[k]),
                (.standard, Self.standard, answers[cases.count + k]),
            ] {
                let ours = Self.decode(text, alphabet)
                if Self.exactForm(text, chars) {
                    #expect(python == hex(ours) && ours != nil, "\(alphabet): \(shown)")
                    agreed += 1
                } else {
                    #expect(ours == nil, "\(alphabet): accepted a text Python reads only leniently: \(shown)")
                    strictOnly += 1
                }
            }
        }
        #expect(agreed > 300 && strictOnly > 300)  // about 565 each, give or take 22
    }

    /// `[A-Za-z0-9<two more>]*={0,2}`, a multiple of 4 characters long: the only form cryptcount
    /// reads (Python also drops unknown bytes and excess padding, and its url-safe decoder takes
    /// `+` and `/` too).
    static func exactForm(_ text: [UInt8], _ chars: [UInt8]) -> Bool {
        guard text.count % 4 == 0 else { return false }
        var n = text.count
        var pads = 0
        while n > 0, text[n - 1] == UInt8(ascii: "="), pads < 2 {
            n -= 1
            pads += 1
        }
        return text[0..<n].allSatisfy { chars.contains($0) }
    }
}
