// RE2 behind a C interface, plus the one translation RE2 needs to read ripgrep's syntax: RE2's
// `\w \d \s` are ASCII, ripgrep's are Unicode, so those escapes are rewritten into Unicode classes
// before RE2 parses the pattern. The rewrite is a scan for backslash escapes that knows whether it
// is inside a bracket class (RE2 does all the parsing); see PROTOCOL.md "Regular expressions".
#include "cre2shim.h"

#include <re2/filtered_re2.h>
#include <re2/re2.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

// ripgrep's \w: Alphabetic, marks, decimal digits, connector punctuation, join controls. RE2 has
// no Alphabetic property; L + Nl covers it but for ~1% of Other_Alphabetic (e.g. circled letters).
const char kWord[] = "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}";
// ripgrep's \s: White_Space = \t..\r, U+0085 and the separators (Z).
const char kSpace[] = "\\t-\\r\\x{85}\\p{Z}";
// RE2 matches UTF-8-encoded surrogates (ED A0..BF xx: invalid UTF-8) with `.` and negated classes;
// ripgrep matches invalid UTF-8 with nothing, so negations leave them out explicitly.
const char kSurrogates[] = "\\x{D800}-\\x{DFFF}";

struct Rewritten {
    std::string text;
    std::vector<size_t> origin;  // origin[i]: byte of the user's pattern that produced text[i]
    size_t badPosition = std::string::npos;
    std::string bad;
};

void put(Rewritten &r, const std::string &s, size_t at) {
    r.text += s;
    r.origin.insert(r.origin.end(), s.size(), at);
}

Rewritten rewrite(const std::string &p) {
    Rewritten r;
    bool inClass = false;
    size_t classStart = 0;  // index just past `[` or `[^` (a `]` there is a literal)
    size_t i = 0;
    while (i < p.size()) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            char e = p[i + 1];
            if (e == 'Q') {  // \Q...\E: literal text, copied as is
                size_t end = p.find("\\E", i + 2);
                size_t stop = end == std::string::npos ? p.size() : end + 2;
                put(r, p.substr(i, stop - i), i);
                i = stop;
                continue;
            }
            std::string out;
            if (e == 'w') out = inClass ? kWord : std::string("[") + kWord + "]";
            else if (e == 'W') out = inClass ? "" : std::string("[^") + kWord + kSurrogates + "]";
            else if (e == 'd') out = "\\p{Nd}";
            else if (e == 'D') out = inClass ? "\\P{Nd}" : std::string("[^\\p{Nd}") + kSurrogates + "]";
            else if (e == 's') out = inClass ? kSpace : std::string("[") + kSpace + "]";
            else if (e == 'S') out = inClass ? "" : std::string("[^") + kSpace + kSurrogates + "]";
            else out = p.substr(i, 2);
            if (out.empty()) {
                r.badPosition = i;
                r.bad = std::string("\\") + e + " inside a bracket class is not supported (write [^...] instead)";
                return r;
            }
            put(r, out, i);
            i += 2;
            continue;
        }
        if (!inClass && c == '[') {
            inClass = true;
            put(r, "[", i);
            i += 1;
            if (i < p.size() && p[i] == '^') {
                put(r, std::string("^") + kSurrogates, i);
                i += 1;
                if (i < p.size() && p[i] == ']') {  // `[^]...]`: the `]` is a literal
                    put(r, "\\]", i);
                    i += 1;
                }
            }
            classStart = i;
            continue;
        }
        if (!inClass && c == '.') {
            put(r, std::string("[^\\n") + kSurrogates + "]", i);
            i += 1;
            continue;
        }
        if (inClass && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
            size_t end = p.find(":]", i + 2);
            size_t stop = end == std::string::npos ? i + 1 : end + 2;
            put(r, p.substr(i, stop - i), i);
            i = stop;
            continue;
        }
        if (inClass && c == ']' && i != classStart) inClass = false;
        put(r, std::string(1, c), i);
        i += 1;
    }
    return r;
}

RE2::Options options(bool ignoreCase, int64_t maxMem) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_never_nl(true);  // no match spans a line break (classes lose \n)
    o.set_case_sensitive(!ignoreCase);
    o.set_max_mem(maxMem);
    return o;
}

// Whether the pattern matches the empty string in some context: every combination of what can
// precede (start of text, \n, word byte, other) and follow a position, which is all that RE2's
// empty-width assertions look at.
bool matchesEmpty(const RE2 &re) {
    const char *sides[] = {"", "\n", "a", " "};
    for (const char *before : sides) {
        for (const char *after : sides) {
            std::string t = std::string(before) + after;
            size_t at = std::strlen(before);
            if (re.Match(t, at, at, RE2::ANCHOR_BOTH, nullptr, 0)) return true;
        }
    }
    return false;
}

}  // namespace

struct ccre_regex {
    std::unique_ptr<RE2> re;
    bool wholeWord = false;
    // whole_word: the same without the `^` alternative (see ccre_find).
    std::unique_ptr<RE2> afterNonWord;
    re2::FilteredRE2 filter{1};
    int firstLo = 1, firstHi = 0;  // the bytes a match can start with (empty: unknown)
    std::vector<std::string> atoms;
};

