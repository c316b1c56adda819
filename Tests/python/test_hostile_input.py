"""Hostile input against the running binary (issue 7, item 2): every frame gets exactly one
terminal response with the right code, and the process keeps serving."""

import os
import struct
import time

import msgpack
import pytest

from cc_harness import Serve, check_count_done, frame, pack, status_kib

EXT = msgpack.ExtType(5, b"xyz")


@pytest.fixture
def serve():
    with Serve("--workers", "2") as s:
        yield s
        assert s.alive()
        assert s.hello_ok()


def raw_error(s, payload, code, rid=None):
    s.send_raw(frame(payload))
    r = s.recv()
    assert r["type"] == "error", r
    assert r["code"] == code, r
    assert r["id"] == rid, r
    return r


# -- declared lengths beyond the data


@pytest.mark.parametrize(
    "header",
    [
        b"\xdb\x7f\xff\xff\xff",  # str32
        b"\xc6\xff\xff\xff\xff",  # bin32
        b"\xdd\xff\xff\xff\xff",  # array32
        b"\xdf\xff\xff\xff\xff",  # map32
        b"\xc9\xff\xff\xff\xff\x05",  # ext32
        b"\xdc\xff\xff",  # array16
        b"\xde\xff\xff",  # map16
    ],
)
def test_declared_length_beyond_the_frame(serve, header):
    hwm0 = status_kib(serve.pid, "VmHWM")
    raw_error(serve, header, "bad_msgpack")
    raw_error(serve, header + b"\x01\x02\x03", "bad_msgpack")
    # Inside an otherwise good request: {"id": 1, "op": "count", "files": <header>}
    inner = b"\x83\xa2id\x01\xa2op\xa5count\xa5files" + header + b"\xa1a"
    raw_error(serve, inner, "bad_msgpack")
    assert status_kib(serve.pid, "VmHWM") - hwm0 < 64 * 1024, "a declared length reserved memory"


def test_deep_nesting(serve):
    for opener in (b"\x91", b"\x81\xa1k", b"\xdc\x00\x01", b"\xdd\x00\x00\x00\x01"):
        raw_error(serve, opener * 100_000 + b"\xc0", "bad_msgpack")
    # Deep nesting inside a request's field
    raw_error(serve, b"\x83\xa2id\x01\xa2op\xa5count\xa5files" + b"\x91" * 100_000 + b"\xc0", "bad_msgpack")
    # The limit is 32 levels: a request (level 1) holding 31 nested arrays is read; 32 are too many.
    def nested(k):
        v = 1
        for _ in range(k):
            v = [v]
        return v

    assert serve.one({"id": 2, "op": "hello", "deep": nested(31)})["type"] == "hello"
    raw_error(serve, pack({"id": 3, "op": "hello", "deep": nested(32)}), "bad_msgpack")


@pytest.mark.parametrize("key", [1, -1, b"bin", None, True, 1.5, EXT])
def test_non_string_map_keys(serve, key):
    # With a readable id, the error carries it.
    payload = b"\x83\xa2id\x07\xa2op\xa5hello" + pack(key) + b"\x01"
    raw_error(serve, payload, "bad_request", rid=7)
    # Without one, id nil.
    raw_error(serve, b"\x82" + pack(key) + b"\x01\xa2op\xa5hello", "bad_request")
    # Containers as keys.
    raw_error(serve, b"\x82\xa2id\x08\x91\x01\x02", "bad_request", rid=8)
    raw_error(serve, b"\x82\xa2id\x09\x81\xa1a\x01\x02", "bad_request", rid=9)


def test_a_str_key_that_is_not_utf8_is_an_unknown_key(serve):
    # The contract's key rule is about the MessagePack type: a `str` key is a string key even
    # when its bytes are not UTF-8, and one that names no field is ignored.
    serve.send_raw(frame(b"\x83\xa2id\x09\xa2op\xa5stats\xa2\xff\xfe\x01"))
    r = serve.recv()
    assert (r["type"], r["id"]) == ("stats", 9)
    serve.send_raw(frame(b"\x83\xa2\xc3\x28\xc0\xa2id\x0a\xa2op\xa5hello"))
    r = serve.recv()
    assert (r["type"], r["id"]) == ("hello", 10)


