// Teddy (packed multi-literal candidate search, after BurntSushi/aho-corasick's) and a one-pass
// counter of short terms. Each SIMD function carries its own target attribute and is only called
// after a runtime CPU check, so the package needs no -march flags and runs on any x86-64.
#include "CSearchKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CCSK_X86 1
#else
#define CCSK_X86 0
#endif

int ccsk_teddy_level(void) {
#if CCSK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("bmi"))
        return 4;
    if (__builtin_cpu_supports("avx2")) return 2;
    if (__builtin_cpu_supports("ssse3")) return 1;
#endif
    return 0;
}

// The row path of `ccsk_confirm_long` (AVX-512BW and VL; checked once).
static int ccsk_rows_available(void) {
#if CCSK_X86
    static int have = -1;  // every thread computes the same value: relaxed atomics suffice
    int v = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi");
        __atomic_store_n(&have, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

int ccsk_teddy_preferred(void) {
    const int level = ccsk_teddy_level();
#if CCSK_X86
    // VPERMI2B is three micro-ops on Intel (2.5 cycles a 512-bit lookup on the Sapphire Rapids VM
    // against 1.2 for VPERMB), one on Zen 4, where the 64-entry tables measured 8% slower.
    if (level == 4 && !__builtin_cpu_is("intel")) return 3;
#endif
    return level;
}

int ccsk_pair_level(void) {
#if CCSK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw")) return 3;
    if (__builtin_cpu_supports("avx2")) return 2;
    return 1;
#else
    return 0;
#endif
}

int ccsk_count_short_available(void) { return ccsk_teddy_level() >= 2; }

int ccsk_count_short_best(void) {
#if CCSK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi2") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx2"))
    {
        if (!(__builtin_cpu_supports("gfni") && __builtin_cpu_supports("avx512vbmi"))) return 3;
        return __builtin_cpu_supports("avx512bitalg") ? 5 : 4;
    }
    if (__builtin_cpu_supports("avx2")) return 2;
#endif
    return 0;
}

// A short term's length: its bytes up to the last that is not unused (0xFF in both bytes and
// folds), at least 1.
static inline int short_term_length(const ccsk_short_term *t) {
    int len = 1;
    for (int j = 1; j < 4; j++) {
        if (!(t->bytes[j] == 0xFF && t->folds[j] == 0xFF)) len = j + 1;
    }
    return len;
}

#if CCSK_X86

// One step of 32 (or 16) positions: the AND over the first `len` bytes of the buckets each byte allows.
// `len` is a constant in every caller, so the unused lookups disappear.
#define TEDDY_STEP(VEC, LOADU, OR, AND, SHUF, SRLI, p, q, len, lo, hi, nib, fold, r)                  \
    do {                                                                                             \
        VEC c0 = OR(LOADU((const VEC *)((p) + (q))), fold);                                          \
        r = AND(SHUF(lo[0], AND(c0, nib)), SHUF(hi[0], AND(SRLI(c0, 4), nib)));                      \
        if ((len) > 1) {                                                                             \
            VEC c1 = OR(LOADU((const VEC *)((p) + (q) + 1)), fold);                                  \
            r = AND(r, AND(SHUF(lo[1], AND(c1, nib)), SHUF(hi[1], AND(SRLI(c1, 4), nib))));          \
        }                                                                                            \
        if ((len) > 2) {                                                                             \
            VEC c2 = OR(LOADU((const VEC *)((p) + (q) + 2)), fold);                                  \
            r = AND(r, AND(SHUF(lo[2], AND(c2, nib)), SHUF(hi[2], AND(SRLI(c2, 4), nib))));          \
        }                                                                                            \
        if ((len) > 3) {                                                                             \
            VEC c3 = OR(LOADU((const VEC *)((p) + (q) + 3)), fold);                                  \
            r = AND(r, AND(SHUF(lo[3], AND(c3, nib)), SHUF(hi[3], AND(SRLI(c3, 4), nib))));          \
        }                                                                                            \
    } while (0)

__attribute__((target("avx2"), always_inline)) static inline size_t teddy_avx2_len(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int len) {
    __m256i lo[4], hi[4];
    for (int j = 0; j < 4; j++) {
        lo[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t->low[j]));
        hi[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t->high[j]));
    }
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i fold = _mm256_set1_epi8((char)t->fold);
    const __m256i zero = _mm256_setzero_si256();
    size_t q = *position;
    size_t n = 0;
    const size_t reach = (size_t)len - 1;
    while (q + 32 <= to && q + 32 + reach <= count && n + 32 <= capacity) {
        __m256i r;
        TEDDY_STEP(__m256i, _mm256_loadu_si256, _mm256_or_si256, _mm256_and_si256, _mm256_shuffle_epi8,
                   _mm256_srli_epi16, p, q, len, lo, hi, nib, fold, r);
        uint32_t m = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(r, zero));
        while (m) {
            hits[n++] = q + (size_t)__builtin_ctz(m);
            m &= m - 1;
        }
        q += 32;
    }
    *position = q;
    return n;
}

__attribute__((target("avx2"))) static size_t teddy_avx2(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    switch (t->length) {
    case 1: return teddy_avx2_len(t, p, count, position, to, hits, capacity, 1);
    case 2: return teddy_avx2_len(t, p, count, position, to, hits, capacity, 2);
    case 3: return teddy_avx2_len(t, p, count, position, to, hits, capacity, 3);
    default: return teddy_avx2_len(t, p, count, position, to, hits, capacity, 4);
    }
}

// VBMI Teddy: one VPERMI2B per text byte offset and half of the 16 buckets looks the byte's low 7
// bits up in a 128-entry table, exact for ASCII where the nibble masks of the SSSE3/AVX2 kernels
// are not (letters share their high nibble, 6 or 7, so the high-nibble mask tells almost nothing).
// Up to 5 offsets; with `half` (8 buckets) the second half's lookups are skipped.
// BMI: TZCNT and BLSR keep the hit loop scalar (without them the compiler vectorized its hits,
// then four, into a SIMD trailing-zero count: on the 52 long terms of target 14.5 the kernel took
// 24 ms of CPU over 256 MiB, then 18). Two steps an iteration let one step's lookups run beside
// the other's hits (those 52 terms alone: 64 -> 60 ms of CPU for the whole request; four steps
// gained nothing more).
__attribute__((target("avx512bw,avx512f,avx512vbmi,bmi"), always_inline)) static inline size_t teddy_vbmi_len(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int len, const int folding, const int narrow, const int half) {
    __m512i a0[5], a1[5], b0[5], b1[5];
    for (int j = 0; j < len; j++) {
        a0[j] = _mm512_loadu_si512((const void *)&t->exact[j][0]);
        a1[j] = _mm512_loadu_si512((const void *)&t->exact[j][64]);
        b0[j] = _mm512_loadu_si512((const void *)&t->exact[j][128]);
        b1[j] = _mm512_loadu_si512((const void *)&t->exact[j][192]);
    }
    const __m512i fold = _mm512_set1_epi8((char)t->fold);
    size_t q = *position;
    size_t n = 0;
    const size_t reach = (size_t)len - 1;
    // One lookup of text bytes `c` at offset j for buckets 0-7 (`a`) or 8-15 (`b`): with `narrow`, in
    // entries 64-127 (bytes 0x40-0x7F) by the bytes' low 6 bits. A byte outside 0x40-0x7F then reads
    // the entry of the byte it shares them with (',' that of 'l'): a few more candidates, which the
    // check rejects, where raising every byte to 0x40 first (as the short-term counter must, having
    // no check) cost one more operation per lookup (52 long terms, 256 MiB: Teddy and its check
    // 0.1145 -> 0.108 ms per MiB, best of 20, alternating).
#define TEDDY_VBMI_LOOKUP(x0, x1, j, c) \
    (narrow ? _mm512_permutexvar_epi8((c), x1[j]) : _mm512_permutex2var_epi8(x0[j], (c), x1[j]))
    // One step's candidate mask at `at`.
#define TEDDY_VBMI_MASK(at, m)                                                                         \
    do {                                                                                               \
        __m512i c_ = _mm512_loadu_si512((const void *)(p + (at)));                                     \
        if (folding) c_ = _mm512_or_si512(c_, fold);                                                   \
        __m512i ra_ = TEDDY_VBMI_LOOKUP(a0, a1, 0, c_);                                                \
        __m512i rb_ = half ? ra_ : TEDDY_VBMI_LOOKUP(b0, b1, 0, c_);                                   \
        for (int j = 1; j < len; j++) {                                                                \
            c_ = _mm512_loadu_si512((const void *)(p + (at) + j));                                     \
            if (folding) c_ = _mm512_or_si512(c_, fold);                                               \
            ra_ = _mm512_and_si512(ra_, TEDDY_VBMI_LOOKUP(a0, a1, j, c_));                             \
            if (!half) rb_ = _mm512_and_si512(rb_, TEDDY_VBMI_LOOKUP(b0, b1, j, c_));                  \
        }                                                                                              \
        if (!half) ra_ = _mm512_or_si512(ra_, rb_);                                                    \
        m = (uint64_t)_mm512_test_epi8_mask(ra_, ra_);                                                 \
    } while (0)
    // Branch-free for the first 3 hits (about half the steps of English text have one, at
    // random: a loop's exit mispredicted that often cost more than the lookups); entries past the
    // hits are overwritten later (the room for 64 was checked). 3 rather than 4: the kernel alone
    // (52 long terms of target 14.5, 256 MiB in 1 MiB pieces, alternating in one process) took
    // 0.91-0.93 of the time at 8,160 candidates a MB and 0.96 at 14,500; 2 no less than 4 (a step
    // in 11 then has more and takes the loop). TZCNT's 64 for no bit (not `ctz(m | 1 << 63)`):
    // 0.94-0.95 again (0.96-0.97 at 14,500), and 3 still better than 2 or 4 (1.04-1.12).
#define TEDDY_VBMI_HITS(at, m)                                                                         \
    do {                                                                                               \
        const int k_ = __builtin_popcountll(m);                                                        \
        for (int e = 0; e < 3; e++) {                                                                  \
            uint64_t z = (uint64_t)_tzcnt_u64(m); /* 64 when no hit is left: no OR needed */          \
            __asm__("" : "+r"(z)); /* keeps the three counts scalar (see the target attribute) */      \
            hits[n + e] = (at) + z;                                                                    \
            m &= m - 1;                                                                                \
        }                                                                                              \
        if (k_ > 3) {                                                                                  \
            for (int e = 3; m; e++) {                                                                  \
                hits[n + e] = (at) + (size_t)__builtin_ctzll(m);                                       \
                m &= m - 1;                                                                            \
            }                                                                                          \
        }                                                                                              \
        n += (size_t)k_;                                                                               \
    } while (0)
    // Two steps an iteration: their lookups overlap with the other's hits.
    while (q + 128 <= to && q + 128 + reach <= count && n + 128 <= capacity) {
        uint64_t m1, m2;
        TEDDY_VBMI_MASK(q, m1);
        TEDDY_VBMI_MASK(q + 64, m2);
        TEDDY_VBMI_HITS(q, m1);
        TEDDY_VBMI_HITS(q + 64, m2);
        q += 128;
    }
    while (q + 64 <= to && q + 64 + reach <= count && n + 64 <= capacity) {
        uint64_t m;
        TEDDY_VBMI_MASK(q, m);
        TEDDY_VBMI_HITS(q, m);
        q += 64;
    }
#undef TEDDY_VBMI_LOOKUP
#undef TEDDY_VBMI_MASK
#undef TEDDY_VBMI_HITS
    *position = q;
    return n;
}

