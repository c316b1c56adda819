"""This machine's own ceilings, measured before the benchmarks so that rows bound by one of
them can say "x of the limit" (issue 14): `openssl speed` on one core, 16 KiB blocks, for
AES-256-CBC decryption, HMAC-SHA256 and ChaCha20-Poly1305, and one core's memory read
bandwidth (glibc's memchr over a buffer far larger than the caches, byte absent)."""

import re
import subprocess
import time

SPEED = {
    "aes-256-cbc-decrypt": ["-evp", "aes-256-cbc", "-decrypt"],
    "hmac-sha256": ["-hmac", "sha256"],
    "chacha20-poly1305": ["-evp", "chacha20-poly1305"],
}


def openssl_speed(args, seconds, elapsed=True):
    """Bytes per second on one core at 16 KiB blocks, or None when openssl is missing. With
    `elapsed=False`, per CPU-second (openssl counts its own CPU time: load does not lower it)."""
    try:
        out = subprocess.run(
            ["openssl", "speed", *(["-elapsed"] if elapsed else []), "-seconds", str(seconds), "-bytes", "16384",
             *args],
            capture_output=True, text=True, timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # The last line: "<name>   <n>k" in 1000s of bytes per second.
    for line in reversed(out.splitlines()):
        m = re.search(r"([0-9.]+)k\s*$", line)
        if m:
            return float(m.group(1)) * 1000
    return None


def memory_read(size=512 << 20, repeat=5):
    """One core's read bandwidth in bytes per second: memchr of an absent byte (bytes.find)."""
    buf = bytes(size)  # zero pages would be shared; write them so that they are real memory
    buf = bytearray(buf)
    for i in range(0, size, 4096):
        buf[i] = 1
    buf = bytes(buf)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        buf.find(b"\xff")
        best = min(best, time.perf_counter() - t0)
    return size / best


def measure(quick=False, log=lambda m: None):
    seconds = 1 if quick else 3
    limits = {name: openssl_speed(args, seconds) for name, args in SPEED.items()}
    limits["memory-read"] = memory_read()
    for name, v in limits.items():
        log(f"limit {name}: {'n/a' if v is None else f'{v / 1e9:.2f} GB/s'} (one core)")
    return limits


def describe(limits):
    return "; ".join(
        f"{name} {'n/a' if v is None else f'{v / 1e9:.2f} GB/s'}" for name, v in limits.items()
    )
