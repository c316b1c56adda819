import Foundation
import Testing

@testable import CryptCount
@testable import CryptCountFuzzSupport
@testable import CryptCountJSONLines

#if canImport(Glibc)
    import Glibc
#endif

/// Replays every case under `Tests/Golden/cases` through the real `cryptcount serve` binary and
/// compares the normalised responses with the case's `expected.jsonl`. `UPDATE_GOLDEN=1 swift
/// test --filter GoldenTests` rewrites the expected files instead. See Tests/Golden/README.md.
@Suite(.serialized) struct GoldenTests {
    static let casesDir = TestPaths.packageRoot.appendingPathComponent("Tests/Golden/cases")

    static func caseNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: casesDir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func thereAreCases() {
        #expect(Self.caseNames().count >= 20)
    }

    @Test(arguments: GoldenTests.caseNames())
    func golden(_ name: String) throws {
        guard let binary = CLI.binary else {
            print(
                "skipping golden case \(name): cryptcount binary not found (run `swift build`, or set CRYPTCOUNT_BIN)")
            return
        }
        let golden = try GoldenCase(folder: Self.casesDir.appendingPathComponent(name))
        let run = try golden.run(binary: binary)
        // Every response as the server sent it (before normalisation) must match the schema.
        SchemaCheck.expectValid(run.responses, "golden case \(name)")
        let actual = run.lines
        // Secrets sent in requests must never come back in any response.
        for secret in try golden.secrets() {
            for line in actual where line.contains(secret) {
                Issue.record("golden case \(name): a response contains a secret from the requests: \(line)")
            }
        }
        let pending = golden.exists("pending") ? try golden.text("pending") : nil
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            // Pending cases hold hand-written expectations of behaviour not built yet: keep them.
            if pending == nil { try golden.writeExpected(lines: actual, status: run.status) }
            return
        }
        let expected = try golden.expectedLines()
        let expectedStatus = try golden.expectedStatus()
        let compare = {
            if actual != expected {
                Issue.record("golden case \(name): responses differ\n\(lineDiff(expected: expected, actual: actual))")
            }
            #expect(run.status == expectedStatus, "golden case \(name): exit status; stderr:\n\(run.stderr)")
        }
        if let pending {
            // Known to differ until the server catches up; passes unexpectedly -> remove `pending`.
            withKnownIssue(Comment(rawValue: "pending: \(pending)")) { compare() }
        } else {
            compare()
        }
    }
}

/// One case folder: `request.jsonl` (or `request.bin`), `expected.jsonl`, optional `args`
/// (extra `serve` options, whitespace-separated), `mode` (`batch`), `setup.jsonl`,
/// `expected-status`, and fixture files.
struct GoldenCase {
    let folder: URL
    let name: String

    init(folder: URL) throws {
        self.folder = folder
        self.name = folder.lastPathComponent
    }

