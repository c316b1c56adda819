"""Age files counted in groups (the age key unwraps up to 8 files' X25519 at once).

A request for an age key with X25519 identities hands a worker groups of consecutive files
while many are left. Every file must still get exactly what it gets alone: the same counts, the
same error code and message, one result per file, a cancel honoured between files, ordered
requests in order. Files are made by the real `age` CLI (and pyrage, the Python age library, for
bulk), the low-order share is the C2SP/CCTV vector (skipped, saying so, when the vectors are
absent).
"""

import os
import random
import shutil
import subprocess

import pytest

from cc_harness import Serve, check_count_done

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
VECTORS = os.environ.get("CRYPTCOUNT_VECTORS") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "vectors")
if not os.path.isdir(VECTORS):
    VECTORS = "/work/shared/vectors"

WORDS = ["rain", "garden", "stone", "river", "light", "the", "a", "rainfall"]


def keygen(root, name):
    path = root / f"{name}.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True)
    public = subprocess.run([AGE_KEYGEN, "-y", str(path)], check=True, capture_output=True, text=True).stdout
    return path.read_text(), public.strip()


def story(rng, i):
    return " ".join(rng.choice(WORDS) for _ in range(50 + i * 7)).encode()


def age_encrypt(recipients, data, armor=False):
    args = [AGE] + (["-a"] if armor else [])
    for r in recipients:
        args += ["-r", r]
    return subprocess.run(args, input=data, check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    if AGE is None or AGE_KEYGEN is None:
        pytest.skip("age is not installed; `make deps` installs it")
    root = tmp_path_factory.mktemp("age-groups")
    ours, ours_pub = keygen(root, "ours")
    _, other_pub = keygen(root, "other")
    rng = random.Random(14)
    files = []  # (path, kind, plaintext or None)

    def add(name, data, kind, plain=None):
        p = root / name
        p.write_bytes(data)
        files.append((str(p), kind, plain))

    for i in range(40):
        plain = story(rng, i)
        add(f"ours-{i}.age", age_encrypt([ours_pub], plain), "ours", plain)
        if i % 8 == 3:
            add(f"other-{i}.age", age_encrypt([other_pub], story(rng, i)), "other")
        if i % 8 == 5:
            plain = story(rng, i + 100)
            add(f"both-{i}.age", age_encrypt([other_pub, ours_pub], plain), "ours", plain)
        if i % 10 == 7:
            data = bytearray(age_encrypt([ours_pub], story(rng, i)))
            at = data.index(b"\n--- ") + 8
            data[at] = ord("A") if data[at] != ord("A") else ord("B")
            add(f"tampered-{i}.age", bytes(data), "tampered")
        if i % 10 == 2:
            add(f"truncated-{i}.age", age_encrypt([ours_pub], story(rng, i))[:-7], "truncated")
        if i % 13 == 4:
            add(f"plain-{i}.txt", story(rng, i), "plain")
    plain = story(rng, 999)
    add("armored.age", age_encrypt([ours_pub], plain, armor=True), "ours", plain)
    low = os.path.join(VECTORS, "age-cctv", "x25519_low_order")
    if os.path.exists(low):
        data = open(low, "rb").read()
        add("low-order.age", data[data.index(b"\n\n") + 2:], "low-order")
    fifo = root / "fifo.age"
    os.mkfifo(fifo)
    files.append((str(fifo), "fifo", None))
    files.append((str(root / "missing.age"), "missing", None))
    rng.shuffle(files)
    return ours, files


def results_by_index(rs, rid):
    return {r["index"]: r for r in rs if r.get("id") == rid and r.get("type") == "file"}


def essence(r):
    """What a file's result says, without where it was computed."""
    return {k: v for k, v in r.items() if k not in ("id", "index", "type", "cached")}


def count_grouped(ours, paths, *args, ordered=False):
    with Serve("--log-level", "debug", *args) as s:
        assert s.one({"id": "u", "op": "unlock", "name": "k", "cipher": "age", "secret": ours})["type"] == "ok"
        rs = s.request({"id": "c", "op": "count", "key": "k", "files": paths, "terms": ["rain", "garden"],
                        "ordered": ordered}, timeout=300)
        done = check_count_done(rs, "c", len(paths))
        assert done["files"] == len(paths) and done["skipped"] == 0 and not done["cancelled"]
        s.send({"id": "bye", "op": "shutdown"})
        s.until_terminal("bye")
        s.wait(10)
        return rs, s.stderr_text()


def count_alone(ours, paths, *args):
    """Each file in its own request (never grouped), in a coprocess of its own."""
    out = []
    with Serve(*args) as s:
        assert s.one({"id": "u", "op": "unlock", "name": "k", "cipher": "age", "secret": ours})["type"] == "ok"
        for i, p in enumerate(paths):
            rs = s.request({"id": i, "op": "count", "key": "k", "files": [p], "terms": ["rain", "garden"]})
            check_count_done(rs, i, 1)
            out.append(essence(results_by_index(rs, i)[0]))
    return out


@pytest.mark.parametrize("cache", ["0", "64"])
def test_grouped_age_files_equal_each_file_alone(material, cache):
    ours, files = material
    paths = [p for p, _, _ in files]
    rs, log = count_grouped(ours, paths, "--cache-mb", cache)
    assert "as one group" in log, "no group was formed"
    got = results_by_index(rs, "c")
    assert sorted(got) == list(range(len(paths)))
    alone = count_alone(ours, paths, "--cache-mb", cache)
    for i, (path, kind, plain) in enumerate(files):
        r = got[i]
        assert essence(r) == alone[i], (path, r, alone[i])
        err = r.get("error")
        if kind == "ours":
            assert err is None, (path, r)
            assert r["counts"] == [plain.count(b"rain"), plain.count(b"garden")], path
        elif kind == "plain":
            assert err and err["code"] == "bad_format", r
        elif kind == "fifo":
            assert err and err["code"] == "not_a_file", r
        elif kind == "missing":
            assert err and err["code"] == "not_found", r
        else:
            assert err and err["code"] == "decrypt_failed", r
            want = {"other": "no identity matches", "tampered": "header MAC", "truncated": "payload",
                    "low-order": "low-order"}[kind]
            assert want in err["message"], r


def test_grouped_age_files_with_two_identities_in_the_key(material, tmp_path):
    ours, files = material
    paths = [p for p, k, _ in files if k in ("ours", "other", "tampered")]
    two = keygen(tmp_path, "extra")[0] + ours
    rs, log = count_grouped(two, paths, "--cache-mb", "0")
    assert "as one group" in log
    got = results_by_index(rs, "c")
    alone = count_alone(ours, paths, "--cache-mb", "0")
    assert [essence(got[i]) for i in range(len(paths))] == alone


def test_ordered_request_stays_in_order(material):
    ours, files = material
    paths = [p for p, _, _ in files]
    rs, _ = count_grouped(ours, paths, "--cache-mb", "0", ordered=True)
    idx = [r["index"] for r in rs if r.get("type") == "file"]
    assert idx == list(range(len(paths)))
    alone = count_alone(ours, paths, "--cache-mb", "0")
    assert [essence(r) for r in rs if r.get("type") == "file"] == alone


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """300 small age files for one identity (pyrage), for cancels."""
    pyrage = pytest.importorskip("pyrage")
    if AGE_KEYGEN is None:
        pytest.skip("age-keygen is not installed; `make deps` installs it")
    root = tmp_path_factory.mktemp("age-many")
    secret, public = keygen(root, "id")
    recipient = pyrage.x25519.Recipient.from_str(public)
    rng = random.Random(5)
    paths = []
    for i in range(300):
        p = root / f"f{i}.age"
        p.write_bytes(pyrage.encrypt(story(rng, i % 20), [recipient]))
        paths.append(str(p))
    return secret, paths


@pytest.mark.parametrize("after", [0, 1, 40])
def test_cancel_inside_groups_gives_one_done_and_one_result_per_file(many, after):
    secret, paths = many
    # Each file 40 times: 300 small files take a few ms, so a reader stalled that long on a
    # loaded 2-core machine could see the request end before its cancel arrives.
    paths = paths * 40
    with Serve("--cache-mb", "0", "--log-level", "debug") as s:
        assert s.one({"id": "u", "op": "unlock", "name": "k", "cipher": "age", "secret": secret})["type"] == "ok"
        for rnd in range(3):
            rid = f"c{rnd}"
            s.send({"id": rid, "op": "count", "key": "k", "files": paths, "terms": ["rain"], "batch": 1})
            rs = []
            while len([r for r in rs if r.get("type") == "file"]) < after:
                r = s.recv(60)
                assert r is not None
                rs.append(r)
                assert r.get("type") != "done", "finished before the cancel"
            s.send({"id": f"x{rnd}", "op": "cancel", "target": rid})
            # Both terminal responses, in either order (the cancel's ok may come first).
            while not all(any(r.get("id") == i and r.get("type") in ("done", "ok") for r in rs)
                          for i in (rid, f"x{rnd}")):
                r = s.recv(120)
                assert r is not None
                rs.append(r)
            done = check_count_done(rs, rid, len(paths))
            assert done["type"] == "done" and done["cancelled"] is True
            assert done["skipped"] > 0
            for r in rs:
                if r.get("type") == "file":
                    assert "error" not in r, r
            assert [r["type"] for r in rs if r.get("id") == f"x{rnd}"] == ["ok"]
            assert s.hello_ok(f"h{rnd}")
        if after > 0:
            # Files were decrypted before the cancel, in groups. With `after` 0 the cancel may be
            # read before any file is dispatched, in every round (all 300 skipped): no group then.
            assert "as one group" in s.stderr_text()
