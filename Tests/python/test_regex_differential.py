"""Regular expressions (issue 13): per-pattern counts equal `rg --count-matches`, per file.

A few hundred patterns are generated within the syntax PROTOCOL.md documents and counted by the
real binary and by ripgrep (apt `ripgrep`, installed by `make deps`) over a small generated corpus
with Unicode text, invalid UTF-8, CRLF lines and long lines, plus real text (this repository's
README and PROTOCOL, and the GPL when /usr/share/common-licenses has it). The documented differences are kept
out of the comparison (and tested on their own): `\\b` is an ASCII word boundary, so patterns with
`\\b` are compared on the ASCII file only.

ripgrep 13.0.0 (Debian 12's) has two known bugs that make it a wrong oracle for `\\b` and `-w`:
a `\\b` at the start of a match that begins where the previous match ended does not see the
character before it (rg#1275: `printf 'a b c' | rg --count-matches '\\b\\s\\w'` says 1, every other
engine 2), and `-w` misses matches (rg#2623, fixed in 14, which defines `-w` as
`\\b{start-half}(?:P)\\b{end-half}`). Patterns with `\\b`, and `whole_word`, are therefore checked
against Python's `re` (the same leftmost-first semantics; `(?<!\\w)(?:P)(?!\\w)` for `-w`), line by line,
on the ASCII file, where Python's classes equal ripgrep's.
"""

import os
import random
import shutil
import subprocess

import re

import pytest

from cc_harness import Serve

RG = shutil.which("rg")
pytestmark = pytest.mark.skipif(RG is None, reason="ripgrep (rg) is not installed; `make deps` installs it")

WORDS = (
    "the rain heron egret swan raining rainfall rained rainy evening morning singing walking "
    "Smith John Mary Paris London river garden café naïve élan straße Straße über Öl "
    "ΑΘΗΝΑ αθήνα Москва москва 東京 data-set e-mail 2024-01-02 1999-12-31 3.14 42 _under x_y"
).split()


