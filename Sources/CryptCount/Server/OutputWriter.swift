#if canImport(Glibc)
    import Glibc
#endif

/// The single writer of stdout. Threads hand it whole frames; whoever finds it idle becomes the
/// writer and drains everything queued (several frames per write(2) under load, none waiting
/// at rest). When more than `highWater` bytes wait for a parent that is not reading, senders
/// block: backpressure instead of growing memory.
package final class OutputWriter: @unchecked Sendable {
    private let fd: Int32
    private let highWater: Int
    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var queued: [UInt8] = []
    private var writing = false
    private var broken = false
    /// Called once if the output breaks (the parent closed our stdout).
    private let onBroken: @Sendable (Int32) -> Void

    package init(fd: Int32, highWater: Int = 8 << 20, onBroken: @escaping @Sendable (Int32) -> Void) {
        self.fd = fd
        self.highWater = highWater
        self.onBroken = onBroken
    }

    /// Queues one whole frame and, if no one else is writing, writes until the queue is empty.
    package func send(_ frame: [UInt8]) {
        monitor.lock()
        while queued.count >= highWater && writing && !broken { monitor.wait() }
        if broken {
            monitor.unlock()
            return
        }
        queued.append(contentsOf: frame)
        if writing {
            monitor.unlock()
            return
        }
        writing = true
        var batch: [UInt8] = []
        while !queued.isEmpty {
            swap(&batch, &queued)
            monitor.unlock()
            let error = writeAll(batch)
            batch.removeAll(keepingCapacity: true)
            monitor.lock()
            if let error {
                broken = true
                queued.removeAll()
                monitor.broadcast()
                monitor.unlock()
                onBroken(error)
                return
            }
            monitor.broadcast()
        }
        writing = false
        monitor.broadcast()
        monitor.unlock()
    }

    /// Waits until everything queued has been written.
    package func drain() {
        monitor.lock()
        while (writing || !queued.isEmpty) && !broken { monitor.wait() }
        monitor.unlock()
    }

    private func writeAll(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                let n = retryOnEINTR { write(fd, base + offset, raw.count - offset) }
                if n > 0 {
                    offset += n
                } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, -1)
                } else {
                    return n < 0 ? errno : EIO
                }
            }
            return nil
        }
    }
}
