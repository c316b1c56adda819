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

    /// While a finished request's `done` is still being handed to the output, its id is not free
    /// yet: the reader's check of a frame reusing it, and a cancel of it, wait for that `done`
    /// (so neither a second `done` nor the cancel's `ok` can come before it, and a cancel read
    /// in time is reflected in it); `stats` no longer counts it. The pool used to free the id
    /// before writing the `done`.
    @Test func idIsFreedOnlyOnceDoneIsWritten() throws {
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
        #expect(pool.inFlight == 0, "stats counts a request whose done is being written")

        let checked = Flag()
        let cancelled = Flag()
        let free = Flag()
        Thread {
            if !pool.isInFlight(id) { free.set() }
            checked.set()
        }.start()
        Thread {
            pool.cancel(id)
            cancelled.set()
        }.start()
        usleep(50_000)
        #expect(!checked.isSet, "the id was free before its done was written")
        #expect(!cancelled.isSet, "the cancel returned before the target's done")
        sink.release()
        let end = Date().addingTimeInterval(10)
        while !(checked.isSet && cancelled.isSet) && Date() < end { usleep(1000) }
        #expect(checked.isSet && free.isSet && cancelled.isSet)
        // The id is free again: a new request under it is accepted.
        let again = HeldSink()
        again.release()
        #expect(pool.submit(try job(id, files: [], sink: again)))
        pool.waitUntilIdle()
        #expect(again.done?.files == 0)
        #expect(!pool.isInFlight(id))
    }
}
