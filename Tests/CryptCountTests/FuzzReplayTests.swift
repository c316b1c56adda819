import Foundation
import Testing

@testable import CryptCount
@testable import CryptCountFuzzSupport
@testable import CryptCountJSONLines

/// Replays every input the fuzzers kept (Tests/Fuzz/corpus-crashers/<target>/) through the
/// same code path as the libFuzzer target (`FuzzHarness.run`): none may crash or break an
/// invariant again.
@Suite struct FuzzReplayTests {
    static let root = TestPaths.packageRoot.appendingPathComponent("Tests/Fuzz/corpus-crashers")

    static var inputs: [(String, URL)] {
        var out: [(String, URL)] = []
        for target in FuzzHarness.targets {
            let dir = root.appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for name in names.sorted() where !name.hasPrefix(".") {
                out.append((target, dir.appendingPathComponent(name)))
            }
        }
        return out
    }

    @Test func everyKeptInputReplaysCleanly() throws {
        let inputs = Self.inputs
        #expect(!inputs.isEmpty, "no kept fuzz inputs under \(Self.root.path)")
        for (target, url) in inputs {
            let data = try [UInt8](Data(contentsOf: url))
            #expect(FuzzHarness.run(target, data) == nil, "\(target)/\(url.lastPathComponent)")
        }
    }

    @Test func everyTargetAcceptsItsSeeds() {
        for target in FuzzHarness.targets {
            for seed in FuzzHarness.seeds(target) {
                #expect(FuzzHarness.run(target, seed) == nil, "\(target) seed")
            }
        }
    }

    @Test func cipherSeedsDecrypt() {
        // The seeds are real files of the test keys, so the fuzzers start past the parsers.
        for target in ["biographer", "biographer-v0", "fernet", "openssl"] {
            let seeds = FuzzHarness.seeds(target)
            #expect(!seeds.isEmpty, "\(target)")
            for seed in seeds {
                var out: [UInt8] = []
                let ok = seed.withUnsafeBytes { raw in
                    (try? FuzzHarness.keys[target]?.decrypt(whole: raw, into: &out)) != nil
                }
                #expect(ok, "\(target) seed decrypts")
            }
        }
    }

    @Test func referenceFramesMatchesTheReader() {
        let stream: [UInt8] =
            [0, 0, 0, 0] + [0, 0, 0, 1, 0xc0] + [0, 0, 0, 100] + [UInt8](repeating: 1, count: 100) + [0, 0]
        #expect(
            FuzzHarness.referenceFrames(stream, maxFrame: 64)
                == [.empty, .frame([0xc0]), .tooLarge(declared: 100), .truncated])
        #expect(FuzzHarness.run("frames", stream) == nil)
    }
}
