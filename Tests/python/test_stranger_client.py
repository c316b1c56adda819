"""A new client, written from protocol/PROTOCOL.md and protocol/schema.json alone, as a stranger
to the project would: subprocess, struct and msgpack, nothing of the project's code. Where the
document states a rule (framing, ids, routing, auto, the biographer format, the exact snippet
rules), this file implements the rule from the text and checks the real server against it;
every response is also validated against the schema.
"""

import base64
import os
import random
import select
import struct
import subprocess
import sys
import time

import msgpack
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Golden"))
from schema_check import check_response  # noqa: E402

BIN = os.environ.get("CRYPTCOUNT_BIN", "")
if not BIN or not os.access(BIN, os.X_OK):
    pytest.skip("set CRYPTCOUNT_BIN to the built cryptcount binary (make test does)", allow_module_level=True)

TERMINAL = {"hello", "ok", "stats", "done", "error"}


class ProtocolFault(Exception):
    pass


class Client:
    """Section 10's rules: size check before sending, ids never reused while in flight, routing
    by (id type, id value), duplicate_id and id-nil errors handled as the page says."""

    def __init__(self, *args):
        self.p = subprocess.Popen([BIN, "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.buf = b""
        self.max_frame = 16 * 1024 * 1024
        self.in_flight = {}  # (type, id) -> list of non-terminal responses so far
        self.finished = {}  # (type, id) -> (responses, terminal)
        self.faults = []
        hello = self.call({"id": "hello", "op": "hello"})
        assert hello["type"] == "hello" and hello["protocol"] == 1
        self.max_frame = hello["max_frame"]

    @staticmethod
    def key(rid):
        return (type(rid).__name__, rid)

    def send(self, request):
        payload = msgpack.packb(request, use_bin_type=True)
        if len(payload) > self.max_frame:
            raise ValueError(f"request of {len(payload)} bytes exceeds max_frame {self.max_frame}: not sent")
        k = self.key(request["id"])
        if k in self.in_flight:
            raise ValueError(f"id {request['id']!r} is in flight")
        self.in_flight[k] = []
        self.p.stdin.write(struct.pack(">I", len(payload)) + payload)
        self.p.stdin.flush()
        return k

    def send_raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def _read(self, n, timeout):
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            assert left > 0, "no response in time"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=60):
        head = self._read(4, timeout)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        r = msgpack.unpackb(self._read(n, timeout), raw=False)
        check_response(r)
        return r

    def pump(self, timeout=60):
        """Reads and routes one response."""
        r = self.recv(timeout)
        assert r is not None, "stdout ended"
        rid = r["id"]
        if rid is None:
            self.faults.append(r)  # cannot be routed (section 10, rule 5)
            return r
        k = self.key(rid)
        if r["type"] == "error" and r["code"] == "duplicate_id":
            self.faults.append(r)  # answers the frame that reused the id, not the original
            return r
        assert k in self.in_flight, f"a response for {rid!r}, which is not in flight: {r}"
        if r["type"] in ("file", "files"):
            self.in_flight[k].extend(r["results"] if r["type"] == "files" else [r])
        else:
            assert r["type"] in TERMINAL
            self.finished[k] = (self.in_flight.pop(k), r)
        return r

    def wait(self, rid, timeout=60):
        k = self.key(rid)
        while k not in self.finished:
            self.pump(timeout)
        return self.finished.pop(k)

    def call(self, request):
        self.send(request)
        return self.wait(request["id"])[1]

    def count(self, request):
        self.send(request)
        files, done = self.wait(request["id"])
        return sorted(files, key=lambda f: f["index"]), done

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        while self.recv(10) is not None:
            pass
        return self.p.wait(10)


@pytest.fixture
def client():
    c = Client()
    yield c
    if c.p.poll() is None:
        assert c.close() == 0


# --- section 3, implemented from the text --------------------------------------------------------

def is_ws(b):
    return b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20)


def matches(text, term):
    """Non-overlapping, left to right: Python's bytes.count, with the starts."""
    out, i = [], text.find(term)
    while i >= 0:
        out.append(i)
        i = text.find(term, i + len(term))
    return out


def snippet(text, s, e, context, window=4096):
    lo, hi = max(0, s - window), min(len(text), e + window)
    a = s
    if not is_ws(text[s]):
        while a > lo and not is_ws(text[a - 1]):
            a -= 1
    for _ in range(context):
        b = a
        while b > lo and is_ws(text[b - 1]) and text[b - 1] != 0x0A:
            b -= 1
        if b == lo or text[b - 1] == 0x0A:
            break
        while b > lo and not is_ws(text[b - 1]):
            b -= 1
        a = b
    z = e
    if not is_ws(text[e - 1]):
        while z < hi and not is_ws(text[z]):
            z += 1
    for _ in range(context):
        b = z
        while b < hi and is_ws(text[b]) and text[b] != 0x0A:
            b += 1
        if b == hi or text[b] == 0x0A:
            break
        while b < hi and not is_ws(text[b]):
            b += 1
        z = b
    return text[a:z].decode("utf-8", "replace")