__attribute__((target("avx512bw,avx512f,avx512vbmi,bmi"), always_inline)) static inline size_t teddy_vbmi(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int narrow) {
    // Without ignore_case (`fold` 0) the loop has no ORs: `folding` is a constant in each call, as are
    // `len` and `narrow`.
    const int f = t->fold != 0;
#define TEDDY_VBMI_CALL(len, folding, half) \
    teddy_vbmi_len(t, p, count, position, to, hits, capacity, len, folding, narrow, half)
    if (t->length >= 5) {
        if (t->half) return f ? TEDDY_VBMI_CALL(5, 1, 1) : TEDDY_VBMI_CALL(5, 0, 1);
        return f ? TEDDY_VBMI_CALL(5, 1, 0) : TEDDY_VBMI_CALL(5, 0, 0);
    }
    switch (t->length * 2 + f) {
    case 2: return TEDDY_VBMI_CALL(1, 0, 0);
    case 3: return TEDDY_VBMI_CALL(1, 1, 0);
    case 4: return TEDDY_VBMI_CALL(2, 0, 0);
    case 5: return TEDDY_VBMI_CALL(2, 1, 0);
    case 6: return TEDDY_VBMI_CALL(3, 0, 0);
    case 7: return TEDDY_VBMI_CALL(3, 1, 0);
    default: return f ? TEDDY_VBMI_CALL(4, 1, 0) : TEDDY_VBMI_CALL(4, 0, 0);
    }
#undef TEDDY_VBMI_CALL
}

// The 128-entry tables (VPERMI2B) and the 64-entry ones (VPERMB), each compiled with `narrow` fixed.
__attribute__((target("avx512bw,avx512f,avx512vbmi,bmi"))) static size_t teddy_vbmi128(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    return teddy_vbmi(t, p, count, position, to, hits, capacity, 0);
}

__attribute__((target("avx512bw,avx512f,avx512vbmi,bmi"))) static size_t teddy_vbmi64(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    return teddy_vbmi(t, p, count, position, to, hits, capacity, 1);
}

__attribute__((target("ssse3"), always_inline)) static inline size_t teddy_ssse3_len(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int len) {
    __m128i lo[4], hi[4];
    for (int j = 0; j < 4; j++) {
        lo[j] = _mm_loadu_si128((const __m128i *)t->low[j]);
        hi[j] = _mm_loadu_si128((const __m128i *)t->high[j]);
    }
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i fold = _mm_set1_epi8((char)t->fold);
    const __m128i zero = _mm_setzero_si128();
    size_t q = *position;
    size_t n = 0;
    const size_t reach = (size_t)len - 1;
    while (q + 16 <= to && q + 16 + reach <= count && n + 16 <= capacity) {
        __m128i r;
        TEDDY_STEP(__m128i, _mm_loadu_si128, _mm_or_si128, _mm_and_si128, _mm_shuffle_epi8, _mm_srli_epi16, p,
                   q, len, lo, hi, nib, fold, r);
        uint32_t m = 0xFFFFu & ~(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(r, zero));
        while (m) {
            hits[n++] = q + (size_t)__builtin_ctz(m);
            m &= m - 1;
        }
        q += 16;
    }
    *position = q;
    return n;
}

__attribute__((target("ssse3"))) static size_t teddy_ssse3(
    const ccsk_teddy *t, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    switch (t->length) {
    case 1: return teddy_ssse3_len(t, p, count, position, to, hits, capacity, 1);
    case 2: return teddy_ssse3_len(t, p, count, position, to, hits, capacity, 2);
    case 3: return teddy_ssse3_len(t, p, count, position, to, hits, capacity, 3);
    default: return teddy_ssse3_len(t, p, count, position, to, hits, capacity, 4);
    }
}

// One term over `blocks` 32-byte steps from `p` (at most 255: byte lanes count the matches).
// The text stays in L1 while every term makes its pass over it; `len` and `folding` are constants
// in every caller, so each loop has only its compares (a load folded into each).
__attribute__((target("avx2"), always_inline)) static inline int64_t count_term_avx2(
    const uint8_t *p, int blocks, const ccsk_short_term *t, const int len, const int folding) {
    __m256i v[4], f[4];
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_set1_epi8((char)t->bytes[j]);
        f[j] = _mm256_set1_epi8((char)t->folds[j]);
    }
    __m256i acc = _mm256_setzero_si256();
    for (int b = 0; b < blocks; b++, p += 32) {
        __m256i m = _mm256_set1_epi8(-1);
        for (int j = 0; j < len; j++) {
            __m256i l = _mm256_loadu_si256((const __m256i *)(p + j));
            if (folding) l = _mm256_or_si256(l, f[j]);
            m = _mm256_and_si256(m, _mm256_cmpeq_epi8(l, v[j]));
        }
        acc = _mm256_sub_epi8(acc, m);
    }
    __m256i s = _mm256_sad_epu8(acc, _mm256_setzero_si256());
    return _mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) +
           _mm256_extract_epi64(s, 3);
}

// A bordered term: its matches one by one from the step's bit mask, each at or after `*next`
// (an offset from `p`, moved past each match taken and returned relative to the end).
__attribute__((target("avx2"))) static int64_t count_bordered_avx2(
    const uint8_t *p, int blocks, const ccsk_short_term *t, int len, int64_t *next) {
    __m256i v[4], f[4];
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_set1_epi8((char)t->bytes[j]);
        f[j] = _mm256_set1_epi8((char)t->folds[j]);
    }
    int64_t found = 0;
    int64_t allowed = *next;
    for (int b = 0; b < blocks; b++) {
        __m256i m = _mm256_set1_epi8(-1);
        for (int j = 0; j < len; j++) {
            __m256i l = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + b * 32 + j)), f[j]);
            m = _mm256_and_si256(m, _mm256_cmpeq_epi8(l, v[j]));
        }
        uint32_t bits = (uint32_t)_mm256_movemask_epi8(m);
        while (bits) {
            int64_t s = (int64_t)b * 32 + __builtin_ctz(bits);
            if (s >= allowed) {
                found++;
                allowed = s + len;
            }
            bits &= bits - 1;
        }
    }
    *next = allowed - (int64_t)blocks * 32;
    return found;
}

__attribute__((target("avx2"))) static size_t count_short_avx2(
    const uint8_t *p, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next) {
    int kind[64];
    int length[64];
    int64_t rel[64];  // `next`, relative to the current step
    for (size_t i = 0; i < n; i++) {
        int folding = 0;
        length[i] = short_term_length(&terms[i]);
        for (int j = 0; j < length[i]; j++) folding |= terms[i].folds[j] != 0;
        kind[i] = terms[i].bordered ? 0 : length[i] * 2 + folding;
        rel[i] = next[i] - (int64_t)from;
    }
    size_t q = from;
    while (q + 32 <= to && q + 35 <= count) {
        size_t avail = (to - q) / 32;
        size_t loadable = (count - q - 3) / 32;
        int blocks = (int)(avail < loadable ? avail : loadable);
        if (blocks > 255) blocks = 255;
        const uint8_t *c = p + q;
        for (size_t i = 0; i < n; i++) {
            const ccsk_short_term *t = &terms[i];
            switch (kind[i]) {
            case 0: counts[i] += count_bordered_avx2(c, blocks, t, length[i], &rel[i]); break;
            case 2: counts[i] += count_term_avx2(c, blocks, t, 1, 0); break;
            case 3: counts[i] += count_term_avx2(c, blocks, t, 1, 1); break;
            case 4: counts[i] += count_term_avx2(c, blocks, t, 2, 0); break;
            case 5: counts[i] += count_term_avx2(c, blocks, t, 2, 1); break;
            case 6: counts[i] += count_term_avx2(c, blocks, t, 3, 0); break;
            case 7: counts[i] += count_term_avx2(c, blocks, t, 3, 1); break;
            case 8: counts[i] += count_term_avx2(c, blocks, t, 4, 0); break;
            default: counts[i] += count_term_avx2(c, blocks, t, 4, 1); break;
            }
        }
        q += (size_t)blocks * 32;
    }
    for (size_t i = 0; i < n; i++) {
        if (terms[i].bordered) next[i] = rel[i] + (int64_t)q;
    }
    return q;
}

// AVX-512 (BW, VBMI2, VPOPCNTDQ): each 64-byte block is loaded once and compared with every
// distinct (byte, fold) the terms hold, one compare per pair however many terms use it, giving a
// bitmap per pair (a bit per position, 64 to a word). Bitmaps shifted down 1-3 bits (VPSHRDVQ joins
// each word with the next) give byte j of a term starting at each position, once per (pair, j); a
// term is then the AND of its bytes' rows, counted by VPOPCNTQ, 512 positions per instruction.
// On 48 common short terms (256 MiB, one core) 2.2x faster than a pass per term (AVX2); compares
// on loads at each offset instead of shifts measured 1.3x slower. With GFNI (level 4) the bitmaps
// come from the text's bit planes instead of a compare per pair (`bm_classify_planes`).
// Rows are 64-byte aligned (one word more than the blocks would misalign every load).
enum { BM_BLOCKS = 32, BM_STRIDE = BM_BLOCKS + 8, BM_ROWS = 96, BM_PAIRS = 48 };

// One term's rows, words 8v..<8v+8 (lanes off in `lm` are zero).
__attribute__((target("avx512bw,avx512f,avx512vbmi2,avx512vpopcntdq,avx2"), always_inline)) static inline __m512i
bm_term(uint64_t (*rows)[BM_STRIDE], const int *row, int v, __mmask8 lm, const int len) {
    __m512i x = _mm512_maskz_loadu_epi64(lm, &rows[row[0]][v * 8]);
    if (len > 1) x = _mm512_and_si512(x, _mm512_load_si512((const void *)&rows[row[1]][v * 8]));
    if (len > 2) x = _mm512_and_si512(x, _mm512_load_si512((const void *)&rows[row[2]][v * 8]));
    if (len > 3) x = _mm512_and_si512(x, _mm512_load_si512((const void *)&rows[row[3]][v * 8]));
    return x;
}

// Adds to `a` the positions of `blocks` words where all of one term's rows have their bit set.
__attribute__((target("avx512bw,avx512f,avx512vbmi2,avx512vpopcntdq,avx2"), always_inline)) static inline __m512i
bm_count(uint64_t (*rows)[BM_STRIDE], const int *row, int blocks, __m512i a, const int len) {
    int v = 0;
    for (; v * 8 + 8 <= blocks; v++) a = _mm512_add_epi64(a, _mm512_popcnt_epi64(bm_term(rows, row, v, 0xFF, len)));
    if (v * 8 < blocks) {
        const __mmask8 lm = (__mmask8)((1u << (blocks - v * 8)) - 1);
        a = _mm512_add_epi64(a, _mm512_popcnt_epi64(bm_term(rows, row, v, lm, len)));
    }
    return a;
}

