// The wide biographer kernels (see include/cbiographer.h and BiographerKey.swift).
//
// The algorithm is the Swift SIMD16 kernel's: a 256-byte ciphertext block (with the 8 bytes
// before it) gives 16 plaintext bytes through unmask, unchain, then four unhex levels
// (16 -> 8 -> 4 -> 2 -> 1 vectors). A W-byte vector is L = W / 16 independent 16-byte lanes,
// because the pack instructions work within lanes: with contiguous loads over L blocks, lane l
// of the result holds plaintext bytes l, L + l, 2L + l, ..., and one permutation per L blocks
// puts them in order. No -march flag: each function names its own target, and
// ccbio_supported decides which may run.
#include "cbiographer.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
#define INLINE static inline __attribute__((always_inline))

// XCR0: the register states the operating system saves (SSE and AVX: 0x6; also the AVX-512
// opmask and upper zmm states: 0xe6).
static int os_saves(uint64_t bits) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((((uint64_t)hi << 32) | lo) & bits) == bits;
}

int ccbio_supported(int kernel) {
    if (kernel == CCBIO_SSE2) return 1;
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    switch (kernel) {
    case CCBIO_AVX2:
        return (b & bit_AVX2) && os_saves(0x6);
    case CCBIO_AVX512:
        return (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) && (c & bit_AVX512VBMI) &&
               os_saves(0xe6);
    default:
        return 0;
    }
}

static inline size_t advance(size_t phase, size_t step, size_t pw_len) {
    phase += step;
    return phase >= pw_len ? phase - pw_len : phase;
}

// ---- 16- and 32-byte vectors: pshufb tables ----
//
// A byte is a hex digit when the class of its high nibble and the class of its low nibble share
// a bit: high 3 -> 1 (digits), 4 and 6 -> 2 (letters, either case); low 0 and 7-9 -> 1, 1-6 ->
// 3. pshufb gives 0 for an index with bit 7 set, so such bytes are never digits. The value is
// the low nibble, plus 9 for letters. `acc` keeps the minimum class: a 0 anywhere = not hex.

#define HI_CLASS 0, 0, 0, 1, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define LO_CLASS 1, 3, 3, 3, 3, 3, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0
#define HI_ADD 0, 0, 0, 0, 9, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0

AVX2 INLINE __m128i nibbles16(__m128i x, __m128i *acc) {
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low4);
    __m128i cls = _mm_and_si128(_mm_shuffle_epi8(_mm_setr_epi8(HI_CLASS), hi),
                                _mm_shuffle_epi8(_mm_setr_epi8(LO_CLASS), x));
    *acc = _mm_min_epu8(*acc, cls);
    return _mm_add_epi8(_mm_and_si128(x, low4), _mm_shuffle_epi8(_mm_setr_epi8(HI_ADD), hi));
}

// Two vectors of hex digits -> one of bytes: the digits (hi, lo) of a 16-bit lane become
// 16 * hi + lo (maddubs), then the words are narrowed (packus, within 16-byte lanes).
AVX2 INLINE __m128i pair16(__m128i a, __m128i b, __m128i *acc) {
    const __m128i weights = _mm_set1_epi16(0x0110);
    __m128i na = _mm_maddubs_epi16(nibbles16(a, acc), weights);
    __m128i nb = _mm_maddubs_epi16(nibbles16(b, acc), weights);
    return _mm_packus_epi16(na, nb);
}

// t[i] = d(i) ^ d(i - 8), d(i) = (c[i] ^ pw[i]) - shift, for the 16 bytes at offset o + 8.
AVX2 INLINE __m128i unchained16(const uint8_t *src, const uint8_t *pad, size_t o, __m128i s) {
    __m128i prev = _mm_loadu_si128((const __m128i *)(src + o));
    __m128i cur = _mm_loadu_si128((const __m128i *)(src + o + 8));
    __m128i mp = _mm_loadu_si128((const __m128i *)(pad + o));
    __m128i mc = _mm_loadu_si128((const __m128i *)(pad + o + 8));
    return _mm_xor_si128(_mm_sub_epi8(_mm_xor_si128(cur, mc), s), _mm_sub_epi8(_mm_xor_si128(prev, mp), s));
}

// One 256-byte block -> 16 bytes (the wide kernels' last blocks).
AVX2 INLINE void block16(const uint8_t *src, uint8_t *out, const uint8_t *pad, __m128i s, __m128i *acc) {
    __m128i l[8];
    for (int v = 0; v < 8; v++)
        l[v] = pair16(unchained16(src, pad, 32 * v, s), unchained16(src, pad, 32 * v + 16, s), acc);
    __m128i a0 = pair16(l[0], l[1], acc), a1 = pair16(l[2], l[3], acc);
    __m128i a2 = pair16(l[4], l[5], acc), a3 = pair16(l[6], l[7], acc);
    __m128i b0 = pair16(a0, a1, acc), b1 = pair16(a2, a3, acc);
    _mm_storeu_si128((__m128i *)out, pair16(b0, b1, acc));
}