PIECES = [b"cat", b"dog", b"caf\xc3\xa9", b"x", b"the", b"\xff", b"\xe2\x82", b"a1_b", b"--", b"\x00"]
SPACES = [b" ", b"  ", b"\t", b"\r\n", b"\n", b"\n\n", b" \r ", b"\x0b", b"\x0c"]


def random_text(rng, n):
    out = [b""]
    for _ in range(n):
        out.append(rng.choice(PIECES))
        out.append(rng.choice(SPACES) if rng.random() < 0.8 else b"")
    return b"".join(out)


def test_counts_offsets_words_and_snippets_follow_the_text(client, tmp_path):
    rng = random.Random(16)
    for round_ in range(12):
        text = random_text(rng, rng.randint(0, 120))
        f = tmp_path / f"t{round_}.txt"
        f.write_bytes(text)
        terms = [b"cat", b"\n", b" ", b"\r\n", b"caf\xc3\xa9"]
        for _ in range(8):  # substrings, often starting or ending on whitespace
            if len(text) > 2:
                i = rng.randrange(len(text) - 1)
                terms.append(text[i:i + rng.randint(1, 6)])
        context = rng.randint(1, 4)
        max_offsets = rng.choice([0, 1, 3, 1000])
        files, done = client.count({"id": round_, "op": "count", "files": [str(f)], "terms": terms,
                                    "offsets": True, "context": context, "words": True,
                                    "max_offsets": max_offsets})
        (r,) = files
        assert r["bytes"] == len(text) and r["words"] == len(text.split()) == done["words"]
        truncated = False
        for i, term in enumerate(terms):
            starts = matches(text, term)
            assert r["counts"][i] == len(starts) == text.count(term), (term, text)
            assert r["offsets"][i] == starts[:max_offsets]
            truncated |= len(starts) > max_offsets
            want = [snippet(text, s, s + len(term), context) for s in starts[:max_offsets]]
            assert r["snippets"][i] == want, (term, text)
        assert r["truncated"] == truncated


def test_compact_results_as_the_page_describes_them(client, tmp_path):
    """PROTOCOL.md, compact file results: a counted file without offsets is [index, counts,
    bytes, cached] (words fifth when asked), inside `files` frames, with or without batch; a
    failed file is its map; offsets bring the map back."""
    rng = random.Random(23)
    texts = [random_text(rng, rng.randint(0, 80)) for _ in range(9)]
    paths = []
    for i, text in enumerate(texts):
        f = tmp_path / f"c{i}.txt"
        f.write_bytes(text)
        paths.append(str(f))
    paths.append(str(tmp_path / "absent.txt"))
    terms = [b"cat", b" ", b"the"]
    for rid, extra in enumerate([{}, {"words": True}, {"batch": 4}, {"batch": 4, "words": True, "ordered": True}]):
        client.send({"id": 100 + rid, "op": "count", "files": paths, "terms": terms, "compact": True, **extra})
        results, done = client.wait(100 + rid)
        assert done["type"] == "done" and done["files"] == len(paths) and done["failed"] == 1
        seen = set()
        for r in results:
            if isinstance(r, dict):
                assert r["type"] == "file" and r["index"] == len(paths) - 1 and r["error"]["code"] == "not_found"
                seen.add(r["index"])
                continue
            assert len(r) == (5 if extra.get("words") else 4), r
            index, counts, nbytes, cached = r[:4]
            text = texts[index]
            assert counts == [text.count(t) for t in terms] and nbytes == len(text) and cached is False
            if extra.get("words"):
                assert r[4] == len(text.split())
            seen.add(index)
        assert seen == set(range(len(paths)))
        if extra.get("ordered"):
            assert [r[0] if isinstance(r, list) else r["index"] for r in results] == list(range(len(paths)))
    client.send({"id": 200, "op": "count", "files": paths[:1], "terms": terms, "compact": True, "offsets": True})
    (r,), done = client.wait(200)
    assert isinstance(r, dict) and r["offsets"] == [matches(texts[0], t) for t in terms]


