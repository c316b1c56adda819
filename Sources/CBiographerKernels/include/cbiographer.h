// Wide decryption kernels for the seed's `biographer` cipher (Sources/CryptCount/Ciphers/
// BiographerKey.swift is the only user). The 16-byte kernel stays in Swift (portable SIMD16,
// SSE2 on x86-64); these are the AVX2 and AVX-512 ones, compiled with per-function `target`
// attributes so that the binary runs on any x86-64 and picks one at run time.
#ifndef CBIOGRAPHER_H
#define CBIOGRAPHER_H

#include <stddef.h>
#include <stdint.h>

/// Kernel identifiers (BiographerKernel in Swift uses the same values).
enum {
    CCBIO_SSE2 = 0,    // the Swift SIMD16 kernel (any CPU)
    CCBIO_AVX2 = 1,    // 32-byte lanes: AVX2
    CCBIO_AVX512 = 2,  // 64-byte lanes: AVX-512 F, BW, VL and VBMI (Ice Lake, Zen 4 and later)
};

/// 1 if this CPU and the operating system run `kernel` (cpuid and xgetbv), else 0.
int ccbio_supported(int kernel);

/// Decrypts a chained biographer ciphertext of `8 + 16 * n` bytes into its `n` plaintext bytes:
/// 256-byte blocks of 16 plaintext bytes, then the tail of fewer than 16, one 16-byte group
/// each. `src` is the ciphertext's start (the iv: block b reads src[256b ..< 256b + 264]).
/// `pad` is the password repeated, at least `pw_len + 1024 + 16` bytes; `shift` the format's amount.
/// Returns nonzero when any unmasked, unchained byte at any level was not a hex digit (the
/// output is then garbage). Must only be called when ccbio_supported says so.
int ccbio_chained_avx2(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift);
int ccbio_chained_avx512(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift);

#endif
