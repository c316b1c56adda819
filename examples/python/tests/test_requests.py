"""Single requests, request errors, per-file errors, paths and count options."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Dict, List

import pytest

import cryptcount
from _cc_support import freeze
from cryptcount import BinaryNotFound, Coprocess, CoprocessDied, FileResult, RequestError, biographer
from cryptcount._types import CountOptions


def test_hello_describes_the_server(cc: Coprocess) -> None:
    info = cc.hello()
    assert info["protocol"] == 1
    assert info["server"] == "cryptcount"
    assert info["version"] == cryptcount.__version__  # released together: one version
    assert "count" in info["ops"] and "biographer" in info["ciphers"]
    assert isinstance(cc.pid, int) and cc.pid > 0
    assert cc.server_info["max_frame"] == info["max_frame"]


def test_stats_is_a_dict(cc: Coprocess) -> None:
    s = cc.stats()
    assert {"uptime_us", "requests", "files", "in_flight", "workers", "cache"} <= set(s)


def test_counts_match_bytes_count(cc: Coprocess, plain_corpus: Dict[Path, bytes]) -> None:
    paths = list(plain_corpus)
    terms = ["rain", "the", b"a "]
    results = list(cc.count(paths, terms=terms))
    assert sorted(r.index for r in results) == list(range(len(paths)))
    for r in results:
        data = plain_corpus[paths[r.index]]
        assert r.path is paths[r.index]
        assert r.error is None and r.ok
        assert r.counts == [data.count(b"rain"), data.count(b"the"), data.count(b"a ")]
        assert r.bytes == len(data)


def test_summary_totals(cc: Coprocess, plain_corpus: Dict[Path, bytes]) -> None:
    paths = list(plain_corpus)
    q = cc.count(paths, terms=["sun"], words=True)
    results = list(q)
    s = q.summary
    assert s.files == len(paths) and s.failed == 0 and s.skipped == 0 and not s.cancelled
    assert s.counts == [sum(d.count(b"sun") for d in plain_corpus.values())]
    assert s.words == sum(len(d.split()) for d in plain_corpus.values())
    assert all(r.words == len(plain_corpus[paths[r.index]].split()) for r in results)
    assert s.elapsed_us >= 0


def test_summary_before_iterating_keeps_the_results(cc: Coprocess, plain_corpus: Dict[Path, bytes]) -> None:
    q = cc.count(list(plain_corpus), terms=["sun"])
    assert q.summary.files == len(plain_corpus)
    assert q.done
    assert len(list(q)) == len(plain_corpus)


def test_ordered_results_come_in_input_order(cc: Coprocess, plain_corpus: Dict[Path, bytes]) -> None:
    q = cc.count(list(plain_corpus), terms=["rain"], ordered=True)
    assert [r.index for r in q] == list(range(len(plain_corpus)))


def test_empty_file_list(cc: Coprocess) -> None:
    q = cc.count([], terms=["x"])
    assert list(q) == []
    assert q.summary.files == 0 and q.summary.counts == [0]


LINES = b"the cat sat on the mat\nthe end. The THE there\n"


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    p = tmp_path / "t.txt"
    p.write_bytes(LINES)
    return p


def test_offsets(cc: Coprocess, lines_file: Path) -> None:
    (r,) = cc.count([lines_file], terms=["the", "zebra"], offsets=True)
    assert r.counts == [4, 0]
    assert r.offsets == [[0, 15, 23, 40], []]
    assert not r.truncated
    (r,) = cc.count([lines_file], terms=["the"], offsets=True, max_offsets=2)
    assert r.counts == [4]
    assert r.offsets == [[0, 15]] and r.truncated


def test_snippets(cc: Coprocess, lines_file: Path) -> None:
    (r,) = cc.count([lines_file], terms=["the"], offsets=True, context=1)
    assert r.snippets == [["the cat", "on the mat", "the end.", "THE there"]]
    (r,) = cc.count([lines_file], terms=["the"], offsets=True)
    assert r.snippets is None  # no context, no snippets


def test_ignore_case(cc: Coprocess, lines_file: Path) -> None:
    (r,) = cc.count([lines_file], terms=["the", "CAT"], ignore_case=True)
    assert r.counts == [6, 1]


def test_whole_word(cc: Coprocess, lines_file: Path) -> None:
    (r,) = cc.count([lines_file], terms=["the"], whole_word=True)
    assert r.counts == [3]
    (r,) = cc.count([lines_file], terms=["the"], ignore_case=True, whole_word=True)
    assert r.counts == [5]


def test_words(cc: Coprocess, lines_file: Path) -> None:
    (r,) = cc.count([lines_file], words=True)
    assert r.counts == [] and r.words == len(LINES.split())


def test_paths_come_back_as_given(cc: Coprocess, tmp_path: Path) -> None:
    raw_name = b"caf\xe9-\xff.txt"  # not UTF-8
    raw_path = os.path.join(os.fsencode(tmp_path), raw_name)
    with open(raw_path, "wb") as f:
        f.write(b"rain rain")
    text_path = str(tmp_path / "plain.txt")
    Path(text_path).write_bytes(b"rain")
    path_obj = Path(text_path)
    surrogate_str = os.fsdecode(raw_path)  # str with surrogate escapes
    given = [raw_path, text_path, path_obj, surrogate_str]
    results = sorted(cc.count(given, terms=["rain"]), key=lambda r: r.index)
    assert [r.path for r in results] == given
    assert all(r.path is g for r, g in zip(results, given))
    assert [r.counts for r in results] == [[2], [1], [1], [2]]
    assert isinstance(results[0].path, bytes)


def test_unlock_count_forget(cc: Coprocess, tmp_path: Path) -> None:
    p = tmp_path / "s.bio"
    p.write_bytes(biographer.encrypt(b"Dear diary, rain again. rain!", "hunter2"))
    cc.unlock("diary", cipher="biographer", secret="hunter2")
    (r,) = cc.count([p], terms=["rain"], key="diary")
    assert r.counts == [2] and r.bytes == len(b"Dear diary, rain again. rain!")
    cc.forget("diary")
    with pytest.raises(RequestError) as e:
        list(cc.count([p], terms=["rain"], key="diary"))
    assert e.value.code == "unknown_key"


def test_inline_secret(cc: Coprocess, tmp_path: Path) -> None:
    p = tmp_path / "s.bio"
    p.write_bytes(biographer.encrypt(b"sun sun sun", b"pw"))
    (r,) = cc.count([p], terms=["sun"], cipher="biographer", secret="pw")
    assert r.counts == [3]


def test_secrets_with_surrogate_escapes_are_their_bytes_and_never_echoed(cc: Coprocess, tmp_path: Path) -> None:
    """A password read with os.fsdecode (bytes that are not UTF-8 as surrogate escapes) is sent as
    its bytes, as paths and terms are; a str that cannot be sent at all raises an error that holds
    neither the secret nor (as __context__) an exception that does."""
    p = tmp_path / "s.bio"
    p.write_bytes(biographer.encrypt(b"sun sun", b"pw-\xff"))
    escaped = os.fsdecode(b"pw-\xff")
    (r,) = cc.count([p], terms=["sun"], cipher="biographer", secret=escaped)
    assert r.counts == [2]
    cc.unlock("esc", cipher="biographer", secret=escaped)
    (r,) = cc.count([p], terms=["sun"], key="esc")
    assert r.counts == [2]
    for call in (
        lambda: cc.unlock("x", cipher="biographer", secret="SECRET-VALUE\ud800"),
        lambda: list(cc.count([p], terms=["sun"], cipher="biographer", secret="SECRET-VALUE\ud800")),
        lambda: list(cc.count([p], terms=["sun"], cipher="age", secret={"passphrase": "SECRET-VALUE\ud800"})),
        lambda: cc.unlock("x", cipher="fernet", secret=["a", "SECRET-VALUE\ud800"]),
    ):
        with pytest.raises(ValueError) as e:
            call()
        shown = repr(e.value) + str(e.value) + repr(e.value.__context__) + repr(e.value.__cause__)
        assert "SECRET-VALUE" not in shown
    assert cc.alive


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"key": "nope"}, "unknown_key"),
        ({"cipher": "rot13"}, "unknown_cipher"),
        ({"terms": [""]}, "bad_request"),
        ({"cipher": "biographer", "secret": ""}, "bad_secret"),
    ],
)
def test_request_errors_raise(cc: Coprocess, tmp_path: Path, kwargs: dict, code: str) -> None:
    kwargs.setdefault("terms", ["x"])
    q = cc.count([tmp_path / "whatever"], **kwargs)
    with pytest.raises(RequestError) as e:
        for _ in q:
            pass
    assert e.value.code == code and e.value.message
    with pytest.raises(RequestError):
        q.summary
    assert cc.hello()["protocol"] == 1  # still serving


def test_unlock_and_forget_errors(cc: Coprocess) -> None:
    with pytest.raises(RequestError) as e:
        cc.forget("never-unlocked")
    assert e.value.code == "unknown_key"
    with pytest.raises(RequestError) as e:
        cc.unlock("k", cipher="biographer", secret="")
    assert e.value.code == "bad_secret"
    assert "hunter" not in str(e.value)
    with pytest.raises(RequestError) as e:
        cc.unlock("k", cipher="no-such-cipher", secret="x")
    assert e.value.code == "unknown_cipher"


def test_per_file_errors_are_data(cc: Coprocess, tmp_path: Path) -> None:
    good = tmp_path / "good.bio"
    good.write_bytes(biographer.encrypt(b"rain", "right"))
    wrong = tmp_path / "wrong.bio"
    wrong.write_bytes(biographer.encrypt(b"rain and more rain", "other password"))
    not_bio = tmp_path / "short.bio"
    not_bio.write_bytes(b"12345")
    files = [good, tmp_path / "missing.bio", wrong, not_bio, tmp_path]
    q = cc.count(files, terms=["rain"], cipher="biographer", secret="right", ordered=True)
    results = list(q)
    codes = [r.error.code if r.error else None for r in results]
    assert codes == [None, "not_found", "decrypt_failed", "bad_format", "not_a_file"]
    assert results[0].counts == [1]
    assert all(r.error.message for r in results[1:] if r.error)
    s = q.summary
    assert (s.files, s.failed, s.counts) == (5, 4, [1])


def test_binary_not_found() -> None:
    with pytest.raises(BinaryNotFound):
        Coprocess(binary="/nonexistent/cryptcount")


def test_close_shuts_down_cleanly(binary: str) -> None:
    cc = Coprocess(binary)
    cc.close()
    assert cc.returncode == 0
    with pytest.raises(CoprocessDied):
        cc.stats()
    cc.close()  # idempotent


def test_alive_until_closed_or_killed(binary: str) -> None:
    cc = Coprocess(binary)
    assert cc.alive
    cc.close()
    assert not cc.alive and cc.closed
    with Coprocess(binary) as killed:
        os.kill(killed.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while killed.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not killed.alive and not killed.closed


def test_forget_with_a_timeout(binary: str) -> None:
    with Coprocess(binary) as cc:
        cc.unlock("k", cipher="biographer", secret="pw")
        cc.forget("k", timeout=10.0)
        with pytest.raises(RequestError) as e:
            cc.forget("k", timeout=10.0)
        assert e.value.code == "unknown_key"
        kill = freeze(cc.pid)  # stopped: no answer comes
        try:
            with pytest.raises(TimeoutError):
                cc.forget("k", timeout=0.2)
        finally:
            kill()


def test_count_options_never_show_the_secret() -> None:
    opts = CountOptions(cipher="biographer", secret="hunter2", extra={"batch": 4})
    assert "hunter2" not in repr(opts) and "<secret>" in repr(opts)
    msg, _ = opts.request(["/a"], ["rain"])
    assert msg["secret"] == "hunter2" and msg["batch"] == 4


def test_result_types(cc: Coprocess, tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"x")
    (r,) = cc.count([p], terms=["x"])
    assert isinstance(r, FileResult) and r.total == 1 and r.cached in (True, False)


def test_a_request_too_large_for_a_frame_is_refused_locally(binary: str, tmp_path: Path) -> None:
    with Coprocess(binary, args=("--max-frame", "4096")) as cc:
        assert cc.server_info["max_frame"] == 4096
        with pytest.raises(RequestError) as e:
            cc.count([str(tmp_path / ("x" * 100))] * 100, terms=["x"])
        assert e.value.code == "frame_too_large"
        p = tmp_path / "a.txt"
        p.write_bytes(b"xx")
        (r,) = cc.count([p], terms=["x"])  # the session is unharmed
        assert r.counts == [2]


def test_busy_is_a_request_error(binary: str, big_corpus: List[Path]) -> None:
    with Coprocess(binary, workers=1, args=("--max-in-flight", "1", "--cache-mb", "0")) as cc:
        with cc.count(big_corpus, terms=["rain"], cipher="biographer", secret="pw") as first:
            second = cc.count(big_corpus[:1], terms=["rain"], cipher="biographer", secret="pw")
            with pytest.raises(RequestError) as e:
                second.wait()
            assert e.value.code == "busy"
            assert first.summary.files == len(big_corpus)


def test_auto_says_which_cipher_it_recognised_also_for_failed_files(cc: Coprocess, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    (tmp_path / "a.token").write_bytes(Fernet(key).encrypt(b"rain and rain"))
    (tmp_path / "b.enc").write_bytes(b"Salted__" + bytes(24))  # openssl, and no openssl key given
    (tmp_path / "c.txt").write_bytes(b"rain")
    cc.unlock("f", cipher="fernet", secret=key)
    names = ["a.token", "b.enc", "c.txt", "missing"]
    results = list(cc.count([tmp_path / n for n in names], ["rain"], cipher="auto", keys=["f"], ordered=True))
    assert [(r.cipher, r.counts if r.ok else r.error.code) for r in results] == [
        ("fernet", [2]),
        ("openssl", "decrypt_failed"),
        ("plain", [1]),
        (None, "not_found"),
    ]
