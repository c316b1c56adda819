// X25519 of one scalar with 8 points in the 8 lanes of AVX-512 registers (one lane per point),
// multiplying with IFMA (vpmadd52luq / vpmadd52huq).
//
// Field elements of GF(p), p = 2^255 - 19: 5 limbs in radix 2^51, each limb one __m512i (lane i =
// point i), stored in 64-bit slots. IFMA multiplies only the low 52 bits of its inputs, so every
// multiplication input must have all limbs < 2^52; radix 2^51 leaves one bit of headroom, which
// lets a single parallel carry pass bring any limb back under 2^52 (no sequential chain).
//
// Bounds (B = 2^51 + 2^16, "carried" form, all limbs < B < 2^52):
// - carry(): input limbs < 2^62 -> output limbs l_i < 2^51 + 2^11 (i > 0), l_0 < 2^51 + 19*2^11
//   < 2^51 + 2^16 = B. Every mul/sqr/mul_small input is carried.
// - mul/sqr of carried inputs: a_i*b_j < B^2 < 2^103, so lo < 2^52 and hi < 2^51. Column k
//   (weight 2^(51k)) is C_k = L_k + 2*H_k (a "hi" half has weight 2^52 = 2*2^51): at most 5 lo and
//   5 hi terms, C_k < 5*2^52 + 10*2^51 = 10*2^52. 2^255 = 19 mod p folds columns 5..9 into 0..4:
//   R_k = C_k + 19*C_(k+5) < 20*10*2^52 < 2^60. Then carry() -> carried.
// - add(a, b) of carried: < 2*B < 2^53 -> carry() -> carried.
// - sub(a, b) = a + 2p - b: 2p's limbs are 2^52 - 38 and 2^52 - 2, both > B, so no limb goes
//   negative; result < B + 2^52 < 2^53 -> carry() -> carried.
// - mul_small(a, c < 2^17) + d: lo < 2^52, hi < 2^17, sum < 2^52 + 2^19 + B < 2^54 -> carried.
// The final encoding carries sequentially (per lane, scalar code) and subtracts p when the value
// is >= p, without branches.
//
// Constant time: the ladder's swap bit is the same in every lane (one scalar) and is applied with
// masks; no branch or memory index depends on the scalar or the points.

#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE  // explicit_bzero
#endif
#include "CX25519Lanes.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define CX25519_X86 1
#else
#define CX25519_X86 0
#endif

// Zeroes memory in a way the optimiser keeps.
static void cx_wipe(void *p, size_t n) {
#if defined(__GLIBC__)
    explicit_bzero(p, n);
#else
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
#endif
}

#if CX25519_X86

int ccx25519_lanes_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    // OSXSAVE (bit 27) and AVX (28), then XCR0: SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM all saved.
    if ((c & (1u << 27)) == 0 || (c & (1u << 28)) == 0) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 0xE6u) != 0xE6u) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    // EBX bit 16 = AVX512F, bit 21 = AVX512IFMA.
    return (b & (1u << 16)) && (b & (1u << 21)) ? 1 : 0;
}

#define CX_TARGET __attribute__((target("avx512f,avx512ifma")))
#define CX_INLINE CX_TARGET __attribute__((always_inline)) static inline

typedef struct {
    __m512i v[5];
} fe8;

CX_INLINE __m512i mask51(void) { return _mm512_set1_epi64((1LL << 51) - 1); }

// x * 19 = x + 2x + 16x (no vpmullq: only AVX512F and IFMA are required).
CX_INLINE __m512i times19(__m512i x) {
    return _mm512_add_epi64(_mm512_add_epi64(x, _mm512_slli_epi64(x, 1)), _mm512_slli_epi64(x, 4));
}

