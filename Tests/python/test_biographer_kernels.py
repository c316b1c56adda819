"""The biographer kernels end to end (issue 14): `cryptcount count` run once per kernel, forced
with CRYPTCOUNT_KERNEL, on files written by the seed's algorithm (cryptcount.biographer, Python),
gives the counts Python finds in the plaintext, and the same results (including the failures) for
every kernel. A kernel this CPU cannot run, or an unknown name, is refused at start."""

import json
import os
import random
import re
import subprocess

import pytest

from cryptcount import biographer

from cc_harness import binary

PASSWORD = "correct horse ☃ battery"
KERNELS = ["sse2", "avx2", "avx512"]
WORDS = [b"the", b"and", b"garden", b"rain", b"caf\xc3\xa9", b"a"]


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def runs_here(kernel):
    """Whether this CPU runs the kernel, from /proc/cpuinfo (None: cannot tell)."""
    flags = cpu_flags()
    if flags is None:
        return None if kernel != "sse2" else True
    return {
        "sse2": True,
        "avx2": "avx2" in flags,
        "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512vbmi"} <= flags,
    }[kernel]


def count(paths, terms, kernel, cwd):
    env = {**os.environ, "CC_TEST_PW": PASSWORD, "CRYPTCOUNT_KERNEL": kernel}
    args = [binary(), "count", "--cipher", "biographer", "--secret-env", "CC_TEST_PW", "--json"]
    for t in terms:
        args += ["-t", t]
    return subprocess.run(args + paths, capture_output=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def diary(tmp_path_factory):
    """Files of every plaintext length mod 64 (the AVX-512 kernel's 4 blocks) and a few long ones,
    one written with another password and one with a corrupted byte: (dir, names, expected)."""
    d = tmp_path_factory.mktemp("diary")
    rng = random.Random(14)
    words = [w.decode() for w in WORDS] + ["diary", "morning", "Rain", "x"]
    expected = {}
    lengths = list(range(0, 140)) + [255, 256, 257, 1023, 1024, 1025, 4097, 70001]
    for i, n in enumerate(lengths):
        text = " ".join(rng.choice(words) for _ in range(n)).encode()[:n] if n else b""
        name = f"s{i:03d}.bio"
        (d / name).write_bytes(biographer.encrypt(text, PASSWORD, rng=rng))
        expected[name] = [len(re.findall(re.escape(w), text)) for w in WORDS]
    (d / "wrong.bio").write_bytes(biographer.encrypt(b"the garden in the rain " * 50, "another password", rng=rng))
    corrupt = bytearray(biographer.encrypt(b"the garden in the rain " * 50, PASSWORD, rng=rng))
    corrupt[8 + 256 * 3 + 5] ^= 0x40
    (d / "corrupt.bio").write_bytes(bytes(corrupt))
    return d, sorted(expected) + ["corrupt.bio", "wrong.bio"], expected


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_counts_what_python_finds(diary, kernel):
    d, names, expected = diary
    if runs_here(kernel) is False:
        pytest.skip(f"this CPU does not run the {kernel} kernel")
    r = count(names, [w.decode() for w in WORDS], kernel, d)
    results = {json.loads(line)["path"]: json.loads(line) for line in r.stdout.splitlines() if b'"path"' in line}
    for name, counts in expected.items():
        assert results[name]["counts"] == counts, (kernel, name)
    for bad in ("wrong.bio", "corrupt.bio"):  # (a flip of bit 6 never leaves a hex digit one)
        assert results[bad]["error"]["code"] == "decrypt_failed", (kernel, bad, results[bad])
    assert r.returncode == 2, r.stderr  # two files failed


def test_every_kernel_gives_identical_output(diary):
    d, names, _ = diary
    outputs = {}
    for kernel in KERNELS:
        if runs_here(kernel) is False:
            print(f"skipping the {kernel} kernel: this CPU does not run it")
            continue
        r = count(names, ["the", "garden"], kernel, d)
        outputs[kernel] = (r.returncode, r.stdout)
    assert len(outputs) >= 1
    assert len(set(outputs.values())) == 1, {k: v[0] for k, v in outputs.items()}


@pytest.mark.parametrize("kernel", ["avx512", "avx2"])
def test_a_kernel_this_cpu_cannot_run_is_refused(diary, kernel):
    d, names, _ = diary
    if runs_here(kernel) is not False:
        pytest.skip(f"this CPU runs the {kernel} kernel")
    r = count(names[:1], ["the"], kernel, d)
    assert r.returncode == 1
    assert b"CRYPTCOUNT_KERNEL" in r.stderr and b"does not run it" in r.stderr


def test_an_unknown_kernel_is_refused(diary):
    d, names, _ = diary
    r = count(names[:1], ["the"], "avx1024", d)
    assert r.returncode == 1 and b"CRYPTCOUNT_KERNEL=avx1024: use sse2, avx2 or avx512" in r.stderr
    env = {**os.environ, "CRYPTCOUNT_KERNEL": "neon"}
    serve = subprocess.run([binary(), "serve"], input=b"", capture_output=True, env=env, timeout=60)
    assert serve.returncode == 64 and b"CRYPTCOUNT_KERNEL=neon" in serve.stderr


def test_an_empty_value_means_the_widest(diary):
    d, names, expected = diary
    r = count(names[:3], ["the"], "", d)
    assert r.returncode == 0, r.stderr