// The terms that cannot overlap themselves as a trie over their rows, run over a whole chunk
// (BM_BLOCKS words, 4 vectors) at a time: a node ANDs one row into its parent's product, kept in
// registers for each depth, so terms sharing a prefix (`th`: the, that, they, this, then) load and
// AND it once. A node that ends a term adds the popcount of its product to the term's count. Each
// row is a load (one 512-bit load a cycle on Zen 4); on the 48 short terms of target 14.5 the
// trie has 90 rows against 138 for a product per term (about 6% less time for the counter).
enum { BM_NODE_END = 8 };
typedef struct {
    int16_t op;   // depth (1...4), + BM_NODE_END when the node ends a term
    int16_t row;  // the row ANDed in (-1: none, a term whose rows repeat the previous one's)
    int16_t term;
} bm_node;

// One node: `dst` = `src` AND its row (a node without a row repeats the product `dst` holds), and
// the popcount into the term's count.
#define BM_NODE(dst, src, nd)                                                                           \
    do {                                                                                                \
        if ((nd).row >= 0) {                                                                            \
            const uint64_t *r_ = rows[(nd).row];                                                        \
            dst##0 = _mm512_and_si512(src##0, _mm512_load_si512((const void *)(r_)));                   \
            dst##1 = _mm512_and_si512(src##1, _mm512_load_si512((const void *)(r_ + 8)));               \
            dst##2 = _mm512_and_si512(src##2, _mm512_load_si512((const void *)(r_ + 16)));              \
            dst##3 = _mm512_and_si512(src##3, _mm512_load_si512((const void *)(r_ + 24)));              \
        }                                                                                               \
        if ((nd).op & BM_NODE_END) {                                                                    \
            const __m512i s_ = _mm512_add_epi64(                                                        \
                _mm512_add_epi64(_mm512_popcnt_epi64(dst##0), _mm512_popcnt_epi64(dst##1)),             \
                _mm512_add_epi64(_mm512_popcnt_epi64(dst##2), _mm512_popcnt_epi64(dst##3)));            \
            acc[(nd).term] = _mm512_add_epi64(acc[(nd).term], s_);                                      \
        }                                                                                               \
    } while (0)

__attribute__((target("avx512bw,avx512f,avx512vbmi2,avx512vpopcntdq,avx2"))) static void bm_run_trie(
    uint64_t (*rows)[BM_STRIDE], const bm_node *nodes, int count, __m512i *acc) {
    const __m512i ones = _mm512_set1_epi64(-1);
    const __m512i o0 = ones, o1 = ones, o2 = ones, o3 = ones;
    __m512i a0 = ones, a1 = ones, a2 = ones, a3 = ones, b0 = ones, b1 = ones, b2 = ones, b3 = ones;
    __m512i c0 = ones, c1 = ones, c2 = ones, c3 = ones, d0 = ones, d1 = ones, d2 = ones, d3 = ones;
    for (int k = 0; k < count; k++) {
        const bm_node nd = nodes[k];
        switch (nd.op & 7) {
        case 1: BM_NODE(a, o, nd); break;
        case 2: BM_NODE(b, a, nd); break;
        case 3: BM_NODE(c, b, nd); break;
        default: BM_NODE(d, c, nd); break;
        }
    }
}

// GFNI: the text's 8 bit planes, then each (byte, fold) pair's row from them, for blocks
// 0..`blocks` (and zeros up to the next multiple of 8). GF2P8AFFINEQB with the text bytes as the
// matrix transposes each 8x8 bit square (8 positions x 8 bits; the positions are reversed first, as
// the instruction reads the matrix rows backwards), a VPERMB gathers each plane's 8 bytes into one
// word per block, and an 8x8 transpose of words turns 8 blocks' vectors into the 8 planes of 512
// positions. A pair's row is then a minterm of planes 0-2 (its byte's low 3 bits: one ternary-logic
// op per value, in registers) ANDed with its "high part", the minterm of the planes of bits 3-7
// (those not folded), computed once per distinct high part. 5 shuffles per 64 positions against 16
// for a table lookup and a transpose per 8 pairs (the kernel before this one), one store per row.
// Any byte value works (the lookup took 7 bits). On the 48 short terms of target 14.5 (one core,
// in L2) the kernel went from about 400 to 340 cycles per 512 positions with this and the trie.
typedef struct {
    // Pairs by their low 3 bits: `pair[start[u]..<start[u + 1]]`, each with its high part's slot.
    uint8_t start[9];
    uint8_t pair[BM_PAIRS];
    uint8_t high[BM_PAIRS];
    // Per high part, planes 3-7: all ones where the plane must be 0, zero where it must be 1; a
    // folded plane (`care` bit clear) is skipped.
    uint64_t zeroWhere[BM_PAIRS][5];
    uint8_t care[BM_PAIRS];
    uint8_t key[BM_PAIRS];  // the byte's bits 3-7
    int highs;
} bm_planes_plan;

#define BM_LOW_ROWS(u)                                                                                  \
    do {                                                                                                \
        const __m512i low_ = _mm512_ternarylogic_epi64(plane[2], plane[1], plane[0], 1 << (u));         \
        for (int e = pp->start[u]; e < pp->start[(u) + 1]; e++) {                                       \
            _mm512_store_si512((void *)&rows[pp->pair[e]][gb * 8], _mm512_and_si512(low_, hi[pp->high[e]])); \
        }                                                                                               \
    } while (0)

__attribute__((target("avx512bw,avx512f,avx512vbmi,gfni"))) static void bm_classify_planes(
    const uint8_t *p, size_t q, size_t count, int blocks, const bm_planes_plan *pp, uint64_t (*rows)[BM_STRIDE]) {
    // Positions reversed in each word; byte k of the result from byte (k % 8) * 8 + k / 8 (an 8x8
    // byte transpose); bytes 1 << (k % 8).
    static const uint8_t revIdx[64] = {
        7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 23, 22, 21, 20, 19, 18, 17, 16, 31, 30, 29,
        28, 27, 26, 25, 24, 39, 38, 37, 36, 35, 34, 33, 32, 47, 46, 45, 44, 43, 42, 41, 40, 55, 54, 53, 52,
        51, 50, 49, 48, 63, 62, 61, 60, 59, 58, 57, 56};
    static const uint8_t trIdx[64] = {
        0, 8, 16, 24, 32, 40, 48, 56, 1, 9, 17, 25, 33, 41, 49, 57, 2, 10, 18, 26, 34, 42, 50, 58, 3, 11,
        19, 27, 35, 43, 51, 59, 4, 12, 20, 28, 36, 44, 52, 60, 5, 13, 21, 29, 37, 45, 53, 61, 6, 14, 22, 30,
        38, 46, 54, 62, 7, 15, 23, 31, 39, 47, 55, 63};
    static const uint8_t unit[64] = {
        1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8,
        16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64,
        128, 1, 2, 4, 8, 16, 32, 64, 128};
    const __m512i rev = _mm512_loadu_si512((const void *)revIdx);
    const __m512i tr = _mm512_loadu_si512((const void *)trIdx);
    const __m512i one = _mm512_loadu_si512((const void *)unit);
    const __m512i lo2 = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi2 = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    const __m512i zero = _mm512_setzero_si512();
    __m512i hi[BM_PAIRS];
    for (int gb = 0; gb * 8 <= blocks; gb++) {
        __m512i v[8];
        for (int i = 0; i < 8; i++) {
            const int b = gb * 8 + i;
            __m512i l;
            if (b < blocks) {
                l = _mm512_loadu_si512((const void *)(p + q + (size_t)b * 64));
            } else if (b == blocks) {
                const size_t left = count - (q + (size_t)b * 64);
                const __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
                l = _mm512_maskz_loadu_epi8(m, (const void *)(p + q + (size_t)b * 64));
            } else {
                l = zero;
            }
            v[i] = _mm512_permutexvar_epi8(
                tr, _mm512_gf2p8affine_epi64_epi8(one, _mm512_permutexvar_epi8(rev, l), 0));
        }
        __m512i a[8], c[8], plane[8];
        for (int i = 0; i < 8; i += 2) {
            a[i] = _mm512_unpacklo_epi64(v[i], v[i + 1]);
            a[i + 1] = _mm512_unpackhi_epi64(v[i], v[i + 1]);
        }
        for (int h = 0; h < 8; h += 4) {
            c[h] = _mm512_permutex2var_epi64(a[h], lo2, a[h + 2]);
            c[h + 2] = _mm512_permutex2var_epi64(a[h], hi2, a[h + 2]);
            c[h + 1] = _mm512_permutex2var_epi64(a[h + 1], lo2, a[h + 3]);
            c[h + 3] = _mm512_permutex2var_epi64(a[h + 1], hi2, a[h + 3]);
        }
        for (int j = 0; j < 4; j++) {
            plane[j] = _mm512_shuffle_i64x2(c[j], c[j + 4], 0x44);
            plane[j + 4] = _mm512_shuffle_i64x2(c[j], c[j + 4], 0xEE);
        }
        // acc & (plane == bit): ternary logic 0x60 of (acc, plane, all ones where the bit is 0).
        for (int h = 0; h < pp->highs; h++) {
            __m512i x = _mm512_set1_epi64(-1);
            for (int j = 0; j < 5; j++) {
                if (pp->care[h] & (1u << j))
                    x = _mm512_ternarylogic_epi64(x, plane[3 + j], _mm512_set1_epi64((long long)pp->zeroWhere[h][j]), 0x60);
            }
            hi[h] = x;
        }
        BM_LOW_ROWS(0);
        BM_LOW_ROWS(1);
        BM_LOW_ROWS(2);
        BM_LOW_ROWS(3);
        BM_LOW_ROWS(4);
        BM_LOW_ROWS(5);
        BM_LOW_ROWS(6);
        BM_LOW_ROWS(7);
    }
}

__attribute__((target("avx512bw,avx512f,avx512vbmi2,avx512vpopcntdq,avx2"))) static size_t count_short_avx512(
    const uint8_t *p, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next, int planes) {
    // Rows 0..<pairs: a (byte, fold) pair's bitmap, the plain pairs first, then the folded ones
    // (compared with the text or-ed with 0x20). Then the shifted rows: source row and shift.
    uint8_t pairByte[BM_PAIRS], pairFold[BM_PAIRS];
    int pairOf[64][4], row[64][4], length[64];
    int pairs = 0;
    for (size_t i = 0; i < n; i++) length[i] = short_term_length(&terms[i]);
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < n; i++) {
            for (int j = 0; j < length[i]; j++) {
                const uint8_t byte = terms[i].bytes[j], fold = terms[i].folds[j];
                if ((fold != 0) != f) continue;
                int k = 0;
                while (k < pairs && !(pairByte[k] == byte && pairFold[k] == fold)) k++;
                if (k == pairs) {
                    if (pairs == BM_PAIRS) return count_short_avx2(p, count, from, to, terms, n, counts, next);
                    pairByte[k] = byte;
                    pairFold[k] = fold;
                    pairs++;
                }
                pairOf[i][j] = k;
            }
        }
    }
    int plain = 0;
    while (plain < pairs && pairFold[plain] == 0) plain++;
    // With GFNI (and no fold but 0x20 on a byte that has it), rows come from the text's bit planes
    // (bm_classify_planes); else from a compare per pair and block. `planes` 0 forces the compares.
    int gfni = planes && __builtin_cpu_supports("gfni") && __builtin_cpu_supports("avx512vbmi");
    bm_planes_plan pp;
    pp.highs = 0;
    for (int u = 0, e = 0; u < 8; u++) {
        pp.start[u] = (uint8_t)e;
        for (int k = 0; k < pairs; k++) {
            const uint8_t b = pairByte[k], f = pairFold[k];
            if ((b & 7) != u) continue;
            gfni &= f == 0 || (f == 0x20 && (b & 0x20));
            const uint8_t care = f ? 0x1B : 0x1F;  // planes 3-7; 0x20 folds plane 5
            const int key = b >> 3;
            int h = 0;
            while (h < pp.highs && !(pp.care[h] == care && pp.key[h] == key)) h++;
            if (h == pp.highs) {
                for (int j = 0; j < 5; j++) pp.zeroWhere[h][j] = (key >> j) & 1 ? 0 : ~(uint64_t)0;
                pp.care[h] = care;
                pp.key[h] = (uint8_t)key;
                pp.highs++;
            }
            pp.pair[e] = (uint8_t)k;
            pp.high[e] = (uint8_t)h;
            e++;
        }
        pp.start[u + 1] = (uint8_t)e;
    }
    const int firstShifted = pairs;
    int used = firstShifted;
    int shiftedFrom[BM_ROWS], shiftBy[BM_ROWS];
    for (size_t i = 0; i < n; i++) {
        row[i][0] = pairOf[i][0];
        for (int j = 1; j < length[i]; j++) {
            int r = firstShifted;
            while (r < used && !(shiftedFrom[r] == pairOf[i][j] && shiftBy[r] == j)) r++;
            if (r == used) {
                if (used == BM_ROWS) return count_short_avx2(p, count, from, to, terms, n, counts, next);
                shiftedFrom[r] = pairOf[i][j];
                shiftBy[r] = j;
                used++;
            }
            row[i][j] = r;
        }
    }
    // The trie program of the terms that cannot overlap themselves (`bm_run_trie`): sorted by their
    // rows, a prefix before its extensions, each term adds the nodes below what it shares with the
    // term before it.
    int order[64], sorted = 0;
    for (size_t i = 0; i < n; i++) {
        if (terms[i].bordered) continue;
        int b = sorted++;
        for (; b > 0; b--) {
            const int u = order[b - 1], len = length[i] < length[u] ? length[i] : length[u];
            int c = 0;
            while (c < len && row[i][c] == row[u][c]) c++;
            const int less = c < len ? row[i][c] < row[u][c] : length[i] < length[u];
            if (!less) break;
            order[b] = u;
        }
        order[b] = (int)i;
    }
    bm_node nodes[64 * 4];
    int nodeCount = 0;
    for (int a = 0; a < sorted; a++) {
        const int t = order[a], len = length[t];
        int c = 0;
        if (a > 0) {
            const int u = order[a - 1];
            while (c < len && c < length[u] && row[t][c] == row[u][c]) c++;
        }
        if (c == len) nodes[nodeCount++] = (bm_node){(int16_t)(len | BM_NODE_END), -1, (int16_t)t};
        for (int d = c; d < len; d++) {
            nodes[nodeCount++] = (bm_node){
                (int16_t)((d + 1) | (d + 1 == len ? BM_NODE_END : 0)), (int16_t)row[t][d], (int16_t)t};
        }
    }
    __m512i value[BM_PAIRS], acc[64];
    for (int k = 0; k < pairs; k++) value[k] = _mm512_set1_epi8((char)pairByte[k]);
    for (size_t i = 0; i < n; i++) acc[i] = _mm512_setzero_si512();
    const __m512i caseBit = _mm512_set1_epi8(0x20);
    // A pair's row holds one word more than the blocks: the next block's, where byte j of a term
    // starting near the end of the last block lies.
    uint64_t rows[BM_ROWS][BM_STRIDE] __attribute__((aligned(64)));
    uint64_t words[8];
    size_t q = from;
    while (q + 64 <= to && q + 67 <= count) {
        size_t avail = (to - q) / 64;
        size_t loadable = (count - q - 3) / 64;
        int blocks = (int)(avail < loadable ? avail : loadable);
        if (blocks > BM_BLOCKS) blocks = BM_BLOCKS;
        if (gfni) bm_classify_planes(p, q, count, blocks, &pp, rows);
        for (int b = 0; !gfni && b <= blocks; b++) {
            const uint8_t *c = p + q + (size_t)b * 64;
            __m512i l;
            if (b < blocks) {
                l = _mm512_loadu_si512((const void *)c);
            } else {
                // Only its first 3 bytes matter; the load stops at the end of the text (bytes past
                // it read as 0 and only set bits that no counted position reaches).
                const size_t left = count - (q + (size_t)b * 64);
                const __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
                l = _mm512_maskz_loadu_epi8(m, (const void *)c);
            }
            int k = 0;
            for (; k < plain; k++) rows[k][b] = (uint64_t)_mm512_cmpeq_epi8_mask(l, value[k]);
            const __m512i lf = _mm512_or_si512(l, caseBit);
            for (; k < pairs; k++) rows[k][b] = (uint64_t)_mm512_cmpeq_epi8_mask(lf, value[k]);
        }
        // Words past `blocks` hold stale bits: masked off below.
        const int vectors = (blocks + 7) / 8;
        for (int r = firstShifted; r < used; r++) {
            const uint64_t *src = rows[shiftedFrom[r]];
            const __m512i by = _mm512_set1_epi64(shiftBy[r]);
            for (int v = 0; v < vectors; v++) {
                const __m512i lo = _mm512_load_si512((const void *)(src + v * 8));
                // The next word from two aligned loads: the rows were just stored whole, and a load
                // across two stores would not be forwarded from them.
                const __m512i hi = _mm512_alignr_epi64(_mm512_load_si512((const void *)(src + v * 8 + 8)), lo, 1);
                _mm512_store_si512((void *)&rows[r][v * 8], _mm512_shrdv_epi64(lo, hi, by));
            }
        }
        const int whole = blocks == BM_BLOCKS;
        if (whole) bm_run_trie(rows, nodes, nodeCount, acc);
        for (size_t i = 0; i < n; i++) {
            const int *ri = row[i];
            if (!terms[i].bordered) {
                if (whole) continue;
                switch (length[i]) {
                case 1: acc[i] = bm_count(rows, ri, blocks, acc[i], 1); break;
                case 2: acc[i] = bm_count(rows, ri, blocks, acc[i], 2); break;
                case 3: acc[i] = bm_count(rows, ri, blocks, acc[i], 3); break;
                default: acc[i] = bm_count(rows, ri, blocks, acc[i], 4); break;
                }
                continue;
            }
            // A term that can overlap itself: its matches one by one, each at or after the end of
            // the one before. Most vectors have no two matches closer than the term's length and
            // none before `allowed`: those are counted whole (VPOPCNTQ), only the others bit by bit.
            int64_t allowed = next[i];
            const int len = length[i];
            for (int v = 0; v < vectors; v++) {
                const int lanes = blocks - v * 8 < 8 ? blocks - v * 8 : 8;
                const __mmask8 lm = (__mmask8)((1u << lanes) - 1);
                const __m512i x = bm_term(rows, ri, v, lm, len);
                const __mmask8 nz = _mm512_test_epi64_mask(x, x);
                if (!nz) continue;
                _mm512_storeu_si512((void *)words, x);
                // Each word joined with the next (the last lane with zero: a match in the next
                // vector is checked against `allowed` there); a bit of `close` is a match with
                // another 1-3 positions after it.
                const __m512i after = _mm512_alignr_epi64(_mm512_setzero_si512(), x, 1);
                __m512i close = _mm512_and_si512(x, _mm512_shrdi_epi64(x, after, 1));
                if (len > 2) close = _mm512_ternarylogic_epi64(close, x, _mm512_shrdi_epi64(x, after, 2), 0xF8);
                if (len > 3) close = _mm512_ternarylogic_epi64(close, x, _mm512_shrdi_epi64(x, after, 3), 0xF8);
                const int fw = __builtin_ctz(nz), lw = 31 - __builtin_clz(nz);
                const int64_t first = (int64_t)(q + (size_t)(v * 8 + fw) * 64) + __builtin_ctzll(words[fw]);
                if (first >= allowed && !_mm512_test_epi64_mask(close, close)) {
                    acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(x));
                    allowed = (int64_t)(q + (size_t)(v * 8 + lw) * 64) + 63 - __builtin_clzll(words[lw]) + len;
                    continue;
                }
                for (int w = 0; w < lanes; w++) {
                    uint64_t m = words[w];
                    while (m) {
                        const int64_t s = (int64_t)(q + (size_t)(v * 8 + w) * 64) + __builtin_ctzll(m);
                        if (s >= allowed) {
                            counts[i]++;
                            allowed = s + length[i];
                        }
                        m &= m - 1;
                    }
                }
            }
            next[i] = allowed;
        }
        q += (size_t)blocks * 64;
    }
    for (size_t i = 0; i < n; i++) counts[i] += (int64_t)_mm512_reduce_add_epi64(acc[i]);
    // A last 32-position step, if any: the same `stop` as the AVX2 kernel.
    return count_short_avx2(p, count, q, to, terms, n, counts, next);
}

// Level 5 (AVX-512 VBMI, GFNI, BITALG): the terms in groups of 8, sorted by length, a bit each.
// Per byte offset j a group has a table of 64 bytes: entry b holds the bits of the terms whose
// byte j matches the text byte 0x40 + b. One VPERMB per group and offset looks up 64 positions
// (a text byte outside 0x40-0x7F first raised to 0x40 by one VPMAXSB, '@', which no term may
// match: exact for any text), the lookups ANDed give a byte per position with a bit per term
// matching there, and GF2P8AFFINEQB transposes each 8 positions x 8 terms square so that
// VPOPCNTB counts 8 positions of one term per byte (after a carry-save add of two vectors).
// Nothing is stored and reloaded, the bitmap kernels' cost: on the 48 short terms of target 14.5
// (one core, in cache) 0.136 ms per MiB against 0.24 for level 4, 18 lookups per 64 positions
// where 17.25 is the floor at 8 bits a lookup. Zeroing the outside bytes' lookups by a mask per
// offset instead (a compare into a mask register, masked VPERMB) took 0.166: the clamp is one
// plain ALU operation where the compares competed with the lookups. Terms that match a byte
// outside 0x41-0x7F (digits, punctuation, '@', UTF-8) go to level 4.
enum { SG_GROUPS = 8, SG_PAIRS = 31 };  // a pair of rounds adds at most 8 carries to a byte: 31 fit
typedef struct {
    uint8_t table[SG_GROUPS][4][64] __attribute__((aligned(64)));
    int len[SG_GROUPS];         // the group's longest term
    int bordCount[SG_GROUPS];   // its terms that can overlap themselves: their bits
    int bordBit[SG_GROUPS][8];
    uint8_t periods[SG_GROUPS]; // bit d (1-3): one of its terms can match again d further on
    int term[SG_GROUPS][8];     // the term of each bit, -1 for none
    int groups;
} sg_plan;

// Builds the plan; 0 when a term matches a byte outside 0x41-0x7F (then level 4 counts).
static int sg_build(const ccsk_short_term *terms, size_t n, const int *length, sg_plan *sp) {
    memset(sp, 0, sizeof *sp);
    int order[64];
    for (size_t i = 0; i < n; i++) {  // by length, stable: a group's lookups are its longest term's
        int b = (int)i;
        for (; b > 0 && length[order[b - 1]] > length[i]; b--) order[b] = order[b - 1];
        order[b] = (int)i;
    }
    sp->groups = (int)((n + 7) / 8);
    for (int g = 0; g < SG_GROUPS; g++) {
        for (int t = 0; t < 8; t++) sp->term[g][t] = -1;
    }
    for (size_t idx = 0; idx < n; idx++) {
        const int i = order[idx], g = (int)idx / 8, t = (int)idx % 8;
        sp->term[g][t] = i;
        if (length[i] > sp->len[g]) sp->len[g] = length[i];
        if (!terms[i].bordered) continue;
        sp->bordBit[g][sp->bordCount[g]++] = t;
        // Two matches d < length apart: the term's last length - d bytes are its first ones.
        for (int d = 1; d < length[i]; d++) {
            if (memcmp(terms[i].bytes, terms[i].bytes + d, (size_t)(length[i] - d)) == 0)
                sp->periods[g] |= (uint8_t)(1u << d);
        }
    }
    for (size_t idx = 0; idx < n; idx++) {
        const int i = order[idx], g = (int)idx / 8, t = (int)idx % 8;
        for (int j = 0; j < sp->len[g]; j++) {
            if (j >= length[i]) {  // shorter than the group: matches any byte there
                for (int e = 0; e < 64; e++) sp->table[g][j][e] |= (uint8_t)(1u << t);
                continue;
            }
            // The text bytes x with x | fold == byte: byte's bits outside fold, any of those in both.
            const uint8_t byte = terms[i].bytes[j], fold = terms[i].folds[j];
            if ((byte & fold) != fold) continue;  // no byte matches: the term's entries stay empty
            const uint8_t fixed = (uint8_t)(byte & ~fold), free = fold;
            uint8_t sub = 0;
            do {
                const uint8_t x = (uint8_t)(fixed | sub);
                if (x >> 6 != 1 || x == 0x40) return 0;
                sp->table[g][j][x & 63] |= (uint8_t)(1u << t);
                sub = (uint8_t)((sub - free) & free);  // the next subset of `free`
            } while (sub != 0);
        }
    }
    return 1;
}

#define SG_TARGET "avx512bw,avx512f,avx512vbmi,avx512vbmi2,gfni,avx512bitalg,avx512vpopcntdq,avx2,bmi,popcnt,lzcnt"

// GF2P8AFFINEQB's matrix for an 8x8 bit transpose (8 positions x 8 terms), and the byte order that
// brings byte t of every word together (`sg_sums`).
static const uint8_t sg_unit[64] __attribute__((aligned(64))) = {
    1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8,
    16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64,
    128, 1, 2, 4, 8, 16, 32, 64, 128};
static const uint8_t sg_transpose[64] = {
    0, 8, 16, 24, 32, 40, 48, 56, 1, 9, 17, 25, 33, 41, 49, 57, 2, 10, 18, 26, 34, 42, 50, 58, 3, 11,
    19, 27, 35, 43, 51, 59, 4, 12, 20, 28, 36, 44, 52, 60, 5, 13, 21, 29, 37, 45, 53, 61, 6, 14, 22, 30,
    38, 46, 54, 62, 7, 15, 23, 31, 39, 47, 55, 63};

// One group's lookups at two vectors (`a` and `b`, each loaded at offsets 0-3 and clamped).
__attribute__((target(SG_TARGET), always_inline)) static inline void sg_group(
    const sg_plan *sp, int g, const int len, __m512i a0, __m512i a1, __m512i a2, __m512i a3, __m512i b0, __m512i b1,
    __m512i b2, __m512i b3, __m512i *outA, __m512i *outB) {
    const __m512i t0 = _mm512_load_si512((const void *)sp->table[g][0]);
    __m512i xa = _mm512_permutexvar_epi8(a0, t0), xb = _mm512_permutexvar_epi8(b0, t0);
    if (len == 2) {
        const __m512i t1 = _mm512_load_si512((const void *)sp->table[g][1]);
        xa = _mm512_and_si512(xa, _mm512_permutexvar_epi8(a1, t1));
        xb = _mm512_and_si512(xb, _mm512_permutexvar_epi8(b1, t1));
    }
    if (len > 2) {
        const __m512i t1 = _mm512_load_si512((const void *)sp->table[g][1]);
        const __m512i t2 = _mm512_load_si512((const void *)sp->table[g][2]);
        xa = _mm512_ternarylogic_epi64(xa, _mm512_permutexvar_epi8(a1, t1), _mm512_permutexvar_epi8(a2, t2), 0x80);
        xb = _mm512_ternarylogic_epi64(xb, _mm512_permutexvar_epi8(b1, t1), _mm512_permutexvar_epi8(b2, t2), 0x80);
    }
    if (len > 3) {
        const __m512i t3 = _mm512_load_si512((const void *)sp->table[g][3]);
        xa = _mm512_and_si512(xa, _mm512_permutexvar_epi8(a3, t3));
        xb = _mm512_and_si512(xb, _mm512_permutexvar_epi8(b3, t3));
    }
    *outA = xa;
    *outB = xb;
}

// A group's byte counters summed per term: byte 8w + t of `c` holds term t's count among the
// positions of word w; transposed (`tr`), qword t of the result sums them.
__attribute__((target(SG_TARGET), always_inline)) static inline __m512i sg_sums(__m512i c, __m512i tr) {
    return _mm512_sad_epu8(_mm512_permutexvar_epi8(tr, c), _mm512_setzero_si512());
}

// Adds a group's per-term sums (qword t: term t's) to its terms' counts.
__attribute__((target(SG_TARGET), always_inline)) static inline void sg_flush(
    const sg_plan *sp, int g, __m512i sums, int64_t *counts) {
    uint64_t s[8];
    _mm512_storeu_si512((void *)s, sums);
    for (int t = 0; t < 8; t++) {
        const int i = sp->term[g][t];
        if (i >= 0) counts[i] += (int64_t)s[t];
    }
}

// Carry-save adds of four vectors of term bits: xa + xb and xc + xd into `ones` (carries of
// weight 2), those two carries into `twos`, whose carries (weight 4) are transposed and counted
// into the byte counters `cnt` (8 positions of one term per byte).
__attribute__((target(SG_TARGET), always_inline)) static inline void sg_add4(
    __m512i *ones, __m512i *twos, __m512i *cnt, __m512i xa, __m512i xb, __m512i xc, __m512i xd, __m512i unit) {
    const __m512i c1 = _mm512_ternarylogic_epi64(*ones, xa, xb, 0xE8);
    *ones = _mm512_ternarylogic_epi64(*ones, xa, xb, 0x96);
    const __m512i c2 = _mm512_ternarylogic_epi64(*ones, xc, xd, 0xE8);
    *ones = _mm512_ternarylogic_epi64(*ones, xc, xd, 0x96);
    const __m512i c4 = _mm512_ternarylogic_epi64(*twos, c1, c2, 0xE8);
    *twos = _mm512_ternarylogic_epi64(*twos, c1, c2, 0x96);
    *cnt = _mm512_add_epi8(*cnt, _mm512_popcnt_epi8(_mm512_gf2p8affine_epi64_epi8(unit, c4, 0)));
}

// The groups of one length `L` (`NG` of them from `g0`: a constant in every caller, so their
// counters stay in registers and each lookup is straight-line code) over `rounds` rounds of 128
// positions: with `RAW`, of the text at `raw`, each load raised to 0x40, and each round's 128
// raised bytes stored in `cl` for the other passes; else of `cl`. Two rounds an iteration: a second
// carry-save level (`twos`) halves the transposes and popcounts (VPOPCNTB issues on port 5 only,
// beside every VPERMB), each adding weight-4 carries to `cnt`. Groups with self-overlapping terms
// also OR their close matches into `close` (`SG_CLOSE`), their last vector kept in `last`.
__attribute__((target(SG_TARGET), always_inline)) static inline void sg_pass(
    const sg_plan *sp, const uint8_t *raw, uint8_t *cl, size_t rounds, __m512i *ones, __m512i *twos, __m512i *cnt,
    __m512i *last, __m512i *close, const int g0, const int NG, const int L, const int RAW) {
    const __m512i unit = _mm512_load_si512((const void *)sg_unit);
    const __m512i at40 = _mm512_set1_epi8(0x40);
    __m512i o[8], w[8], c[8];
#pragma clang loop unroll(full)
    for (int k = 0; k < NG; k++) o[k] = ones[g0 + k], w[k] = twos[g0 + k], c[k] = cnt[g0 + k];
    // One accumulator for the pass's groups (each kept in a register, the pass has none to spare:
    // one per group was spilled, its ORs then chained through memory). Their `last` vectors go
    // through memory, read once an iteration.
    __m512i cv = *close;
    // A round's loads at offsets 0 to L - 1 (those past L - 1 are never used).
#define SG_LD(at) (RAW ? _mm512_max_epi8(_mm512_loadu_si512((const void *)(at)), at40) : _mm512_loadu_si512((const void *)(at)))
#define SG_LOADS(x, a0, a1, a2, a3, b0, b1, b2, b3)                                                     \
    const __m512i a0 = SG_LD(x);                                                                        \
    const __m512i b0 = SG_LD((x) + 64);                                                                 \
    const __m512i a1 = L > 1 ? SG_LD((x) + 1) : a0;                                                     \
    const __m512i b1 = L > 1 ? SG_LD((x) + 65) : b0;                                                    \
    const __m512i a2 = L > 2 ? SG_LD((x) + 2) : a0;                                                     \
    const __m512i b2 = L > 2 ? SG_LD((x) + 66) : b0;                                                    \
    const __m512i a3 = L > 3 ? SG_LD((x) + 3) : a0;                                                     \
    const __m512i b3 = L > 3 ? SG_LD((x) + 67) : b0;                                                    \
    if (RAW) {                                                                                          \
        _mm512_store_si512((void *)(cl + ((x) - src)), a0);                                             \
        _mm512_store_si512((void *)(cl + ((x) - src) + 64), b0);                                        \
    }
    // Matches d positions apart, the second in the group's vector `x` (the first in it or in `w`,
    // the 64 positions before), for the distances at which a term of the group can overlap itself:
    // byte p of x ANDed with byte p - d (a funnel shift of each qword and the one before), ORed
    // into `cv` for the block's check. Each pair is seen once, in the block of its second match.
#define SG_CLOSE(w, x)                                                                                  \
    do {                                                                                                \
        const __m512i b_ = _mm512_alignr_epi64(x, w, 7);                                                \
        if (sp->periods[g] & 2) cv = _mm512_ternarylogic_epi64(cv, x, _mm512_shldi_epi64(x, b_, 8), 0xF8);  \
        if (sp->periods[g] & 4) cv = _mm512_ternarylogic_epi64(cv, x, _mm512_shldi_epi64(x, b_, 16), 0xF8); \
        if (sp->periods[g] & 8) cv = _mm512_ternarylogic_epi64(cv, x, _mm512_shldi_epi64(x, b_, 24), 0xF8); \
    } while (0)
    const uint8_t *src = RAW ? raw : cl;
    size_t r = 0;
    for (; r + 2 <= rounds; r += 2) {
        const uint8_t *x = src + r * 128;
        SG_LOADS(x, a0, a1, a2, a3, b0, b1, b2, b3)
        SG_LOADS(x + 128, d0, d1, d2, d3, e0, e1, e2, e3)
#pragma clang loop unroll(full)
        for (int k = 0; k < NG; k++) {
            const int g = g0 + k;
            __m512i xa, xb, xc, xd;
            sg_group(sp, g, L, a0, a1, a2, a3, b0, b1, b2, b3, &xa, &xb);
            sg_group(sp, g, L, d0, d1, d2, d3, e0, e1, e2, e3, &xc, &xd);
            if (sp->bordCount[g]) {
                SG_CLOSE(last[g], xa);
                SG_CLOSE(xa, xb);
                SG_CLOSE(xb, xc);
                SG_CLOSE(xc, xd);
                last[g] = xd;
            }
            sg_add4(&o[k], &w[k], &c[k], xa, xb, xc, xd, unit);
        }
    }
    if (r < rounds) {  // an odd last round, with zeros for the round after it
        const uint8_t *x = src + r * 128;
        SG_LOADS(x, a0, a1, a2, a3, b0, b1, b2, b3)
#pragma clang loop unroll(full)
        for (int k = 0; k < NG; k++) {
            const int g = g0 + k;
            __m512i xa, xb;
            sg_group(sp, g, L, a0, a1, a2, a3, b0, b1, b2, b3, &xa, &xb);
            if (sp->bordCount[g]) {
                SG_CLOSE(last[g], xa);
                SG_CLOSE(xa, xb);
                last[g] = xb;
            }
            sg_add4(&o[k], &w[k], &c[k], xa, xb, _mm512_setzero_si512(), _mm512_setzero_si512(), unit);
        }
    }
#undef SG_LOADS
#undef SG_LD
#undef SG_CLOSE
#pragma clang loop unroll(full)
    for (int k = 0; k < NG; k++) ones[g0 + k] = o[k], twos[g0 + k] = w[k], cnt[g0 + k] = c[k];
    *close = cv;
}

// `sg_pass` for `ng` (1-8) groups of length L, reading the text itself (`raw`) or the block.
typedef void (*sg_pass_fn)(
    const sg_plan *, const uint8_t *, uint8_t *, size_t, __m512i *, __m512i *, __m512i *, __m512i *, __m512i *,
    int, int);
#define SG_PASS(L)                                                                                      \
    __attribute__((target(SG_TARGET))) static void sg_pass_##L(                                         \
        const sg_plan *sp, const uint8_t *raw, uint8_t *cl, size_t rounds,                                \
        __m512i *ones, __m512i *twos, __m512i *cnt, __m512i *last, __m512i *close, int g0, int ng) {    \
        switch (raw ? ng + 8 : ng) {                                                                    \
        SG_CASE(1, 1, L, 0) SG_CASE(2, 2, L, 0) SG_CASE(3, 3, L, 0) SG_CASE(4, 4, L, 0)                            \
        SG_CASE(5, 5, L, 0) SG_CASE(6, 6, L, 0) SG_CASE(7, 7, L, 0) SG_CASE(8, 8, L, 0)                            \
        SG_CASE(9, 1, L, 1) SG_CASE(10, 2, L, 1) SG_CASE(11, 3, L, 1) SG_CASE(12, 4, L, 1)                         \
        SG_CASE(13, 5, L, 1) SG_CASE(14, 6, L, 1) SG_CASE(15, 7, L, 1)                                          \
        default: sg_pass(sp, raw, cl, rounds, ones, twos, cnt, last, close, g0, 8, L, 1); break;  \
        }                                                                                               \
    }
#define SG_CASE(k, N, L, R)                                                                                \
    case k: sg_pass(sp, raw, cl, rounds, ones, twos, cnt, last, close, g0, N, L, R); break;
SG_PASS(1)
SG_PASS(2)
SG_PASS(3)
SG_PASS(4)
#undef SG_CASE
#undef SG_PASS

// A self-overlapping term's matches in [a, b): the groups counted them all; those that start before
// the end of the one counted before them (`end`, moved on) must not count, so `fix` gets the
// difference.
// Each position's 4 bytes are compared at once, as `ccsk_count_short_tail` does (the caller's
// blocks end 3 bytes before the text does).
static void sg_recount(
    const uint8_t *p, size_t a, size_t b, const ccsk_short_term *t, int len, int64_t *fix, int64_t *end) {
    uint32_t value, fold;
    memcpy(&value, t->bytes, 4);
    memcpy(&fold, t->folds, 4);
    int64_t all = 0, counted = 0, e = *end;
    for (size_t s = a; s < b; s++) {
        uint32_t w;
        memcpy(&w, p + s, 4);
        if ((w | fold) != value) continue;
        all++;
        if ((int64_t)s >= e) counted++, e = (int64_t)(s + (size_t)len);
    }
    *fix += counted - all;
    *end = e;
}

// The OR of a vector's bytes.
__attribute__((target(SG_TARGET), always_inline)) static inline uint8_t sg_any(__m512i v) {
    uint64_t r = (uint64_t)_mm512_reduce_or_epi64(v);
    r |= r >> 32, r |= r >> 16, r |= r >> 8;
    return (uint8_t)r;
}

// Counts from `from` while a round of 128 positions fits before `to` (and its loads, 3 bytes past
// it, before `count`); returns where it stopped. The text goes in blocks of up to 2 * SG_PAIRS
// rounds, and each length's groups make a pass over a block (groups are sorted by length: at most
// four passes) with their length fixed in the code: the shortest groups' pass reads the text,
// raising each load to 0x40, and keeps the raised bytes in a buffer in L1 that the other passes
// read as they are (two loads of the text's 64 reused, instead of clamping each load again). The
// shortest pass loads the fewest offsets, so it raises the fewest: with the longest first (4
// raises a position instead of 2 on the 100 terms of target 14.5), the 48 short terms took 3.7%
// more CPU (256 MiB in 1 MiB pieces, alternating in one process) and the CLI on the 1 GiB file,
// one worker, 2.3% more at best of 8 and 4% at the median.
// Against one pass of all groups with a switch on each group's length inside the loop and a
// carry-save level less (and Teddy's lookups raised, its check per term): the 100 terms of target
// 14.5 over the 1 GiB file, one worker, CLI, medians of 10 alternating runs, three times: 901 ->
// 780, 761 -> 697, 746 -> 681 ms of CPU (the fastest runs 520-590 against 535-635: the VM's
// phases move them by up to 50%). Raising the whole block in a loop of its own first measured
// about as fast in a fast phase of the VM and a few % slower in a slow one (the text, just
// copied by read(), is slow to reach on first use; a pass of lookups hides that behind its work).
__attribute__((target(SG_TARGET))) static size_t sg_run(
    const sg_plan *sp, const int *length, const ccsk_short_term *terms, const uint8_t *p, size_t count, size_t from,
    size_t to, int64_t *counts, int64_t *next) {
    const __m512i unit = _mm512_load_si512((const void *)sg_unit);
    const __m512i tr = _mm512_loadu_si512((const void *)sg_transpose);
    // Every text byte outside 0x40-0x7F is raised to 0x40 (a signed max: 0x80-0xFF are negative),
    // whose entries hold only the bits of terms shorter than the offset (`sg_build`).
    const __m512i at40 = _mm512_set1_epi8(0x40);
    uint8_t cl[2 * SG_PAIRS * 128 + 64] __attribute__((aligned(64)));
    const int G = sp->groups;
    // Per self-overlapping term, what its count needs taken off (`sg_recount`) and the end of its
    // last match counted (none may start before it).
    int64_t fix[64], end[64];
    for (int g = 0; g < G; g++) {
        for (int k = 0; k < sp->bordCount[g]; k++) {
            const int i = sp->term[g][sp->bordBit[g][k]];
            fix[i] = 0, end[i] = next[i];
        }
    }
    // Per group its carry-save levels, `fours` (qword t: the sum of term t's weight-4 carries of
    // the blocks so far, `sg_sums`; added to `counts` once at the end, where a flush to `counts`
    // per block cost a store, eight loads and eight adds a group) and its last vector of term
    // bits; per length (pass) the term bits of the block's matches with another of the same bit
    // 1-3 positions before (`sg_pass`).
    __m512i ones[SG_GROUPS], twos[SG_GROUPS], fours[SG_GROUPS], cnt[SG_GROUPS], last[SG_GROUPS], close[5];
    for (int g = 0; g < G; g++) {
        ones[g] = _mm512_setzero_si512(), twos[g] = _mm512_setzero_si512(), fours[g] = _mm512_setzero_si512();
        last[g] = _mm512_setzero_si512();
    }
    static const sg_pass_fn passes[5] = {NULL, sg_pass_1, sg_pass_2, sg_pass_3, sg_pass_4};
    // Groups first[L] ..< first[L + 1] have length L.
    int first[6];
    for (int L = 1; L <= 5; L++) {
        int g = 0;
        while (g < G && sp->len[g] < L) g++;
        first[L] = g;
    }
    size_t q = from;
    while (q + 128 <= to && q + 131 <= count) {
        // The rounds that fit (the loop's condition makes both quotients at least 1).
        size_t rounds = (to - q) / 128 < (count - q - 3) / 128 ? (to - q) / 128 : (count - q - 3) / 128;
        if (rounds > 2 * SG_PAIRS) rounds = 2 * SG_PAIRS;
        // The 3 bytes past the block (a masked load reads none past them); the first pass, the
        // shortest groups', reads the text (`raw`) and stores each round's 128 bytes raised.
        const uint8_t *raw = p + q;
        const __m512i past = _mm512_maskz_loadu_epi8((__mmask64)7, raw + rounds * 128);
        _mm512_store_si512((void *)(cl + rounds * 128), _mm512_max_epi8(past, at40));
        for (int g = 0; g < G; g++) cnt[g] = _mm512_setzero_si512();
        for (int L = 1; L <= 4; L++) {
            if (first[L + 1] == first[L]) continue;
            close[L] = _mm512_setzero_si512();
            passes[L](
                sp, raw, cl, rounds, ones, twos, cnt, last, &close[L], first[L], first[L + 1] - first[L]);
            raw = NULL;
        }
        for (int g = 0; g < G; g++) fours[g] = _mm512_add_epi64(fours[g], sg_sums(cnt[g], tr));
        const size_t b = q + rounds * 128;
        // A self-overlapping term's matches were all counted. Where two lie closer than its length
        // (the second in the block), the block is counted again one match at a time; ordinary text
        // has none such, and then only the block's last positions are looked at, for a match that
        // ends past it. Before, each vector's matches of the term went to a general register and
        // were checked there (a test, a move and a dozen scalar operations per 64 positions): on
        // the 100 terms of target 14.5, one self-overlapping term ("that") cost 14% of the short
        // terms' CPU and 7.4% of the whole count (256 MiB in 1 MiB pieces, alternating in one
        // process, against the same count treating it as not self-overlapping); now the CLI, 1 GiB,
        // 20 runs alternating: 1 worker 494 -> 482 ms of CPU at best, 661 -> 596 at the median;
        // 2 workers 571 -> 514 and 642 -> 588.
        for (int g = 0; g < G; g++) {
            if (!sp->bordCount[g]) continue;
            // The pass's groups share the accumulator: a bit may be another group's (or another
            // distance's), which only costs a count match by match.
            const uint8_t near = sg_any(close[sp->len[g]]);
            for (int k = 0; k < sp->bordCount[g]; k++) {
                const int t = sp->bordBit[g][k], i = sp->term[g][t], len = length[i];
                if (near >> t & 1) {
                    sg_recount(p, q, b, &terms[i], len, &fix[i], &end[i]);
                } else {
                    // Only the first block can start inside a match counted before (the caller's):
                    // any other such match would have made a pair with it. Those starting there do
                    // not count; of the others every one does, and only the last can end past b.
                    int64_t e = end[i], ignored = 0;
                    if (e > (int64_t)q) sg_recount(p, q, e < (int64_t)b ? (size_t)e : b, &terms[i], len, &fix[i], &e);
                    sg_recount(p, b - (size_t)(len - 1), b, &terms[i], len, &ignored, &end[i]);
                }
            }
        }
        q = b;
    }
    for (int g = 0; g < G; g++) {
        const __m512i s1 = sg_sums(_mm512_popcnt_epi8(_mm512_gf2p8affine_epi64_epi8(unit, ones[g], 0)), tr);
        const __m512i s2 = sg_sums(_mm512_popcnt_epi8(_mm512_gf2p8affine_epi64_epi8(unit, twos[g], 0)), tr);
        const __m512i s12 = _mm512_add_epi64(s1, _mm512_slli_epi64(s2, 1));
        sg_flush(sp, g, _mm512_add_epi64(s12, _mm512_slli_epi64(fours[g], 2)), counts);
        for (int k = 0; k < sp->bordCount[g]; k++) {
            const int i = sp->term[g][sp->bordBit[g][k]];
            next[i] = end[i];
            counts[i] += fix[i];
        }
    }
    return q;
}

__attribute__((target(SG_TARGET))) static size_t count_short_groups(
    const uint8_t *p, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next) {
    int length[64];
    for (size_t i = 0; i < n; i++) length[i] = short_term_length(&terms[i]);
    sg_plan sp;
    // A term matching a byte outside 0x40-0x7F: the bitmap kernel.
    if (n == 0 || !sg_build(terms, n, length, &sp)) return count_short_avx512(p, count, from, to, terms, n, counts, next, 1);
    const size_t q = sg_run(&sp, length, terms, p, count, from, to, counts, next);
    // Fewer than 128 positions left (small pieces between reads are common): AVX2, whose set-up
    // costs nothing (the bitmap kernel's takes 2-3 us a call). It stops where the others do.
    return count_short_avx2(p, count, q, to, terms, n, counts, next);
}

// Packed pair: two bytes of one term compared at their distance, a step of positions at a time;
// only positions where both agree are candidates. The main loop takes 4 vectors per iteration
// with one branch on text where candidates are rare, and checks the hit room only when it has
// hits: it returns before an iteration whose hits might not fit (the caller empties `hits` and
// calls again). Single vectors finish what is left.
#define PAIR_EMIT(m, base)                                       \
    do {                                                         \
        while (m) {                                              \
            hits[n++] = (base) + (size_t)__builtin_ctzll(m);     \
            m &= m - 1;                                          \
        }                                                        \
    } while (0)

// The last position + 1 whose step of `width` fits before `to` with its second load before `count`.
static inline size_t pair_limit(size_t count, size_t to, size_t d) {
    if (count < d) return 0;
    return to < count - d ? to : count - d;
}

// `folding` is a constant in every caller: without it (no ignore_case) the loop has no ORs.
__attribute__((target("avx512bw"), always_inline)) static inline size_t pair_avx512_fold(
    const ccsk_pair *pr, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int folding) {
    const __m512i a = _mm512_set1_epi8((char)pr->first);
    const __m512i b = _mm512_set1_epi8((char)pr->second);
    const __m512i fold = _mm512_set1_epi8((char)pr->fold);
    const size_t d = pr->distance;
    const size_t lim = pair_limit(count, to, d);
    size_t q = *position;
    size_t n = 0;
#define PAIR_LOAD512(at) \
    (folding ? _mm512_or_si512(_mm512_loadu_si512((const void *)(p + (at))), fold) \
             : _mm512_loadu_si512((const void *)(p + (at))))
#define PAIR_MASK512(at) \
    _mm512_mask_cmpeq_epi8_mask(_mm512_cmpeq_epi8_mask(PAIR_LOAD512(at), a), PAIR_LOAD512((at) + d), b)
    // Zero bytes of (x ^ a) | (y ^ b) (one XOR and one ternary-logic op per vector), the four
    // vectors' minimum tested at once: fewer ops than a compare per byte, on Zen 4's 256-bit halves.
#define PAIR_DIFF512(at) \
    _mm512_ternarylogic_epi64(PAIR_LOAD512(at), a, _mm512_xor_si512(PAIR_LOAD512((at) + d), b), 0xBE)
    const __m512i zero = _mm512_setzero_si512();
    while (q + 256 <= lim) {
        __m512i w0 = PAIR_DIFF512(q);
        __m512i w1 = PAIR_DIFF512(q + 64);
        __m512i w2 = PAIR_DIFF512(q + 128);
        __m512i w3 = PAIR_DIFF512(q + 192);
        __m512i low = _mm512_min_epu8(_mm512_min_epu8(w0, w1), _mm512_min_epu8(w2, w3));
        if (_mm512_cmpeq_epi8_mask(low, zero)) {
            if (n + 256 > capacity) goto full;
            uint64_t m0 = _mm512_cmpeq_epi8_mask(w0, zero);
            uint64_t m1 = _mm512_cmpeq_epi8_mask(w1, zero);
            uint64_t m2 = _mm512_cmpeq_epi8_mask(w2, zero);
            uint64_t m3 = _mm512_cmpeq_epi8_mask(w3, zero);
            PAIR_EMIT(m0, q);
            PAIR_EMIT(m1, q + 64);
            PAIR_EMIT(m2, q + 128);
            PAIR_EMIT(m3, q + 192);
        }
        q += 256;
    }
#undef PAIR_DIFF512
    while (q + 64 <= lim && n + 64 <= capacity) {
        uint64_t m = PAIR_MASK512(q);
        PAIR_EMIT(m, q);
        q += 64;
    }
#undef PAIR_MASK512
#undef PAIR_LOAD512
full:
    *position = q;
    return n;
}

__attribute__((target("avx512bw"))) static size_t pair_avx512(
    const ccsk_pair *pr, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    if (pr->fold) return pair_avx512_fold(pr, p, count, position, to, hits, capacity, 1);
    return pair_avx512_fold(pr, p, count, position, to, hits, capacity, 0);
}

__attribute__((target("avx2"), always_inline)) static inline size_t pair_avx2_fold(
    const ccsk_pair *pr, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity, const int folding) {
    const __m256i a = _mm256_set1_epi8((char)pr->first);
    const __m256i b = _mm256_set1_epi8((char)pr->second);
    const __m256i fold = _mm256_set1_epi8((char)pr->fold);
    const size_t d = pr->distance;
    const size_t lim = pair_limit(count, to, d);
    size_t q = *position;
    size_t n = 0;
#define PAIR_LOAD256(at) \
    (folding ? _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + (at))), fold) \
             : _mm256_loadu_si256((const __m256i *)(p + (at))))
