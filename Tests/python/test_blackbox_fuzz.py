"""Black-box fuzzer (issue 7, item 1): hypothesis throws batches of hostile frames at the running
binary and checks the protocol invariant: exactly one terminal response per frame read,
files + skipped == len(files) for every count, and the process stays alive and answers hello.

Under `make test` it runs a fixed, derandomized set of examples; `make fuzz` sets
CRYPTCOUNT_FUZZ_SECONDS and it runs random examples for that long. A batch that breaks the
invariant is saved under Tests/Fuzz/corpus-crashers/blackbox/ and replayed by
test_kept_batches_replay.
"""

import glob
import hashlib
import os
import struct
import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cc_harness import ROOT, Serve, TERMINAL, frame, pack

KEPT = os.path.join(ROOT, "Tests", "Fuzz", "corpus-crashers", "blackbox")
MAX_FRAME = 1 << 16
OPS = ["hello", "unlock", "forget", "count", "cancel", "stats", "nope", ""]
CIPHERS = ["plain", "biographer", "biographer-v0", "fernet", "age", "openssl", "openpgp", "auto", "rot13"]
FIELDS = ["files", "terms", "key", "keys", "cipher", "secret", "ignore_case", "whole_word", "offsets",
          "max_offsets", "context", "words", "ordered", "iter", "ttl", "name", "target", "batch",
          "compact"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("bb")
    (d / "a.txt").write_bytes(b"the cat sat on the mat\n" * 50)
    (d / "b.txt").write_bytes(bytes(range(256)) * 4)
    (d / "empty").write_bytes(b"")
    os.mkfifo(d / "fifo")
    # OpenPGP messages (gpg -c, zlib and armored: the fast path and librnp's unpacking).
    fixtures = os.path.join(ROOT, "Tests", "Fixtures", "ciphers")
    for name in ("openpgp_sym_zlib.gpg", "openpgp_sym_armored.asc"):
        with open(os.path.join(fixtures, name), "rb") as f:
            (d / name).write_bytes(f.read())
    paths = [str(d / "a.txt"), str(d / "b.txt"), str(d / "empty"), str(d / "fifo"), str(d), "/dev/zero",
             "missing", "", str(d / "openpgp_sym_zlib.gpg"), str(d / "openpgp_sym_armored.asc")]
    with Serve("--workers", "2", "--max-frame", str(MAX_FRAME), "--max-in-flight", "4", "--max-files", "50",
               "--max-terms", "8", "--max-term-bytes", "64", cwd=str(d)) as s:
        yield s, paths


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
    st.text(max_size=20), st.binary(max_size=20),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.one_of(st.text(max_size=6), scalars.filter(
        lambda k: k is not None and not isinstance(k, float)), ), inner, max_size=4),
    max_leaves=12,
)


UNIQUE_INT, UNIQUE_STR = object(), object()  # replaced by fresh ids when sent


@st.composite
def requests(draw, paths):
    req = {}
    rid = draw(st.one_of(st.just(None), st.sampled_from([-1, 1.5, [1], True, UNIQUE_INT, UNIQUE_STR, UNIQUE_INT])))
    if rid is not None:
        req["id"] = rid
    req["op"] = draw(st.one_of(st.sampled_from(OPS), values))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        if field == "files":
            v = draw(st.one_of(st.lists(st.one_of(st.sampled_from(paths), st.binary(max_size=8)), max_size=12),
                               values))
        elif field == "cipher":
            v = draw(st.one_of(st.sampled_from(CIPHERS), values))
        elif field == "terms":
            v = draw(st.one_of(st.lists(st.one_of(st.sampled_from(["cat", "the", "\x00", "t"]),
                                                  st.binary(min_size=0, max_size=70)), max_size=10), values))
        elif field == "batch":
            v = draw(st.one_of(st.integers(0, 70), values))
        elif field == "compact":
            v = draw(st.one_of(st.booleans(), values))
        elif field == "target":
            v = draw(st.one_of(st.just("previous"), st.integers(0, 100), st.text(max_size=4), values))
        else:
            v = draw(values)
        req[field] = v
    if req.get("op") == "shutdown":
        req["op"] = "stats"
    return req


