"""Gzip level of graph shards: compression time and size per level on a real graph artifact.

GraphWriter writes shards at level 3 (kgllm/rdf.py). Baseline: level 5 (the previous setting) and level 6
(gzip's default), same data, same run. Default input: a full `pull.wordnet` artifact (pulled into
$KGLLM_BENCH_DIR/wordnet-all, default /tmp/kgllm-bench, when missing; bench_validate.py shares it).

Run: .venv/bin/python bench/bench_gzip.py [--graph DIR]
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
    args = ap.parse_args()
    graph = args.graph
    if graph is None:
        graph = Path(os.environ.get("KGLLM_BENCH_DIR", "/tmp/kgllm-bench")) / "wordnet-all"
        if not (graph / "manifest.json").exists():
            run_stage("pull.wordnet", [], graph, {})
    data = b"".join(gzip.open(f).read() for f in sorted((graph / "triples").glob("*.nt.gz")))
    print(f"{graph}: {len(data) / 1e6:.0f} MB of N-Triples")
    base = None
    for level in (5, 6, 1, 3):
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