#define PAIR_AVX2(at) \
    _mm256_and_si256(_mm256_cmpeq_epi8(PAIR_LOAD256(at), a), _mm256_cmpeq_epi8(PAIR_LOAD256((at) + d), b))
#define PAIR_BITS(e) ((uint64_t)(uint32_t)_mm256_movemask_epi8(e))
    while (q + 128 <= lim) {
        __m256i e0 = PAIR_AVX2(q);
        __m256i e1 = PAIR_AVX2(q + 32);
        __m256i e2 = PAIR_AVX2(q + 64);
        __m256i e3 = PAIR_AVX2(q + 96);
        __m256i any = _mm256_or_si256(_mm256_or_si256(e0, e1), _mm256_or_si256(e2, e3));
        if (!_mm256_testz_si256(any, any)) {
            if (n + 128 > capacity) goto full;
            uint64_t m0 = PAIR_BITS(e0) | PAIR_BITS(e1) << 32;
            uint64_t m1 = PAIR_BITS(e2) | PAIR_BITS(e3) << 32;
            PAIR_EMIT(m0, q);
            PAIR_EMIT(m1, q + 64);
        }
        q += 128;
    }
    while (q + 32 <= lim && n + 32 <= capacity) {
        uint64_t m = PAIR_BITS(PAIR_AVX2(q));
        PAIR_EMIT(m, q);
        q += 32;
    }