extern "C" ccre_regex *ccre_compile(
    const char *pattern, size_t length, int ignore_case, int whole_word, int64_t max_mem, int *kind,
    size_t *position, char *message, size_t message_capacity) {
    auto fail = [&](int k, size_t pos, const std::string &msg) -> ccre_regex * {
        *kind = k;
        *position = pos;
        if (message_capacity > 0) {
            size_t n = std::min(msg.size(), message_capacity - 1);
            std::memcpy(message, msg.data(), n);
            message[n] = 0;
        }
        return nullptr;
    };
    std::string user(pattern, length);
    Rewritten rw = rewrite(user);
    if (rw.badPosition != std::string::npos) return fail(CCRE_SYNTAX, rw.badPosition, rw.bad);
    // (?m): ^ and $ at line ends. Kept outside the user's text so positions map back.
    const std::string prefix = "(?m)";
    std::string body = prefix + rw.text;
    RE2::Options o = options(ignore_case != 0, max_mem);
    auto plain = std::make_unique<RE2>(body, o);
    if (!plain->ok()) {
        if (plain->error_code() == RE2::ErrorPatternTooLarge)
            return fail(CCRE_TOO_BIG, 0, "the compiled pattern exceeds the memory limit (--regex-max-mem)");
        size_t pos = length;  // unbalanced parentheses and the like: the end of the pattern
        const std::string &arg = plain->error_arg();
        if (plain->error_code() != RE2::ErrorMissingParen && !arg.empty()) {
            size_t at = body.find(arg);
            if (at != std::string::npos && at >= prefix.size()) pos = rw.origin[at - prefix.size()];
        }
        std::string msg = plain->error();
        size_t inMsg = msg.find(body);  // RE2 quotes the whole pattern: show the user's
        if (inMsg != std::string::npos) msg.replace(inMsg, body.size(), user);
        return fail(CCRE_SYNTAX, pos, msg);
    }
    if (matchesEmpty(*plain)) return fail(CCRE_EMPTY_MATCH, 0, "the pattern can match the empty string");
    auto out = std::unique_ptr<ccre_regex>(new (std::nothrow) ccre_regex);
    if (!out) return fail(CCRE_TOO_BIG, 0, "out of memory");
    out->wholeWord = whole_word != 0;
    std::string least, most;  // every match lies between these strings, so its first byte too
    if (plain->PossibleMatchRange(&least, &most, 2) && !least.empty() && !most.empty()) {
        out->firstLo = static_cast<unsigned char>(least[0]);
        out->firstHi = static_cast<unsigned char>(most[0]);
    }
    if (whole_word) {
        // rg -w: the match must follow a line start or a non-word character and precede a line
        // end or a non-word character; group 1 is the match itself.
        std::string nonWord = std::string("[^") + kWord + kSurrogates + "]";
        std::string wrapped = prefix + "(?:^|" + nonWord + ")(" + rw.text + ")(?:$|" + nonWord + ")";
        out->re = std::make_unique<RE2>(wrapped, o);
        out->afterNonWord = std::make_unique<RE2>(prefix + nonWord + "(" + rw.text + ")(?:$|" + nonWord + ")", o);
        if (!out->re->ok() || !out->afterNonWord->ok())
            return fail(CCRE_TOO_BIG, 0, "the word-bounded pattern exceeds the memory limit (--regex-max-mem)");
    } else {
        out->re = std::move(plain);
    }
    int id = 0;
    if (out->filter.Add(body, o, &id) == RE2::NoError) out->filter.Compile(&out->atoms);
    return out.release();
}

extern "C" void ccre_free(ccre_regex *re) { delete re; }

extern "C" int ccre_find(const ccre_regex *re, const char *text, size_t length, size_t from, size_t to,
    size_t *start, size_t *end) {
    if (from > to || to > length) return 0;
    re2::StringPiece t(text, length);
    if (!re->wholeWord) {
        re2::StringPiece m;
        if (!re->re->Match(t, from, to, RE2::UNANCHORED, &m, 1)) return 0;
        *start = m.data() - text;
        *end = *start + m.size();
        return 1;
    }
    // The wrapped match may begin one character before `from` (the non-word character before the
    // word), so it is searched from the previous character boundary; the inner match must start
    // at or after `from`.
    size_t pos = from;
    while (pos > 0 && (static_cast<unsigned char>(text[pos - 1]) & 0xC0) == 0x80 && from - pos < 3) pos--;
    if (pos > 0) pos--;
    re2::StringPiece m[2];
    while (pos <= to && re->re->Match(t, pos, to, RE2::UNANCHORED, m, 2)) {
        size_t s = m[1].data() - text;
        if (s >= from) {
            *start = s;
            *end = s + m[1].size();
            return 1;
        }
        // The `^` alternative won at `pos` (a line start before `from`); the match may still
        // start at `from` after the non-word character at `pos`.
        size_t at = m[0].data() - text;
        if (re->afterNonWord->Match(t, at, to, RE2::ANCHOR_START, m, 2)) {
            s = m[1].data() - text;
            if (s >= from) {
                *start = s;
                *end = s + m[1].size();
                return 1;
            }
        }
        pos = at + 1;
    }
    return 0;
}

extern "C" size_t ccre_atom_count(const ccre_regex *re) { return re->atoms.size(); }

extern "C" int ccre_first_byte_range(const ccre_regex *re, uint8_t *lo, uint8_t *hi) {
    if (re->firstLo > re->firstHi) return 0;
    *lo = static_cast<uint8_t>(re->firstLo);
    *hi = static_cast<uint8_t>(re->firstHi);
    return 1;
}

extern "C" size_t ccre_atom(const ccre_regex *re, size_t i, const char **bytes) {
    if (i >= re->atoms.size()) return 0;
    *bytes = re->atoms[i].data();
    return re->atoms[i].size();
}

extern "C" int ccre_atoms_pass(const ccre_regex *re, const uint8_t *present) {
    std::vector<int> matched;
    for (size_t i = 0; i < re->atoms.size(); i++)
        if (present[i]) matched.push_back(static_cast<int>(i));
    std::vector<int> potentials;
    re->filter.AllPotentials(matched, &potentials);
    return potentials.empty() ? 0 : 1;
}
