"""Benchmark of the ask stage: answer quality and latency of vector-only, graph-only and hybrid retrieval.

1. Quality on the bundled question set (examples/data/questions/dbpedia_wordnet.jsonl) over an index of
   the DBpedia sample (core files) + the WordNet subtree of dog.n.01: Hits@1, EM, F1, citation precision and
   latency per retriever and question type. Ratios: hybrid vs the vector-only baseline, same run.
2. Retrieval latency on a large graph (>= 1M triples: full WordNet 3.0 from ``pull.wordnet`` + the DBpedia
   sample): p50/p95 of the retrieval stages (linking, vector search, graph paths, SPARQL, fusion) for
   generated questions about that graph, against the vector-only baseline measured in the same run.
   Embedding 1M triples on CPU takes hours, so the large index embeds only ``--vectors`` triples (the faiss
   search over them is a small part of the latency; the question encoding dominates the vector stage).

Usage (CPU; the large part takes several minutes: it pulls WordNet and builds a 1M-triple index)::

    python bench/bench_ask.py [--index DIR] [--skip-large] [--large-index DIR] [--vectors 20000]
                              [--entity-vectors N] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KGLLM_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
QUESTIONS = ROOT / "examples" / "data" / "questions" / "dbpedia_wordnet.jsonl"


def build_small(tmp: Path) -> Path:
    from conftest import dbpedia_files, write_graph

    from kgllm.registry import run_stage

    write_graph(tmp / "dbpedia", dbpedia_files())
    run_stage("pull.wordnet", [], tmp / "wordnet", {"roots": ["dog.n.01"]})
    t = time.perf_counter()
    run_stage("index", [tmp / "dbpedia", tmp / "wordnet"], tmp / "index", {})
    print(f"small index built in {time.perf_counter() - t:.1f}s")
    return tmp / "index"


def quality(index: Path, questions: Path) -> None:
    from kgllm.ask.answer import Answerer
    from kgllm.eval.qa import evaluate, format_table, load_questions

    qs = load_questions(questions)
    rep, _ = evaluate(Answerer.from_dir(index), qs)
    print(f"\n## Quality on {questions.name} ({len(qs)} questions)\n")
    print(format_table(rep))
    r = rep["retrievers"]
    for t in sorted(r["hybrid"]["by_type"]):
        h, v = r["hybrid"]["by_type"][t]["hits@1"], r["vector"]["by_type"][t]["hits@1"]
        print(f"  {t:<13} hybrid Hits@1 {h:.2f} vs vector-only {v:.2f}: {h - v:+.2f} points "
              f"({h / v:.1f}x)" if v else f"  {t:<13} hybrid Hits@1 {h:.2f} vs vector-only {v:.2f}")


def large(tmp: Path, index: Path | None, vectors: int, entity_vectors: int, queries: int) -> None:
    from kgllm.ask.answer import Answerer
    from kgllm.eval.qa import _pct, retrieval_ms
    from kgllm.eval.question_sets import generate
    from kgllm.rdf import count_triples, iter_graph
    from kgllm.registry import run_stage

    if index is None or not (index / "manifest.json").exists():
        from conftest import dbpedia_files, write_graph

        if index is not None:  # build it there, to reuse it in later runs
            tmp = index.parent
            index = None
        t = time.perf_counter()
        run_stage("pull.wordnet", [], tmp / "wn-full", {})
        write_graph(tmp / "dbpedia", dbpedia_files())
        graphs = [tmp / "wn-full", tmp / "dbpedia"]
        print(f"\npulled WordNet in {time.perf_counter() - t:.1f}s; {count_triples(graphs):,} triples")
        t = time.perf_counter()
        run_stage("index", graphs, tmp / "big-index",
                  {"vector": {"max_triples": vectors, "max_entities": entity_vectors}})
        print(f"large index built in {time.perf_counter() - t:.1f}s (vectors for {vectors:,} triples, "
              f"{entity_vectors:,} entities)")
        index = tmp / "big-index"
    else:
        from kgllm.artifacts import read_manifest

        graphs = [Path(i["path"]) for i in read_manifest(index).inputs]
    ans = Answerer.from_dir(index, sparql="off")
    n = ans.index.graph.n_live
    qs = generate(iter_graph(graphs), holdout=0.02, max_per_type=queries // 4, phrasings=1)
    qs = [q for q in qs if q["type"] != "unanswerable"]
    print(f"\n## Retrieval latency on {n:,} triples ({len(qs)} generated questions; SPARQL off: CSR index)\n")
    for q in qs[:3]:
        for mode in ("vector", "graph", "hybrid"):
            ans.ask(q["question"], mode)  # warm-up: encoder, PageRank matrix, relation descriptions
    # Two passes per retriever: the first also pays for first touches of the memory-mapped graph arrays
    # (cold page cache), the second is the steady state of a long-running server. Caches inside the
    # answerer live for one question only, so the second pass answers nothing from the first.
    res = {}
    for mode in ("vector", "graph", "hybrid"):
        for run in ("first pass", "steady"):
            ms, hits = [], 0
            for q in qs:
                out = ans.ask(q["question"], mode)
                ms.append(retrieval_ms(out["timings"]))
                hits += bool(out["answers"]) and out["answers"][0]["value"] in q["answers"]
            res[mode, run] = ms
            print(f"  {mode:<7} {run:<10} retrieval p50 {_pct(ms, 0.5):8.1f} ms  p95 {_pct(ms, 0.95):8.1f} ms  "
                  f"Hits@1 {hits / len(qs):.2f}")
    for run in ("first pass", "steady"):
        base = _pct(res["vector", run], 0.5)
        for mode in ("graph", "hybrid"):
            print(f"  {run}: {mode} p50 / vector-only p50 = {_pct(res[mode, run], 0.5) / base:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, help="index of the DBpedia sample + WordNet dog subtree (else built)")
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--large-index", type=Path, help="an index of >= 1M triples (reused; built there when missing)")
    ap.add_argument("--vectors", type=int, default=20000, help="triples embedded in the large index")
    ap.add_argument("--entity-vectors", type=int, default=None, help="entities embedded (default: --vectors)")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as d:
        tmp = Path(d)
        quality(args.index or build_small(tmp), args.questions)
        if not args.skip_large:
            large(tmp, args.large_index, args.vectors, args.entity_vectors or args.vectors, args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
