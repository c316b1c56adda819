import Foundation
import Synchronization
import Testing

@testable import CryptCount

/// `AgeKey.prepare(files:lanes:)`: file keys unwrapped for several files at once give exactly
/// what each file gives alone, whatever the lanes function returns.
@Suite struct AgeBatchTests {
    /// An identity from the real `age-keygen`: (secret text, public recipient).
    static func keygen() -> (String, String)? {
        guard let out = TestTools.run(["age-keygen"]) else { return nil }
        let text = String(decoding: out, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("# public key: ") }) else {
            return nil
        }
        return (text, String(line.dropFirst("# public key: ".count)))
    }

    static func encrypt(_ plain: String, to recipients: [String]) -> [UInt8]? {
        TestTools.run(["age"] + recipients.flatMap { ["-r", $0] }, input: Array(plain.utf8))
    }

    static func key(_ texts: [String]) throws -> AgeKey {
        try AgeKey(secret: .list(texts.map { .text(copying: Array($0.utf8)) }))
    }

    /// Plaintext or error message of every file, each decrypted alone by a fresh key.
    static func alone(_ texts: [String], _ files: [[UInt8]]) throws -> [String] {
        try files.map { describe(decryptStreaming(try key(texts), $0, piece: 4096)) }
    }

    static func describe(_ r: (plain: [UInt8], error: CipherFailure?)) -> String {
        if let e = r.error { return "error: \(e)" }
        return "plain: " + String(decoding: r.plain, as: UTF8.self)
    }

    /// Lanes functions that get some or all lanes wrong.
    static var lanesFunctions: [(String, AgeKey.Lanes)] {
        [
            ("real", { X25519Lanes.compute(scalar: $0, points: $1, count: $2, into: $3) }),
            ("zero", { _, _, count, out in out.initializeMemory(as: UInt8.self, repeating: 0) }),
            (
                "garbage in odd lanes",
                { scalar, points, count, out in
                    X25519Lanes.compute(scalar: scalar, points: points, count: count, into: out)
                    for lane in stride(from: 1, to: count, by: 2) {
                        for i in (32 * lane)..<(32 * lane + 32) { out[i] = UInt8.random(in: 0...255) }
                    }
                }
            ),
            (
                "garbage everywhere",
                { _, _, count, out in for i in 0..<(32 * count) { out[i] = UInt8.random(in: 0...255) } }
            ),
            (
                "lanes swapped",
                { scalar, points, count, out in
                    X25519Lanes.compute(scalar: scalar, points: points, count: count, into: out)
                    guard count > 1 else { return }
                    for i in 0..<32 { out.swapAt(i, 32 + i) }
                }
            ),
        ]
    }

    /// Files for `ours` and others, several recipients (ours second), a tampered header MAC,
    /// an armored one, a truncated one.
    static func mixedFiles(ours: String, other: String) -> [[UInt8]]? {
        var files: [[UInt8]] = []
        for i in 0..<7 {
            guard let f = encrypt("ours \(i) garden", to: [ours]) else { return nil }
            files.append(f)
        }
        for i in 0..<2 {
            guard let f = encrypt("other \(i)", to: [other]) else { return nil }
            files.append(f)
        }
        for i in 0..<2 {
            guard let f = encrypt("both \(i) garden", to: [other, ours]) else { return nil }
            files.append(f)
        }
        guard var tampered = encrypt("tampered", to: [ours]),
            let mac = tampered.firstRange(of: Array("\n--- ".utf8))
        else { return nil }
        let at = mac.upperBound + 3
        tampered[at] = tampered[at] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        files.append(tampered)
        guard let armored = TestTools.run(["age", "-a", "-r", ours], input: Array("armored".utf8)),
            let cut = encrypt("truncated file", to: [ours])
        else { return nil }
        files.append(armored)
        files.append(Array(cut.dropLast(5)))
        return files
    }

    @Test func batchGivesWhatEachFileGivesAlone() throws {
        guard let (ours, oursPub) = Self.keygen(), let (other, otherPub) = Self.keygen(),
            let files = Self.mixedFiles(ours: oursPub, other: otherPub)
        else {
            print("skipping: age or age-keygen not available")
            return
        }
        for texts in [[ours], [other, ours], [ours, other]] {
            let expected = try Self.alone(texts, files)
            #expect(expected.filter { $0.hasPrefix("plain:") }.count == (texts.count == 1 ? 10 : 12))
            #expect(expected.contains { $0.contains("header MAC") })
            #expect(expected.contains { $0.contains("no identity matches") } == (texts.count == 1))
            for (name, lanes) in Self.lanesFunctions {
                let key = try Self.key(texts)
                files.withUnsafeRawBuffers { key.prepare(files: $0, lanes: lanes) }
                // Every complete binary header is unwrapped ahead (the armored and the
                // truncated-in-the-payload ones too, since the header is whole).
                #expect(key.fileKeys.count == files.count - 1, "\(name)")
                let got = files.map { Self.describe(decryptStreaming(key, $0, piece: 4096)) }
                #expect(got == expected, "lanes \(name), \(texts.count) identities")
            }
            // No lanes (no wide kernel): each header unwrapped plainly, cached the same way.
            let plainKey = try Self.key(texts)
            files.withUnsafeRawBuffers { plainKey.prepare(files: $0, lanes: nil) }
            #expect(plainKey.fileKeys.count == files.count - 1)
            #expect(files.map { Self.describe(decryptStreaming(plainKey, $0, piece: 4096)) } == expected)
        }
    }

    @Test func lanesSeeGroupsOfOneToEight() throws {
        guard let (ours, oursPub) = Self.keygen() else {
            print("skipping: age-keygen not available")
            return
        }
        var files: [[UInt8]] = []
        for i in 0..<19 {
            guard let f = Self.encrypt("file \(i)", to: [oursPub]) else { return }
            files.append(f)
        }
        let expected = try Self.alone([ours], files)
        for n in 1...files.count {
            let counts = Mutex<[Int]>([])
            let key = try Self.key([ours])
            let some = Array(files[0..<n])
            some.withUnsafeRawBuffers { bufs in
                key.prepare(files: bufs) { scalar, points, count, out in
                    counts.withLock { $0.append(count) }
                    #expect(points.count == 32 * count && out.count == 32 * count)
                    // Garbage in the last lane: recomputed one at a time.
                    X25519Lanes.compute(scalar: scalar, points: points, count: count, into: out)
                    out[32 * count - 1] ^= 1
                }
            }
            let seen = counts.withLock { $0 }
            #expect(seen == Array(repeating: 8, count: n / 8) + (n % 8 == 0 ? [] : [n % 8]))
            #expect(key.fileKeys.count == n)
            #expect(some.map { Self.describe(decryptStreaming(key, $0, piece: 4096)) } == Array(expected[0..<n]))
        }
    }

    /// Every C2SP/CCTV age vector: prepared with wrong lanes, then decrypted, it gives what it
    /// gives alone (the low-order share included).
    @Test func cctvVectorsUnchangedByPreparing() throws {
        guard let root = TestPaths.vectors?.appendingPathComponent("age-cctv"),
            FileManager.default.fileExists(atPath: root.path)
        else {
            print("skipping: age CCTV vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        where !name.hasPrefix("README") {
            let data = try Array(Data(contentsOf: root.appendingPathComponent(name)))
            guard let v = AgeVector(name: name, data: data), !v.identities.isEmpty, !v.compressed else { continue }
            let alone = Self.describe(decryptStreaming(try AgeKey(secret: v.secret), v.file, piece: 4096))
            for (lanesName, lanes) in Self.lanesFunctions {
                let key = try AgeKey(secret: v.secret)
                [v.file, v.file].withUnsafeRawBuffers { key.prepare(files: $0, lanes: lanes) }
                let got = Self.describe(decryptStreaming(key, v.file, piece: 4096))
                #expect(got == alone, "\(name), lanes \(lanesName)")
            }
            checked += 1
        }
        #expect(checked > 20)
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with every element's bytes.
    func withUnsafeRawBuffers<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafeRawBufferPointer]) -> R {
            guard i < count else { return body(acc) }
            return self[i].withUnsafeBytes { go(i + 1, acc + [$0]) }
        }
        return go(0, [])
    }
}
