// SIMD kernels for the search engine (Search/), with a runtime CPU check: the package is built
// without -march flags, so AVX2/SSSE3 code is compiled per function and chosen when the CPU has it.
#ifndef CSEARCHKERNELS_H
#define CSEARCHKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The widest Teddy kernel this CPU runs: 4 = AVX-512 VBMI (exact byte tables, 16 buckets, 64
/// positions per step) with 64-entry tables where the fingerprints allow (`narrow`), 3 = the same
/// with 128-entry tables only, 2 = AVX2 (32 positions per step), 1 = SSSE3 (16), 0 = none (not
/// x86-64, or too old a CPU: the engine then uses its portable prefilters).
int ccsk_teddy_level(void);

/// The Teddy kernel to use by default: `ccsk_teddy_level()`, but 3 on a CPU with VBMI that is not
/// Intel's (Zen 4 runs the 128-entry lookup as fast as the 64-entry one, which adds a max a load).
int ccsk_teddy_preferred(void);

/// Teddy's tables: for each of the first `length` (1...5) bytes of a term, a bitmask of 8 buckets
/// per low nibble and per high nibble (16 entries each; levels 1 and 2 read the first 4 bytes at
/// most). A position is a candidate for bucket b when, for every j < length, the text byte at
/// position + j (or-ed with `fold`) has bit b set in both `low[j][byte & 15]` and
/// `high[j][byte >> 4]`.
///
/// Level 3 looks up each text byte's low 7 bits (or-ed with `fold`) in `exact[j]`: entries 0..<128
/// hold buckets 0-7, entries 128..<256 buckets 8-15, one bit each, for the byte values a bucket's
/// fingerprints allow at offset j (a byte of 128 or more sets the entry of its low 7 bits: text bytes
/// of 128 or more only add candidates). Level 4, when `narrow` (every fingerprint byte lies in
/// 0x41-0x7F), looks up each text byte's low 6 bits in entries 64..<128 and 192..<256 only (a byte
/// outside 0x40-0x7F sets the entry of the byte in 0x40-0x7F with the same low 6 bits: it only adds
/// candidates): one VPERMB instead of a VPERMI2B (three micro-ops on Intel). Levels 3 and 4 take `length` up to 5; with `half` only buckets 0-7 are
/// used, one lookup per offset instead of two (8 buckets of 5 bytes leave fewer candidates than
/// 16 of 4 for a few dozen terms, and cost 5 lookups per step against 8). `level` is the kernel
/// the scan uses (lowered to the CPU's).
typedef struct {
    uint8_t low[4][16];
    uint8_t high[4][16];
    uint8_t exact[5][256];
    int32_t length;
    int32_t level;
    uint8_t fold;
    uint8_t narrow;
    uint8_t half;
} ccsk_teddy;

/// Scans candidate positions from `*position` while a whole step fits before `to` (and its loads,
/// which reach `length - 1` bytes past a position, before `count`), writing each candidate's
/// position to `hits` (at most `capacity`, which must be at least 64: the kernel stops before a step
/// whose hits might not fit). Returns the number written and leaves `*position` where it stopped (a
/// step boundary: positions before it were all seen).
size_t ccsk_teddy_scan(
    const ccsk_teddy *t, const uint8_t *text, size_t count, size_t *position, size_t to, size_t *hits,
    size_t capacity);

/// A term Teddy's candidates are confirmed against in C (`ccsk_confirm_long`): its bytes (at most
/// 16), zero-padded, and a mask of 0xFF over its `length` bytes, 0 past them.
typedef struct {
    uint8_t bytes[16];
    uint8_t mask[16];
    intptr_t term;
    intptr_t length;
} ccsk_long_term;

/// The terms by the hash of their first `key` (3 or 4: Teddy's fingerprint length, which every
/// term has) bytes: `terms[start[h]..<start[h + 1]]` for h = `ccsk_long_hash` of those bytes, h
/// < 2^`bits`; in each slot's list a term appears once.
/// `row` (NULL: unused) is for `key` 4 and at most 64 terms (`rows`, the length of the lists
/// together; `terms` then holds one more entry past them, never counted): per slot, `start[h]`
/// when the slot holds one term that cannot overlap itself (no border), `rows` when it holds
/// none, 0xFE otherwise.
typedef struct {
    const uint32_t *start;
    const ccsk_long_term *terms;
    int32_t key;
    int32_t bits;
    const uint8_t *row;
    int32_t rows;
} ccsk_long_table;

/// The slot of a term or a text position by its first `key` (3 or 4) bytes.
static inline uint32_t ccsk_long_hash(const uint8_t *p, int32_t key, int32_t bits) {
    uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    if (key >= 4) k |= (uint32_t)p[3] << 24;
    return (k * 0x9E3779B1u) >> (32 - bits);
}

