#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the next read from the request stream gave.
package enum FrameEvent: Equatable, Sendable {
    /// A whole frame's payload.
    case frame([UInt8])
    /// A frame that declared length zero (`bad_frame`); the stream goes on.
    case empty
    /// A frame declared more than the limit (`frame_too_large`). Reported as soon as the
    /// length is read; its payload is then skipped, never buffered.
    case tooLarge(declared: UInt32)
    /// Input ended at a frame boundary.
    case end
    /// Input ended inside a frame's header or payload.
    case truncated
    /// Input ended while skipping an oversize frame's payload (which already had its error).
    case truncatedWhileSkipping
    /// read(2) failed.
    case readError(Int32)
    /// The watched output descriptor broke (the parent closed its read end of our stdout).
    case outputClosed
}

/// Splits a byte stream (a file descriptor) into length-prefixed frames: a 4-byte unsigned
/// big-endian length `N`, then `N` bytes. Memory use follows the bytes actually received, so
/// a header that declares a large frame costs nothing until its payload arrives.
package struct FrameReader {
    package let fd: Int32
    package let maxFrame: Int
    private var buffer: [UInt8]
    private var start = 0  // first unread byte in buffer
    private var end = 0  // one past the last byte read into buffer
    private var skipRemaining = 0
    private var atEOF = false
    /// Polled alongside the input while waiting, so a parent that closes our stdout is noticed
    /// even while no response is being written.
    package var watchFD: Int32?
    /// Set by `spin(micros:)`: the next wait for input first polls without blocking until this
    /// monotonic time (nanoseconds), then blocks. 0: block at once.
    private var spinDeadline: UInt64 = 0
    /// After a spin that ran out, the next 1, 2, 4... (at most `maxSpinBackoff`) waits block at
    /// once: a parent that is not in a tight loop, or a machine too loaded for its request to
    /// come in time, would only lose a CPU to the spinning.
    private var spinBackoff = 0
    private var spinSkip = 0
    private static let maxSpinBackoff = 64
    /// Nor does it spin while this thread has lately waited for a CPU: then the CPUs are busy,
    /// none is idle to be woken, and spinning would only take one from other work.
    private var busy = CPUBusy()

    package init(fd: Int32, maxFrame: Int, readSize: Int = 64 * 1024) {
        self.fd = fd
        self.maxFrame = maxFrame
        self.buffer = [UInt8](repeating: 0, count: max(readSize, 16))
    }

    private var available: Int { end - start }

    /// Bytes of input already read past the last frame returned (more requests are waiting).
    package var hasBufferedInput: Bool { available > 0 }

    /// Reads more bytes from the descriptor. Returns false at end of input.
    private mutating func fill() -> Result<Bool, Errno> {
        if atEOF { return .success(false) }
        if start > 0 && start == end {
            start = 0
            end = 0
        } else if end == buffer.count && start > 0 {
            // Move the unread tail to the front.
            let tail = available
            buffer.withUnsafeMutableBufferPointer { b in
                guard let base = b.baseAddress else { return }
                memmove(base, base + start, tail)
            }
            start = 0
            end = tail
        }
        let room = buffer.count - end
        var ready = false
        if spinDeadline != 0 {
            ready = spinForInput()
            spinDeadline = 0
            if ready {
                spinBackoff = 0
            } else {
                spinBackoff = min(max(1, spinBackoff * 2), Self.maxSpinBackoff)
                spinSkip = spinBackoff
            }
        }
        if !ready, let watch = watchFD, !waitForInput(watch: watch) { return .failure(Errno(code: EPIPE)) }
        while true {
            let n = retryOnEINTR {
                buffer.withUnsafeMutableBufferPointer { b -> Int in
                    guard let base = b.baseAddress else { return -1 }
                    return read(fd, base + end, room)
                }
            }
            if n > 0 {
                end += n
                return .success(true)
            }
            if n == 0 {
                atEOF = true
                return .success(false)
            }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, -1)
                continue
            }
            return .failure(Errno(code: errno))
        }
    }

    /// Asks the next wait for input to poll without blocking for up to `micros` microseconds
    /// before it blocks (0: block at once). Called after a reply went out from the reading
    /// thread: a parent in a request-reply loop sends its next request within tens of
    /// microseconds, and a thread that keeps its CPU busy that long takes it without the wake-up
    /// of a blocked thread (on a virtual machine, of a halted virtual CPU). Bounded: an idle
    /// input costs at most `micros` of CPU once, then the reader blocks as before; and a spin
    /// that runs out makes the next waits block at once (see `spinBackoff`).
    package mutating func spin(micros: Int) {
        spinDeadline = 0
        guard micros > 0 else { return }
        if spinSkip > 0 {
            spinSkip -= 1
            return
        }
        let now = Self.monotonicNanos()
        if busy.check(now: now) { return }
        spinDeadline = now &+ UInt64(micros) &* 1000
    }

    fileprivate static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Polls the input (and the watched output) without blocking until the input is readable or
    /// `spinDeadline` passes. True: the input is readable (or ended) and the output is whole;
    /// false: wait as usual (which also reports a broken output).
    private func spinForInput() -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: watchFD ?? -1, events: 0, revents: 0)]
        var last = Self.monotonicNanos()
        while true {
            let n = poll(&fds, 2, 0)  // a negative fd (no watch) is ignored by poll(2)
            if n > 0 { return fds[1].revents == 0 && fds[0].revents != 0 }
            if n < 0 && errno != EINTR { return false }
            // Let a thread waiting for this CPU run first: it may be the parent, woken by our
            // answer, on its way to send the next request (at once when none is waiting).
            sched_yield()
            let now = Self.monotonicNanos()
            // A round this long means another thread ran on this CPU meanwhile (often the parent
            // itself): the two take turns on one CPU, where blocking costs no more than
            // spinning. Block, and count the spin as run out (back off).
            if now >= spinDeadline || now &- last > Self.sharedCPURound { return false }
            last = now
        }
    }

    /// A spin round (poll, yield, clock) takes a microsecond or two when nothing else runs here.
    private static let sharedCPURound: UInt64 = 15_000

    /// Waits until the input is readable (or ends). Returns false if `watch` broke first.
    private func waitForInput(watch: Int32) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: watch, events: 0, revents: 0)]
        while true {
            if retryOnEINTR({ poll(&fds, 2, -1) }) < 0 {
                return true  // let read(2) report the problem
            }
            if fds[1].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return false }
            if fds[0].revents != 0 { return true }
        }
    }

    /// Zeroes payload bytes handed out: a frame may carry a secret, and the read buffer lives as
    /// long as the process.
    private mutating func wipe(_ from: Int, _ count: Int) {
        buffer.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress, count > 0, from >= 0, from + count <= b.count else { return }
            memset(base + from, 0, count)
        }
    }

    package mutating func next() -> FrameEvent {
        // Finish skipping an oversize payload first.
        while skipRemaining > 0 {
            if available == 0 {
                switch fill() {
                case .failure(let e): return e.code == EPIPE ? .outputClosed : .readError(e.code)
                case .success(false): return .truncatedWhileSkipping
                case .success(true): break
                }
            }
            let k = min(skipRemaining, available)
            start += k
            skipRemaining -= k
        }

        while available < 4 {
            switch fill() {
            case .failure(let e): return e.code == EPIPE ? .outputClosed : .readError(e.code)
            case .success(false): return available == 0 ? .end : .truncated
            case .success(true): break
            }
        }
        let length =
            UInt32(buffer[start]) << 24 | UInt32(buffer[start + 1]) << 16 | UInt32(buffer[start + 2]) << 8
            | UInt32(buffer[start + 3])
        start += 4
        if length == 0 { return .empty }
        if UInt64(length) > UInt64(maxFrame) {
            skipRemaining = Int(length)
            return .tooLarge(declared: length)
        }
        let n = Int(length)
        if available >= n {
            let payload = Array(buffer[start..<(start + n)])
            wipe(start, n)
            start += n
            return .frame(payload)
        }
        // A payload larger than what is buffered: collect it as it arrives.
        var payload = [UInt8]()
        payload.reserveCapacity(min(n, 1 << 20))
        while payload.count < n {
            if available == 0 {
                switch fill() {
                case .failure(let e): return e.code == EPIPE ? .outputClosed : .readError(e.code)
                case .success(false): return .truncated
                case .success(true): break
                }
            }
            let k = min(n - payload.count, available)
            payload.append(contentsOf: buffer[start..<(start + k)])
            wipe(start, k)
            start += k
        }
        return .frame(payload)
    }
}

