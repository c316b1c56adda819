import Synchronization

/// A small thread-safe map with a fixed number of entries; the oldest entry goes first when
/// it is full. Keys own one per cipher key object, so derived secrets die with the key.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var values: [Key: Value] = [:]
        var order: [Key] = []
        var head = 0  // index of the oldest live key in `order`
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func value(for key: Key) -> Value? {
        state.withLock { $0.values[key] }
    }

    func insert(_ value: Value, for key: Key) {
        state.withLock { s in
            if s.values.updateValue(value, forKey: key) != nil { return }
            s.order.append(key)
            if s.values.count > capacity, s.head < s.order.count {
                s.values[s.order[s.head]] = nil
                s.head += 1
            }
            // Compact the order list once its dead prefix dominates.
            if s.head > capacity {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    var count: Int { state.withLock { $0.values.count } }
}
