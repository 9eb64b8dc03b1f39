"""Corpus build throughput (triples/s) on a large graph: all of WordNet 3.0 by default.

    python bench/bench_corpus.py                     # pull all of WordNet (stage pull.wordnet), then build
    python bench/bench_corpus.py --graph DIR [DIR..]  # any existing graph artifacts
    python bench/bench_corpus.py --roots dog.n.01     # a WordNet subset (quick check)

Prints the corpus stage's wall time and triples/s, and as a baseline measured in the same run the time to
just stream the same triples from the graph artifact (``kgllm.rdf.iter_graph``): the ratio says how much
the corpus stage costs per triple relative to reading it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KGLLM_PROGRESS", "0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", nargs="+", type=Path, help="existing graph artifact(s) instead of WordNet")
    ap.add_argument("--roots", nargs="*", default=[], help="WordNet roots (default: all of WordNet)")
    ap.add_argument("--workdir", type=Path, help="keep artifacts here (default: a temp dir)")
    args = ap.parse_args()

    from kgllm.rdf import iter_graph
    from kgllm.registry import run_stage

    work = args.workdir or Path(tempfile.mkdtemp(prefix="kgllm-bench-corpus-"))
    graphs = args.graph
    pull_s = None
    if not graphs:
        g = work / "wordnet"
        t0 = time.perf_counter()
        if not (g / "manifest.json").exists():
            run_stage("pull.wordnet", [], g, {"roots": args.roots})
        pull_s = time.perf_counter() - t0
        graphs = [g]

    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(1 for _ in iter_graph(graphs))
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    man = run_stage("corpus", graphs, work / "corpus", {})
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

    c = man.counts
    figures = {
        "graph": "all of WordNet 3.0" if not args.graph and not args.roots else
                 ("WordNet roots " + ",".join(args.roots) if not args.graph else ",".join(map(str, graphs))),
        "triples": n, "pull_s": round(pull_s, 1) if pull_s is not None else None,
        "read_s": round(read_s, 2), "corpus_s": round(build_s, 1),
        "corpus_triples_per_s": round(n / build_s), "read_triples_per_s": round(n / read_s),
        "corpus_vs_read_time_ratio": round(build_s / read_s, 1), "max_rss_gb": round(rss_gb, 2),
        # CPU seconds of this process: the honest figure on a shared machine (wall time includes waiting)
        "corpus_cpu_s": round(build_cpu, 1), "corpus_triples_per_cpu_s": round(n / build_cpu),
        "corpus_vs_read_cpu_ratio": round(build_cpu / max(read_cpu, 1e-9), 1),
        "load_average_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
        "documents": c["documents"], "sft_rows": c["sft_rows"], "dpo_rows": c["dpo_rows"],
        "pretrain_near_duplicates": c["pretrain_near_duplicates"], "leaks": c["leaks"],
    }
    print(json.dumps(figures, indent=2))
    print(f"corpus build: {figures['corpus_triples_per_s']:,} triples/s on {n:,} triples "
          f"({figures['corpus_vs_read_time_ratio']}x the time to stream them from the graph artifact)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
