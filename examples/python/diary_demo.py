#!/usr/bin/env python3
"""The seed's workflow, through the cryptcount coprocess.

Writes a sample diary (a few hundred encrypted stories in the seed app's "biographer" format)
into a temporary folder, searches it for a word with the coprocess, shows the best-matching
stories and a few snippets, compares with a pure-Python search written the way the seed app did
it, and runs a second query to show the coprocess's plaintext cache.

    CRYPTCOUNT_BIN=.build/release/cryptcount python3 examples/python/diary_demo.py [--word rain]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from cryptcount import Coprocess, CryptCountError, FileResult, biographer  # noqa: E402

PEOPLE = ["Anna", "my brother", "Grandma", "Mr. Okafor", "the neighbours", "Lena", "Tomás", "the twins", "Priya"]
PLACES = [
    "the harbour", "the old library", "the market", "the station", "the lighthouse", "the café on Mill Street",
    "the allotment", "the river path", "the school gates", "the bakery",
]  # fmt: skip
WEATHER = [
    "It rained all morning", "The sun came out after lunch", "A cold wind came off the sea", "Fog sat on the hills",
    "It was warm and still", "Snow fell in big slow flakes", "Thunder rolled in the evening",
]  # fmt: skip
VERBS = ["walked to", "cycled past", "waited at", "got lost near", "had tea at", "ran into someone at", "sketched"]
FEELINGS = ["tired", "happy", "restless", "calm", "homesick", "hopeful", "annoyed", "grateful"]
THINGS = [
    "a letter", "the piano", "my notebook", "an umbrella", "the garden", "a train ticket", "old photographs",
    "a jar of honey", "the kite", "a library book",
]  # fmt: skip
RARE = [
    "A heron stood in the shallows, perfectly still.", "Someone was playing an accordion under the bridge.",
    "We watched the partial eclipse through a pinhole in a cereal box.", "Found a fossil on the beach today!",
    "The power went out and we played cards by candlelight.",
]  # fmt: skip
OPENERS = ["Dear diary,", "Another day.", "Quick note before bed.", "What a day!", "Morning pages:"]


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.04:
        return rng.choice(RARE)
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(WEATHER)}, so I {rng.choice(VERBS)} {rng.choice(PLACES)}."
    if kind == 1:
        return f"{rng.choice(PEOPLE).capitalize()} brought {rng.choice(THINGS)} and we talked for an hour."
    if kind == 2:
        return f"I felt {rng.choice(FEELINGS)} most of the day, and {rng.choice(FEELINGS)} by the evening."
    if kind == 3:
        return f"We {rng.choice(VERBS)} {rng.choice(PLACES)} with {rng.choice(PEOPLE)}; I forgot {rng.choice(THINGS)}."
    if kind == 4:
        return f"Note to self: fix {rng.choice(THINGS)} and write to {rng.choice(PEOPLE)}."
    return f"{rng.choice(WEATHER)}. {rng.choice(PEOPLE).capitalize()} said it reminded them of {rng.choice(PLACES)}."


def story(rng: random.Random, day: datetime.date, target_bytes: int = 5000) -> bytes:
    parts = [day.strftime("%A %d %B %Y"), "", rng.choice(OPENERS)]
    size = sum(len(p) + 1 for p in parts)
    while size < target_bytes:
        para = " ".join(sentence(rng) for _ in range(rng.randint(3, 7)))
        parts.append(para)
        size += len(para.encode()) + 1
    return ("\n".join(parts) + "\n").encode()


def write_diary(folder: Path, n: int, password: str, seed: int) -> List[Path]:
    rng = random.Random(seed)
    day = datetime.date(2016, 1, 1)
    paths = []
    for _ in range(n):
        day += datetime.timedelta(days=rng.randint(1, 3))
        path = folder / f"{day.isoformat()}.story"
        path.write_bytes(biographer.encrypt(story(rng, day), password, rng=rng))
        paths.append(path)
    return paths


def seed_style_search(paths: Sequence[Path], password: str, word: bytes) -> List[int]:
    """Per story, the number of occurrences, found the way the seed app did (pure Python)."""
    return [len(biographer.search_seed_style(p.read_bytes(), password, word)) for p in paths]


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--word", default="heron", help="the word to search for (default: heron)")
    ap.add_argument("--stories", type=int, default=300, help="how many stories to write (default: 300)")
    ap.add_argument("--subset", type=int, default=8, help="stories to search in pure Python for comparison")
    ap.add_argument("--password", default="hunter2")
    ap.add_argument("--seed", type=int, default=2016, help="random seed of the sample diary")
    ap.add_argument("--dir", type=Path, help="write the diary here instead of a temporary folder")
    ap.add_argument("--binary", help="the cryptcount executable (default: $CRYPTCOUNT_BIN, else PATH)")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="diary-") as tmp:
        folder = opts.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = write_diary(folder, opts.stories, opts.password, opts.seed)
        size = sum(p.stat().st_size for p in paths)
        print(f"Wrote {len(paths)} encrypted stories ({size / 1e6:.1f} MB on disk, biographer format) to {folder}")
        print(f"  ({fmt_seconds(time.perf_counter() - t0)}; e.g. {paths[0].name} ... {paths[-1].name})\n")
        try:
            return run(paths, opts)
        except CryptCountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


def run(paths: List[Path], opts: argparse.Namespace) -> int:
    word = opts.word
    with Coprocess(opts.binary) as cc:
        info = cc.server_info
        print(f"Started cryptcount {info.get('version')} (pid {cc.pid}, {info.get('workers')} workers)")
        cc.unlock("diary", cipher="biographer", secret=opts.password)
        print('Unlocked the diary as key "diary" (the password stays in the coprocess).\n')

        # 1. Search: counts, word totals and a few snippets, streamed as stories finish.
        t0 = time.perf_counter()
        q = cc.count(paths, terms=[word], key="diary", words=True, offsets=True, context=5, max_offsets=3)
        results: List[FileResult] = list(q)
        wall = time.perf_counter() - t0
        summary = q.summary
        failed = [r for r in results if r.error]
        hits = sorted((r for r in results if r.ok and r.counts[0]), key=lambda r: (-r.counts[0], r.index))
        print(f'Search for "{word}" in {summary.files} stories ({summary.words:,} words):')
        print(f"  found {summary.counts[0]} times in {len(hits)} stories; {len(failed)} stories failed")
        print("  top stories:")
        for r in hits[:5]:
            print(f"    {r.path.name:<20} {r.counts[0]:>3} x   ({r.words:,} words)")
        print("  snippets:")
        shown = 0
        for r in hits:
            for snippet in (r.snippets or [[]])[0][:1]:
                print(f"    {r.path.name}: ...{snippet}...")
                shown += 1
            if shown == 3:
                break
        if not shown and hits:
            first = hits[0]
            print(f"    (none sent by this coprocess; offsets in {first.path.name}: {(first.offsets or [[]])[0]})")
        print(f"  coprocess: {fmt_seconds(wall)} round trip ({summary.elapsed_us / 1000:.1f} ms inside the coprocess)\n")

        # 2. The seed's way: decrypt and search in pure Python, on a few stories only.
        subset = paths[: max(1, min(opts.subset, len(paths)))]
        t0 = time.perf_counter()
        seed_counts = seed_style_search(subset, opts.password, word.encode())
        seed_time = time.perf_counter() - t0
        ours = {r.index: r.counts[0] for r in results if r.ok}
        agree = all(seed_counts[i] == ours.get(i) for i in range(len(subset)))
        per_story = seed_time / len(subset)
        print(f"Pure Python, the seed's way: {len(subset)} stories in {fmt_seconds(seed_time)} "
              f"({fmt_seconds(per_story)} per story; all {len(paths)} would take ~{fmt_seconds(per_story * len(paths))})")
        print(f"  same counts as the coprocess on those stories: {'yes' if agree else 'NO'}")
        print(f"  speed-up: ~{per_story * len(paths) / max(wall, 1e-9):,.0f}x\n")

        # 3. A second query: the plaintexts are cached in the coprocess's memory now.
        t0 = time.perf_counter()
        q2 = cc.count(paths, terms=[word, "rain"], key="diary", ignore_case=True)
        again = list(q2)
        wall2 = time.perf_counter() - t0
        cached = sum(1 for r in again if r.cached)
        print(f'Second query ("{word}" and "rain", ignoring case): {fmt_seconds(wall2)}, '
              f"cached: true for {cached}/{len(again)} stories")
        print(f"  totals: {q2.summary.counts}")
        stats = cc.stats()
        cache = stats.get("cache", {})
        print(f"  coprocess cache: {cache.get('entries')} plaintexts, {int(cache.get('bytes', 0)) / 1e6:.1f} MB, "
              f"{cache.get('hits')} hits / {cache.get('misses')} misses")
        cc.forget("diary")
    print("\nForgot the key and closed the coprocess; nothing decrypted was written to disk.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