@pytest.mark.parametrize(
    "ext",
    [
        b"\xd4\x01\x00",  # fixext 1
        b"\xd5\x01" + b"\x00" * 2,
        b"\xd6\xff" + b"\x00" * 4,  # timestamp 32
        b"\xd7\xff" + b"\x00" * 8,  # timestamp 64
        b"\xd8\x01" + b"\x00" * 16,
        b"\xc7\x03\x01abc",  # ext 8
        b"\xc8\x00\x03\x01abc",  # ext 16
        b"\xc9\x00\x00\x00\x03\x01abc",  # ext 32
        b"\xc7\x00\x01",  # ext 8 of length 0
    ],
)
def test_ext_types(serve, ext):
    raw_error(serve, ext, "bad_request")  # a request must be a map
    raw_error(serve, b"\x82\xa2id" + ext + b"\xa2op\xa5hello", "bad_request")  # ext id: unreadable
    raw_error(serve, b"\x83\xa2id\x03\xa2op\xa5count\xa5files" + ext, "bad_request", rid=3)
    raw_error(serve, b"\x83\xa2id\x04\xa2op\xa5count\xa5files\x91" + ext, "bad_request", rid=4)
    raw_error(serve, b"\x82\xa2id\x05\xa2op" + ext, "bad_request", rid=5)
    # An unknown key may hold anything: it is ignored.
    serve.send_raw(frame(b"\x83\xa2id\x06\xa2op\xa5hello\xa1x" + ext))
    assert serve.recv()["type"] == "hello"


@pytest.mark.parametrize("extra", [b"\x00", b"\xc0", b"\x81\xa1a\x01", b"\x00" * 1000])
def test_trailing_bytes_after_the_value(serve, extra):
    raw_error(serve, pack({"id": 1, "op": "hello"}) + extra, "bad_msgpack")


def test_malformed_and_truncated_values(serve):
    for payload in [b"\xc1", b"\x81", b"\x81\xa2id", b"\xa5abc", b"\xcd\x01", b"\xcb\x00", b"\x92\x01"]:
        raw_error(serve, payload, "bad_msgpack")


# -- the wrong type for every field of every op

STR_WRONG = [True, 7, -7, 1.5, ["x"], {"a": "b"}, b"bin", EXT]
BOOL_WRONG = [1, 0, "true", 1.5, [], {}, b"", EXT]
INT_WRONG = ["1", True, 1.5, [], {}, b"\x01", EXT]
LIST_WRONG = ["x", 1, True, {}, b"x", 1.5, EXT]
SECRET_WRONG = [True, 1, -1, 1.5, EXT, [1], [True], {"passphrase": 1}, [[[[["deep"]]]]]]

BASE = {
    "unlock": {"op": "unlock", "name": "k", "cipher": "openssl", "secret": "pw"},
    "forget": {"op": "forget", "name": "k"},
    "count": {"op": "count", "files": []},
    "cancel": {"op": "cancel", "target": 1},
}

FIELDS = [
    ("unlock", "name", STR_WRONG + [""], "bad_request"),
    ("unlock", "cipher", STR_WRONG, "bad_request"),
    ("unlock", "secret", SECRET_WRONG, "bad_secret"),
    ("unlock", "iter", INT_WRONG, "bad_request"),
    ("unlock", "ttl", INT_WRONG, "bad_request"),
    ("forget", "name", STR_WRONG, "bad_request"),
    ("count", "files", LIST_WRONG + [[1], [True], [None], [["x"]], [{}], [EXT], [1.5]], "bad_request"),
    ("count", "terms", LIST_WRONG + [[1], [True], [None], [["x"]], [{}], [EXT], [""], [b""]], "bad_request"),
    ("count", "key", STR_WRONG, "bad_request"),
    ("count", "keys", LIST_WRONG + [[1], [b"bin"], [None], [["x"]]], "bad_request"),
    ("count", "cipher", STR_WRONG, "bad_request"),
    ("count", "ignore_case", BOOL_WRONG, "bad_request"),
    ("count", "whole_word", BOOL_WRONG, "bad_request"),
    ("count", "offsets", BOOL_WRONG, "bad_request"),
    ("count", "words", BOOL_WRONG, "bad_request"),
    ("count", "ordered", BOOL_WRONG, "bad_request"),
    ("count", "max_offsets", INT_WRONG, "bad_request"),
    ("count", "context", INT_WRONG, "bad_request"),
    ("count", "iter", INT_WRONG, "bad_request"),
    ("count", "ttl", INT_WRONG, "bad_request"),
    ("cancel", "target", [True, 1.5, [], {}, b"x", EXT], "bad_request"),
]