def make_corpus(root):
    rng = random.Random(13)
    files = {}
    # ASCII prose with names, dates and punctuation.
    lines = []
    for _ in range(400):
        n = rng.randint(0, 14)
        ws = [rng.choice([w for w in WORDS if w.isascii()]) for _ in range(n)]
        sep = rng.choice([" ", " ", "  ", ", ", "-", "\t"])
        lines.append(sep.join(ws) + rng.choice(["", ".", "!", " "]))
    files["ascii.txt"] = ("\n".join(lines) + "\n").encode()
    # Unicode prose (no trailing newline at the end).
    lines = []
    for _ in range(400):
        n = rng.randint(0, 12)
        ws = [rng.choice(WORDS) for _ in range(n)]
        lines.append(rng.choice([" ", "\u00a0", " \u2003"]).join(ws))
    files["unicode.txt"] = "\n".join(lines).encode()
    # Invalid UTF-8, CRLF, a NUL, and a long line.
    b = bytearray()
    for i in range(300):
        w = rng.choice(WORDS).encode()
        junk = rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\x80\x80", b"\xed\xa0\x80", b""])
        b += w + junk + rng.choice([b" ", b"\r\n", b"\n", b"\t", b"  "])
    b += b"rain " * 3000 + b"aaaa" * 2000 + b"\n"
    files["mixed.bin"] = bytes(b)
    # Real text: this repository's own docs (Unicode punctuation, code, tables) and the GPL.
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for name, path in (("real-readme.md", os.path.join(repo, "README.md")),
                       ("real-protocol.md", os.path.join(repo, "protocol", "PROTOCOL.md")),
                       ("real-gpl.txt", "/usr/share/common-licenses/GPL-3")):
        if os.path.exists(path):
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
            # Documented difference: Alphabetic symbols (circled letters, category So) are \w in
            # ripgrep but not here; PROTOCOL.md names one.
            files[name] = re.sub("[\u24b6-\u24e9\U0001f130-\U0001f189]", "A", text).encode()
    os.makedirs(root, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return sorted(files)


# --- pattern generator (the documented syntax only) --------------------------------------------

LITERALS = ["rain", "the", "e", "in", "ing", "ed", "a", "Smith", "é", "ü", "α", "о", "東", "ß", "-", "\\.", "\\-", " "]
CLASSES = ["[a-z]", "[A-Z]", "[aeiou]", "[^aeiou ]", "[0-9]", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", ".",
           "[\\w-]", "[^\\s]", "[a-zé]", "[[:alpha:]]", "[^\\d\\s]", "\\p{L}", "\\p{Greek}", "[\\p{Lu}]", "\\pN"]


def gen_atom(rng, depth):
    r = rng.random()
    if depth < 2 and r < 0.15:
        inner = gen_alt(rng, depth + 1)
        return "(?:" + inner + ")" if rng.random() < 0.7 else "(" + inner + ")"
    if r < 0.55:
        return rng.choice(LITERALS)
    return rng.choice(CLASSES)


def gen_quant(rng):
    return rng.choice(["", "", "", "+", "*", "?", "{2}", "{1,3}", "{2,}", "+?", "*?", "??"])


def gen_seq(rng, depth):
    """A concatenation with at least one element that must match a character."""
    items = []
    for _ in range(rng.randint(1, 4)):
        items.append(gen_atom(rng, depth) + gen_quant(rng))
    # One mandatory element, so the pattern never matches the empty string.
    items.insert(rng.randint(0, len(items)), gen_atom(rng, 2) + rng.choice(["", "+", "{2}"]))
    return "".join(items)


def gen_alt(rng, depth):
    return "|".join(gen_seq(rng, depth) for _ in range(rng.choice([1, 1, 1, 2, 3])))


def gen_pattern(rng):
    p = gen_alt(rng, 0)
    r = rng.random()
    if r < 0.1:
        p = "^" + p if "|" not in p else "^(?:" + p + ")"
    elif r < 0.2:
        p = p + "$" if "|" not in p else "(?:" + p + ")$"
    elif r < 0.3:
        p = "(?i)" + p
    elif r < 0.4:
        p = "\\b" + p + "\\b" if "|" not in p else "\\b(?:" + p + ")\\b"
    return p


def patterns(n, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        p = gen_pattern(rng)
        if p not in out:
            out.append(p)
    return out


def rg_counts(root, names, pattern, flags=()):
    """Per file count from ripgrep (files without a match are absent from its output)."""
    proc = subprocess.run(
        [RG, "--no-config", "-a", "--count-matches", "--with-filename", "--no-ignore", "--hidden", *flags, "-e",
         pattern, "."],
        cwd=root, capture_output=True, timeout=60,
    )
    assert proc.returncode in (0, 1), (pattern, proc.stderr)
    counts = {n: 0 for n in names}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        path, _, c = line.rpartition(":")
        counts[os.path.relpath(os.path.join(root, path), root)] = int(c)
    return counts


def python_counts(path, pattern, ignore_case=False, whole_word=False):
    """Per-line leftmost-first count with Python's `re` (None when the pattern uses syntax Python lacks)."""
    if any(x in pattern for x in ("\\p", "\\P", "[[:")):
        return None
    flags = re.IGNORECASE if ignore_case else 0
    if pattern.startswith("(?i)"):
        pattern, flags = pattern[4:], re.IGNORECASE
    if whole_word:
        pattern = r"(?<!\w)(?:" + pattern + r")(?!\w)"
    rx = re.compile(pattern, flags)
    text = open(path, encoding="ascii").read()
    return sum(len(list(rx.finditer(line))) for line in text.split("\n"))


def differential(tmp_path, flags, opts, n, seed):
    root = str(tmp_path / "corpus")
    names = make_corpus(root)
    pats = patterns(n, seed)
    files = [os.path.join(root, n) for n in names]
    with Serve() as s:
        accepted = []
        for i, p in enumerate(pats):
            r = s.request({"id": 1000 + i, "op": "count", "files": [], "terms": [p], "regex": True, **opts})[-1]
            if r["type"] == "error":
                # Refused patterns must be ones that can match the empty string (the generator's
                # mandatory element can still be something like (?:a?)).
                assert "empty string" in r["message"], (p, r)
                continue
            accepted.append(p)
        assert len(accepted) >= 0.9 * len(pats)
        rs = s.request({"id": 1, "op": "count", "files": files, "terms": accepted, "regex": True, "ordered": True,
                        **opts})
    results = {os.path.basename(r["path"]): r["counts"] for r in rs if r["type"] == "file"}
    assert set(results) == set(names)
    ascii_files = {n for n in names if all(b < 0x80 for b in open(os.path.join(root, n), "rb").read())}
    mismatches = []
    compared = 0
    for k, p in enumerate(accepted):
        if "\\b" in p or opts.get("whole_word"):
            # Python's re on the ASCII file (see the module docstring).
            for name in ascii_files:
                want = python_counts(os.path.join(root, name), p, opts.get("ignore_case", False),
                                     opts.get("whole_word", False))
                if want is not None:
                    compared += 1
                    if results[name][k] != want:
                        mismatches.append((p, name, results[name][k], want))
            continue
        want = rg_counts(root, names, p, flags)
        for name in names:
            compared += 1
            if results[name][k] != want[name]:
                mismatches.append((p, name, results[name][k], want[name]))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:10]}"
    return accepted, compared


def test_counts_equal_ripgrep(tmp_path):
    accepted, compared = differential(tmp_path, (), {}, 300, 1)
    assert len(accepted) >= 270 and compared >= 700


def test_ignore_case_equals_ripgrep_i(tmp_path):
    differential(tmp_path, ("-i",), {"ignore_case": True}, 60, 2)


def test_whole_word_equals_lookaround(tmp_path):
    _, compared = differential(tmp_path, ("-w",), {"whole_word": True}, 150, 3)
    assert compared >= 60


FIXED = [
    r"\b\w+ing\b", r"[A-Z][a-z]+ [A-Z][a-z]+", r"\d{4}-\d{2}-\d{2}", r"(?i)heron|egret|swan", r"rain(y|fall|ed)?",
    r"\w+", r"[^\s]+", r"\S+", r"\p{Greek}+", r"(?i)straße", r"(?i)москва", r"é\w*", r"\W+", r"^\w", r"\w$",
    r"a+$", r".", r"[^a]", r"\s+", r"\d+", r"\pL{3}",
]


def test_fixed_patterns_equal_ripgrep(tmp_path):
    root = str(tmp_path / "corpus")
    names = make_corpus(root)
    with Serve() as s:
        rs = s.request({"id": 1, "op": "count", "files": [os.path.join(root, n) for n in names], "terms": FIXED,
                        "regex": True, "ordered": True})
    got = {os.path.basename(r["path"]): r["counts"] for r in rs if r["type"] == "file"}
    for k, p in enumerate(FIXED):
        want = rg_counts(root, names, p)
        for name in names:
            if "\\b" in p:
                continue  # rg#1275; \b is compared with Python's re in the generated tests
            assert got[name][k] == want[name], (p, name, got[name][k], want[name])