// One parallel carry pass: limbs < 2^62 in, carried form (limbs < B) out. See the bounds above.
CX_INLINE void carry(fe8 *r) {
    const __m512i m = mask51();
    __m512i c0 = _mm512_srli_epi64(r->v[0], 51), c1 = _mm512_srli_epi64(r->v[1], 51);
    __m512i c2 = _mm512_srli_epi64(r->v[2], 51), c3 = _mm512_srli_epi64(r->v[3], 51);
    __m512i c4 = _mm512_srli_epi64(r->v[4], 51);
    r->v[0] = _mm512_add_epi64(_mm512_and_si512(r->v[0], m), times19(c4));
    r->v[1] = _mm512_add_epi64(_mm512_and_si512(r->v[1], m), c0);
    r->v[2] = _mm512_add_epi64(_mm512_and_si512(r->v[2], m), c1);
    r->v[3] = _mm512_add_epi64(_mm512_and_si512(r->v[3], m), c2);
    r->v[4] = _mm512_add_epi64(_mm512_and_si512(r->v[4], m), c3);
}

CX_INLINE fe8 fe_add(const fe8 *a, const fe8 *b) {
    fe8 r;
    for (int i = 0; i < 5; i++) r.v[i] = _mm512_add_epi64(a->v[i], b->v[i]);
    carry(&r);
    return r;
}

// a - b + 2p, carried.
CX_INLINE fe8 fe_sub(const fe8 *a, const fe8 *b) {
    const __m512i p0 = _mm512_set1_epi64((1LL << 52) - 38), pi = _mm512_set1_epi64((1LL << 52) - 2);
    fe8 r;
    r.v[0] = _mm512_sub_epi64(_mm512_add_epi64(a->v[0], p0), b->v[0]);
    for (int i = 1; i < 5; i++) r.v[i] = _mm512_sub_epi64(_mm512_add_epi64(a->v[i], pi), b->v[i]);
    carry(&r);
    return r;
}

#define LO(acc, x, y) acc = _mm512_madd52lo_epu64(acc, x, y)
#define HI(acc, x, y) acc = _mm512_madd52hi_epu64(acc, x, y)

// Columns L (lo halves, weight 2^(51k)) and H (hi halves, at the column above) -> reduced, carried.
CX_INLINE fe8 fold(__m512i L[10], __m512i H[10]) {
    __m512i C[10];
    for (int k = 0; k < 10; k++) C[k] = _mm512_add_epi64(L[k], _mm512_slli_epi64(H[k], 1));
    fe8 r;
    for (int k = 0; k < 5; k++) r.v[k] = _mm512_add_epi64(C[k], times19(C[k + 5]));
    carry(&r);
    return r;
}

CX_INLINE fe8 fe_mul(const fe8 *a, const fe8 *b) {
    const __m512i z = _mm512_setzero_si512();
    __m512i L[10], H[10];
    for (int k = 0; k < 10; k++) L[k] = H[k] = z;
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 5; j++) {
            LO(L[i + j], a->v[i], b->v[j]);
            HI(H[i + j + 1], a->v[i], b->v[j]);
        }
    }
    return fold(L, H);
}

CX_INLINE fe8 fe_sqr(const fe8 *a) {
    const __m512i z = _mm512_setzero_si512();
    __m512i L[10], H[10];
    for (int k = 0; k < 10; k++) L[k] = H[k] = z;
    // Cross products once, doubled below (a_i*a_j twice: still at most 5 lo and 5 hi terms per
    // column counted with multiplicity, so the mul bounds hold).
    for (int i = 0; i < 5; i++) {
        for (int j = i + 1; j < 5; j++) {
            LO(L[i + j], a->v[i], a->v[j]);
            HI(H[i + j + 1], a->v[i], a->v[j]);
        }
    }
    for (int k = 0; k < 10; k++) {
        L[k] = _mm512_slli_epi64(L[k], 1);
        H[k] = _mm512_slli_epi64(H[k], 1);
    }
    for (int i = 0; i < 5; i++) {
        LO(L[2 * i], a->v[i], a->v[i]);
        HI(H[2 * i + 1], a->v[i], a->v[i]);
    }
    return fold(L, H);
}

// a * c + d for a small constant c < 2^17, carried (a, d carried).
CX_INLINE fe8 fe_mul_small_add(const fe8 *a, long long c, const fe8 *d) {
    const __m512i cc = _mm512_set1_epi64(c), z = _mm512_setzero_si512();
    __m512i lo[5], hi[5];
    for (int i = 0; i < 5; i++) {
        lo[i] = _mm512_madd52lo_epu64(d->v[i], a->v[i], cc);
        hi[i] = _mm512_slli_epi64(_mm512_madd52hi_epu64(z, a->v[i], cc), 1);
    }
    fe8 r;
    r.v[0] = _mm512_add_epi64(lo[0], times19(hi[4]));
    for (int i = 1; i < 5; i++) r.v[i] = _mm512_add_epi64(lo[i], hi[i - 1]);
    carry(&r);
    return r;
}