def test_wrong_type_for_every_field_of_every_op(serve):
    rid = 100
    for op, field, wrongs, code in FIELDS:
        for value in wrongs:
            rid += 1
            req = dict(BASE[op], id=rid)
            req[field] = value
            if op == "count" and field == "secret":
                req["cipher"] = "openssl"
            r = serve.one(req)
            assert r["type"] == "error", (op, field, value, r)
            assert r["code"] == code, (op, field, value, r)
            assert r["id"] == rid
    # The op itself, and a missing op.
    for value in STR_WRONG + [None]:
        rid += 1
        r = serve.one({"id": rid, "op": value})
        assert (r["type"], r["code"], r["id"]) == ("error", "bad_request", rid), (value, r)
    # count's inline secret.
    for value in SECRET_WRONG:
        rid += 1
        r = serve.one({"id": rid, "op": "count", "files": [], "cipher": "openssl", "secret": value})
        assert (r["type"], r["code"]) == ("error", "bad_secret"), (value, r)
    # Required fields missing.
    for op, field in [("unlock", "name"), ("unlock", "cipher"), ("unlock", "secret"), ("forget", "name"),
                      ("count", "files"), ("cancel", "target")]:
        rid += 1
        req = dict(BASE[op], id=rid)
        del req[field]
        r = serve.one(req)
        assert (r["type"], r["code"]) == ("error", "bad_request"), (op, field, r)


# -- negative and huge integers


@pytest.mark.parametrize("rid", [-1, -(2**63), 1.0, True, None, [1], {"a": 1}, EXT])
def test_unreadable_ids_get_a_nil_id(serve, rid):
    serve.send(({"op": "hello"} if rid is None else {"id": rid, "op": "hello"}))
    r = serve.recv()
    assert (r["type"], r["code"], r["id"]) == ("error", "bad_request", None)


@pytest.mark.parametrize("rid", [0, 2**64 - 1, 2**32, "", "x" * 10_000, b"\xff\xfe".decode("latin-1")])
def test_extreme_ids_are_echoed(serve, rid):
    r = serve.one({"id": rid, "op": "hello"})
    assert r["type"] == "hello" and r["id"] == rid


