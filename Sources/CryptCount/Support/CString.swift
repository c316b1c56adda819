/// Calls `body` with a NUL-terminated byte string (a path kept as raw bytes, so names that are
/// not UTF-8 work) as a C string. The caller appends the NUL, so a buffer can be reused.
package func withCString<R>(_ terminated: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    terminated.withUnsafeBufferPointer { b in
        guard let base = b.baseAddress else { return body("") }
        return body(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self))
    }
}
