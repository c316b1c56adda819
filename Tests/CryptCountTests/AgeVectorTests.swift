import Crypto
import Foundation
import Testing

@testable import CryptCount

/// One C2SP/CCTV age test vector: `key: value` lines, a blank line, then the age file.
struct AgeVector {
    var name: String
    var expect: String
    var payload: String?
    var identities: [String] = []
    var passphrases: [String] = []
    var compressed = false
    var file: [UInt8]

    init?(name: String, data: [UInt8]) {
        self.name = name
        guard let split = data.firstRange(of: [0x0a, 0x0a]) else { return nil }
        var expect: String?
        for line in data[..<split.lowerBound].split(separator: 0x0a) {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.range(of: ": ") else { continue }
            let key = String(text[..<colon.lowerBound])
            let value = String(text[colon.upperBound...])
            switch key {
            case "expect": expect = value
            case "payload": payload = value
            case "identity": identities.append(value)
            case "passphrase": passphrases.append(value)
            case "compressed": compressed = value == "zlib"
            default: break
            }
        }
        guard let expect else { return nil }
        self.expect = expect
        file = Array(data[split.upperBound...])
    }

    var secret: SecretInput {
        var map: [String: SecretInput] = [:]
        if !identities.isEmpty { map["identities"] = .list(identities.map { .text(copying: Array($0.utf8)) }) }
        // The vectors never give more than one distinct passphrase.
        if let p = passphrases.first { map["passphrase"] = .text(copying: Array(p.utf8)) }
        return .map(map)
    }
}

enum TestTools {
    /// zlib inflate through python3 (Foundation on Linux has no zlib API); nil if unavailable.
    static func inflate(_ data: [UInt8]) -> [UInt8]? {
        run(
            ["python3", "-c", "import sys,zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))"],
            input: data)
    }

    static func run(_ argv: [String], input: [UInt8] = []) -> [UInt8]? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let inPipe = Pipe()
        let outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        // Write on another thread so a large output cannot deadlock against a full input pipe.
        let writer = Thread {
            inPipe.fileHandleForWriting.write(Data(input))
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? Array(out) : nil
    }
}

/// Runs a stream decryptor over `file` in pieces of `piece` bytes, collecting what it emits.
func decryptStreaming(_ key: any CipherKey, _ file: [UInt8], piece: Int) -> (plain: [UInt8], error: CipherFailure?) {
    var decryptor = key.makeStreamDecryptor()
    var plain: [UInt8] = []
    var offset = 0
    var failure: CipherFailure?
    while offset < file.count, failure == nil {
        let end = min(file.count, offset + piece)
        file[offset..<end].withUnsafeBytes { raw in
            do throws(CipherFailure) {
                try decryptor.feed(raw) { plain.append(contentsOf: $0) }
            } catch {
                failure = error
            }
        }
        offset = end
    }
    if failure == nil {
        do throws(CipherFailure) {
            try decryptor.finish { plain.append(contentsOf: $0) }
        } catch {
            failure = error
        }
    }
    return (plain, failure)
}

/// Feeds one slice to a decryptor. (A typed-throws closure passed to `withUnsafeBytes` crashes
/// the 6.3 compiler, hence the captured error.)
func feedSlice<D: StreamDecryptor>(
    _ decryptor: inout D, _ bytes: ArraySlice<UInt8>, emit: (UnsafeRawBufferPointer) -> Void
) throws(CipherFailure) {
    var failure: CipherFailure?
    bytes.withUnsafeBytes { raw in
        do throws(CipherFailure) {
            try decryptor.feed(raw, emit: emit)
        } catch {
            failure = error
        }
    }
    if let failure { throw failure }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

@Suite struct AgeVectorTests {
    @Test func cctvVectors() throws {
        guard let root = TestPaths.vectors?.appendingPathComponent("age-cctv"),
            FileManager.default.fileExists(atPath: root.path)
        else {
            print("skipping: age CCTV vectors not found (set CRYPTCOUNT_VECTORS)")
            return
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
            .filter { !$0.hasPrefix("README") }.sorted()
        var passed = 0
        var releasedSame = 0
        var failedNames: [String] = []
        for name in names {
            let data = try Array(Data(contentsOf: root.appendingPathComponent(name)))
            guard var v = AgeVector(name: name, data: data) else {
                failedNames.append("\(name) (unreadable)")
                continue
            }
            if v.compressed {
                guard let inflated = TestTools.inflate(v.file) else {
                    failedNames.append("\(name) (python3 zlib unavailable)")
                    continue
                }
                v.file = inflated
            }
            // Vectors without any identity still need a key: a fresh one matches nothing.
            if v.identities.isEmpty && v.passphrases.isEmpty {
                let fresh = Curve25519.KeyAgreement.PrivateKey().rawRepresentation
                v.identities = [Bech32.encode(hrp: "age-secret-key-", data: Array(fresh)).uppercased()]
            }
            let key: AgeKey
            do {
                key = try AgeKey(secret: v.secret)
            } catch {
                failedNames.append("\(name) (secret rejected: \(error.message))")
                continue
            }
            var ok = true
            // Whole, and in odd-sized pieces, to exercise the incremental parsers.
            for piece in [max(v.file.count, 1), 997, 61] where piece == max(v.file.count, 1) || v.file.count < 300_000 {
                let (plain, error) = decryptStreaming(key, v.file, piece: piece)
                if v.expect == "success" {
                    if error != nil || v.payload != sha256Hex(plain) {
                        ok = false
                        print("\(name) piece \(piece): \(String(describing: error))")
                    }
                } else {
                    if error == nil { ok = false }
                    // PROTOCOL.md: `bad_format` only when the file is not age v1 (neither the v1
                    // version line nor armor); anything wrong after that is `decrypt_failed`.
                    let v1 = ["\n", "\r"].contains { v.file.starts(with: Array("age-encryption.org/v1\($0)".utf8)) }
                    let armored = String(decoding: v.file.prefix(64), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                        .hasPrefix("-----BEGIN AGE ENCRYPTED FILE-----")
                    if v1 || armored, case .badFormat(let m)? = error {
                        ok = false
                        print("\(name) piece \(piece): bad_format (\(m)) on an age v1 file")
                    }
                    // The suite also lists what a reference decrypter releases before a payload
                    // failure; this one may release less (it never releases an unauthenticated
                    // chunk, and the engine discards a failed file's counts), so only count it.
                    if v.expect == "payload failure", let p = v.payload, p == sha256Hex(plain),
                        piece == max(v.file.count, 1)
                    {
                        releasedSame += 1
                    }
                }
            }
            if ok { passed += 1 } else { failedNames.append(name) }
        }
        print("age CCTV vectors: \(passed) passed out of \(names.count)")
        print("age CCTV payload failures releasing the same prefix as the reference: \(releasedSame)")
        #expect(names.count == 143)
        #expect(failedNames.isEmpty, "failed: \(failedNames)")
    }
}
