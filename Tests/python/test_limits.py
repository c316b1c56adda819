"""Limits (issue 7, item 3): each has a flag, a clear error and a test."""

import os
import time

from cc_harness import Serve, check_count_done, frame, pack, status_kib


def test_max_files(tmp_path):
    with Serve("--max-files", "10") as s:
        r = s.one({"id": 1, "op": "count", "files": ["x"] * 11})
        assert (r["type"], r["code"], r["id"]) == ("error", "bad_request", 1)
        assert "--max-files" in r["message"] and "10" in r["message"]
        d = s.request({"id": 2, "op": "count", "files": ["x"] * 10})[-1]
        assert d["type"] == "done" and d["files"] == 10


def test_max_terms():
    with Serve("--max-terms", "3") as s:
        r = s.one({"id": 1, "op": "count", "files": [], "terms": ["a", "b", "c", "d"]})
        assert (r["code"], r["id"]) == ("bad_request", 1) and "--max-terms" in r["message"]
        assert s.one({"id": 2, "op": "count", "files": [], "terms": ["a", "b", "c"]})["type"] == "done"


def test_max_term_bytes():
    with Serve("--max-term-bytes", "8") as s:
        r = s.one({"id": 1, "op": "count", "files": [], "terms": ["ok", "123456789"]})
        assert (r["code"], r["id"]) == ("bad_request", 1) and "--max-term-bytes" in r["message"]
        assert s.one({"id": 2, "op": "count", "files": [], "terms": [b"12345678"]})["type"] == "done"


def test_max_file_size(tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    small = tmp_path / "small.token"
    small.write_bytes(Fernet(key).encrypt(b"tiny"))
    big = tmp_path / "big.token"
    big.write_bytes(Fernet(key).encrypt(b"word " * 1000))
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"word " * 1000)  # plain streams: no size limit
    with Serve("--max-file-size", "500") as s:
        assert s.one({"id": 0, "op": "hello"})["max_file_size"] == 500
        rs = s.request({"id": 1, "op": "count", "files": [str(small), str(big)], "cipher": "fernet",
                        "secret": key.decode(), "terms": ["word"], "ordered": True})
        assert "error" not in rs[0] and rs[0]["bytes"] == 4
        assert rs[1]["error"]["code"] == "too_large" and "--max-file-size" in rs[1]["error"]["message"]
        rs = s.request({"id": 2, "op": "count", "files": [str(plain)], "terms": ["word"]})
        assert rs[0]["counts"] == [1000]


def test_max_in_flight(tmp_path):
    files = []
    for i in range(2000):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"a " * 1000)
        files.append(str(p))
    with Serve("--max-in-flight", "2", "--workers", "1") as s:
        burst = [
            {"id": 1, "op": "count", "files": files, "terms": ["a"]},
            {"id": 2, "op": "count", "files": files, "terms": ["a"]},
            {"id": 3, "op": "count", "files": files[:1], "terms": ["a"]},
            {"id": 4, "op": "hello"},  # only count requests are limited
        ]
        s.send_raw(b"".join(frame(pack(r)) for r in burst))
        out = []
        terminals = {}
        while len(terminals) < 4:
            r = s.recv()
            out.append(r)
            if r["type"] != "file":
                terminals[r["id"]] = r
        assert (terminals[3]["type"], terminals[3]["code"]) == ("error", "busy")
        assert "--max-in-flight" in terminals[3]["message"]
        assert terminals[4]["type"] == "hello"
        for rid in (1, 2):
            assert check_count_done(out, rid, len(files))["files"] == len(files)
        # Nothing in flight any more: accepted again.
        assert s.request({"id": 3, "op": "count", "files": files[:1], "terms": ["a"]})[-1]["type"] == "done"


def _queued_growth(tmp_path, files, mb):
    with Serve("--workers", "2", "--max-queued-mb", str(mb)) as s:
        assert s.hello_ok()
        before = s.rss_kib()
        s.send({"id": 1, "op": "count", "files": files, "terms": ["a"], "offsets": True})
        time.sleep(0.5)
        rss0 = s.rss_kib()
        time.sleep(2)  # the parent reads nothing
        rss1 = s.rss_kib()
        out = []
        while True:
            r = s.recv(timeout=120)
            out.append(r)
            if r["type"] != "file":
                break
        d = check_count_done(out, 1, len(files))
        assert d["files"] == len(files) and d["failed"] == 0
        assert all(len(r["offsets"][0]) == 500 for r in out[:-1])
        return before, rss0, rss1


def test_a_parent_that_stops_reading_does_not_grow_memory(tmp_path):
    # 20,000 files with 500 offsets each: about 30 MB of responses, far above the limit.
    files = []
    body = b"a " * 500
    for i in range(20_000):
        p = tmp_path / f"{i}"
        p.write_bytes(body)
        files.append(str(p))
    _, rss0, rss1 = _queued_growth(tmp_path, files, 1)
    print(f"--max-queued-mb 1: VmRSS {rss0} -> {rss1} KiB while the parent did not read")
    assert rss1 - rss0 < 8 * 1024, "queued responses grew without bound"
    assert rss1 < 120 * 1024
    # The measurement can see growth: with the limit out of the way, the queue grows. From
    # before the request: a fast machine may have queued every response within the first 0.5 s.
    big0, _, big1 = _queued_growth(tmp_path, files, 4096)
    print(f"--max-queued-mb 4096: VmRSS {big0} -> {big1} KiB")
    assert big1 - big0 > 4 * 1024


def test_a_response_over_max_frame_keeps_the_offsets_of_terms_with_few_matches(tmp_path):
    """A file response too big for `max_frame` is cut by capping every term's offsets (and
    snippets) at one number, halved from the longest list's length until it fits: a term with one
    match keeps its offset (halving every list used to empty it), the long list keeps a prefix,
    counts stay whole and `truncated` is true."""
    text = b"cat " * 5000 + b"dog\n"
    f = tmp_path / "f.txt"
    f.write_bytes(text)
    with Serve("--max-frame", "8192") as s:
        rs = s.request({"id": 1, "op": "count", "files": [str(f)], "terms": ["cat", "dog"], "offsets": True,
                        "max_offsets": 100000, "context": 1})
        r = next(x for x in rs if x["type"] == "file")
        assert r["counts"] == [5000, 1] and r["truncated"] is True
        cats, dogs = r["offsets"]
        assert dogs == [text.index(b"dog")] and r["snippets"][1] == ["cat dog"]
        assert 0 < len(cats) < 5000 and cats == [4 * i for i in range(len(cats))]
        assert len(r["snippets"][0]) == len(cats)
        assert rs[-1]["type"] == "done" and rs[-1]["counts"] == [5000, 1]
