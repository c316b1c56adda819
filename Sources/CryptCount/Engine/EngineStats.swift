import Synchronization

/// Process-wide counters for `stats`. Relaxed atomics: each is an independent tally.
public final class EngineStats: Sendable {
    private let requestsCount = Atomic<Int>(0)
    private let filesCount = Atomic<Int>(0)
    private let bytesReadCount = Atomic<Int>(0)
    private let bytesPlainCount = Atomic<Int>(0)
    private let errorsCount = Atomic<Int>(0)

    public init() {}

    public func addRequest() { requestsCount.add(1, ordering: .relaxed) }
    public func addFile() { filesCount.add(1, ordering: .relaxed) }
    public func addRead(_ n: Int) { bytesReadCount.add(n, ordering: .relaxed) }
    public func addPlain(_ n: Int) { bytesPlainCount.add(n, ordering: .relaxed) }
    public func addError() { errorsCount.add(1, ordering: .relaxed) }

    public var requests: Int { requestsCount.load(ordering: .relaxed) }
    public var files: Int { filesCount.load(ordering: .relaxed) }
    public var bytesRead: Int { bytesReadCount.load(ordering: .relaxed) }
    public var bytesPlain: Int { bytesPlainCount.load(ordering: .relaxed) }
    public var errors: Int { errorsCount.load(ordering: .relaxed) }
}
