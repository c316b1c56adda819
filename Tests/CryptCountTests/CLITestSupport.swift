import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the built `cryptcount` executable: `$CRYPTCOUNT_BIN`, else `.build/debug/cryptcount`
/// under the package root (`swift build` and `swift test` build it).
enum CLI {
    static var binary: URL? {
        if let env = ProcessInfo.processInfo.environment["CRYPTCOUNT_BIN"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        for config in ["debug", "release"] {
            let url = TestPaths.packageRoot.appendingPathComponent(".build/\(config)/cryptcount")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    struct Result {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
    }

    /// Runs `cryptcount args...` with `stdin` as its input, from `directory` if given. Input and
    /// output go through temporary files, so no pipe can fill up and deadlock the test.
    static func run(_ args: [String], stdin: [UInt8] = [], directory: URL? = nil) throws -> Result? {
        guard let binary else {
            print("skipping: cryptcount binary not found (run `swift build`, or set CRYPTCOUNT_BIN)")
            return nil
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cryptcount-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let inURL = tmp.appendingPathComponent("stdin")
        let outURL = tmp.appendingPathComponent("stdout")
        let errURL = tmp.appendingPathComponent("stderr")
        try Data(stdin).write(to: inURL)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)

        let process = Process()
        process.executableURL = binary
        process.arguments = args
        if let directory { process.currentDirectoryURL = directory }
        let inHandle = try FileHandle(forReadingFrom: inURL)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer {
            try? inHandle.close()
            try? outHandle.close()
            try? errHandle.close()
        }
        process.standardInput = inHandle
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: Array(try Data(contentsOf: outURL)),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

/// Splits a byte stream into frame payloads; nil if it does not end at a frame boundary.
func splitFrames(_ bytes: [UInt8]) -> [[UInt8]]? {
    var frames: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        guard bytes.count - i >= 4 else { return nil }
        let n = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        i += 4
        guard bytes.count - i >= n else { return nil }
        frames.append(Array(bytes[i..<(i + n)]))
        i += n
    }
    return frames
}

/// A `cryptcount` child with pipes on stdin and stdout, for checking that output arrives while
/// input is still open (as in a coprocess pipeline). A watchdog kills it after 60 seconds, so
/// a helper that buffers fails the test instead of hanging it.
final class CLICoprocess {
    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let watchdog: DispatchWorkItem

    init?(_ args: [String]) throws {
        guard let binary = CLI.binary else {
            print("skipping: cryptcount binary not found (run `swift build`, or set CRYPTCOUNT_BIN)")
            return nil
        }
        signal(SIGPIPE, SIG_IGN)
        for handle in [
            stdinPipe.fileHandleForReading, stdinPipe.fileHandleForWriting,
            stdoutPipe.fileHandleForReading, stdoutPipe.fileHandleForWriting,
        ] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.executableURL = binary
        process.arguments = args
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle.standardError
        try process.run()
        try? stdinPipe.fileHandleForReading.close()
        try? stdoutPipe.fileHandleForWriting.close()
        let pid = process.processIdentifier
        watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
    }

    func send(_ bytes: [UInt8]) throws { try stdinPipe.fileHandleForWriting.write(contentsOf: bytes) }

    /// Exactly `count` bytes of output, or fewer if it ends (or the watchdog fires).
    func receive(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(count, 1))
        while out.count < count {
            let n = chunk.withUnsafeMutableBytes {
                read(stdoutPipe.fileHandleForReading.fileDescriptor, $0.baseAddress, count - out.count)
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Closes stdin and waits; returns the exit status.
    func finish() -> Int32 {
        try? stdinPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        watchdog.cancel()
        try? stdoutPipe.fileHandleForReading.close()
        return process.terminationStatus
    }
}
