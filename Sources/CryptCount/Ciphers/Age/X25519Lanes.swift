import CX25519Lanes

#if canImport(Glibc)
    import Glibc
#endif

/// X25519 of one scalar with up to `width` points at once.
///
/// age cold (issue 14): every file has its own ephemeral share but the identity's scalar is the
/// same, so 8 files' X25519 run in the 8 lanes of the AVX-512 IFMA kernel (CX25519Lanes); on a
/// CPU without it, one point at a time through BoringSSL. Both give RFC 7748's X25519 exactly
/// (clamping, bit 255 ignored, non-canonical u reduced, canonical output); a low-order point
/// gives 32 zero bytes, which the caller must reject as age does.
enum X25519Lanes {
    static let width = 8

    /// Whether the 8-lane AVX-512 IFMA kernel runs on this CPU (otherwise one point at a time through BoringSSL).
    static let isWide: Bool = ccx25519_lanes_available() == 1

    /// For i in 0..<count: out[32*i ..< 32*i+32] = X25519(scalar, points[32*i ..< 32*i+32]).
    /// `scalar` is 32 bytes (clamped inside, RFC 7748); `count` is 1...width; `points` holds count*32 bytes, `out` at least count*32.
    /// Other sizes write nothing.
    static func compute(
        scalar: UnsafeRawBufferPointer, points: UnsafeRawBufferPointer, count: Int,
        into out: UnsafeMutableRawBufferPointer
    ) {
        compute(scalar: scalar, points: points, count: count, into: out, wide: isWide)
    }

    /// The same, choosing the path: `wide: false` forces BoringSSL (tests run both); `wide: true`
    /// on a CPU without the kernel still takes the narrow path.
    static func compute(
        scalar: UnsafeRawBufferPointer, points: UnsafeRawBufferPointer, count: Int,
        into out: UnsafeMutableRawBufferPointer,
        wide: Bool
    ) {
        guard scalar.count == 32, (1...width).contains(count), points.count >= count * 32, out.count >= count * 32
        else { return }
        if wide && isWide {
            computeWide(scalar: scalar, points: points, count: count, into: out)
        } else {
            for i in 0..<count {
                let point = UnsafeRawBufferPointer(rebasing: points[(32 * i)..<(32 * i + 32)])
                let slot = UnsafeMutableRawBufferPointer(rebasing: out[(32 * i)..<(32 * i + 32)])
                // False means a low-order point: BoringSSL has written the zeros RFC 7748 gives.
                _ = BoringCrypto.x25519(scalar: scalar, point: point, into: slot)
            }
        }
    }

    /// The kernel on 8 lanes: the unused ones get the basepoint (9) and are discarded; the
    /// kernel's output copy is wiped.
    private static func computeWide(
        scalar: UnsafeRawBufferPointer, points: UnsafeRawBufferPointer, count: Int,
        into out: UnsafeMutableRawBufferPointer
    ) {
        withUnsafeTemporaryAllocation(byteCount: 2 * width * 32, alignment: 64) { buffer in
            guard let base = buffer.baseAddress, let s = scalar.baseAddress else { return }
            let lanes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(width * 32)])
            let results = UnsafeMutableRawBufferPointer(rebasing: buffer[(width * 32)...])
            lanes.initializeMemory(as: UInt8.self, repeating: 0)
            lanes.copyMemory(from: UnsafeRawBufferPointer(rebasing: points[0..<(count * 32)]))
            for i in count..<width { lanes[32 * i] = 9 }
            ccx25519_x8(
                bound(results.baseAddress ?? base), s.assumingMemoryBound(to: UInt8.self),
                bound(UnsafeRawPointer(lanes.baseAddress ?? base)))
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: results[0..<(count * 32)]))
            explicit_bzero(base, buffer.count)
        }
    }

    /// The C signature's `uint8_t [8][32]` row type, inferred from the call.
    @inline(__always)
    private static func bound<T>(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<T> {
        p.assumingMemoryBound(to: T.self)
    }

    @inline(__always)
    private static func bound<T>(_ p: UnsafeRawPointer) -> UnsafePointer<T> {
        p.assumingMemoryBound(to: T.self)
    }
}
