import Foundation

/// Limits the memory that concurrent scrypt runs take, in bytes, across the whole process:
/// worker threads that decrypt scrypt-protected age files wait here rather than each
/// allocating 256 MiB (age's default work factor 2^18) or more at once. A run larger than the
/// whole budget runs alone.
final class ScryptGate: @unchecked Sendable {
    /// Room for one default-strength run (256 MiB) plus a few small ones.
    static let shared = ScryptGate(budget: 320 << 20)

    let budget: Int
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var inUse = 0
    private var peak = 0

    init(budget: Int) { self.budget = max(1, budget) }

    /// scrypt's working memory: 128 * r * N bytes (plus small buffers).
    static func cost(logN: Int, r: Int = 8) -> Int { 128 * r << logN }

    func run<T, E: Error>(cost: Int, _ body: () throws(E) -> T) throws(E) -> T {
        let need = min(max(cost, 0), budget)
        condition.lock()
        while inUse + need > budget { condition.wait() }
        inUse += need
        peak = max(peak, inUse)
        condition.unlock()
        defer {
            condition.lock()
            inUse -= need
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }

    /// The most memory that ran at once (for tests).
    var peakBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return peak
    }
}
