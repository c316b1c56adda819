import Crypto

/// X25519 of one scalar with up to `width` points at once.
///
/// STUB: one point at a time through swift-crypto (BoringSSL). The 8-lane AVX-512 IFMA kernel
/// replaces this file, with the same API.
enum X25519Lanes {
    static let width = 8
    /// Whether the 8-lane AVX-512 IFMA kernel runs on this CPU (otherwise one point at a time through BoringSSL).
    static let isWide = false

    /// For i in 0..<count: out[32*i ..< 32*i+32] = X25519(scalar, points[32*i ..< 32*i+32]).
    /// `scalar` is 32 bytes (clamped inside, RFC 7748); `count` is 1...width; `points` holds count*32 bytes, `out` at least count*32.
    static func compute(
        scalar: UnsafeRawBufferPointer, points: UnsafeRawBufferPointer, count: Int,
        into out: UnsafeMutableRawBufferPointer
    ) {
        let n = max(0, min(count, width, points.count / 32, out.count / 32))
        let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
        for i in 0..<n {
            let lane = UnsafeMutableRawBufferPointer(rebasing: out[(32 * i)..<(32 * i + 32)])
            // A point BoringSSL refuses (low order: an all-zero result) gives zeros, as the kernel would.
            lane.initializeMemory(as: UInt8.self, repeating: 0)
            guard let key,
                let peer = try? Curve25519.KeyAgreement.PublicKey(
                    rawRepresentation: UnsafeRawBufferPointer(rebasing: points[(32 * i)..<(32 * i + 32)])),
                let shared = try? key.sharedSecretFromKeyAgreement(with: peer)
            else { continue }
            shared.withUnsafeBytes { lane.copyMemory(from: $0) }
        }
    }
}
