#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Calls `call` (a read(2), write(2), poll(2)...) again for as long as it fails with EINTR: a
/// signal arrived before it did anything. Any other result, or errno, is the caller's.
@inline(__always)
package func retryOnEINTR<T: SignedInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
