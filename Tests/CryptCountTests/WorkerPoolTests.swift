import Foundation
import Testing

@testable import CryptCount

/// The pool's lifecycle of a request's id around its `done`, with a sink that holds `done` back
/// (as a parent that is slow to read makes the server's sink do).
@Suite struct WorkerPoolTests {
    /// A sink whose `jobFinished` blocks until released, recording what it was given.
    final class HeldSink: CountSink, @unchecked Sendable {
        private let monitor = Monitor()
        private var entered = false
        private var released = false
        private(set) var summary: CountSummary?

        func fileFinished(index: Int, outcome: FileOutcome) {}

        func jobFinished(_ summary: CountSummary) {
            monitor.lock()
            self.summary = summary
            entered = true
            monitor.broadcast()
            while !released { monitor.wait() }
            monitor.unlock()
        }

        /// Waits until `jobFinished` was called (false after `seconds`).
        func waitEntered(seconds: Double) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            monitor.lock()
            defer { monitor.unlock() }
            while !entered {
                if Date() >= end { return false }
                monitor.unlock()
                usleep(1000)
                monitor.lock()
            }
            return true
        }

        func release() {
            monitor.withLock {
                released = true
                monitor.broadcast()
            }
        }

        var done: CountSummary? { monitor.withLock { summary } }
    }

    final class Flag: @unchecked Sendable {
        private let monitor = Monitor()
        private var value = false
        func set() { monitor.withLock { value = true } }
        var isSet: Bool { monitor.withLock { value } }
    }

    private func job(_ id: RequestID, files: [String], sink: CountSink) throws -> CountJob {
        let key = try UnlockedKey.make(kind: .plain, secret: nil, options: CipherOptions())
        let plan = try SearchPlan(terms: [Array("rain".utf8)], options: SearchOptions())
        return CountJob(
            id: id, files: files.map { WireBytes(Array($0.utf8), isBinary: false) }, plan: plan, keys: .single(key),
            ordered: false, sink: sink)
    }

    /// While a finished request's `done` is still being handed to the output its id stays in
    /// flight (a frame reusing it is `duplicate_id`), and a cancel of it returns only after that
    /// `done` (so its `ok` follows the `done`). The pool used to free the id first.
    @Test func idStaysInFlightUntilDoneIsWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-pool-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("a.txt")
        try Data("rain and more rain".utf8).write(to: file)

        var config = EngineConfig()
        config.workers = 1
        let pool = WorkerPool(config: config)
        pool.start()
        let id = RequestID.number(7)
        let sink = HeldSink()
        #expect(pool.submit(try job(id, files: [file.path], sink: sink)))
        #expect(sink.waitEntered(seconds: 10))
        #expect(sink.done?.counts == [2])
        #expect(pool.isInFlight(id), "the id is free before its done is written")
        let reuse = HeldSink()
        reuse.release()
        #expect(!pool.submit(try job(id, files: [], sink: reuse)), "a reuse of the id was accepted")

        let cancelReturned = Flag()
        let thread = Thread {
            pool.cancel(id)
            cancelReturned.set()
        }
        thread.start()
        usleep(50_000)
        #expect(!cancelReturned.isSet, "the cancel returned before the target's done")
        sink.release()
        let end = Date().addingTimeInterval(10)
        while !cancelReturned.isSet && Date() < end { usleep(1000) }
        #expect(cancelReturned.isSet)
        pool.waitUntilIdle()
        #expect(!pool.isInFlight(id))
        // The id is free again: a new request under it is accepted.
        let again = HeldSink()
        again.release()
        #expect(pool.submit(try job(id, files: [], sink: again)))
        pool.waitUntilIdle()
        #expect(again.done?.files == 0)
    }
}