#undef PAIR_BITS
#undef PAIR_AVX2
#undef PAIR_LOAD256
full:
    *position = q;
    return n;
}

__attribute__((target("avx2"))) static size_t pair_avx2(
    const ccsk_pair *pr, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    if (pr->fold) return pair_avx2_fold(pr, p, count, position, to, hits, capacity, 1);
    return pair_avx2_fold(pr, p, count, position, to, hits, capacity, 0);
}

// SSE2 is part of x86-64: no target attribute, no CPU check.
static size_t pair_sse2(
    const ccsk_pair *pr, const uint8_t *p, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
    const __m128i a = _mm_set1_epi8((char)pr->first);
    const __m128i b = _mm_set1_epi8((char)pr->second);
    const __m128i fold = _mm_set1_epi8((char)pr->fold);
    const size_t d = pr->distance;
    const size_t lim = pair_limit(count, to, d);
    size_t q = *position;
    size_t n = 0;
#define PAIR_SSE2(at)                                                                                  \
    _mm_and_si128(_mm_cmpeq_epi8(_mm_or_si128(_mm_loadu_si128((const __m128i *)(p + (at))), fold), a), \
                  _mm_cmpeq_epi8(_mm_or_si128(_mm_loadu_si128((const __m128i *)(p + (at) + d)), fold), b))
    while (q + 64 <= lim) {
        __m128i e0 = PAIR_SSE2(q);
        __m128i e1 = PAIR_SSE2(q + 16);
        __m128i e2 = PAIR_SSE2(q + 32);
        __m128i e3 = PAIR_SSE2(q + 48);
        __m128i any = _mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3));
        if (_mm_movemask_epi8(any)) {
            if (n + 64 > capacity) goto full;
            uint64_t m = (uint64_t)(uint32_t)_mm_movemask_epi8(e0) | (uint64_t)(uint32_t)_mm_movemask_epi8(e1) << 16 |
                         (uint64_t)(uint32_t)_mm_movemask_epi8(e2) << 32 |
                         (uint64_t)(uint32_t)_mm_movemask_epi8(e3) << 48;
            PAIR_EMIT(m, q);
        }
        q += 64;
    }
    while (q + 16 <= lim && n + 16 <= capacity) {
        uint64_t m = (uint32_t)_mm_movemask_epi8(PAIR_SSE2(q));
        PAIR_EMIT(m, q);
        q += 16;
    }
