#ifndef CFASTBASE64_H
#define CFASTBASE64_H

#include <stddef.h>
#include <stdint.h>

/// Which base64 alphabet a vectorised decode accepts.
enum {
    CFB64_STANDARD = 0, ///< `+` and `/`
    CFB64_URLSAFE = 1,  ///< `-` and `_`
};

/// Decodes the longest prefix of `src` made of whole 32-character blocks that are all inside the
/// alphabet (no padding, no whitespace), writing 24 bytes per block to `dst` (which may be `src`
/// itself: the output never overtakes the input). Returns the number of characters consumed, a
/// multiple of 32; the caller decodes the rest (and reports any invalid character) itself. Returns
/// 0 where the CPU lacks AVX2. Never reads or writes outside `src[0..<n]` and `dst[0..<n/4*3]`.
size_t cfb64_decode_blocks(const uint8_t *src, size_t n, uint8_t *dst, int alphabet);

/// Whether `cfb64_decode_blocks` is vectorised on this CPU (AVX2).
int cfb64_vectorised(void);

#endif
