// Fernet in one pass (issue 14): url-safe base64 decoding, HMAC-SHA256 and AES-128-CBC
// decryption over L1-sized pieces of a token. Each piece is decoded into a small stack buffer;
// one loop then runs a SHA-256 block (SHA-NI) and four AES blocks (AES-NI) per 64 bytes, two
// independent dependency chains the CPU overlaps, and writes the plaintext once, to the caller's
// buffer. The HMAC's inner and outer states and the AES decryption schedule are computed once
// per key (cfb64_fernet_prepare). The caller treats the plaintext as unverified until this
// returns its length; on any failure the plaintext written so far is zeroed.
#include "cfastbase64.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define FERNET_TARGET __attribute__((target("sha,aes,sse4.1,ssse3")))
#define INLINE static inline __attribute__((always_inline))

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t SHA256_IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

// The state as SHA-NI keeps it: ABEF and CDGH.
typedef struct {
    __m128i abef, cdgh;
} sha_state;

FERNET_TARGET INLINE sha_state sha_from_words(const uint32_t h[8]) {
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);       // CDAB
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B); // EFGH
    sha_state s = {_mm_alignr_epi8(t, s1, 8), _mm_blend_epi16(s1, t, 0xF0)};        // ABEF, CDGH
    return s;
}

// The digest's 32 bytes (big-endian words).
FERNET_TARGET INLINE void sha_digest(sha_state s, uint8_t out[32]) {
    __m128i t = _mm_shuffle_epi32(s.abef, 0x1B);      // FEBA
    __m128i u = _mm_shuffle_epi32(s.cdgh, 0xB1);      // DCHG
    __m128i dcba = _mm_blend_epi16(t, u, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(u, t, 8);
    const __m128i swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, swap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, swap));
}

// Four SHA-256 rounds with message words w (K256 row i), and the message schedule: W[t] for the
// next four rounds from the last sixteen, a (t-16..), b (t-12..), c (t-8..), d (t-4..); the result
// replaces a. Both functions that run SHA-256 blocks use them on their own s0, s1 and k.
#define ROUNDS4(w, i)                                                            \
    k = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *)(K256 + 4 * (i)))); \
    s1 = _mm_sha256rnds2_epu32(s1, s0, k);                                      \
    s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k, 0x0E));
#define SCHEDULE(a, b, c, d) \
    a = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(a, b), _mm_alignr_epi8(d, c, 4)), d);
// A block's start: the state and its 64 bytes at p as big-endian words m0..m3.
#define BLOCK_START                                                                         \
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);     \
    __m128i s0 = st->abef, s1 = st->cdgh;                                                   \
    __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), mask);               \
    __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), mask);        \
    __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), mask);        \
    __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), mask);
// Rounds 36-63 (after round group 8), the same in both block functions.
#define ROUNDS_9_TO_15                          \
    SCHEDULE(m1, m2, m3, m0) ROUNDS4(m1, 9)     \
    SCHEDULE(m2, m3, m0, m1) ROUNDS4(m2, 10)    \
    SCHEDULE(m3, m0, m1, m2) ROUNDS4(m3, 11)    \
    SCHEDULE(m0, m1, m2, m3) ROUNDS4(m0, 12)    \
    SCHEDULE(m1, m2, m3, m0) ROUNDS4(m1, 13)    \
    SCHEDULE(m2, m3, m0, m1) ROUNDS4(m2, 14)    \
    SCHEDULE(m3, m0, m1, m2) ROUNDS4(m3, 15)

FERNET_TARGET INLINE void sha_block(sha_state *st, const uint8_t *p) {
    BLOCK_START
    __m128i k;
    ROUNDS4(m0, 0)
    ROUNDS4(m1, 1)
    ROUNDS4(m2, 2)
    ROUNDS4(m3, 3)
    SCHEDULE(m0, m1, m2, m3) ROUNDS4(m0, 4)
    SCHEDULE(m1, m2, m3, m0) ROUNDS4(m1, 5)
    SCHEDULE(m2, m3, m0, m1) ROUNDS4(m2, 6)
    SCHEDULE(m3, m0, m1, m2) ROUNDS4(m3, 7)
    SCHEDULE(m0, m1, m2, m3) ROUNDS4(m0, 8)
    ROUNDS_9_TO_15
    st->abef = _mm_add_epi32(st->abef, s0);
    st->cdgh = _mm_add_epi32(st->cdgh, s1);
}

// Key context layout: inner state (32 bytes), outer state (32), AES-128 decryption schedule (11 x 16).
#define CTX_INNER 0
#define CTX_OUTER 32
#define CTX_AES 64