#undef PAIR_SSE2
full:
    *position = q;
    return n;
}

#undef PAIR_EMIT

#endif

size_t ccsk_teddy_scan(
    const ccsk_teddy *t, const uint8_t *text, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity) {
#if CCSK_X86
    // No AVX-512 Teddy: 64 positions per step measured no faster than AVX2 on this Zen 4 (77 ms
    // either way over 256 MiB with the 52 long terms of target 14.5; its 512-bit shuffles run as
    // two 256-bit halves).
    int level = ccsk_teddy_level();  // cheap: reads what __builtin_cpu_init found
    if (t->level < level) level = t->level;
    if (level == 4 && t->narrow) return teddy_vbmi64(t, text, count, position, to, hits, capacity);
    if (level >= 3) return teddy_vbmi128(t, text, count, position, to, hits, capacity);
    if (level == 2) return teddy_avx2(t, text, count, position, to, hits, capacity);
    if (level == 1) return teddy_ssse3(t, text, count, position, to, hits, capacity);
#endif
    (void)t, (void)text, (void)count, (void)position, (void)to, (void)hits, (void)capacity;
    return 0;
}

size_t ccsk_count_short_level(
    int level, const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next) {
#if CCSK_X86
    if (n <= 64 && level > ccsk_count_short_best()) level = ccsk_count_short_best();
    if (n <= 64 && level >= 5) return count_short_groups(text, count, from, to, terms, n, counts, next);
    if (n <= 64 && level >= 3) return count_short_avx512(text, count, from, to, terms, n, counts, next, level >= 4);
    if (n <= 64 && level == 2) return count_short_avx2(text, count, from, to, terms, n, counts, next);
#endif
    (void)level, (void)text, (void)count, (void)to, (void)terms, (void)n, (void)counts, (void)next;
    return from;
}

