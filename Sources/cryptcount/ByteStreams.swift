import CryptCount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// read(2), named apart from `FDReader.read(count:)`.
private func sysRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// A failed read(2), write(2) or open(2), with the OS's description of errno.
struct IOFailure: Error {
    var message: String

    init(_ what: String, errno code: Int32) {
        message = "\(what): \(String(cString: strerror(code)))"
    }

    init(message: String) { self.message = message }
}

/// Prints `cryptcount <command>: <message>` to stderr.
func printError(_ command: String, _ message: String) {
    var text = Array("cryptcount \(command): \(message)\n".utf8)
    text.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        var done = 0
        while done < raw.count {
            let n = retryOnEINTR { write(2, base + done, raw.count - done) }
            if n <= 0 { return }
            done += n
        }
    }
}

/// Buffered reads from a file descriptor. Memory follows the bytes actually received, never a
/// length the input declares. `beforeBlocking` runs before every read(2), so a caller that
/// flushes its output there never sits on output while waiting for input (no coprocess deadlock).
struct FDReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0  // bytes after `start` known to hold no newline
    private(set) var atEOF = false
    private let chunk = 64 * 1024

    init(fd: Int32) { self.fd = fd }

    var available: Int { buffer.count - start }

    /// Reads more bytes; returns false at end of input.
    mutating func fill(beforeBlocking: () throws -> Void) throws -> Bool {
        if atEOF { return false }
        try beforeBlocking()
        if start > 0 && (start >= chunk || start == buffer.count) {
            buffer.removeFirst(start)
            start = 0
        }
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: chunk))
        let n = retryOnEINTR {
            buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return sysRead(fd, base + old, chunk)
            }
        }
        if n >= 0 {
            buffer.removeLast(chunk - n)
            if n == 0 { atEOF = true }
            return n > 0
        }
        let code = errno
        buffer.removeLast(chunk)
        throw IOFailure("read error", errno: code)
    }

    /// The next line without its newline (the last line may lack one), or nil at end of input.
    mutating func nextLine(beforeBlocking: () throws -> Void) throws -> [UInt8]? {
        while true {
            if let nl = buffer[(start + scanned)...].firstIndex(of: 0x0a) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                scanned = 0
                return line
            }
            scanned = available
            if try !fill(beforeBlocking: beforeBlocking) {
                guard available > 0 else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                scanned = 0
                return line
            }
        }
    }

    /// Exactly `count` bytes, or fewer only when input ends first.
    mutating func read(count: Int, beforeBlocking: () throws -> Void) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            if available == 0 {
                if try !fill(beforeBlocking: beforeBlocking) { break }
            }
            let k = min(count - out.count, available)
            out.append(contentsOf: buffer[start..<(start + k)])
            start += k
        }
        scanned = 0
        return out
    }
}

/// Output collected in memory and written with write(2) on `flush`.
struct FDWriter {
    let fd: Int32
    var pending: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    mutating func append(_ bytes: [UInt8]) { pending.append(contentsOf: bytes) }

    mutating func flush() throws {
        guard !pending.isEmpty else { return }
        try writeAll(fd: fd, pending)
        pending.removeAll(keepingCapacity: pending.count <= 1 << 20)
    }
}

func writeAll(fd: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return }
        var done = 0
        while done < raw.count {
            let n = retryOnEINTR { write(fd, base + done, raw.count - done) }
            if n < 0 {
                throw IOFailure("write error", errno: errno)
            }
            done += n
        }
    }
}

/// A whole file (or stdin for `-`).
func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd: Int32
    if path == "-" {
        fd = 0
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw IOFailure("cannot open '\(path)'", errno: errno) }
    }
    defer { if fd != 0 { close(fd) } }
    var reader = FDReader(fd: fd)
    while try reader.fill(beforeBlocking: {}) {}
    return try reader.read(count: reader.available, beforeBlocking: {})
}

/// Writes a whole file (created with mode 0644 or truncated), or stdout for `-`.
func writeWholeFile(_ path: String, _ bytes: [UInt8]) throws {
    if path == "-" {
        try writeAll(fd: 1, bytes)
        return
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw IOFailure("cannot create '\(path)'", errno: errno) }
    do {
        try writeAll(fd: fd, bytes)
    } catch {
        close(fd)
        throw error
    }
    if close(fd) != 0 { throw IOFailure("cannot write '\(path)'", errno: errno) }
}