/// Whether the calling thread has lately waited for a CPU: its run-queue wait (from
/// /proc/thread-self/schedstat, read at most every 10 ms) grew by more than a tenth of the time
/// since the last reading. Unknown (no such file): not busy. One per thread (the descriptor
/// names the thread that opened it).
struct CPUBusy {
    private var fd: Int32 = -2  // -2: not opened yet; -1: unavailable
    private var at: UInt64 = 0
    private var wait: UInt64 = 0
    private var busy = false
    private static let interval: UInt64 = 10_000_000

    mutating func check(now: UInt64) -> Bool {
        if at != 0 && now &- at < Self.interval { return busy }
        if fd == -2 { fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC) }
        guard fd >= 0, let w = readWait() else { return false }
        busy = at != 0 && w >= wait && (w - wait) > (now &- at) / 10
        at = now
        wait = w
        return busy
    }

    /// The second field of schedstat: nanoseconds runnable but waiting for a CPU.
    private func readWait() -> UInt64? {
        var buf = [UInt8](repeating: 0, count: 96)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        var field = 0
        var value: UInt64 = 0
        var digits = false
        for byte in buf.prefix(n) {
            if byte >= 48 && byte <= 57 {
                if field == 1 {
                    let (m, o1) = value.multipliedReportingOverflow(by: 10)
                    let (a, o2) = m.addingReportingOverflow(UInt64(byte - 48))
                    if o1 || o2 { return nil }
                    value = a
                    digits = true
                }
            } else if byte == 32 {
                field += 1
                if field > 1 { break }
            } else {
                return nil
            }
        }
        return digits ? value : nil
    }
}

/// An errno value as an Error.
package struct Errno: Error, Equatable, Sendable {
    package var code: Int32
    package init(code: Int32) { self.code = code }
    package var message: String { String(cString: strerror(code)) }
}

/// The 4-byte length prefix.
package enum FrameHeader {
    package static func encode(_ length: Int) -> [UInt8] {
        let n = UInt32(clamping: length)
        return [
            UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
            UInt8(truncatingIfNeeded: n),
        ]
    }
}