    func file(_ name: String) -> URL { folder.appendingPathComponent(name) }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name).path) }

    func text(_ name: String) throws -> String { String(decoding: try Data(contentsOf: file(name)), as: UTF8.self) }

    func expectedLines() throws -> [String] {
        guard exists("expected.jsonl") else { return ["(no expected.jsonl: run with UPDATE_GOLDEN=1)"] }
        return try text("expected.jsonl").split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Every `secret` string (or the strings inside one) sent by request.jsonl, 4 bytes or longer.
    func secrets() throws -> [String] {
        guard exists("request.jsonl") else { return [] }
        var found: [String] = []
        func collect(_ v: MessagePackValue) {
            switch v {
            case .string(let b), .binary(let b):
                if b.count >= 4 { found.append(String(decoding: b, as: UTF8.self)) }
            case .array(let items):
                for item in items { collect(item) }
            case .map(let pairs):
                for pair in pairs { collect(pair.value) }
            default: break
            }
        }
        for line in try text("request.jsonl").split(separator: "\n") {
            if let secret = (try? JSONLines.parse(Array(line.utf8)))?["secret"] { collect(secret) }
        }
        return found
    }

    func expectedStatus() throws -> Int32 {
        guard exists("expected-status") else { return 0 }
        return Int32(try text("expected-status").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func writeExpected(lines: [String], status: Int32) throws {
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: file("expected.jsonl"))
        if status == 0 {
            try? FileManager.default.removeItem(at: file("expected-status"))
        } else {
            try Data("\(status)\n".utf8).write(to: file("expected-status"))
        }
    }

    /// The request frames, each as the bytes written in one go. request.bin is one piece.
    func requestChunks() throws -> (chunks: [[UInt8]], ops: [String?]) {
        if exists("request.bin") {
            return ([Array(try Data(contentsOf: file("request.bin")))], [nil])
        }
        var chunks: [[UInt8]] = []
        var ops: [String?] = []
        for (n, line) in try text("request.jsonl").split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        {
            let bytes = Array(line.utf8)
            if JSONLines.isBlank(bytes) { continue }
            let value: MessagePackValue
            do {
                value = try JSONLines.parse(bytes)
            } catch {
                throw GoldenError("\(name)/request.jsonl line \(n + 1), \(error)")
            }
            let writer = MessagePackWriter()
            writer.pack(value)
            chunks.append(writer.frameBytes())
            ops.append(value["op"]?.stringValue)
        }
        return (chunks, ops)
    }

    /// Copies the case into a fresh directory and applies `setup.jsonl`, so files that git or
    /// some file systems cannot hold (names that are not UTF-8, symlinks, empty directories)
    /// are made at run time, and the server can never change the checked-in fixtures.
    func makeWorkdir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cryptcount-golden-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: folder, to: dir)
        // The shared fixtures, as `fixtures/` beside the case's own files.
        let shared = folder.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures")
        if !exists("fixtures"), FileManager.default.fileExists(atPath: shared.path) {
            try FileManager.default.copyItem(at: shared, to: dir.appendingPathComponent("fixtures"))
        }
        guard exists("setup.jsonl") else { return dir }
        for line in try text("setup.jsonl").split(separator: "\n") {
            let step = try JSONLines.parse(Array(line.utf8))
            func path(_ key: String) throws -> String {
                guard let v = step[key]?.stringValue else {
                    throw GoldenError("\(name)/setup.jsonl: bad \(key) in \(line)")
                }
                return dir.path + "/" + v
            }
            // Names may be any bytes: build them as raw C strings.
            func rawPath(_ key: String) throws -> [CChar] {
                guard let v = step[key] else { throw GoldenError("\(name)/setup.jsonl: missing \(key) in \(line)") }
                let bytes: [UInt8]
                switch v {
                case .string(let b), .binary(let b): bytes = b
                default: throw GoldenError("\(name)/setup.jsonl: \(key) must be a path")
                }
                return (Array(dir.path.utf8) + [UInt8(ascii: "/")] + bytes + [0]).map { CChar(bitPattern: $0) }
            }
            if step["copy"] != nil {
                let data = Array(try Data(contentsOf: URL(fileURLWithPath: try path("copy"))))
                let target = try rawPath("to")
                let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard fd >= 0 else { throw GoldenError("\(name)/setup.jsonl: cannot create \(line)") }
                _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            } else if step["mkdir"] != nil {
                guard mkdir(try rawPath("mkdir"), 0o755) == 0 else {
                    throw GoldenError("\(name): mkdir failed: \(line)")
                }
            } else if step["symlink"] != nil {
                let target = try rawPath("to")
                guard case .string(let dest)? = step["symlink"] else { throw GoldenError("\(name): bad symlink step") }
                let destC = (dest + [0]).map { CChar(bitPattern: $0) }
                guard symlink(destC, target) == 0 else { throw GoldenError("\(name): symlink failed: \(line)") }
            } else {
                throw GoldenError("\(name)/setup.jsonl: unknown step \(line)")
            }
        }
        return dir
    }

    struct Run {
        var lines: [String]
        var status: Int32
        var stderr: String
        var responses: [MessagePackValue]
    }

    /// Runs `cryptcount serve --workers 2 <args>` in a copy of the case folder. By default the
    /// requests go one at a time: each frame is written after the previous one's terminal
    /// response has arrived (every frame gets exactly one), which keeps the output
    /// deterministic. `mode` = `batch` writes all input at once and then closes stdin.
    func run(binary: URL) throws -> Run {
        signal(SIGPIPE, SIG_IGN)  // a server that exits early must not kill the test runner
        let (chunks, ops) = try requestChunks()
        let batch = try exists("request.bin") || (exists("mode") && text("mode").contains("batch"))
        let workdir = try makeWorkdir()
        defer { try? FileManager.default.removeItem(at: workdir) }
        let errURL = workdir.appendingPathComponent(".golden-stderr")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? errHandle.close() }

        var args = ["serve", "--workers", "2"]
        if exists("args") {
            args += try text("args").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        process.currentDirectoryURL = workdir
        let stdinPipe = Pipe()
        let stdoutPipe = Pipe()
        // Close-on-exec, so a server started by another test cannot inherit these ends and keep
        // this server's stdin (or our end of its stdout) open past its EOF.
        for handle in [
            stdinPipe.fileHandleForReading, stdinPipe.fileHandleForWriting,
            stdoutPipe.fileHandleForReading, stdoutPipe.fileHandleForWriting,
        ] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = errHandle
        try process.run()
        try? stdinPipe.fileHandleForReading.close()
        try? stdoutPipe.fileHandleForWriting.close()

        // A watchdog, so a hung server fails the case instead of hanging the suite.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }

        var reader = FrameSplitter(handle: stdoutPipe.fileHandleForReading)
        var responses: [MessagePackValue] = []
        let input = stdinPipe.fileHandleForWriting
        if batch {
            for chunk in chunks { try? input.write(contentsOf: chunk) }
            try? input.close()
            while let value = try reader.next() { responses.append(value) }
        } else {
            var open = true
            for (chunk, op) in zip(chunks, ops) {
                do {
                    try input.write(contentsOf: chunk)
                } catch {
                    open = false
                    break
                }
                // Read up to and including this frame's terminal response.
                var terminal = false
                while !terminal, let value = try reader.next() {
                    responses.append(value)
                    terminal = Self.isTerminal(value)
                }
                if !terminal || op == "shutdown" { break }  // the server is gone or stopped reading
            }
            if open { try? input.close() }
            while let value = try reader.next() { responses.append(value) }
        }
        process.waitUntilExit()
        let status = process.terminationStatus
        let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        var lines = Self.normalise(responses).map { JSONLines.renderString($0) }
        if reader.leftover > 0 { lines.append("(stdout ended inside a frame: \(reader.leftover) bytes)") }
        return Run(lines: lines, status: status, stderr: stderr, responses: responses)
    }

    static func isTerminal(_ value: MessagePackValue) -> Bool {
        guard let type = value["type"]?.stringValue else { return true }
        return type != "file" && type != "files"
    }

    /// Drops what varies from run to run (`elapsed_us`, `uptime_us`, the version) and sorts each
    /// run of consecutive `file` responses by (id, index), since workers finish in any order.
    static func normalise(_ responses: [MessagePackValue]) -> [MessagePackValue] {
        var out = responses.map { value -> MessagePackValue in
            guard case .map(let pairs) = value else { return value }
            let type = value["type"]?.stringValue
            return .map(
                pairs.compactMap { pair in
                    switch (type, pair.key.stringValue) {
                    case ("done", "elapsed_us"), ("stats", "uptime_us"): return nil
                    case ("hello", "version"): return MessagePackPair(pair.key, .text("*"))
                    default: return pair
                    }
                })
        }
        var i = 0
        while i < out.count {
            guard out[i]["type"]?.stringValue == "file" else {
                i += 1
                continue
            }
            var j = i
            while j < out.count && out[j]["type"]?.stringValue == "file" { j += 1 }
            out[i..<j].sort { a, b in
                let ka = JSONLines.renderString(a["id"] ?? .nil)
                let kb = JSONLines.renderString(b["id"] ?? .nil)
                if ka != kb { return ka < kb }
                return (a["index"].flatMap(Self.uint) ?? 0) < (b["index"].flatMap(Self.uint) ?? 0)
            }
            i = j
        }
        return out
    }

    static func uint(_ v: MessagePackValue) -> UInt64? {
        if case .uint(let u) = v { return u }
        return nil
    }
}