@st.composite
def batches(draw, paths):
    out = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["request", "request", "request", "value", "raw", "trailing", "empty", "big"]))
        if kind == "request":
            out.append(draw(requests(paths)))
        elif kind == "value":
            out.append(frame(pack(draw(values))))
        elif kind == "raw":
            out.append(frame(draw(st.binary(min_size=1, max_size=64))))
        elif kind == "trailing":
            out.append((draw(requests(paths)), draw(st.binary(min_size=1, max_size=4))))
        elif kind == "empty":
            out.append(b"\x00\x00\x00\x00")
        else:  # oversize: reported at once, payload skipped
            n = MAX_FRAME + draw(st.integers(1, 4096))
            out.append(struct.pack(">I", n) + b"\xc1" * n)
    return out


def check_batch(s, frames, timeout=60):
    """Sends the frames at once and checks the invariant over their responses."""
    s.send_raw(b"".join(frames))
    sent_files = {}
    for f in frames:
        try:
            v = msgpack.unpackb(f[4:], strict_map_key=False, raw=False)
        except Exception:
            continue
        if isinstance(v, dict) and v.get("op") == "count" and isinstance(v.get("files"), list):
            rid = v.get("id")
            if isinstance(rid, (int, str)) and not isinstance(rid, bool):
                sent_files[rid] = len(v["files"])
    terminals = 0
    per_id = {}
    deadline = time.monotonic() + timeout
    while terminals < len(frames):
        r = s.recv(timeout=max(0.1, deadline - time.monotonic()))
        assert r is not None, "the process ended"
        assert isinstance(r, dict) and "type" in r and "id" in r, r
        t = r["type"]
        assert t in TERMINAL or t in ("file", "files"), r
        rid = r["id"]
        key = (type(rid).__name__, rid)
        if t in ("file", "files"):
            assert key not in per_id or per_id[key]["done"] is None, f"a file response after done: {r}"
            n = 1
            if t == "files":
                # The opt-in batch key: each element is a whole `file` response of this request,
                # or (compact) the array [index, counts, bytes, cached(, words)].
                assert len(r["results"]) >= 1, r
                assert all(isinstance(x, list) and 4 <= len(x) <= 5 or x["type"] == "file" and x["id"] == rid
                           for x in r["results"]), r
                n = len(r["results"])
            per_id.setdefault(key, {"files": 0, "done": None})["files"] += n
        else:
            terminals += 1
            if t == "done":
                e = per_id.setdefault(key, {"files": 0, "done": None})
                e["done"] = r
                assert r["files"] == e["files"], r
                if rid in sent_files:
                    assert r["files"] + r["skipped"] == sent_files[rid], r
    assert s.alive()
    assert s.hello_ok()


def encode(batch, ids):
    """Frames for a drawn batch, with fresh ids where the batch asks for them."""
    out = []
    for item in batch:
        if isinstance(item, bytes):
            out.append(item)
            continue
        req, trailing = item if isinstance(item, tuple) else (item, b"")
        req = dict(req)
        if req.get("id") in (UNIQUE_INT, UNIQUE_STR):
            ids[0] += 1
            req["id"] = ids[0] if req["id"] is UNIQUE_INT else f"r{ids[0]}"
        if req.get("target") == "previous":
            req["target"] = ids[0]
        out.append(frame(pack(req) + trailing))
    return out


def keep(frames):
    data = b"".join(frames)
    os.makedirs(KEPT, exist_ok=True)
    path = os.path.join(KEPT, hashlib.sha1(data).hexdigest()[:16] + ".bin")
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_examples(s, paths, n, derandomize):
    ids = [0]
    executed = [0]

    @settings(max_examples=n, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))
    @given(batches(paths))
    def prop(batch):
        executed[0] += 1
        frames = encode(batch, ids)
        try:
            check_batch(s, frames)
        except Exception:
            if s.alive():
                raise
            raise AssertionError(f"the server died; batch kept at {keep(frames)}")

    prop()
    return executed[0]


def test_blackbox_invariant(env):
    s, paths = env
    seconds = float(os.environ.get("CRYPTCOUNT_FUZZ_SECONDS", "0"))
    if not seconds:
        run_examples(s, paths, 150, derandomize=True)
        return
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total += run_examples(s, paths, 100, derandomize=False)
    print(f"\nblack-box fuzzer: {total} batches in {seconds:.0f} s, invariant held")


def split_frames(data):
    out, pos = [], 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos : pos + 4 + n])
        pos += 4 + n
    return out


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(KEPT, "*.bin"))) or [None])
def test_kept_batches_replay(env, path):
    if path is None:
        pytest.skip("no kept black-box batches")
    s, _ = env
    with open(path, "rb") as f:
        check_batch(s, split_frames(f.read()))
