import Foundation

@testable import CryptCount

#if canImport(Glibc)
    import Glibc
#endif

struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

/// The built `cryptcount serve`, driven over pipes as a parent would.
final class ServeProcess {
    static var binary: String {
        if let env = ProcessInfo.processInfo.environment["CRYPTCOUNT_BIN"], !env.isEmpty { return env }
        return TestPaths.packageRoot.appendingPathComponent(".build/debug/cryptcount").path
    }

    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private var buffer: [UInt8] = []
    private var stderrData = Data()

    init(_ args: [String] = [], cwd: URL? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw HarnessError(
                description: "no cryptcount binary at \(Self.binary): run `swift build` (make test does)")
        }
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve"] + args
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        if let cwd { process.currentDirectoryURL = cwd }
        // Tests run in parallel: without close-on-exec, another test's child would inherit our
        // ends of these pipes and hold them open (no EOF where a test expects one).
        for fd in [
            input.fileHandleForWriting.fileDescriptor, output.fileHandleForReading.fileDescriptor,
            errors.fileHandleForReading.fileDescriptor,
        ] {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var pid: Int32 { process.processIdentifier }

    func sendRaw(_ bytes: [UInt8]) {
        input.fileHandleForWriting.write(Data(bytes))
    }

    func send(_ value: MessagePackValue) {
        let payload = MessagePackWriter.encode(value)
        sendRaw(FrameHeader.encode(payload.count) + payload)
    }

    /// Sends a request built from a dictionary of fields.
    func request(_ fields: [String: MessagePackValue]) {
        send(.map(fields.sorted { $0.key < $1.key }.map { MessagePackPair(.text($0.key), $0.value) }))
    }

    func closeInput() {
        try? input.fileHandleForWriting.close()
    }

    func closeOutput() {
        try? output.fileHandleForReading.close()
    }

    /// Reads until `count` bytes are buffered; false at end of output or timeout.
    private func fill(_ count: Int, deadline: Date) throws -> Bool {
        let fd = output.fileHandleForReading.fileDescriptor
        while buffer.count < count {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { throw HarnessError(description: "timed out waiting for a response") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(min(remaining, 1) * 1000))
            if rc <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
        }
        return true
    }

    /// The next response, or nil at end of output.
    func receive(timeout: Double = 20) throws -> MessagePackValue? {
        let deadline = Date().addingTimeInterval(timeout)
        guard try fill(4, deadline: deadline) else {
            if buffer.isEmpty { return nil }
            throw HarnessError(description: "output ended inside a frame header")
        }
        let n = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard try fill(4 + n, deadline: deadline) else {
            throw HarnessError(description: "output ended inside a frame")
        }
        let payload = Array(buffer[4..<(4 + n)])
        buffer.removeFirst(4 + n)
        return try MessagePackDecoder.decode(payload)
    }

    /// Responses up to and including the terminal one for `id`.
    func receiveUntilTerminal(of id: MessagePackValue, timeout: Double = 30) throws -> [MessagePackValue] {
        var out: [MessagePackValue] = []
        while let r = try receive(timeout: timeout) {
            out.append(r)
            if r["id"] == id, let t = r["type"]?.stringValue, t != "file" { return out }
        }
        throw HarnessError(description: "output ended before the terminal response for \(id)")
    }

    /// Waits for exit; nil on timeout.
    func waitExit(timeout: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(5000)
        }
        return process.terminationStatus
    }

    /// What the process has written to stderr so far (never blocks).
    var stderrText: String {
        let fd = errors.fileHandleForReading.fileDescriptor
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, 0) > 0 && pfd.revents & Int16(POLLIN) != 0 {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n <= 0 { break }
            stderrData.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: stderrData, as: UTF8.self)
    }
}

extension MessagePackValue {
    var type: String? { self["type"]?.stringValue }
    var code: String? { self["code"]?.stringValue }
    var intValue: Int? {
        switch self {
        case .uint(let u): return Int(exactly: u)
        case .int(let i): return Int(exactly: i)
        default: return nil
        }
    }
    var arrayValue: [MessagePackValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
    var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
    var intArray: [Int]? { arrayValue?.compactMap { $0.intValue } }
}

/// A scratch directory removed at the end of the test.
final class TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("cryptcount-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}