CX_INLINE fe8 fe_sqr_n(fe8 a, int n) {
    for (int i = 0; i < n; i++) a = fe_sqr(&a);
    return a;
}

// z^(p-2) (ref10's addition chain: 254 squarings, 11 multiplications).
CX_INLINE fe8 fe_invert(const fe8 *z) {
    fe8 z2 = fe_sqr(z);
    fe8 t = fe_sqr_n(z2, 2);
    fe8 z9 = fe_mul(&t, z);
    fe8 z11 = fe_mul(&z9, &z2);
    t = fe_sqr(&z11);
    fe8 z2_5_0 = fe_mul(&t, &z9);
    t = fe_sqr_n(z2_5_0, 5);
    fe8 z2_10_0 = fe_mul(&t, &z2_5_0);
    t = fe_sqr_n(z2_10_0, 10);
    fe8 z2_20_0 = fe_mul(&t, &z2_10_0);
    t = fe_sqr_n(z2_20_0, 20);
    t = fe_mul(&t, &z2_20_0);
    t = fe_sqr_n(t, 10);
    fe8 z2_50_0 = fe_mul(&t, &z2_10_0);
    t = fe_sqr_n(z2_50_0, 50);
    fe8 z2_100_0 = fe_mul(&t, &z2_50_0);
    t = fe_sqr_n(z2_100_0, 100);
    t = fe_mul(&t, &z2_100_0);
    t = fe_sqr_n(t, 50);
    t = fe_mul(&t, &z2_50_0);
    t = fe_sqr_n(t, 5);
    return fe_mul(&t, &z11);
}

CX_INLINE void cswap(fe8 *a, fe8 *b, __m512i mask) {
    for (int i = 0; i < 5; i++) {
        __m512i t = _mm512_and_si512(mask, _mm512_xor_si512(a->v[i], b->v[i]));
        a->v[i] = _mm512_xor_si512(a->v[i], t);
        b->v[i] = _mm512_xor_si512(b->v[i], t);
    }
}

typedef struct {
    uint64_t limbs[5][8];   // the points' u, then the result x2/z2, limb-major
    uint64_t result[5][8];  // x2 * z2^(p-2), limb-major
    uint8_t k[32];          // the clamped scalar
} cx_state;

// The ladder and the inversion over the 8 lanes; everything it keeps ends in *s.
CX_TARGET __attribute__((noinline)) static void ladder8(cx_state *s) {
    fe8 x1, x2, z2, x3, z3;
    for (int i = 0; i < 5; i++) {
        x1.v[i] = _mm512_loadu_si512((const void *)s->limbs[i]);
        x2.v[i] = z2.v[i] = z3.v[i] = _mm512_setzero_si512();
    }
    x2.v[0] = z3.v[0] = _mm512_set1_epi64(1);
    x3 = x1;
    uint64_t swap = 0;
    for (int t = 254; t >= 0; t--) {
        uint64_t bit = (s->k[t >> 3] >> (t & 7)) & 1;
        swap ^= bit;
        const __m512i mask = _mm512_set1_epi64((long long)(0 - swap));
        cswap(&x2, &x3, mask);
        cswap(&z2, &z3, mask);
        swap = bit;
        fe8 A = fe_add(&x2, &z2), B = fe_sub(&x2, &z2);
        fe8 C = fe_add(&x3, &z3), D = fe_sub(&x3, &z3);
        fe8 AA = fe_sqr(&A), BB = fe_sqr(&B);
        fe8 DA = fe_mul(&D, &A), CB = fe_mul(&C, &B);
        fe8 E = fe_sub(&AA, &BB);
        fe8 s1 = fe_add(&DA, &CB), s2 = fe_sub(&DA, &CB);
        x3 = fe_sqr(&s1);
        fe8 s3 = fe_sqr(&s2);
        z3 = fe_mul(&x1, &s3);
        x2 = fe_mul(&AA, &BB);
        fe8 g = fe_mul_small_add(&E, 121665, &AA);  // AA + a24*E, a24 = (486662 - 2) / 4
        z2 = fe_mul(&E, &g);
    }
    const __m512i mask = _mm512_set1_epi64((long long)(0 - swap));
    cswap(&x2, &x3, mask);
    cswap(&z2, &z3, mask);
    fe8 zi = fe_invert(&z2);
    fe8 r = fe_mul(&x2, &zi);
    for (int i = 0; i < 5; i++) _mm512_storeu_si512((void *)s->result[i], r.v[i]);
    // The registers' copies go out of scope here; the caller scrubs the stack below it.
}