def test_whole_word_and_ignore_case_on_ascii_follow_the_text(client, tmp_path):
    """On ASCII text, Unicode \\w is [A-Za-z0-9_], simple case folding is ASCII lower-casing, and
    "skip a failed candidate, resume one character after its start" is a regex's finditer."""
    import re

    rng = random.Random(7)
    pieces = [b"cat", b"Cat", b"CAT", b"cats", b"_cat", b"cat9", b"a", b"at", b"c", b"-", b".", b"'"]
    for round_ in range(10):
        text = b"".join(rng.choice(pieces) + (rng.choice([b" ", b"\n", b""]) if rng.random() < 0.7 else b"")
                        for _ in range(rng.randint(0, 80)))
        f = tmp_path / f"w{round_}.txt"
        f.write_bytes(text)
        terms = [b"cat", b"at", b"a", b"cat cat", b"t-", b"c"]
        for whole_word in (False, True):
            for ignore_case in (False, True):
                files, _ = client.count({"id": 1, "op": "count", "files": [str(f)], "terms": terms, "offsets": True,
                                         "whole_word": whole_word, "ignore_case": ignore_case})
                for i, term in enumerate(terms):
                    pattern = re.escape(term)
                    if whole_word:
                        pattern = rb"(?<!\w)" + pattern + rb"(?!\w)"
                    want = [m.start() for m in re.finditer(pattern, text, re.IGNORECASE if ignore_case else 0)]
                    assert files[0]["offsets"][i] == want, (term, whole_word, ignore_case, text)


# --- section 6: the biographer format, implemented from the text ---------------------------------

def biographer_encrypt(plain, pw, v0=False, upper=False, iv=None):
    def hexb(b):
        h = b.hex().encode()
        return h.upper() if upper else h
    amount = sum(pw.hex().encode()) % 256
    if v0:
        c = bytearray(hexb(plain))
    else:
        iv = iv or bytes(random.randint(1, 254) for _ in range(8))
        c = bytearray(iv + hexb(hexb(hexb(hexb(plain)))))
        for i in range(8, len(c)):
            c[i] ^= c[i - 8]
    return bytes(((c[i] + amount) % 256) ^ pw[i % len(pw)] for i in range(len(c)))


@pytest.mark.parametrize("v0", [False, True])
def test_biographer_format_as_written(client, tmp_path, v0):
    cipher = "biographer-v0" if v0 else "biographer"
    text = "Dear diary, the café cat.\nThe cat again.".encode()
    pw = "pässword".encode()
    paths = []
    for n, (plain, upper) in enumerate([(text, False), (text, True), (b"", False)]):
        p = tmp_path / f"{n}.bio"
        p.write_bytes(biographer_encrypt(plain, pw, v0=v0, upper=upper))
        paths.append(str(p))
    files, done = client.count({"id": 1, "op": "count", "files": paths, "terms": ["cat", "café"],
                                "cipher": cipher, "secret": pw})
    assert [f["counts"] for f in files] == [[2, 1], [2, 1], [0, 0]]
    assert [f["bytes"] for f in files] == [len(text), len(text), 0]
    files, _ = client.count({"id": 2, "op": "count", "files": paths[:1], "terms": ["cat"], "cipher": cipher,
                             "secret": "wrong"})
    assert files[0]["error"]["code"] == "decrypt_failed"


# --- sections 2, 5 and 10: ids, routing, auto ---------------------------------------------------

def slow_openssl_file(tmp_path):
    """`Salted__`, a salt and two blocks: with a large `iter` the key derivation alone keeps a
    count request in flight for a while, whatever the data."""
    p = tmp_path / "slow.enc"
    p.write_bytes(b"Salted__" + os.urandom(8) + os.urandom(32))
    return str(p)


def test_ids_are_typed_and_duplicate_id_is_not_the_originals_answer(tmp_path):
    c = Client("--workers", "1")
    slow = slow_openssl_file(tmp_path)
    req = {"op": "count", "files": [slow], "terms": ["x"], "cipher": "openssl", "secret": "pw", "iter": 3000000}
    c.send({"id": 7, **req})
    # The same id while 7 is in flight: bypass the client's own guard, as a buggy client would.
    payload = msgpack.packb({"id": 7, "op": "hello"})
    c.send_raw(struct.pack(">I", len(payload)) + payload)
    assert c.call({"id": "7", "op": "hello"})["type"] == "hello"  # "7" is another id
    assert c.call({"id": 8, "op": "cancel", "target": "7"})["type"] == "ok"  # names nothing in flight
    assert [f["code"] for f in c.faults] == ["duplicate_id"] and c.faults[0]["id"] == 7
    assert c.key(7) in c.in_flight  # the error did not complete request 7
    assert c.call({"id": 9, "op": "cancel", "target": 7})["type"] == "ok"
    files, done = c.wait(7)
    assert done["type"] == "done" and done["cancelled"] is True
    assert done["files"] + done["skipped"] == 1 and len(files) == done["files"]
    assert c.close() == 0