/// Reads frames from a pipe, blocking.
struct FrameSplitter {
    let handle: FileHandle
    var buffer: [UInt8] = []
    var leftover: Int { buffer.count }

    init(handle: FileHandle) { self.handle = handle }

    mutating func fill(_ n: Int) -> Bool {
        // read(2) itself: FileHandle.read(upToCount:) waits for the whole count or EOF.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while buffer.count < n {
            let got = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<got])
        }
        return true
    }

    /// The next response, or nil at end of output.
    mutating func next() throws -> MessagePackValue? {
        guard fill(4) else { return nil }
        let n = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard fill(4 + n) else { return nil }
        let payload = Array(buffer[4..<(4 + n)])
        buffer.removeFirst(4 + n)
        do {
            return try MessagePackDecoder.decode(payload)
        } catch {
            return .map([MessagePackPair(.text("golden_error"), .text("response frame is not MessagePack: \(error)"))])
        }
    }
}

struct GoldenError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A readable line diff: `-` expected, `+` actual, with line numbers.
func lineDiff(expected: [String], actual: [String]) -> String {
    let diff = actual.difference(from: expected)
    var out: [String] = []
    for change in diff {
        switch change {
        case .remove(let offset, let element, _): out.append("- expected line \(offset + 1): \(element)")
        case .insert(let offset, let element, _): out.append("+ actual   line \(offset + 1): \(element)")
        }
    }
    return out.joined(separator: "\n")
}