#define EXPAND(k, rcon) expand_step(k, _mm_aeskeygenassist_si128(k, rcon))
FERNET_TARGET INLINE __m128i expand_step(__m128i key, __m128i gen) {
    gen = _mm_shuffle_epi32(gen, 0xFF);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, gen);
}

static void wipe(void *p, size_t n) {
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

FERNET_TARGET static void prepare(const uint8_t signing[16], const uint8_t encryption[16], uint8_t *ctx) {
    uint8_t block[64];
    const uint8_t pads[2] = {0x36, 0x5c};
    for (int w = 0; w < 2; w++) {
        memset(block, pads[w], 64);
        for (int i = 0; i < 16; i++) block[i] ^= signing[i];
        sha_state s = sha_from_words(SHA256_IV);
        sha_block(&s, block);
        _mm_storeu_si128((__m128i *)(ctx + 32 * w), s.abef);
        _mm_storeu_si128((__m128i *)(ctx + 32 * w + 16), s.cdgh);
    }
    wipe(block, sizeof block);
    __m128i e[11];
    e[0] = _mm_loadu_si128((const __m128i *)encryption);
    e[1] = EXPAND(e[0], 0x01);
    e[2] = EXPAND(e[1], 0x02);
    e[3] = EXPAND(e[2], 0x04);
    e[4] = EXPAND(e[3], 0x08);
    e[5] = EXPAND(e[4], 0x10);
    e[6] = EXPAND(e[5], 0x20);
    e[7] = EXPAND(e[6], 0x40);
    e[8] = EXPAND(e[7], 0x80);
    e[9] = EXPAND(e[8], 0x1b);
    e[10] = EXPAND(e[9], 0x36);
    // The equivalent inverse cipher's schedule: reversed, InvMixColumns on the middle keys.
    __m128i *d = (__m128i *)(ctx + CTX_AES);
    _mm_storeu_si128(d, e[10]);
    for (int r = 1; r < 10; r++) _mm_storeu_si128(d + r, _mm_aesimc_si128(e[10 - r]));
    _mm_storeu_si128(d + 10, e[0]);
    wipe(e, sizeof e);
}

FERNET_TARGET INLINE __m128i aes_dec1(const __m128i rk[11], __m128i x) {
    x = _mm_xor_si128(x, rk[0]);
    for (int r = 1; r < 10; r++) x = _mm_aesdec_si128(x, rk[r]);
    return _mm_aesdeclast_si128(x, rk[10]);
}

// One SHA-256 block of `p` and four AES-CBC blocks of `in`, the AES rounds issued between the
// SHA rounds so that the compiler's order already interleaves the two chains.
FERNET_TARGET INLINE void sha_aes_block(sha_state *st, const uint8_t *p, const __m128i rk[11], const uint8_t *in,
                                       uint8_t *out, __m128i *prev) {
    BLOCK_START
    __m128i c0 = _mm_loadu_si128((const __m128i *)in);
    __m128i c1 = _mm_loadu_si128((const __m128i *)(in + 16));
    __m128i c2 = _mm_loadu_si128((const __m128i *)(in + 32));
    __m128i c3 = _mm_loadu_si128((const __m128i *)(in + 48));
    __m128i x0 = _mm_xor_si128(c0, rk[0]), x1 = _mm_xor_si128(c1, rk[0]);
    __m128i x2 = _mm_xor_si128(c2, rk[0]), x3 = _mm_xor_si128(c3, rk[0]);
    __m128i k;
#define AESR(r)                             \
    x0 = _mm_aesdec_si128(x0, rk[r]);       \
    x1 = _mm_aesdec_si128(x1, rk[r]);       \
    x2 = _mm_aesdec_si128(x2, rk[r]);       \
    x3 = _mm_aesdec_si128(x3, rk[r]);
    ROUNDS4(m0, 0) AESR(1)
    ROUNDS4(m1, 1) AESR(2)
    ROUNDS4(m2, 2) AESR(3)
    ROUNDS4(m3, 3) AESR(4)
    SCHEDULE(m0, m1, m2, m3) ROUNDS4(m0, 4) AESR(5)
    SCHEDULE(m1, m2, m3, m0) ROUNDS4(m1, 5) AESR(6)
    SCHEDULE(m2, m3, m0, m1) ROUNDS4(m2, 6) AESR(7)
    SCHEDULE(m3, m0, m1, m2) ROUNDS4(m3, 7) AESR(8)
    SCHEDULE(m0, m1, m2, m3) ROUNDS4(m0, 8) AESR(9)
    x0 = _mm_aesdeclast_si128(x0, rk[10]);
    x1 = _mm_aesdeclast_si128(x1, rk[10]);
    x2 = _mm_aesdeclast_si128(x2, rk[10]);
    x3 = _mm_aesdeclast_si128(x3, rk[10]);
    _mm_storeu_si128((__m128i *)out, _mm_xor_si128(x0, *prev));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_xor_si128(x1, c0));
    _mm_storeu_si128((__m128i *)(out + 32), _mm_xor_si128(x2, c1));
    _mm_storeu_si128((__m128i *)(out + 48), _mm_xor_si128(x3, c2));
    *prev = c3;
    ROUNDS_9_TO_15
#undef ROUNDS4
#undef SCHEDULE
#undef BLOCK_START
#undef ROUNDS_9_TO_15
#undef AESR
    st->abef = _mm_add_epi32(st->abef, s0);
    st->cdgh = _mm_add_epi32(st->cdgh, s1);
}

