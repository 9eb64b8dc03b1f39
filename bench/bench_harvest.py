"""Harvest throughput: ``kgllm.pull.sparql.harvest`` against one raw CONSTRUCT with the cap lifted.

Takes: nothing (``--triples N``, default 200,000; ``--repeat R``, default 2, best run counted).
Makes: printed figures. Two private Virtuoso servers (tests/virtuoso.py) are loaded with the same
generated graph: one keeps the default ResultSetMaxRows = 10,000 (as DBpedia does) and is harvested
the way users harvest, ordered pages under the cap, retries armed, checkpoint after every page, COUNT
check and the final graph artifact; the other has the cap lifted and serves the baseline, a single
HTTP CONSTRUCT of the whole graph read and parsed (pyoxigraph) in one go. Both figures are triples/s
measured in the same run; the result is their ratio (target >= 0.5).

    .venv/bin/python bench/bench_harvest.py [--triples 200000] [--repeat 2] [--order ordered]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KGLLM_PROGRESS", "0")

from virtuoso import Virtuoso  # noqa: E402

from kgllm.pull.sparql import HarvestConfig, harvest  # noqa: E402
from kgllm.rdf import RDFS_LABEL  # noqa: E402

GRAPH = "http://kgllm.bench/graph"
QUERY = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"


def generate(path: Path, n: int) -> None:
    """n distinct triples shaped like an entity graph: labels, string attributes, links."""
    ents = max(1, n // 5)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            s = f"<http://kgllm.bench/e/{i // 5}>"
            k = i % 5
            if k == 0:
                f.write(f'{s} {RDFS_LABEL} "entity number {i // 5}"@en .\n')
            elif k == 1:
                f.write(f'{s} <http://kgllm.bench/p/code> "C-{i:09d}" .\n')
            else:
                f.write(f"{s} <http://kgllm.bench/p/link{k}> <http://kgllm.bench/e/{(i * 7919) % ents}> .\n")


def raw_construct(endpoint: str) -> int:
    import pyoxigraph

    url = f"{endpoint}?{urllib.parse.urlencode([('query', QUERY), ('default-graph-uri', GRAPH)])}"
    req = urllib.request.Request(url, headers={"Accept": "application/n-triples"})
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
    return sum(1 for _ in pyoxigraph.parse(body, format=pyoxigraph.RdfFormat.N_TRIPLES))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--triples", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--order", choices=["auto", "ordered", "natural"], default="auto",
                    help="harvest.order to measure (auto, the default, pages in natural order here)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kgllm-bench-harvest-"))
    capped = Virtuoso(tmp / "capped", max_rows=10_000, buffers=20_000)
    open_ = Virtuoso(tmp / "open", max_rows=None, buffers=20_000)
    try:
        data = tmp / "graph.nt"
        generate(data, args.triples)
        t = time.perf_counter()
        for vt in (capped, open_):
            vt.start()
            vt.load_graphs({GRAPH: [data]})
        print(f"setup: 2 Virtuoso servers loaded with {args.triples:,} triples in {time.perf_counter() - t:.1f}s")
        assert capped.count(GRAPH) == open_.count(GRAPH) == args.triples
        raw_construct(open_.endpoint)  # warm both servers' caches the same way
        raw_construct(capped.endpoint)

        raw_best, h_best, man = None, None, None
        for r in range(args.repeat):
            t = time.perf_counter()
            n = raw_construct(open_.endpoint)
            raw_s = time.perf_counter() - t
            assert n == args.triples, f"the uncapped CONSTRUCT returned {n} triples"
            out = tmp / f"harvest-{r}"
            t = time.perf_counter()
            man = harvest(capped.endpoint, QUERY, out, HarvestConfig(default_graph=[GRAPH], order=args.order))
            h_s = time.perf_counter() - t
            assert man.counts["triples"] == man.counts["expected_triples"] == args.triples
            print(f"run {r + 1}: raw CONSTRUCT {raw_s:.2f}s ({n / raw_s:,.0f} triples/s); harvest {h_s:.2f}s "
                  f"({args.triples / h_s:,.0f} triples/s, {man.counts['pages']} pages, "
                  f"{man.counts['requests']} requests)")
            raw_best = raw_s if raw_best is None else min(raw_best, raw_s)
            h_best = h_s if h_best is None else min(h_best, h_s)
            shutil.rmtree(out, ignore_errors=True)
        raw_tps, h_tps = args.triples / raw_best, args.triples / h_best
        print(f"\nharvest throughput: {h_tps:,.0f} triples/s ({man.extra['order']} pages under a 10,000-row cap, "
              "checkpointed, COUNT-checked, artifact written)")
        print(f"baseline: {raw_tps:,.0f} triples/s (one raw HTTP CONSTRUCT of the whole graph, cap lifted)")
        print(f"ratio harvest/raw = {h_tps / raw_tps:.2f}  (target >= 0.5)")
        return 0
    finally:
        capped.stop()
        open_.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