void ccsk_count_short_tail(
    const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next) {
    // Each term as one 32-bit compare of the 4 bytes at a position: (text | folds) == bytes, the
    // unused bytes' 0xFF making any byte equal.
    uint32_t value[64], fold[64];
    size_t len[64];
    if (n > 64) n = 64;
    for (size_t i = 0; i < n; i++) {
        memcpy(&value[i], terms[i].bytes, 4);
        memcpy(&fold[i], terms[i].folds, 4);
        len[i] = (size_t)short_term_length(&terms[i]);  // as the vector kernels take it
    }
    for (size_t q = from; q < to && q < count; q++) {
        // Near the end, the bytes past it stay 0xFF; the length check decides there.
        uint32_t w = 0xFFFFFFFFu;
        memcpy(&w, text + q, count - q < 4 ? count - q : 4);
        for (size_t i = 0; i < n; i++) {
            if ((w | fold[i]) != value[i] || q + len[i] > count) continue;
            if (terms[i].bordered) {
                if ((int64_t)q < next[i]) continue;
                next[i] = (int64_t)(q + len[i]);
            }
            counts[i]++;
        }
    }
}

size_t ccsk_count_short(
    const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next) {
    static int best = -1;  // every thread computes the same value: relaxed atomics suffice
    int level = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (level < 0) {
        level = ccsk_count_short_best();
        __atomic_store_n(&best, level, __ATOMIC_RELAXED);
    }
    return ccsk_count_short_level(level, text, count, from, to, terms, n, counts, next);
}

