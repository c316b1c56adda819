// X25519 (RFC 7748) of one scalar with 8 points at once: an AVX-512 IFMA kernel, one SIMD lane per
// point. Built without -march flags: the kernel carries its own target attribute and runs only
// when ccx25519_lanes_available() says the CPU and the OS support it.
#ifndef CX25519LANES_H
#define CX25519LANES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU (and OS: AVX-512 state saved) runs the AVX-512 IFMA kernel, else 0.
int ccx25519_lanes_available(void);

/// out[i] = X25519(scalar, points[i]) for i in 0..<8, exactly as RFC 7748 section 5: the scalar is
/// clamped inside, bit 255 of each u-coordinate is ignored, non-canonical u (>= p) is accepted and
/// reduced, the output is the canonical encoding (all zeros for low-order points). Constant time
/// in the scalar and the points. Call only when ccx25519_lanes_available() returns 1.
void ccx25519_x8(uint8_t out[8][32], const uint8_t scalar[32], const uint8_t points[8][32]);

#ifdef __cplusplus
}
#endif

#endif