// Overwrites the stack below the caller's frame, where ladder8 spilled its registers.
__attribute__((noinline)) static void scrub_stack(void) {
    unsigned char pad[8192];
    cx_wipe(pad, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

static uint64_t load64_le(const uint8_t *p) {
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--) r = (r << 8) | p[i];
    return r;
}

// Per lane: limbs (each < 2^52, value anything below 2^256) -> canonical 32 bytes.
static void encode(uint8_t out[32], uint64_t l[5]) {
    const uint64_t m = (1ULL << 51) - 1;
    // Two sequential passes: after the first, limbs < 2^51 except l0 < 2^51 + 38; after the
    // second, all < 2^51 (a carry out of l4 means l0 wrapped below 38 first).
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 4; i++) {
            l[i + 1] += l[i] >> 51;
            l[i] &= m;
        }
        l[0] += 19 * (l[4] >> 51);
        l[4] &= m;
    }
    // Now value < 2^255; q = 1 iff value >= p (value + 19 carries past 2^255).
    uint64_t q = (l[0] + 19) >> 51;
    for (int i = 1; i < 5; i++) q = (l[i] + q) >> 51;
    l[0] += 19 * q;
    for (int i = 0; i < 4; i++) {
        l[i + 1] += l[i] >> 51;
        l[i] &= m;
    }
    l[4] &= m;  // drops the 2^255 that q's 19 added: value - p
    uint64_t w[4] = {l[0] | (l[1] << 51), (l[1] >> 13) | (l[2] << 38), (l[2] >> 26) | (l[3] << 25),
                     (l[3] >> 39) | (l[4] << 12)};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) out[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
    cx_wipe(w, sizeof w);
}

void ccx25519_x8(uint8_t out[8][32], const uint8_t scalar[32], const uint8_t points[8][32]) {
    cx_state s;
    memcpy(s.k, scalar, 32);
    s.k[0] &= 248;
    s.k[31] &= 127;
    s.k[31] |= 64;
    const uint64_t m = (1ULL << 51) - 1;
    for (int j = 0; j < 8; j++) {
        uint64_t w0 = load64_le(points[j]), w1 = load64_le(points[j] + 8);
        uint64_t w2 = load64_le(points[j] + 16), w3 = load64_le(points[j] + 24) & 0x7FFFFFFFFFFFFFFFULL;
        s.limbs[0][j] = w0 & m;
        s.limbs[1][j] = ((w0 >> 51) | (w1 << 13)) & m;
        s.limbs[2][j] = ((w1 >> 38) | (w2 << 26)) & m;
        s.limbs[3][j] = ((w2 >> 25) | (w3 << 39)) & m;
        s.limbs[4][j] = w3 >> 12;
    }
    ladder8(&s);
    scrub_stack();
    for (int j = 0; j < 8; j++) {
        uint64_t l[5];
        for (int i = 0; i < 5; i++) l[i] = s.result[i][j];
        encode(out[j], l);
        cx_wipe(l, sizeof l);
    }
    cx_wipe(&s, sizeof s);
}

#else

int ccx25519_lanes_available(void) { return 0; }

// Never called off x86-64 (ccx25519_lanes_available() is 0); writes zeros if it is.
void ccx25519_x8(uint8_t out[8][32], const uint8_t scalar[32], const uint8_t points[8][32]) {
    (void)scalar;
    (void)points;
    cx_wipe(out, 8 * 32);
}

#endif