size_t ccsk_pair_scan(
    const ccsk_pair *pair, int level, const uint8_t *text, size_t count, size_t *position, size_t to,
    size_t *hits, size_t capacity) {
#if CCSK_X86
    const int have = ccsk_pair_level();
    if (level > have) level = have;
    if (level >= 3) return pair_avx512(pair, text, count, position, to, hits, capacity);
    if (level == 2) return pair_avx2(pair, text, count, position, to, hits, capacity);
    if (level == 1) return pair_sse2(pair, text, count, position, to, hits, capacity);
#endif
    (void)pair, (void)level, (void)text, (void)count, (void)position, (void)to, (void)hits, (void)capacity;
    return 0;
}

// One candidate at `s` against one term: counted when it matches and may start there.
__attribute__((always_inline)) static inline void confirm_one(
    const ccsk_long_term *c, const uint8_t *text, size_t count, size_t s, intptr_t base, intptr_t limit,
    intptr_t *counts, intptr_t *next, intptr_t *first) {
    const size_t len = (size_t)c->length;
    if (__builtin_expect(count - s >= 16, 1)) {
        uint64_t a, b, pa, pb, ma, mb;
        memcpy(&a, text + s, 8);
        memcpy(&b, text + s + 8, 8);
        memcpy(&pa, c->bytes, 8);
        memcpy(&pb, c->bytes + 8, 8);
        memcpy(&ma, c->mask, 8);
        memcpy(&mb, c->mask + 8, 8);
        if (((a ^ pa) & ma) | ((b ^ pb) & mb)) return;
    } else if (len > count - s || memcmp(text + s, c->bytes, len) != 0) {
        return;
    }
    const intptr_t at = base + (intptr_t)s, t = c->term;
    if (at < next[t] || at >= limit) return;
    next[t] = at + (intptr_t)len;
    if (counts[t] == 0) first[t] = at;
    counts[t] += 1;
}

// A slot's terms after its first (slots of several terms are rare: see TeddyPrefilter), out of
// line so that the loop below keeps its values in registers (with this loop inside it, the loop's
// index and pointers went to the stack and back every candidate: 4.5 -> 3.8 ns a candidate).
__attribute__((noinline)) static void confirm_rest(
    const ccsk_long_term *c, const ccsk_long_term *end, const uint8_t *text, size_t count, size_t s,
    intptr_t base, intptr_t limit, intptr_t *counts, intptr_t *next, intptr_t *first) {
    for (; c < end; c++) confirm_one(c, text, count, s, base, limit, counts, next, first);
}

// Confirming Teddy's candidates for terms of up to 16 bytes: per hit, the terms hashed on its first
// `key` bytes (about one), each compared under its mask with two 8-byte loads; most candidates on
// English text are real matches, so this is the per-match cost of counting them. Compiled per key
// length (3 or 4) so that the hash is straight-line code.
__attribute__((always_inline)) static inline void confirm_long_key(
    const ccsk_long_table *table, const uint8_t *text, size_t count, const size_t *hits, size_t n, intptr_t base,
    intptr_t limit, intptr_t *counts, intptr_t *next, intptr_t *first, const int32_t key) {
    const uint32_t *start = table->start;
    const ccsk_long_term *terms = table->terms;
    const int32_t bits = table->bits;
    for (size_t i = 0; i < n; i++) {
        const size_t s = hits[i];
        const uint32_t h = ccsk_long_hash(text + s, key, bits);
        uint32_t slot[2];  // start[h] and start[h + 1], one load
        memcpy(slot, start + h, 8);
        if (slot[0] == slot[1]) continue;
        confirm_one(&terms[slot[0]], text, count, s, base, limit, counts, next, first);
        if (__builtin_expect(slot[1] - slot[0] > 1, 0)) {
            confirm_rest(&terms[slot[0] + 1], &terms[slot[1]], text, count, s, base, limit, counts, next, first);
        }
    }
}

// The row path (see `ccsk_long_table.row`): per candidate a hash, the slot's row, one masked 16-byte
// compare, and a byte lane per row counting its matches (255 candidates at most between flushes),
// no branch but for the rare slots of several or self-overlapping terms and the text's last 15
// bytes: no per-term counter in memory (whose increments chain through store forwarding when one
// term matches again and again), no resume position or first match to keep. Against the general
// path, the 52 long terms of target 14.5 (256 MiB, best of 9, alternating): Teddy and the check
// 0.1754 -> 0.1658 and 0.1683 -> 0.1627 ms per MiB.
__attribute__((target("avx512bw,avx512f,avx512vl,bmi"))) static void confirm_rows(
    const ccsk_long_table *table, const uint8_t *text, size_t count, const size_t *hits, size_t n, intptr_t base,
    intptr_t lo, intptr_t limit, intptr_t *counts, intptr_t *next, intptr_t *first) {
    // Row r: a 1 in byte r; row 64: none.
    static const uint8_t unit[65][64] __attribute__((aligned(64))) = {
#define U(r) [r][r] = 1
        U(0),  U(1),  U(2),  U(3),  U(4),  U(5),  U(6),  U(7),  U(8),  U(9),  U(10), U(11), U(12),
        U(13), U(14), U(15), U(16), U(17), U(18), U(19), U(20), U(21), U(22), U(23), U(24), U(25),
        U(26), U(27), U(28), U(29), U(30), U(31), U(32), U(33), U(34), U(35), U(36), U(37), U(38),
        U(39), U(40), U(41), U(42), U(43), U(44), U(45), U(46), U(47), U(48), U(49), U(50), U(51),
        U(52), U(53), U(54), U(55), U(56), U(57), U(58), U(59), U(60), U(61), U(62), U(63),
#undef U
    };
    const ccsk_long_term *terms = table->terms;
    const uint32_t *start = table->start;
    const uint8_t *rowOf = table->row;
    const size_t rows = (size_t)table->rows;
    const int32_t bits = table->bits;
    // Positions whose matches count: lo <= base + s < limit, as offsets from `text`.
    const intptr_t low = lo - base, high = limit - base;
    for (size_t i0 = 0; i0 < n; i0 += 255) {
        const size_t i1 = n - i0 < 255 ? n : i0 + 255;
        __m512i lanes = _mm512_setzero_si512();
        // The hits are ascending: those before `low`, and those from `high` or in the text's last 15
        // bytes, are at the ends; the ones between need neither check (a batch is all of them but
        // near a range's edges).
        size_t a = i0, b = i1;
        while (a < b && (intptr_t)hits[a] < low) a++;
        while (b > a && ((intptr_t)hits[b - 1] >= high || count - hits[b - 1] < 16)) b--;
        // One candidate; `checked`: it may lie outside [low, high) or in the text's last 15 bytes.
#define CONFIRM_ROW(i, checked)                                                                        \
    do {                                                                                               \
        const size_t s = hits[i];                                                                      \
        const uint32_t h = ccsk_long_hash(text + s, 4, bits);                                          \
        const size_t r = rowOf[h];                                                                     \
        if (__builtin_expect(r == 0xFE, 0) || ((checked) && count - s < 16)) {                         \
            confirm_rest(&terms[start[h]], &terms[start[h + 1]], text, count, s, base, limit, counts, next, first); \
        } else {                                                                                       \
            /* r == rows (an empty slot) compares with the spare entry, whose lane is never read. */   \
            const __m128i d = _mm_xor_si128(                                                           \
                _mm_loadu_si128((const __m128i *)(text + s)), _mm_loadu_si128((const __m128i *)terms[r].bytes)); \
            int hit = _mm_testz_si128(d, _mm_loadu_si128((const __m128i *)terms[r].mask));             \
            if (checked) hit &= ((intptr_t)s >= low) & ((intptr_t)s < high);                           \
            lanes = _mm512_add_epi8(lanes, _mm512_load_si512((const void *)unit[hit ? r : 64]));       \
        }                                                                                              \
    } while (0)
        for (size_t i = i0; i < a; i++) CONFIRM_ROW(i, 1);
        for (size_t i = a; i < b; i++) CONFIRM_ROW(i, 0);
        for (size_t i = b; i < i1; i++) CONFIRM_ROW(i, 1);
#undef CONFIRM_ROW
        uint8_t sums[64];
        _mm512_storeu_si512((void *)sums, lanes);
        for (size_t r = 0; r < rows; r++) counts[terms[r].term] += sums[r];
    }
}

void ccsk_confirm_long(
    const ccsk_long_table *table, const uint8_t *text, size_t count, const size_t *hits, size_t n, intptr_t base,
    intptr_t lo, intptr_t limit, intptr_t *counts, intptr_t *next, intptr_t *first) {
#if CCSK_X86
    if (table->row != NULL && table->key == 4 && table->rows <= 64 && ccsk_rows_available()) {
        confirm_rows(table, text, count, hits, n, base, lo, limit, counts, next, first);
        return;
    }
#endif
    (void)lo;
    if (table->key >= 4) {
        confirm_long_key(table, text, count, hits, n, base, limit, counts, next, first, 4);
    } else {
        confirm_long_key(table, text, count, hits, n, base, limit, counts, next, first, 3);
    }
}
