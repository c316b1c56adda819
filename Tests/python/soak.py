#!/usr/bin/env python3
"""`make soak`: one `cryptcount serve` under a long mixed load (not collected by pytest).

A writer thread sends concurrent count requests over plain, fernet, openssl, age and openpgp
(gpg -c: binary and armored, compressed or not; when gpg is installed) files
(inline secrets and named keys), cancels some of them, and mixes in hostile frames, unlock,
forget, hello and stats; a reader thread checks every response. At the end: exactly one
terminal response per frame, files + skipped == len(files) for every count, the process
alive, and a flat RSS (sampled after a warm-up and at the end).

    python3 Tests/python/soak.py --seconds 180     (CRYPTCOUNT_BIN: the binary to soak)
"""

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cc_harness import TERMINAL, Serve, frame, pack  # noqa: E402

WORDS = b"the cat sat on the mat while a dog barked at the moon and nothing else happened".split()


def make_corpus(d, rng):
    from cryptography.fernet import Fernet
    import pyrage

    fkey = Fernet.generate_key()
    ident = pyrage.x25519.Identity.generate()
    files = {"plain": [], "fernet": [], "openssl": [], "age": [], "openpgp": []}
    gpg = shutil.which("gpg")
    home = os.path.join(d, "gnupg")
    if gpg:
        os.mkdir(home, 0o700)
    for i in range(400):
        body = b" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 3000)))
        p = os.path.join(d, f"p{i}.txt")
        with open(p, "wb") as f:
            f.write(body)
        files["plain"].append(p)
        if i < 150:
            q = os.path.join(d, f"f{i}.token")
            with open(q, "wb") as f:
                f.write(Fernet(fkey).encrypt(body))
            files["fernet"].append(q)
        if i < 60:
            q = os.path.join(d, f"a{i}.age")
            with open(q, "wb") as f:
                f.write(pyrage.encrypt(body, [ident.to_public()]))
            files["age"].append(q)
        if i < 40:
            q = os.path.join(d, f"o{i}.bin")
            subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "1000", "-pass", "pass:soak",
                            "-in", p, "-out", q], check=True)
            files["openssl"].append(q)
        if i < 40 and gpg:
            # A low S2K count keeps the soak about the engine; the variants cover the fast path's
            # in-memory, streamed-armor and librnp-unpacked (compressed) cases.
            armor = ["--armor"] if i % 3 == 0 else []
            q = os.path.join(d, f"g{i}.{'asc' if armor else 'gpg'}")
            subprocess.run([gpg, "--homedir", home, "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback",
                            "--passphrase-fd", "0", "--s2k-count", "1024", "--compress-algo",
                            ("none", "zlib", "zip", "bzip2")[i % 4], *armor, "-c", "-o", q, p],
                           input=b"soak\n", check=True, capture_output=True)
            files["openpgp"].append(q)
    if gpg:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
    secrets = {"fernet": fkey.decode(), "age": str(ident), "openssl": "soak", "openpgp": "soak"}
    return files, secrets


