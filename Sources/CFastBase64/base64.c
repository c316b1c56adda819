// Vectorised base64 decoding of whole 32-character blocks (AVX2), after Wojciech Muła and
// Daniel Lemire, "Faster Base64 Encoding and Decoding Using AVX2 Instructions" (2018):
// classify each character by its high and low nibble (an invalid character sets a bit in both
// lookups), add a per-class offset to get its 6-bit value, then pack 4 x 6 bits into 3 bytes
// with multiply-adds and shuffles. Validation is exact, so the caller's scalar code only sees
// the tail and any block that holds an invalid character.
#include "cfastbase64.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Bit per high nibble: which low nibbles are invalid there.
//   bit0: high nibble 0, 1, 8-15 (nothing valid)
//   bit1: 0x2_ (url-safe: only 0x2D '-'; standard: only 0x2B '+' and 0x2F '/')
//   bit2: 0x3_ (0x30-0x39)
//   bit3: 0x4_ and 0x6_ (0x41-0x4F, 0x61-0x6F)
//   bit4: 0x5_ (0x50-0x5A; url-safe also 0x5F '_')
//   bit5: 0x7_ (0x70-0x7A)
#define HI_LUT 1, 1, 2, 4, 8, 16, 8, 32, 1, 1, 1, 1, 1, 1, 1, 1

static inline __attribute__((target("avx2"))) __m256i lut16(const int8_t t[16]) {
    __m128i x = _mm_loadu_si128((const __m128i *)t);
    return _mm256_broadcastsi128_si256(x);
}

__attribute__((target("avx2"))) static size_t decode_avx2(const uint8_t *src, size_t n, uint8_t *dst, int alphabet) {
    const int8_t hi_t[16] = {HI_LUT};
    int8_t lo_t[16];
    for (int l = 0; l < 16; l++) {
        int v = 1;  // bit0: every low nibble is invalid in the all-invalid rows
        if (alphabet == CFB64_URLSAFE) {
            if (l != 0xD) v |= 2;
        } else {
            if (l != 0xB && l != 0xF) v |= 2;
        }
        if (l >= 0xA) v |= 4;
        if (l == 0) v |= 8;
        if (alphabet == CFB64_URLSAFE) {
            if (l >= 0xB && l <= 0xE) v |= 16;
        } else {
            if (l >= 0xB) v |= 16;
        }
        if (l >= 0xB) v |= 32;
        lo_t[l] = (int8_t)v;
    }
    // Offsets by high nibble: value = character + offset. Row 0x2_ is '-' (url-safe, 62) or '+'
    // (standard, 62); the other special character ('_' 0x5F or '/' 0x2F) takes row 0xD or 0xA
    // (its high nibble | 8), picked by a comparison below.
    int8_t roll_t[16] = {0};
    roll_t[2] = alphabet == CFB64_URLSAFE ? (int8_t)(62 - 0x2D) : (int8_t)(62 - 0x2B);
    roll_t[3] = 52 - 0x30;
    roll_t[4] = (int8_t)(0 - 0x41);
    roll_t[5] = (int8_t)(0 - 0x41);
    roll_t[6] = (int8_t)(26 - 0x61);
    roll_t[7] = (int8_t)(26 - 0x61);
    if (alphabet == CFB64_URLSAFE) {
        roll_t[0x5 | 8] = (int8_t)(63 - 0x5F);
    } else {
        roll_t[0x2 | 8] = (int8_t)(63 - 0x2F);
    }
    const uint8_t special = alphabet == CFB64_URLSAFE ? 0x5F : 0x2F;

    const __m256i hi_lut = lut16(hi_t);
    const __m256i lo_lut = lut16(lo_t);
    const __m256i roll_lut = lut16(roll_t);
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i special_v = _mm256_set1_epi8((char)special);
    const __m256i row_d = _mm256_set1_epi8(0x08);
    const __m256i merge1 = _mm256_set1_epi32(0x01400140);
    const __m256i merge2 = _mm256_set1_epi32(0x00011000);
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                          2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);

    size_t i = 0;
    size_t o = 0;
    while (n - i >= 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(in, 4), nibble);
        __m256i lo = _mm256_and_si256(in, nibble);
        __m256i bad = _mm256_and_si256(_mm256_shuffle_epi8(lo_lut, lo), _mm256_shuffle_epi8(hi_lut, hi));
        if (!_mm256_testz_si256(bad, bad)) break;
        // 0x5F ('_') and 0x2F ('/') share a high nibble with characters of another offset: move
        // them to row hi | 8 (no valid character has a high nibble of 8 or more).
        __m256i eq = _mm256_cmpeq_epi8(in, special_v);
        __m256i row = _mm256_or_si256(hi, _mm256_and_si256(eq, row_d));
        __m256i values = _mm256_add_epi8(in, _mm256_shuffle_epi8(roll_lut, row));
        // 4 x 6 bits -> 24 bits per 32-bit lane, then 12 bytes per 128-bit lane, then 24 in a row.
        __m256i ab_bc = _mm256_maddubs_epi16(values, merge1);
        __m256i abc = _mm256_madd_epi16(ab_bc, merge2);
        __m256i bytes = _mm256_shuffle_epi8(abc, pack);
        bytes = _mm256_permutevar8x32_epi32(bytes, lanes);
        // Load before store: with dst == src the output (o + 24 <= i + 24) never reaches the
        // next block's input (i + 32).
        _mm_storeu_si128((__m128i *)(dst + o), _mm256_castsi256_si128(bytes));
        _mm_storel_epi64((__m128i *)(dst + o + 16), _mm256_extracti128_si256(bytes, 1));
        i += 32;
        o += 24;
    }
    return i;
}

int cfb64_vectorised(void) {
    // libgcc's constructor fills in the CPU model before main; this only reads it.
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

size_t cfb64_decode_blocks(const uint8_t *src, size_t n, uint8_t *dst, int alphabet) {
    if (!cfb64_vectorised()) return 0;
    return decode_avx2(src, n, dst, alphabet);
}

#else

int cfb64_vectorised(void) { return 0; }

size_t cfb64_decode_blocks(const uint8_t *src, size_t n, uint8_t *dst, int alphabet) {
    (void)src; (void)n; (void)dst; (void)alphabet;
    return 0;
}

#endif