@pytest.mark.parametrize(
    "field,value,ok",
    [
        ("max_offsets", -1, False),
        ("max_offsets", 2**31, False),
        ("max_offsets", 2**64 - 1, False),
        ("max_offsets", -(2**63), False),
        ("max_offsets", 2**31 - 1, True),
        ("max_offsets", 0, True),
        ("context", -1, False),
        ("context", 101, False),
        ("context", 2**64 - 1, False),
        ("context", 100, True),
        ("iter", 0, False),
        ("iter", -1, False),
        ("iter", 2**64 - 1, False),
        ("iter", 100_000_001, False),
        ("iter", 100_000_000, True),
        ("iter", 1, True),
        ("ttl", -1, False),
        ("ttl", 2**64 - 1, False),
        ("ttl", -(2**63), False),
        ("ttl", 2**31 - 1, True),
        ("ttl", 0, True),
    ],
)
def test_integer_ranges(serve, tmp_path, field, value, ok):
    cipher = {"iter": "openssl", "ttl": "fernet"}.get(field, "plain")
    secret = {"openssl": "pw", "fernet": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="}.get(cipher)
    req = {"id": 1, "op": "count", "files": [], "cipher": cipher, field: value}
    if secret:
        req["secret"] = secret
    r = serve.one(req)
    if ok:
        assert r["type"] == "done", r
    else:
        assert (r["type"], r["code"], r["id"]) == ("error", "bad_request", 1), r
    if cipher != "plain":
        u = serve.one({"id": 2, "op": "unlock", "name": "k", "cipher": cipher, "secret": secret, field: value})
        assert u["type"] == ("ok" if ok else "error"), u


@pytest.mark.parametrize("target", [-1, -(2**63), 2**64 - 1, "", "nope"])
def test_cancel_of_any_target_is_ok(serve, target):
    assert serve.one({"id": 1, "op": "cancel", "target": target})["type"] == "ok"


# -- an id reused while in flight


def test_id_reused_while_in_flight(tmp_path):
    files = []
    for i in range(3000):
        p = tmp_path / f"f{i}.txt"
        p.write_bytes(b"abc " * 500)
        files.append(str(p))
    with Serve("--workers", "1") as s:
        burst = [
            {"id": "busy", "op": "count", "files": files, "terms": ["abc"]},
            {"id": "busy", "op": "count", "files": files[:1]},
            {"id": "busy", "op": "hello"},
            {"id": "busy", "op": "unlock", "name": "k", "cipher": "openssl", "secret": "x"},
            {"id": "busy", "op": "cancel", "target": "nothing"},
            {"id": "busy", "op": "nonsense"},  # a bad frame with an in-flight id: duplicate_id
            {"id": "other", "op": "hello"},
        ]
        s.send_raw(b"".join(frame(pack(r)) for r in burst))
        out = []
        while True:
            r = s.recv()
            out.append(r)
            if r["type"] == "done":
                break
        while sum(1 for r in out if r["type"] in ("error", "hello")) < 6:
            out.append(s.recv())
        errors = [r for r in out if r["type"] == "error"]
        assert [e["code"] for e in errors] == ["duplicate_id"] * 5
        assert all(e["id"] == "busy" for e in errors)
        assert any(r["type"] == "hello" and r["id"] == "other" for r in out)
        d = check_count_done([r for r in out if r["type"] in ("file", "done")], "busy", len(files))
        assert d["files"] == 3000 and d["counts"] == [3000 * 500]
        # Once done, the id is free again.
        assert s.one({"id": "busy", "op": "hello"})["type"] == "hello"


# -- a million files


def test_a_million_files(tmp_path):
    n = 1_000_000
    files = [f"nf/{i:07d}" for i in range(n)]  # relative, never existing: not_found
    with Serve("--workers", "2", cwd=str(tmp_path)) as s:
        start = time.monotonic()
        s.send({"id": 1, "op": "count", "files": files, "terms": ["x"]})
        seen = bytearray(n)
        done = None
        while done is None:
            r = s.recv(timeout=120)
            if r["type"] == "file":
                i = r["index"]
                assert r["path"] == files[i] and r["error"]["code"] == "not_found"
                assert not seen[i]
                seen[i] = 1
            else:
                done = r
        elapsed = time.monotonic() - start
        assert done["type"] == "done" and done["files"] == n and done["failed"] == n and done["skipped"] == 0
        assert all(seen)
        hwm_mib = status_kib(s.pid, "VmHWM") / 1024
        print(f"a million not_found files: {elapsed:.1f} s, VmHWM {hwm_mib:.0f} MiB")
        assert hwm_mib < 1024, "memory is not bounded by the request"
        assert s.hello_ok()


# -- a 1 MiB term


def test_a_one_mib_term(tmp_path):
    term = os.urandom(1 << 19).hex().encode()  # 1 MiB
    p = tmp_path / "big.txt"
    p.write_bytes(b"x" + term + b"y" + term + b"z")
    with Serve() as s:
        r = s.one({"id": 1, "op": "count", "files": [str(p)], "terms": [term]})
        assert (r["type"], r["code"]) == ("error", "bad_request")
        assert "--max-term-bytes" in r["message"]
    with Serve("--max-term-bytes", str(2 << 20)) as s:
        rs = s.request({"id": 1, "op": "count", "files": [str(p)], "terms": [term, b"xy"]})
        assert rs[0]["counts"] == [2, 0]
        assert rs[-1]["type"] == "done" and rs[-1]["counts"] == [2, 0]


# -- paths with NUL bytes


def test_paths_with_nul_bytes(tmp_path):
    real = tmp_path / "real.txt"
    real.write_bytes(b"needle")
    paths = [str(real) + "\x00.txt", (str(real) + "\x00").encode(), "\x00", b"\x00" + str(real).encode(), str(real)]
    with Serve() as s:
        rs = s.request({"id": 1, "op": "count", "files": paths, "terms": ["needle"], "ordered": True})
        files = [r for r in rs if r["type"] == "file"]
        assert [f["path"] for f in files] == paths  # echoed back, same type and bytes
        assert [f.get("error", {}).get("code") for f in files] == ["not_found"] * 4 + [None]
        assert files[4]["counts"] == [1]
        assert rs[-1]["failed"] == 4