def hostile(rng):
    choice = rng.randrange(9)
    if choice == 0:
        return b"\x00\x00\x00\x00"
    if choice == 1:
        return frame(bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))))
    if choice == 2:
        return frame(b"\xdd\xff\xff\xff\xff")
    if choice == 3:
        return frame(b"\x91" * 5000 + b"\xc0")
    if choice == 4:
        return frame(pack({"id": -5, "op": "hello"}))
    if choice == 5:
        return frame(pack({"id": "x", "op": "hello"}) + b"\x00")
    if choice == 6:
        return frame(pack({"op": "count", "files": 7}))
    if choice == 7:
        n = (1 << 20) + 10
        return struct.pack(">I", n) + b"\x00" * n  # oversize for --max-frame 1 MiB
    return frame(pack([1, 2, 3]))


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Condition()
        self.frames_sent = 0
        self.terminals = 0
        self.counts = {}  # id -> number of files (in flight)
        self.file_responses = {}
        self.finished_counts = 0
        self.files_done = 0
        self.cancels = 0
        self.cancelled = 0
        self.hostile = 0
        self.errors = []
        self.final_stats = None
        self.next_id = 0

    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)

    def reader(self, s):
        while True:
            try:
                r = s.recv(timeout=120)
            except Exception as e:  # noqa: BLE001
                self.fail(f"reading: {e!r}")
                return
            if r is None:
                return
            t, rid = r.get("type"), r.get("id")
            with self.lock:
                if t in ("file", "files"):
                    if rid not in self.counts:
                        self.errors.append(f"a {t} response for {rid!r}, not in flight")
                    n = 1
                    if t == "files":  # the opt-in batch key: whole `file` responses, grouped
                        results = r.get("results") or []
                        if not results or any(
                                x.get("type") != "file" or x.get("id") != rid for x in results):
                            self.errors.append(f"a malformed files response {r!r}")
                        n = len(results)
                    self.file_responses[rid] = self.file_responses.get(rid, 0) + n
                    continue
                if t not in TERMINAL:
                    self.errors.append(f"unknown response type {r!r}")
                    continue
                self.terminals += 1
                if t == "stats" and rid == "final-stats":
                    self.final_stats = r
                if t == "done":
                    n = self.counts.pop(rid, None)
                    got = self.file_responses.pop(rid, 0)
                    if n is None:
                        self.errors.append(f"done for {rid!r}, not in flight")
                    elif r["files"] != got or r["files"] + r["skipped"] != n:
                        self.errors.append(f"done for {rid!r}: {r} with {got} file responses of {n}")
                    self.finished_counts += 1
                    self.files_done += r["files"]
                    self.cancelled += bool(r["cancelled"])
                elif t == "error" and rid in self.counts and r["code"] != "duplicate_id":
                    # A count refused before it started (busy, a bad key...): never in flight.
                    self.counts.pop(rid)
                    self.file_responses.pop(rid, None)
                self.lock.notify_all()

    def new_id(self):
        self.next_id += 1
        return self.next_id if self.next_id % 2 else f"q{self.next_id}"

    def count_request(self, files, secrets):
        rng = self.rng
        cipher = rng.choice(["plain", "plain", "fernet", "age", "openssl", "openpgp", "auto"])
        if not files[cipher if cipher != "auto" else "plain"]:
            cipher = "plain"
        req = {"op": "count", "terms": rng.sample(["the", "cat", "moon", "dog", "xyz", "a"], rng.randint(1, 4)),
               "ignore_case": rng.random() < 0.3, "whole_word": rng.random() < 0.3, "words": rng.random() < 0.3,
               "ordered": rng.random() < 0.3}
        if rng.random() < 0.3:
            req["batch"] = rng.choice([2, 7, 64])
        if rng.random() < 0.2:
            req.update(offsets=True, max_offsets=rng.randint(0, 50), context=rng.randint(0, 3))
        if cipher == "auto":
            pool = files["plain"] + files["fernet"] + files["age"] + files["openssl"] + files["openpgp"]
            req.update(cipher="auto", keys=["k-fernet", "k-age", "k-openssl", "k-openpgp"])
        else:
            pool = files[cipher]
            if cipher != "plain":
                if rng.random() < 0.5:
                    req["key"] = "k-" + cipher
                else:
                    req.update(cipher=cipher, secret=secrets[cipher])
                    if cipher == "openssl":
                        req["iter"] = 1000
        n = rng.choice([1, 5, 50, 200, len(pool)])
        req["files"] = [rng.choice(pool) for _ in range(n)] + (["missing"] if rng.random() < 0.1 else [])
        return req

    def send(self, s, data, count_files=None, rid=None):
        with self.lock:
            if count_files is not None:
                self.counts[rid] = count_files
            self.frames_sent += 1
        s.send_raw(data)

    def run(self):
        args = self.args
        with tempfile.TemporaryDirectory() as d:
            files, secrets = make_corpus(d, self.rng)
            s = Serve("--workers", str(args.workers), "--max-frame", str(1 << 20), "--cache-mb", "32",
                      "--max-in-flight", "24", stderr_to=subprocess.DEVNULL)
            with s:
                for cipher in ("fernet", "age", "openssl", "openpgp"):
                    extra = {"iter": 1000} if cipher == "openssl" else {}
                    r = s.one(dict({"id": f"u-{cipher}", "op": "unlock", "name": "k-" + cipher, "cipher": cipher,
                                    "secret": secrets[cipher]}, **extra))
                    assert r["type"] == "ok", r
                reader = threading.Thread(target=self.reader, args=(s,), daemon=True)
                reader.start()
                start = time.monotonic()
                warm = start + min(20.0, args.seconds / 6)
                rss_start = None
                rss_samples = []
                requests = 0
                while time.monotonic() - start < args.seconds and not self.errors:
                    now = time.monotonic()
                    if rss_start is None and now >= warm:
                        rss_start = s.rss_kib()
                    if rss_start is not None and len(rss_samples) < (now - warm) / 5:
                        rss_samples.append(s.rss_kib())
                    with self.lock:
                        while len(self.counts) >= 16 and not self.errors:
                            self.lock.wait(1)
                        inflight = list(self.counts)
                    x = self.rng.random()
                    if x < 0.55:
                        rid = self.new_id()
                        req = self.count_request(files, secrets)
                        req["id"] = rid
                        self.send(s, frame(pack(req)), len(req["files"]), rid)
                    elif x < 0.65 and inflight:
                        self.cancels += 1
                        self.send(s, frame(pack({"id": self.new_id(), "op": "cancel",
                                                 "target": self.rng.choice(inflight)})))
                    elif x < 0.85:
                        self.hostile += 1
                        self.send(s, hostile(self.rng))
                    elif x < 0.9:
                        self.send(s, frame(pack({"id": self.new_id(), "op": self.rng.choice(["hello", "stats"])})))
                    elif x < 0.95:
                        rid = self.new_id()
                        self.send(s, frame(pack({"id": rid, "op": "unlock", "name": "tmp", "cipher": "fernet",
                                                 "secret": secrets["fernet"]})))
                    else:
                        self.send(s, frame(pack({"id": self.new_id(), "op": "forget", "name": "tmp"})))
                    requests += 1
                    if self.rng.random() < 0.05:
                        time.sleep(0.01)
                # Let everything finish.
                deadline = time.monotonic() + 120
                with self.lock:
                    while self.terminals < self.frames_sent and time.monotonic() < deadline and not self.errors:
                        self.lock.wait(1)
                rss_end = s.rss_kib()
                alive = s.alive()
                # The plaintext cache's bytes then: RSS may grow by up to its 32 MiB budget.
                self.send(s, frame(pack({"id": "final-stats", "op": "stats"})))
                stats_deadline = time.monotonic() + 30
                with self.lock:
                    while (self.final_stats is None and self.terminals < self.frames_sent and not self.errors
                           and time.monotonic() < stats_deadline):
                        self.lock.wait(1)
                self.send(s, frame(pack({"id": "bye", "op": "shutdown"})))
                reader.join(30)
                status = s.wait(10)
            elapsed = time.monotonic() - start
        rss_start = rss_start or rss_end
        print(f"soak: {elapsed:.0f} s, {self.frames_sent} frames ({self.finished_counts} counts, "
              f"{self.files_done} files, {self.cancels} cancels, {self.cancelled} cancelled, "
              f"{self.hostile} hostile), terminals {self.terminals}")
        cache = (self.final_stats or {}).get("cache") or {}
        if rss_samples:
            # A leak climbs to the end; the allocator's high-water marks level off.
            picks = [rss_samples[min(len(rss_samples) - 1, k * len(rss_samples) // 5)] for k in range(5)]
            print("soak: RSS every fifth of the run: " + ", ".join(f"{x / 1024:.1f}" for x in picks) + " MiB")
        print(f"soak: RSS {rss_start / 1024:.1f} MiB after warm-up -> {rss_end / 1024:.1f} MiB at the end "
              f"(max {max(rss_samples or [rss_end]) / 1024:.1f} MiB); plaintext cache then "
              f"{cache.get('bytes', 0) / 2**20:.1f} MiB in {cache.get('entries', 0)} entries")
        ok = True
        if self.errors:
            print("soak: FAILED:\n  " + "\n  ".join(self.errors[:20]))
            ok = False
        if self.terminals != self.frames_sent:
            print(f"soak: FAILED: {self.frames_sent} frames, {self.terminals} terminal responses")
            ok = False
        if not alive or status != 0:
            print(f"soak: FAILED: alive {alive}, exit status {status}")
            ok = False
        if rss_end > rss_start * 1.5 + 32 * 1024:
            print("soak: FAILED: RSS grew")
            ok = False
        print("soak: ok" if ok else "soak: FAILED")
        return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    print(f"soak: seed {args.seed}, {args.seconds:.0f} s")
    sys.exit(0 if Soak(args).run() else 1)


if __name__ == "__main__":
    main()
