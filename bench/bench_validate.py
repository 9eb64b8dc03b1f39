"""Data checks over all of WordNet 3.0 plus the DBpedia sample: triples/s and the ratio to parsing.

Baseline (same run, same files): streaming every triple of the graph artifacts with
``kgllm.rdf.iter_graph`` (gzip + line split: the reader validate itself uses); pyoxigraph's N-Triples
parser over the same shards is printed for reference. Measured: the data checks (index build + all
registered checks) against the union of the DBpedia and WordNet ontologies; then the whole ``validate``
stage (reasoner off, no SHACL), which also writes the clean graph, quarantine and report.

Target: data checks <= 3x parsing.
Run: .venv/bin/python bench/bench_validate.py [--wordnet-roots dog.n.01 ...] [--workdir DIR]
(the full WordNet pull is cached in DIR, default $KGLLM_BENCH_DIR or /tmp/kgllm-bench).
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "data" / "dbpedia-sample"
ONTOLOGIES = [ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz", ROOT / "ontologies" / "wordnet" / "wn.ttl"]


def dbpedia_graph(out: Path) -> Path:
    import pyoxigraph

    from kgllm.rdf import GraphWriter

    if (out / "manifest.json").exists():
        return out
    files = sorted(SAMPLE.glob("*.ttl.xz"))
    with GraphWriter(out, config={"files": [f.name for f in files]}) as g:
        for f in files:
            with lzma.open(f, "rb") as fh, g.shard({"source": "file", "path": f.name}) as add:
                for q in pyoxigraph.parse(fh, format=pyoxigraph.RdfFormat.N_TRIPLES):
                    add(str(q.subject), str(q.predicate), str(q.object))
    return out


def wordnet_graph(out: Path, roots: list[str]) -> Path:
    from kgllm.registry import run_stage

    if not (out / "manifest.json").exists():
        run_stage("pull.wordnet", [], out, {"roots": roots})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("KGLLM_BENCH_DIR", "/tmp/kgllm-bench")))
    ap.add_argument("--wordnet-roots", nargs="*", default=[], help="a WordNet subset (default: all of WordNet)")
    args = ap.parse_args()
    os.environ.setdefault("KGLLM_PROGRESS", "0")

    import pyoxigraph

    from kgllm.rdf import graph_shards, iter_graph
    from kgllm.registry import run_stage
    from kgllm.validate.checks import TermIndex, run_checks
    from kgllm.validate.ontology import load_ontologies

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    name = "wordnet-" + ("-".join(args.wordnet_roots) if args.wordnet_roots else "all")
    graphs = [dbpedia_graph(work / "dbpedia-sample"), wordnet_graph(work / name, args.wordnet_roots)]

    t0 = time.perf_counter()
    n = sum(1 for _ in iter_graph(graphs))
    t_parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_ox = 0
    for d in graphs:
        for sh in graph_shards(d):
            with gzip.open(sh["path"], "rb") as f:
                n_ox += sum(1 for _ in pyoxigraph.parse(f, format=pyoxigraph.RdfFormat.N_TRIPLES))
    t_ox = time.perf_counter() - t0
    assert n_ox == n

    ont = load_ontologies(ONTOLOGIES)
    t0 = time.perf_counter()
    ctx = TermIndex(ont)
    ctx.add_all(iter_graph(graphs), total=n)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = run_checks(ctx)
    t_checks = time.perf_counter() - t0
    t_data = t_index + t_checks

    out = work / "validated"
    t0 = time.perf_counter()
    man = run_stage("validate", graphs, out, {"ontology": ONTOLOGIES, "reasoner": "none"})
    t_stage = time.perf_counter() - t0

    print(f"graph: {n:,} triples (DBpedia sample + {name}); {len(ctx.terms):,} distinct terms")
    print(f"parse (iter_graph, baseline):   {t_parse:7.1f} s  {n / t_parse:10,.0f} triples/s  1.00x")
    print(f"parse (pyoxigraph N-Triples):   {t_ox:7.1f} s  {n / t_ox:10,.0f} triples/s  {t_ox / t_parse:.2f}x")
    print(f"data checks (index + checks):   {t_data:7.1f} s  {n / t_data:10,.0f} triples/s  {t_data / t_parse:.2f}x"
          f"  (index {t_index:.1f} s, checks {t_checks:.1f} s)")
    for k, vs in sorted(results.items()):
        print(f"    {k:<22} {len(vs):>8,} violations")
    print(f"validate stage (writes output): {t_stage:7.1f} s  {n / t_stage:10,.0f} triples/s  {t_stage / t_parse:.2f}x"
          f"  (kept {man.counts['kept']:,}, quarantined {man.counts['quarantined']:,})")
    print(f"target data checks <= 3x parsing: {'OK' if t_data <= 3 * t_parse else 'MISSED'}")


if __name__ == "__main__":
    main()