def test_oversize_requests_are_not_sent_and_unreadable_frames_have_no_id(tmp_path):
    c = Client("--max-frame", "1024")
    assert c.max_frame == 1024
    with pytest.raises(ValueError):
        c.send({"id": 1, "op": "count", "files": ["f%04d" % i for i in range(200)]})
    c.send_raw(struct.pack(">I", 5000) + b"\x00" * 5000)  # what the check prevents
    c.pump()
    c.send_raw(struct.pack(">I", 1) + b"\xc1")  # not MessagePack
    c.pump()
    c.send_raw(struct.pack(">I", 3) + msgpack.packb([1, 2]))  # not a map
    c.pump()
    assert [(f["id"], f["code"]) for f in c.faults] == [
        (None, "frame_too_large"), (None, "bad_msgpack"), (None, "bad_request")]
    assert c.call({"id": 2, "op": "stats"})["type"] == "stats"  # still serving
    assert c.close() == 0


def test_op_missing_or_mistyped_and_cancel_of_nothing(client):
    assert client.call({"id": 1})["code"] == "bad_request"
    assert client.call({"id": 2, "op": 3})["code"] == "bad_request"
    assert client.call({"id": 3, "op": None})["code"] == "bad_request"
    assert client.call({"id": 4, "op": "HELLO"})["code"] == "unknown_op"
    assert client.call({"id": 5, "op": "cancel", "target": 12345})["type"] == "ok"
    assert client.call({"id": 6, "op": "cancel", "target": -3})["type"] == "ok"
    assert client.call({"id": 7, "op": "cancel", "target": 1.5})["code"] == "bad_request"
    assert client.call({"id": 8, "op": "count", "files": [], "context": 101})["code"] == "bad_request"
    assert client.call({"id": 9, "op": "count", "files": [], "context": 100})["type"] == "done"


def test_auto_reports_the_cipher_on_every_file_it_could_sniff(client, tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    token = tmp_path / "a.fernet"
    token.write_bytes(Fernet(key).encrypt(b"one cat, two cats") + b"\n")
    plain = tmp_path / "b.txt"
    plain.write_bytes(b"a cat")
    salted = tmp_path / "c.enc"
    salted.write_bytes(b"Salted__" + bytes(24))
    missing = str(tmp_path / "missing")
    bio = tmp_path / "d.bio"
    # A fixed iv: about one random iv in 2,650 makes the first bytes look like an OpenPGP packet.
    bio.write_bytes(biographer_encrypt(b"cat", b"pw", iv=bytes(range(1, 9))))
    assert client.call({"id": 1, "op": "unlock", "name": "f", "cipher": "fernet", "secret": key})["type"] == "ok"
    assert client.call({"id": 2, "op": "unlock", "name": "b", "cipher": "biographer", "secret": "pw"})["type"] == "ok"
    files, done = client.count({"id": 3, "op": "count", "cipher": "auto", "keys": ["f"], "terms": ["cat"],
                                "files": [str(token), str(plain), str(salted), missing, str(bio)]})
    got = [(f.get("cipher"), f.get("counts"), f.get("error", {}).get("code")) for f in files]
    assert got == [("fernet", [2], None), ("plain", [1], None), ("openssl", None, "decrypt_failed"),
                   (None, None, "not_found"), ("plain", [0], None)]
    assert done["failed"] == 2 and done["counts"] == [3]
    for bad in ({"keys": ["f", "b"]}, {"key": "f", "keys": ["f"]}, {"keys": ["f"], "cipher": "fernet"}):
        r = client.call({"id": 4, "op": "count", "files": [], "cipher": "auto", **bad})
        assert r["code"] == "bad_request", bad
    # `keys` alone means auto.
    files, _ = client.count({"id": 5, "op": "count", "keys": ["f"], "files": [str(token)], "terms": ["cat"]})
    assert files[0]["cipher"] == "fernet"


def test_paths_and_ids_are_echoed_with_their_type(client, tmp_path):
    name = bytes(tmp_path) + b"/caf\xe9"  # not UTF-8: sent as bin
    with open(name, "wb") as f:
        f.write(b"cat")
    files, _ = client.count({"id": "é", "op": "count", "files": [name, str(tmp_path / "nope")], "terms": [b"cat"]})
    assert files[0]["path"] == name and isinstance(files[0]["path"], bytes)
    assert files[1]["path"] == str(tmp_path / "nope")
    assert base64.b64encode(name)  # (bin survives the schema check's $bin rendering too)
