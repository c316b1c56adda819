#!/usr/bin/env python3
"""`make fuzz`: runs every libFuzzer target, then the black-box fuzzer, for a bounded time.

FUZZ_SECONDS (default 240) is the total budget, shared evenly by the libFuzzer targets and the
black-box fuzzer. Inputs that crash or break an invariant are copied to
Tests/Fuzz/corpus-crashers/<target>/, where `make test` replays them (FuzzReplayTests).
The working corpora live in Fuzz/.corpus (not committed).
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(HERE, ".build", "release", "FuzzTarget")
TARGETS = ["request", "frames", "secret", "biographer", "biographer-v0", "fernet", "age", "openssl", "search",
           "jsonl", "openpgp", "gnupg-key", "regex"]
FIXTURES = {"fernet": "fernet_*", "age": "*.age", "openssl": "openssl_*", "openpgp": "openpgp_*",
            "gnupg-key": "gnupg_*.key"}
MAX_LEN = {"gnupg-key": 8192, "request": 4096, "frames": 8192, "secret": 512, "search": 4096, "jsonl": 4096,
           "regex": 4096}


def run_target(target, seconds):
    corpus = os.path.join(HERE, ".corpus", target)
    artifacts = os.path.join(HERE, ".artifacts", target) + "/"
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    for f in glob.glob(os.path.join(ROOT, "Tests", "Fixtures", "ciphers", FIXTURES.get(target, "-none-"))):
        shutil.copy(f, corpus)
    kept = os.path.join(ROOT, "Tests", "Fuzz", "corpus-crashers", target)
    for f in glob.glob(os.path.join(kept, "*")):
        shutil.copy(f, corpus)
    # Swift crash reports would outlive the crash and hold the pipe; libFuzzer reports it.
    env = dict(os.environ, CRYPTCOUNT_FUZZ_TARGET=target, CRYPTCOUNT_FUZZ_SEED_DIR=corpus, SWIFT_BACKTRACE="enable=no")
    args = [BIN, corpus, f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}", "-print_final_stats=1",
            "-rss_limit_mb=3072", "-timeout=20", f"-max_len={MAX_LEN.get(target, 200000)}"]
    before = set(os.listdir(artifacts))
    p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", p.stdout)
    cov = re.findall(r"cov: (\d+)", p.stdout)
    new = sorted(set(os.listdir(artifacts)) - before)
    found = []
    for name in new:
        os.makedirs(kept, exist_ok=True)
        shutil.copy(os.path.join(artifacts, name), os.path.join(kept, name))
        found.append(name)
    if p.returncode != 0 and not found:
        print(p.stdout[-3000:])
    elif found:
        print("\n".join(l for l in p.stdout.splitlines() if "ERROR" in l or "invariant" in l or "Fatal" in l)[:3000])
    return int(execs[-1]) if execs else 0, int(cov[-1]) if cov else 0, found, p.returncode


def main():
    total = int(os.environ.get("FUZZ_SECONDS", "240"))
    share = max(5, total // (len(TARGETS) + 1))
    if not os.path.exists(BIN):
        sys.exit(f"no fuzz binary at {BIN}: build it with `make fuzz`")
    failed = False
    for target in TARGETS:
        t0 = time.monotonic()
        execs, cov, found, rc = run_target(target, share)
        status = f"FOUND {len(found)}: {', '.join(found)}" if found else ("ok" if rc == 0 else f"exit {rc}")
        print(f"fuzz {target:14s} {execs:9d} executions, cov {cov:5d}, {time.monotonic() - t0:5.1f} s: {status}",
              flush=True)
        failed |= bool(found) or rc != 0
    env = dict(os.environ, CRYPTCOUNT_FUZZ_SECONDS=str(share))
    bb = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                         os.path.join(ROOT, "Tests", "python", "test_blackbox_fuzz.py")], env=env)
    failed |= bb.returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
