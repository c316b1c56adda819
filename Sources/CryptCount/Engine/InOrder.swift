/// Puts values that arrive in any order of their index back in index order: what a sink that
/// writes results in order keeps while a gap is open. Not thread-safe: the owner locks.
package struct InOrder<Value> {
    private var waiting: [Int: Value] = [:]
    /// The lowest index not yet passed on.
    package private(set) var next = 0

    package init() {}

    /// Takes the value for `index` and passes on, in order, every value the gap held back.
    package mutating func add(_ index: Int, _ value: Value, emit: (Int, Value) -> Void) {
        waiting[index] = value
        while let ready = waiting.removeValue(forKey: next) {
            emit(next, ready)
            next += 1
        }
    }
}