// The tail: plaintext bytes `from` ..< `n` (fewer than 16), each from its own 16 ciphertext
// bytes, through the four levels in one vector (each level's lanes hold the pairs twice, so
// every lane is a real digit and `acc` checks nothing that is not).
AVX2 INLINE void tail16(const uint8_t *src, uint8_t *out, size_t from, size_t n, const uint8_t *pad, size_t pw_len,
                        __m128i s, __m128i *acc) {
    for (size_t j = from; j < n; j++) {
        __m128i t = unchained16(src + 16 * j, pad + (16 * j) % pw_len, 0, s);
        for (int level = 0; level < 4; level++) t = pair16(t, t, acc);
        out[j] = (uint8_t)_mm_cvtsi128_si32(t);
    }
}

AVX2 INLINE int any_zero16(__m128i acc) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) != 0;
}

AVX2 INLINE __m256i nibbles32(__m256i x, __m256i *acc) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    __m256i cls = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_setr_epi8(HI_CLASS, HI_CLASS), hi),
                                   _mm256_shuffle_epi8(_mm256_setr_epi8(LO_CLASS, LO_CLASS), x));
    *acc = _mm256_min_epu8(*acc, cls);
    return _mm256_add_epi8(_mm256_and_si256(x, low4), _mm256_shuffle_epi8(_mm256_setr_epi8(HI_ADD, HI_ADD), hi));
}

AVX2 INLINE __m256i pair32(__m256i a, __m256i b, __m256i *acc) {
    const __m256i weights = _mm256_set1_epi16(0x0110);
    __m256i na = _mm256_maddubs_epi16(nibbles32(a, acc), weights);
    __m256i nb = _mm256_maddubs_epi16(nibbles32(b, acc), weights);
    return _mm256_packus_epi16(na, nb);
}

AVX2 INLINE __m256i unchained32(const uint8_t *src, const uint8_t *pad, size_t o, __m256i s) {
    __m256i prev = _mm256_loadu_si256((const __m256i *)(src + o));
    __m256i cur = _mm256_loadu_si256((const __m256i *)(src + o + 8));
    __m256i mp = _mm256_loadu_si256((const __m256i *)(pad + o));
    __m256i mc = _mm256_loadu_si256((const __m256i *)(pad + o + 8));
    return _mm256_xor_si256(_mm256_sub_epi8(_mm256_xor_si256(cur, mc), s),
                            _mm256_sub_epi8(_mm256_xor_si256(prev, mp), s));
}

AVX2 int ccbio_chained_avx2(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift) {
    const size_t blocks = n / 16;
    const __m256i s = _mm256_set1_epi8((char)shift);
    // Lane l holds bytes l, 2 + l, ...: gather the lanes' halves (vpermq), then interleave.
    const __m256i interleave = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1, 9, 2,
                                                10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    __m256i acc = _mm256_set1_epi8(-1);
    size_t phase = 0, step2 = 512 % pw_len, step1 = 256 % pw_len, b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *at = src + 256 * b, *mask = pad + phase;
        __m256i l[8];
        for (int v = 0; v < 8; v++)
            l[v] = pair32(unchained32(at, mask, 64 * v, s), unchained32(at, mask, 64 * v + 32, s), &acc);
        __m256i a0 = pair32(l[0], l[1], &acc), a1 = pair32(l[2], l[3], &acc);
        __m256i a2 = pair32(l[4], l[5], &acc), a3 = pair32(l[6], l[7], &acc);
        __m256i b0 = pair32(a0, a1, &acc), b1 = pair32(a2, a3, &acc);
        __m256i plain = pair32(b0, b1, &acc);
        plain = _mm256_shuffle_epi8(_mm256_permute4x64_epi64(plain, 0xd8), interleave);
        _mm256_storeu_si256((__m256i *)(out + 16 * b), plain);
        phase = advance(phase, step2, pw_len);
    }
    __m128i acc16 = _mm_min_epu8(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    for (; b < blocks; b++) {
        block16(src + 256 * b, out + 16 * b, pad + phase, _mm_set1_epi8((char)shift), &acc16);
        phase = advance(phase, step1, pw_len);
    }
    tail16(src, out, 16 * blocks, n, pad, pw_len, _mm_set1_epi8((char)shift), &acc16);
    return any_zero16(acc16);
}

// ---- 64-byte vectors: one 128-entry table (vpermi2b, AVX-512 VBMI) ----
//
// table[x] for x < 128 is the digit's value, or 0x80 when x is not a hex digit; bytes >= 128
// are never digits. `acc` ORs every table result and every input: bit 7 set = not hex.

static const uint8_t hex_table[128] __attribute__((aligned(64))) = {
#define X8 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80
    X8, X8, X8, X8, X8, X8,                        // 0x00-0x2f
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9,                  // '0'-'9'
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80,            // 0x3a-0x3f
    0x80, 10, 11, 12, 13, 14, 15, 0x80, X8, X8, X8, // 0x40-0x5f: 'A'-'F'
    0x80, 10, 11, 12, 13, 14, 15, 0x80, X8, X8, X8, // 0x60-0x7f: 'a'-'f'
#undef X8
};

