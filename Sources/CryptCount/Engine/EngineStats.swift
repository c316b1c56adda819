import Synchronization

/// Process-wide counters for `stats`. Relaxed atomics: each is an independent tally.
package final class EngineStats: Sendable {
    private let requestsCount = Atomic<Int>(0)
    private let filesCount = Atomic<Int>(0)
    private let bytesReadCount = Atomic<Int>(0)
    private let bytesPlainCount = Atomic<Int>(0)
    private let errorsCount = Atomic<Int>(0)

    package init() {}

    package func addRequest() { requestsCount.add(1, ordering: .relaxed) }
    package func addFile() { filesCount.add(1, ordering: .relaxed) }
    package func addRead(_ n: Int) { bytesReadCount.add(n, ordering: .relaxed) }
    package func addPlain(_ n: Int) { bytesPlainCount.add(n, ordering: .relaxed) }
    package func addError() { errorsCount.add(1, ordering: .relaxed) }

    package var requests: Int { requestsCount.load(ordering: .relaxed) }
    package var files: Int { filesCount.load(ordering: .relaxed) }
    package var bytesRead: Int { bytesReadCount.load(ordering: .relaxed) }
    package var bytesPlain: Int { bytesPlainCount.load(ordering: .relaxed) }
    package var errors: Int { errorsCount.load(ordering: .relaxed) }
}