/// Confirms candidates at `hits[0..<n]` (ascending text positions, each with `key` readable bytes)
/// against the table's terms and counts each term's non-overlapping matches, left to right, as
/// the engine's Swift check does: a match of term t at position s counts when `base + s` is at
/// or after `next[t]` and before `limit`; then `next[t]` moves to its end, `counts[t]` grows by
/// one and, on the first, `first[t]` is set to `base + s`. A match must end by `count`.
/// With the table's `row` (and AVX-512BW, VL), a term that cannot overlap itself counts when `base
/// + s` is at or after `lo` (the range's start, which `next[t]` is never before) and before
/// `limit`, leaving `next[t]` and `first[t]` as they were: its matches never overlap one another
/// nor one that ran into the range, so `next[t]` would block none of them (as the short-term
/// counter keeps no resume position for such terms; RangeScan needs them only for the others).
void ccsk_confirm_long(
    const ccsk_long_table *table, const uint8_t *text, size_t count, const size_t *hits, size_t n, intptr_t base,
    intptr_t lo, intptr_t limit, intptr_t *counts, intptr_t *next, intptr_t *first);

/// A short term counted at every position: `bytes[j]` must equal text byte j or-ed with
/// `folds[j]`; unused bytes (j >= its length) are 0xFF in both (always equal).
/// A term with a border (a proper prefix that is also a suffix, as in "that") can overlap itself:
/// its matches are then taken one by one, left to right, each starting at or after the end of the
/// previous one (`next`).
typedef struct {
    uint8_t bytes[4];
    uint8_t folds[4];
    uint8_t bordered;
} ccsk_short_term;

/// 1 when `ccsk_count_short` has a SIMD kernel on this CPU (AVX2), else 0.
int ccsk_count_short_available(void);

/// Adds to `counts[i]` the positions in [from, stop) where term i occurs (for a bordered term: its
/// non-overlapping matches starting at or after `next[i]`, which is then moved to the end of the
/// last one where that end lies past `stop`; otherwise it is left at most `stop`, since no later
/// position is then blocked: the level-5 kernel looks only at its blocks' last positions),
/// for all `n` (at most 64) terms, and returns `stop`: the last 32-byte step boundary at or before
/// `to` whose loads (3 bytes past the step) stay before `count`. Positions from `stop` on are left
/// to the caller.
size_t ccsk_count_short(
    const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next);

/// The widest `ccsk_count_short` kernel this CPU runs: 5 = AVX-512 with VBMI, GFNI and BITALG
/// (the terms in groups of 8, a table lookup per group and byte offset at 64 positions a step;
/// terms whose bytes all lie in 0x40-0x7F, others go to 4), 4 = AVX-512 with GFNI (64 positions
/// per step, each distinct byte's bitmap from the text's bit planes), 3 = AVX-512BW (the bitmaps
/// from a compare per byte), 2 = AVX2 (32 positions per step, a pass per term), 0 = none.
int ccsk_count_short_best(void);

/// `ccsk_count_short` with the kernel of `level` (lowered to `ccsk_count_short_best()`): tests check
/// every width against the others. Levels 3-5 take 64- or 128-position steps, then 32-position steps, so
/// every level returns the same `stop`.
size_t ccsk_count_short_level(
    int level, const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next);

/// What `ccsk_count_short` leaves to the caller, position by position: adds to `counts[i]` the
/// matches of term i starting in [from, to) and ending by `count` (a bordered term's from `next[i]`
/// on, as above). A term's length is as the vector kernels take it: up to its last used byte
/// (unused: byte and fold 0xFF), at least 1.
/// For the last few positions of a text: in C it costs about a microsecond where the Swift loop per
/// two terms cost fifteen (a file's whole scan, for a small file and 48 terms).
void ccsk_count_short_tail(
    const uint8_t *text, size_t count, size_t from, size_t to, const ccsk_short_term *terms, size_t n,
    int64_t *counts, int64_t *next);

/// The widest packed-pair kernel this CPU runs: 3 = AVX-512BW (64 positions per step), 2 = AVX2
/// (32), 1 = SSE2 (16), 0 = none (not x86-64).
int ccsk_pair_level(void);

/// One term's packed pair (after the memchr crate's generic SIMD memmem): two of its bytes, `first`
/// at a position and `second` `distance` (1...255) bytes after it, each compared after or-ing
/// `fold` into the text byte.
typedef struct {
    uint8_t first;
    uint8_t second;
    uint8_t fold;
    uint32_t distance;
} ccsk_pair;

/// Scans positions from `*position` while a whole step fits before `to` (and its second load,
/// which reaches `distance` bytes past the step, before `count`), writing each position q where
/// `text[q] | fold == first` and `text[q + distance] | fold == second` to `hits` (at most
/// `capacity`, at least 256). `level` (1...3) asks for a kernel width; a wider one
/// than the CPU runs is lowered to what it runs. Returns the number written and leaves `*position`
/// where it stopped (a step boundary: positions before it were all seen).
size_t ccsk_pair_scan(
    const ccsk_pair *pair, int level, const uint8_t *text, size_t count, size_t *position, size_t to,
    size_t *hits, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
