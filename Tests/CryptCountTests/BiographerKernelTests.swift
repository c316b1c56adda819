import Foundation
import Testing

@testable import CryptCount

/// Every biographer kernel (issue 14) against the byte-loop reference in BiographerTests: seed
/// vectors, every plaintext length 0...300 at random alignments, corrupted bytes, the chained
/// state across block and lane boundaries, a non-digit at each hex level. A kernel this CPU does
/// not run is skipped, saying so.
@Suite struct BiographerKernelTests {
    /// The kernels to test, printing the ones skipped.
    static func kernels() -> [BiographerKernel] {
        BiographerKernel.allCases.filter { kernel in
            if !kernel.isSupported { print("skipping the \(kernel.rawValue) kernel: this CPU does not run it") }
            return kernel.isSupported
        }
    }

    /// Decrypts `c` placed `offset` bytes into a fresh buffer (the kernels load unaligned).
    static func decrypt(_ key: BiographerKey, _ c: [UInt8], offset: Int = 0, kernel: BiographerKernel) -> [UInt8]? {
        let buffer = [UInt8](repeating: 0xa5, count: offset) + c + [0x5a, 0x5a]
        return buffer.withUnsafeBytes { raw -> [UInt8]? in
            var out: [UInt8] = [7, 7, 7]
            do {
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + c.count)])
                try key.decrypt(whole: slice, into: &out, kernel: kernel)
                return out
            } catch {
                return nil
            }
        }
    }

    /// The chained format's encryption of an arbitrary level-4 text `t` (any bytes).
    static func encryptLevel4(_ t: [UInt8], password pw: [UInt8], iv: [UInt8]) -> [UInt8] {
        var c = iv + t
        if c.count > 8 { for i in 8..<c.count { c[i] ^= c[i - 8] } }
        let amount = BiographerKey.shift(for: pw)
        return c.indices.map { (c[$0] &+ amount) ^ pw[$0 % pw.count] }
    }

    static func hex(_ b: [UInt8], upper: Bool = false) -> [UInt8] {
        Array(b.map { String(format: upper ? "%02X" : "%02x", $0) }.joined().utf8)
    }

    @Test func theWidestSupportedKernelIsActiveUnlessNamed() {
        #expect(BiographerKernel.sse2.isSupported)
        #expect(BiographerKernel.widest.isSupported)
        #expect(BiographerKernel.allCases.filter(\.isSupported).last == BiographerKernel.widest)
        if case .failure = BiographerKernel.requested("avx1024") {} else { Issue.record("an unknown name is accepted") }
        if case .success(nil) = BiographerKernel.requested("") {} else { Issue.record("an empty value is a choice") }
        if case .success(nil) = BiographerKernel.requested(nil) {} else { Issue.record("no value is a choice") }
        for kernel in BiographerKernel.allCases {
            switch BiographerKernel.requested(kernel.rawValue) {
            case .success(let k): #expect(k == kernel && kernel.isSupported)
            case .failure(let e): #expect(!kernel.isSupported && e.message.contains("does not run it"))
            }
        }
        if BiographerKernel.environmentValue == nil { #expect(BiographerKernel.active == BiographerKernel.widest) }
    }

    /// cpuid agrees with what the kernel reports to the user in /proc/cpuinfo (Linux x86-64).
    @Test func supportMatchesProcCpuinfo() throws {
        #if arch(x86_64) && os(Linux)
            let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
            let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
            #expect(BiographerKernel.avx2.isSupported == flags.contains("avx2"))
            let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512vbmi"].allSatisfy(flags.contains)
            #expect(BiographerKernel.avx512.isSupported == avx512)
        #else
            #expect(!BiographerKernel.avx2.isSupported && !BiographerKernel.avx512.isSupported)
        #endif
    }

    @Test func seedVectorsWithEveryKernel() throws {
        guard let vectors = try BiographerTests.vectors() else {
            print("skipping: shared/seed/biographer-vectors.json not found (set CRYPTCOUNT_SHARED)")
            return
        }
        for kernel in Self.kernels() {
            for v in vectors where v.cipher == "biographer" {
                let key = try BiographerKey(password: Array(v.password.utf8), chained: true)
                let c = try #require([UInt8](hex: v.ciphertextHex))
                let got = Self.decrypt(key, c, kernel: kernel)
                if v.expect == "decrypt_failed" {
                    #expect(got == nil, "\(kernel)")
                } else {
                    #expect(got == Array(try #require(v.plaintext).utf8), "\(kernel)")
                }
            }
        }
    }

    /// Every plaintext length 0...300, a random password length and alignment for each, then
    /// the same file with one random byte changed (usually a decryption failure).
    @Test func everyLengthAtRandomAlignments() throws {
        var rng = SystemRandomNumberGenerator()
        for kernel in Self.kernels() {
            for n in 0...300 {
                let pw = (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let key = try BiographerKey(password: pw, chained: true)
                let plain = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let iv = (0..<8).map { _ in UInt8.random(in: 1...254, using: &rng) }
                var c = key.encrypt(plain, iv: iv)
                let offset = Int.random(in: 0..<64, using: &rng)
                #expect(Self.decrypt(key, c, offset: offset, kernel: kernel) == plain, "\(kernel) n \(n)")
                let i = Int.random(in: 0..<c.count, using: &rng)
                c[i] ^= UInt8.random(in: 1...255, using: &rng)
                let expected = BiographerTests.referenceDecrypt(c, password: pw, chained: true)
                #expect(Self.decrypt(key, c, offset: offset, kernel: kernel) == expected, "\(kernel) n \(n) byte \(i)")
            }
        }
    }

    /// Random bytes of every valid length (8 + 16k): the reference decides, never the kernel.
    @Test func randomCiphertexts() throws {
        var rng = SystemRandomNumberGenerator()
        let pw = Array("pw".utf8)
        let key = try BiographerKey(password: pw, chained: true)
        for kernel in Self.kernels() {
            for k in 0...40 {
                let c = (0..<(8 + 16 * k)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let expected = BiographerTests.referenceDecrypt(c, password: pw, chained: true)
                #expect(Self.decrypt(key, c, offset: k % 7, kernel: kernel) == expected, "\(kernel) k \(k)")
            }
        }
    }

    /// The chained state across blocks, lanes and wide iterations: password lengths around
    /// 256, 512 and 1024 (the mask's phase per step), plaintexts covering several 4-block
    /// iterations, leftover blocks and a tail; each byte near a block edge or in the iv changed
    /// in turn (the change reaches the next block through the 8-byte chaining).
    @Test func chainedStateAtBlockEdges() throws {
        var rng = SystemRandomNumberGenerator()
        for kernel in Self.kernels() {
            for pwLength in [1, 3, 8, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 1300] {
                let pw = (0..<pwLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let key = try BiographerKey(password: pw, chained: true)
                let plain = (0..<(16 * 4 * 2 + 16 * 3 + 15)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let c = key.encrypt(plain, iv: (0..<8).map { _ in UInt8.random(in: 1...254, using: &rng) })
                #expect(Self.decrypt(key, c, kernel: kernel) == plain, "\(kernel) pw \(pwLength)")
                guard pwLength == 1 || pwLength == 513 else { continue }
                var edges = Set(0..<8)
                for b in 1...(c.count / 256) {
                    for d in [-9, -8, -1, 0, 7, 8, 15] { edges.insert(8 + 256 * b + d) }
                }
                for i in edges.sorted() where i < c.count {
                    for flip: UInt8 in [0x01, 0x20, 0x80] {
                        var bad = c
                        bad[i] ^= flip
                        let expected = BiographerTests.referenceDecrypt(bad, password: pw, chained: true)
                        #expect(Self.decrypt(key, bad, kernel: kernel) == expected, "\(kernel) byte \(i) ^ \(flip)")
                    }
                }
            }
        }
    }

    /// A non-digit at each of the four hex levels, in each block position of a wide step (and
    /// in the tail) fails; upper-case digits at every level decode; a digit with bit 7 set
    /// ("0" | 0x80, "a" | 0x80) is not a digit.
    @Test func everyHexLevel() throws {
        let pw = Array("level".utf8)
        let key = try BiographerKey(password: pw, chained: true)
        let iv: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let plain = (0..<(16 * 9 + 5)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for kernel in Self.kernels() {
            for upperLevel in 1...4 {
                var t = plain
                for level in 1...4 { t = Self.hex(t, upper: level == upperLevel) }
                #expect(Self.decrypt(key, Self.encryptLevel4(t, password: pw, iv: iv), kernel: kernel) == plain)
            }
            for badLevel in 1...4 {
                for badByte: UInt8 in [0x67, 0x47, 0x2f, 0x3a, 0x40, 0x60, 0xb0, 0xe1] {
                    for at in [0, 15, 16 * 4 + 3, 16 * 8 + 15, 16 * 9 + 2] {
                        // Plaintext byte `at` is digit run at << (badLevel - 1) .. at level badLevel.
                        var t = plain
                        for level in 1...4 {
                            t = Self.hex(t)
                            if level == badLevel { t[(at << level) + 1] = badByte }
                        }
                        let c = Self.encryptLevel4(t, password: pw, iv: iv)
                        #expect(Self.decrypt(key, c, kernel: kernel) == nil, "\(kernel) level \(badLevel) \(badByte)")
                        #expect(BiographerTests.referenceDecrypt(c, password: pw, chained: true) == nil)
                    }
                }
            }
        }
    }
}