// Url-safe base64 values, 0xFF outside the alphabet.
static uint8_t url_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z') return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (uint8_t)(c - '0' + 52);
    if (c == '-') return 62;
    if (c == '_') return 63;
    return 0xFF;
}

// Decodes `groups` whole 4-character groups; false on a character outside the alphabet.
static int decode_groups(const uint8_t *src, size_t groups, uint8_t *dst) {
    size_t v = cfb64_decode_blocks(src, groups * 4, dst, CFB64_URLSAFE);
    uint8_t bad = 0;
    for (size_t g = v / 4; g < groups; g++) {
        const uint8_t *s = src + 4 * g;
        uint8_t a = url_value(s[0]), b = url_value(s[1]), c = url_value(s[2]), d = url_value(s[3]);
        bad |= a | b | c | d;
        uint32_t x = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 | (uint32_t)(c & 63) << 6 | (d & 63);
        dst[3 * g] = (uint8_t)(x >> 16);
        dst[3 * g + 1] = (uint8_t)(x >> 8);
        dst[3 * g + 2] = (uint8_t)x;
    }
    return (bad & 0xC0) == 0;
}

// Characters decoded per piece: 3 KiB of token bytes, which stay in L1 from decoding to hashing.
#define PIECE_CHARS 4096
#define PIECE_BYTES (PIECE_CHARS / 4 * 3)

