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

/// Bytes of a Fernet key's context: the HMAC-SHA256 inner and outer states (after the padded
/// signing key) and the AES-128 decryption schedule. Secret: wipe it when the key goes.
#define CFB64_FERNET_CONTEXT 240

/// Whether `cfb64_fernet_open` runs on this CPU (SHA-NI, AES-NI, SSE4.1).
int cfb64_fernet_supported(void);

/// Fills `ctx` from a Fernet key's two halves (does nothing where unsupported).
void cfb64_fernet_prepare(const uint8_t signing[16], const uint8_t encryption[16], uint8_t ctx[CFB64_FERNET_CONTEXT]);

/// Opens a whole Fernet token `src[0..<n]` (url-safe base64 with padding, no whitespace) in one
/// pass: decodes it piece by piece, authenticates version, timestamp, IV and ciphertext with
/// HMAC-SHA256 and decrypts AES-128-CBC into `out` (room `cap`). Returns the plaintext's length
/// (at `out`) and stores the token's timestamp, or -1 on any failure (bad base64, version,
/// length, MAC or padding; or an unsupported CPU), with whatever was written to `out` zeroed;
/// the caller then finds out which failure the slow way. Never reads outside `src[0..<n]` or
/// writes outside `out[0..<cap]`.
long cfb64_fernet_open(const uint8_t *src, size_t n, const uint8_t ctx[CFB64_FERNET_CONTEXT], uint8_t *out,
                       size_t cap, uint64_t *timestamp);

#endif
