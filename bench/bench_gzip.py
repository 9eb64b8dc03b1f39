"""Gzip level of kgllm's compressed files: compression time and size per level on a real artifact.

Graph shards and JSONL artifacts are written at level 3 (``kgllm.artifacts.GZIP_LEVEL``). Baseline: level 5
(the shards' previous setting), level 6 (gzip's default) and level 9 (Python's default, which JSONL artifacts
used before), same data, same run. Default input: a full `pull.wordnet` artifact (pulled into
$KGLLM_BENCH_DIR/wordnet-all, default /tmp/kgllm-bench, when missing; bench_validate.py shares it).
``--jsonl FILE``: a JSONL artifact file instead (e.g. an index's ``lexicon/lexicon.jsonl.gz``).

Run: .venv/bin/python bench/bench_gzip.py [--graph DIR | --jsonl FILE]
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
import zlib
from pathlib import Path

from kgllm.registry import run_stage


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph", type=Path, help="a graph artifact (default: all of WordNet)")
    ap.add_argument("--jsonl", type=Path, help="a JSONL file (.gz or plain) instead of a graph artifact")
    args = ap.parse_args()
    graph = args.graph
    if args.jsonl is not None:
        opener = gzip.open if args.jsonl.suffix == ".gz" else open
        with opener(args.jsonl, "rb") as f:
            data = f.read()
        print(f"{args.jsonl}: {len(data) / 1e6:.0f} MB of JSONL")
        return levels(data)
    if graph is None:
        graph = Path(os.environ.get("KGLLM_BENCH_DIR", "/tmp/kgllm-bench")) / "wordnet-all"
        if not (graph / "manifest.json").exists():
            run_stage("pull.wordnet", [], graph, {})
    data = b"".join(gzip.open(f).read() for f in sorted((graph / "triples").glob("*.nt.gz")))
    print(f"{graph}: {len(data) / 1e6:.0f} MB of N-Triples")
    return levels(data)


def levels(data: bytes) -> int:
    base = None
    for level in (5, 6, 9, 1, 3):
        t = time.perf_counter()
        c = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container, as GzipFile writes
        size = len(c.compress(data) + c.flush())
        dt = time.perf_counter() - t
        base = base or dt
        print(f"  level {level}: {dt:5.2f} s  {len(data) / 1e6 / dt:6.1f} MB/s  {size / 1e6:6.1f} MB  "
              f"time vs level 5: {dt / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
