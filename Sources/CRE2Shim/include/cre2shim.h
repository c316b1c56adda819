// A C interface to RE2 for the Swift side (Swift imports it as a plain C module; only
// Sources/CryptCount/Search/Regex uses it). RE2 is linear in the text for every pattern.
#ifndef CRE2SHIM_H
#define CRE2SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccre_regex ccre_regex;

/// Why a pattern was refused.
enum ccre_error_kind {
    CCRE_OK = 0,
    CCRE_SYNTAX = 1,       // RE2 could not parse it (or a construct outside the documented syntax)
    CCRE_EMPTY_MATCH = 2,  // it can match the empty string
    CCRE_TOO_BIG = 3,      // its program exceeds the memory limit
};

/// Compiles `pattern` (ripgrep syntax, see PROTOCOL.md) with `^`/`$` as line anchors, no match
/// spanning `\n`, Unicode `\w \d \s`. `whole_word` gives `rg -w` semantics. On failure returns
/// NULL and sets `*kind`, `*position` (byte offset in `pattern`) and `message` (NUL-terminated).
ccre_regex *ccre_compile(
    const char *pattern, size_t length, int ignore_case, int whole_word, int64_t max_mem, int *kind,
    size_t *position, char *message, size_t message_capacity);

void ccre_free(ccre_regex *re);

/// The leftmost-first match starting in `from..<to` of `text[0..<length]` (the whole text is the
/// context for `^ $ \b`). Returns 1 and sets `*start`, `*end`, or 0. Thread-safe.
int ccre_find(const ccre_regex *re, const char *text, size_t length, size_t from, size_t to, size_t *start,
    size_t *end);

/// Literals that any match must contain (RE2's prefilter), as a formula over `ccre_atom_count`
/// lowercase atoms: `ccre_atoms_pass(re, present)` with `present[i]` = whether atom i occurs
/// (case-insensitively) in the text says whether the regex can match there. Returns 0 when the
/// pattern has no usable literal (every text passes).
size_t ccre_atom_count(const ccre_regex *re);
/// The range of bytes every match starts with (`lo...hi`, RE2's PossibleMatchRange); 0 if unknown.
int ccre_first_byte_range(const ccre_regex *re, uint8_t *lo, uint8_t *hi);
size_t ccre_atom(const ccre_regex *re, size_t i, const char **bytes);
int ccre_atoms_pass(const ccre_regex *re, const uint8_t *present);

#ifdef __cplusplus
}
#endif

#endif