FERNET_TARGET static long open_token(const uint8_t *src, size_t n, const uint8_t *ctx, uint8_t *out, size_t cap,
                                     uint64_t *timestamp) {
    if (n < 4 || n % 4 != 0) return -1;
    size_t pads = 0;
    while (pads < 2 && src[n - 1 - pads] == '=') pads++;
    size_t nc = n - pads, rest = nc % 4;
    if (!((pads == 0 && rest == 0) || (pads == 1 && rest == 3) || (pads == 2 && rest == 2))) return -1;
    size_t full = nc - rest;
    size_t count = full / 4 * 3 + (rest ? rest - 1 : 0);
    if (count < 1 + 8 + 16 + 16 + 32) return -1;
    size_t mac_start = count - 32, body = mac_start - 25;
    if (body % 16 != 0 || cap < body) return -1;

    // buf[0] is the token's byte `base`; what the two cursors have not consumed is kept (under
    // 64 + 32 bytes) and the next piece appended.
    uint8_t buf[PIECE_BYTES + 256];
    size_t base = 0, have = 0, ci = 0;
    size_t sha_pos = 0, aes_pos = 25;
    int tail_done = rest == 0;
    sha_state st = {_mm_loadu_si128((const __m128i *)(ctx + CTX_INNER)),
                    _mm_loadu_si128((const __m128i *)(ctx + CTX_INNER + 16))};
    __m128i rk[11];
    for (int r = 0; r < 11; r++) rk[r] = _mm_loadu_si128((const __m128i *)(ctx + CTX_AES) + r);
    __m128i prev = _mm_setzero_si128();
    int first = 1;
    long result = -1;
    for (;;) {
        size_t take = full - ci < PIECE_CHARS ? full - ci : PIECE_CHARS;
        if (take > 0) {
            if (!decode_groups(src + ci, take / 4, buf + have)) goto fail;
            have += take / 4 * 3;
            ci += take;
        } else if (!tail_done) {
            const uint8_t *s = src + ci;
            uint8_t a = url_value(s[0]), b = url_value(s[1]), c = rest == 3 ? url_value(s[2]) : 0;
            if ((a | b | c) & 0xC0) goto fail;
            uint32_t x = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
            buf[have++] = (uint8_t)(x >> 16);
            if (rest == 3) buf[have++] = (uint8_t)(x >> 8);
            tail_done = 1;
        }
        if (first) {
            // The first piece holds at least 72 bytes (a token has 73 or more).
            if (buf[0] != 0x80) goto fail;
            uint64_t t = 0;
            for (int i = 1; i < 9; i++) t = t << 8 | buf[i];
            *timestamp = t;
            prev = _mm_loadu_si128((const __m128i *)(buf + 9));
            first = 0;
        }
        size_t end = base + have;
        size_t lim = end < mac_start ? end : mac_start;
        while (sha_pos + 64 <= lim && aes_pos + 64 <= lim) {
            sha_aes_block(&st, buf + (sha_pos - base), rk, buf + (aes_pos - base), out + (aes_pos - 25), &prev);
            sha_pos += 64;
            aes_pos += 64;
        }
        while (sha_pos + 64 <= lim) {
            sha_block(&st, buf + (sha_pos - base));
            sha_pos += 64;
        }
        while (aes_pos + 16 <= lim) {
            __m128i c = _mm_loadu_si128((const __m128i *)(buf + (aes_pos - base)));
            _mm_storeu_si128((__m128i *)(out + (aes_pos - 25)), _mm_xor_si128(aes_dec1(rk, c), prev));
            prev = c;
            aes_pos += 16;
        }
        if (end == count) break;
        size_t keep = sha_pos < aes_pos ? sha_pos : aes_pos;
        memmove(buf, buf + (keep - base), end - keep);
        have = end - keep;
        base = keep;
    }
    {
        // The inner hash's last blocks: the rest of the signed bytes, 0x80, zeros, the bit length
        // (64 bytes of inner pad before the token).
        uint8_t last[128];
        size_t r = mac_start - sha_pos;
        memcpy(last, buf + (sha_pos - base), r);
        size_t total = r + 9 <= 64 ? 64 : 128;
        memset(last + r, 0, total - r);
        last[r] = 0x80;
        uint64_t bits = (uint64_t)(64 + mac_start) * 8;
        for (int i = 0; i < 8; i++) last[total - 1 - i] = (uint8_t)(bits >> (8 * i));
        sha_block(&st, last);
        if (total == 128) sha_block(&st, last + 64);
        uint8_t inner[64];
        sha_digest(st, inner);
        memset(inner + 32, 0, 32);
        inner[32] = 0x80;
        inner[62] = (uint8_t)((64 + 32) * 8 >> 8);
        inner[63] = (uint8_t)((64 + 32) * 8);
        sha_state o = {_mm_loadu_si128((const __m128i *)(ctx + CTX_OUTER)),
                       _mm_loadu_si128((const __m128i *)(ctx + CTX_OUTER + 16))};
        sha_block(&o, inner);
        uint8_t mac[32];
        sha_digest(o, mac);
        const uint8_t *given = buf + (mac_start - base);
        uint8_t diff = 0;
        for (int i = 0; i < 32; i++) diff |= mac[i] ^ given[i];
        // PKCS#7 in constant time: the last byte p is 1...16 and the last p bytes all equal p.
        uint32_t p = out[body - 1];
        uint32_t bad = (uint32_t)((int32_t)(p - 1) >> 31) | (uint32_t)((int32_t)(16 - p) >> 31);
        for (int k = 0; k < 16; k++) {
            uint32_t in_pad = (uint32_t)((int32_t)((uint32_t)(16 - k) - p - 1) >> 31);
            bad |= in_pad & (out[body - 16 + k] ^ p);
        }
        if (diff == 0 && bad == 0) result = (long)(body - p);
    }
fail:
    if (result < 0) wipe(out, aes_pos - 25);
    // The key schedule's copy on the stack (what the compiler spills elsewhere is beyond reach).
    wipe(rk, sizeof rk);
    return result;
}

int cfb64_fernet_supported(void) {
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1") ? 1
                                                                                                             : 0;
}

void cfb64_fernet_prepare(const uint8_t signing[16], const uint8_t encryption[16], uint8_t ctx[CFB64_FERNET_CONTEXT]) {
    if (cfb64_fernet_supported()) prepare(signing, encryption, ctx);
}

long cfb64_fernet_open(const uint8_t *src, size_t n, const uint8_t ctx[CFB64_FERNET_CONTEXT], uint8_t *out,
                       size_t cap, uint64_t *timestamp) {
    if (!cfb64_fernet_supported()) return -1;
    return open_token(src, n, ctx, out, cap, timestamp);
}

#else

int cfb64_fernet_supported(void) { return 0; }

void cfb64_fernet_prepare(const uint8_t signing[16], const uint8_t encryption[16], uint8_t ctx[CFB64_FERNET_CONTEXT]) {
    (void)signing; (void)encryption; (void)ctx;
}

long cfb64_fernet_open(const uint8_t *src, size_t n, const uint8_t ctx[CFB64_FERNET_CONTEXT], uint8_t *out,
                       size_t cap, uint64_t *timestamp) {
    (void)src; (void)n; (void)ctx; (void)out; (void)cap; (void)timestamp;
    return -1;
}

#endif