AVX512 INLINE __m512i pair64(__m512i a, __m512i b, __m512i t0, __m512i t1, __m512i *acc) {
    const __m512i weights = _mm512_set1_epi16(0x0110);
    __m512i na = _mm512_permutex2var_epi8(t0, a, t1);
    __m512i nb = _mm512_permutex2var_epi8(t0, b, t1);
    *acc = _mm512_ternarylogic_epi64(*acc, na, a, 0xfe);  // acc | na | a
    *acc = _mm512_ternarylogic_epi64(*acc, nb, b, 0xfe);
    return _mm512_packus_epi16(_mm512_maddubs_epi16(na, weights), _mm512_maddubs_epi16(nb, weights));
}

// d(i) = (c[i] ^ pw[i]) - shift for the 64 bytes at offset o.
AVX512 INLINE __m512i unmasked64(const uint8_t *src, const uint8_t *pad, size_t o, __m512i s) {
    return _mm512_sub_epi8(_mm512_xor_si512(_mm512_loadu_si512((const void *)(src + o)),
                                            _mm512_loadu_si512((const void *)(pad + o))), s);
}

// t for the 64 bytes at offset o + 8, from d at o (`here`) and at o + 64 (`next`, only its
// first 8 bytes used): d(i) ^ d(i - 8), with each d computed once (two loads, not four).
AVX512 INLINE __m512i chained64(__m512i here, __m512i next) {
    return _mm512_xor_si512(_mm512_alignr_epi64(next, here, 1), here);
}

AVX512 int ccbio_chained_avx512(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift) {
    const size_t blocks = n / 16;
    const __m512i s = _mm512_set1_epi8((char)shift);
    const __m512i t0 = _mm512_load_si512((const void *)hex_table);
    const __m512i t1 = _mm512_load_si512((const void *)(hex_table + 64));
    // Lane l byte k is plaintext byte 4k + l.
    uint8_t order[64];
    for (int p = 0; p < 64; p++) order[p] = (uint8_t)(16 * (p % 4) + p / 4);
    const __m512i reorder = _mm512_loadu_si512((const void *)order);
    __m512i acc = _mm512_setzero_si512();
    size_t phase = 0, step4 = 1024 % pw_len, step1 = 256 % pw_len, b = 0;
    for (; b + 4 <= blocks; b += 4) {
        const uint8_t *at = src + 256 * b, *mask = pad + phase;
        // The 8 bytes after the 4 blocks (which the last block's chaining reads) as a vector's first.
        const __m512i last = _mm512_sub_epi8(
            _mm512_castsi128_si512(_mm_xor_si128(_mm_loadl_epi64((const __m128i *)(at + 1024)),
                                                 _mm_loadl_epi64((const __m128i *)(mask + 1024)))),
            s);
        __m512i l[8];
        __m512i d0 = unmasked64(at, mask, 0, s);
        for (int v = 0; v < 8; v++) {
            __m512i d1 = unmasked64(at, mask, 128 * v + 64, s);
            __m512i d2 = v < 7 ? unmasked64(at, mask, 128 * v + 128, s) : last;
            l[v] = pair64(chained64(d0, d1), chained64(d1, d2), t0, t1, &acc);
            d0 = d2;
        }
        __m512i a0 = pair64(l[0], l[1], t0, t1, &acc), a1 = pair64(l[2], l[3], t0, t1, &acc);
        __m512i a2 = pair64(l[4], l[5], t0, t1, &acc), a3 = pair64(l[6], l[7], t0, t1, &acc);
        __m512i b0 = pair64(a0, a1, t0, t1, &acc), b1 = pair64(a2, a3, t0, t1, &acc);
        __m512i plain = _mm512_permutexvar_epi8(reorder, pair64(b0, b1, t0, t1, &acc));
        _mm512_storeu_si512((void *)(out + 16 * b), plain);
        phase = advance(phase, step4, pw_len);
    }
    int bad = _mm512_movepi8_mask(acc) != 0;
    __m128i acc16 = _mm_set1_epi8(-1);
    for (; b < blocks; b++) {
        block16(src + 256 * b, out + 16 * b, pad + phase, _mm_set1_epi8((char)shift), &acc16);
        phase = advance(phase, step1, pw_len);
    }
    tail16(src, out, 16 * blocks, n, pad, pw_len, _mm_set1_epi8((char)shift), &acc16);
    return bad | any_zero16(acc16);
}

#else  // not x86-64: only the Swift kernel exists, and these are never called.

int ccbio_supported(int kernel) { return kernel == CCBIO_SSE2; }

int ccbio_chained_avx2(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift) {
    (void)src, (void)out, (void)n, (void)pad, (void)pw_len, (void)shift;
    return -1;
}

int ccbio_chained_avx512(
    const uint8_t *src, uint8_t *out, size_t n, const uint8_t *pad, size_t pw_len, uint8_t shift) {
    (void)src, (void)out, (void)n, (void)pad, (void)pw_len, (void)shift;
    return -1;
}

#endif
