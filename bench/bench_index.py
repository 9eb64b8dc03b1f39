"""Benchmark of the index stage: build time, load time and query latency (p50/p95) on a graph of >= 1M
triples (full WordNet 3.0 from ``pull.wordnet`` + the DBpedia sample), HNSW recall@10 against exact search,
and entity-linking accuracy on WebNLG dev texts. Figures are printed as ratios against baselines measured
in the same run:

- neighbours: the CSR index vs SPARQL on the embedded pyoxigraph store holding the same triples;
- PageRank: CSR power iteration vs networkx's ``pagerank(personalization=...)`` on the same edges;
- vectors: HNSW vs exact flat search (latency and recall@10);
- linking: the full linker vs exact label lookup only (no morphy, no fuzzy matching, no prior).

Usage (CPU; a few minutes; WordNet is pulled into a temp dir unless ``--wordnet`` names a graph artifact)::

    python bench/bench_index.py [--wordnet GRAPH_DIR] [--vectors 4000] [--queries 200] [--webnlg XML_OR_DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KGLLM_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def timed(fn, items):
    out = []
    for x in items:
        t = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name, ms, base=None):
    s = f"  {name:<34} p50 {pct(ms, 50):8.3f} ms   p95 {pct(ms, 95):8.3f} ms"
    if base:
        s += f"   ({pct(base, 50) / max(pct(ms, 50), 1e-9):7.1f}x faster than baseline p50)"
    print(s)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", type=Path, help="an existing pull.wordnet graph artifact (full WordNet)")
    ap.add_argument("--vectors", type=int, default=4000, help="texts embedded for the vector benchmark")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--webnlg", type=Path, default=ROOT / "examples" / "data" / "webnlg" / "dev.xml.xz",
                    help="WebNLG XML file or directory for the linking benchmark (default: the bundled 2020 dev)")
    args = ap.parse_args()

    from conftest import DBPEDIA_SAMPLE, write_graph

    from kgllm.index import load_index
    from kgllm.index.facade import KGIndex
    from kgllm.rdf import DBR, KGWN, count_triples
    from kgllm.registry import run_stage

    tmp = Path(tempfile.mkdtemp(prefix="bench-index-"))
    wn = args.wordnet
    if wn is None:
        t = time.perf_counter()
        wn = tmp / "wordnet"
        run_stage("pull.wordnet", [], wn, {})
        print(f"pull.wordnet (full): {time.perf_counter() - t:.1f}s")
    dbp = write_graph(tmp / "dbpedia", sorted(DBPEDIA_SAMPLE.glob("*.ttl.xz")))
    graphs = [wn, dbp]
    n = count_triples(graphs)
    print(f"graph: {n:,} triples (WordNet {count_triples(wn):,} + DBpedia sample {count_triples(dbp):,})")

    # ---------------------------------------------------------------- build / save / load
    t = time.perf_counter()
    idx = KGIndex.build(graphs, config={"vector": {"enabled": False}})
    build_s = time.perf_counter() - t
    timings = idx.counts.get("timings", {})
    t = time.perf_counter()
    idx.save(tmp / "index")
    save_s = time.perf_counter() - t
    t = time.perf_counter()
    idx = load_index(tmp / "index")
    load_s = time.perf_counter() - t
    print(f"build graph+lexicon {build_s:.1f}s ({n / build_s:,.0f} triples/s; {timings}),"
          f" save {save_s:.1f}s, load {load_s:.2f}s (arrays memory-mapped; the lexicon and term dictionary are read)")
    t = time.perf_counter()
    idx.graph.term_id("<x>")
    print(f"  first term lookup (builds the term dictionary): {time.perf_counter() - t:.2f}s")

    # ---------------------------------------------------------------- graph queries
    rng = random.Random(0)
    g = idx.graph
    synsets = [t for t in g.terms if t.startswith(f"<{KGWN}") and t[-3:-1] in ("-n", "-v") and "/" not in t[len(KGWN) + 1:]]
    seeds = rng.sample(synsets, min(args.queries, len(synsets)))
    nb = timed(lambda s: idx.neighbors(s, 1), seeds)
    nb2 = timed(lambda s: idx.neighbors(s, 2), seeds[:50])
    idx.ppr([seeds[0]], 10)  # builds the sparse matrix once
    ppr = timed(lambda s: idx.ppr([s], 10), seeds[:30])
    pairs = list(zip(seeds[:50], seeds[50:100], strict=False))
    paths = timed(lambda ab: idx.paths(ab[0], ab[1], 4, 3), pairs)
    base_nb = base_ppr = None
    if not args.skip_baselines:
        from kgllm.rdf import load_store

        t = time.perf_counter()
        store = load_store(graphs)
        print(f"baseline pyoxigraph store load: {time.perf_counter() - t:.1f}s")

        def sparql_nb(s):
            return list(store.query(f"SELECT ?p ?o WHERE {{ {{ {s} ?p ?o }} UNION {{ ?o ?p {s} }} }}"))

        base_nb = timed(sparql_nb, seeds)
        import networkx as nx
        import numpy as np

        tri = np.asarray(g.a["triples"])
        node = np.array([t.startswith("<") for t in g.terms])
        m = node[tri[:, 2]] & (tri[:, 1] != g.term_id("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"))
        G = nx.Graph()
        G.add_edges_from(zip(tri[m, 0].tolist(), tri[m, 2].tolist(), strict=True))
        base_ppr = timed(lambda s: nx.pagerank(G, alpha=0.85, personalization={g.term_id(s): 1.0}, tol=1e-8),
                         seeds[:5])
    print(f"graph queries ({len(seeds)} random synsets):")
    line("neighbors 1 hop", nb, base_nb)
    line("neighbors 2 hops", nb2)
    line("personalized PageRank (top 10)", ppr, base_ppr)
    line("paths (<= 4 hops, 3 paths)", paths)

    # ---------------------------------------------------------------- linking
    lemmas = [idx.label(s) for s in seeds]
    questions = [f"What is a {w}s and where do {w} come from?" for w in lemmas]
    lk = timed(lambda q: idx.link(q), questions)
    line("link (question with a plural lemma)", lk)
    hit = sum(any(m.iri == s for m in idx.link(q)) for q, s in zip(questions[:100], seeds[:100], strict=True))
    print(f"  plural-lemma questions whose synset is among the mentions: {hit}/100")

    # ---------------------------------------------------------------- vectors
    from kgllm.index.vector import Encoder, VectorIndex

    rows = rng.sample(range(g.n_rows), args.vectors)
    texts = [idx.triple_text(r) for r in rows]
    enc = Encoder()
    enc.encode(["warm up"])
    t = time.perf_counter()
    vecs = enc.encode(texts)
    enc_s = time.perf_counter() - t
    print(f"vectors: encoded {len(texts)} triple texts in {enc_s:.1f}s ({len(texts) / enc_s:.0f}/s on CPU)")
    keys = [str(i) for i in range(len(vecs))]
    flat = VectorIndex.build(keys, vecs)
    t = time.perf_counter()
    hnsw = VectorIndex.build(keys, vecs, exact_threshold=0, recall_queries=min(500, len(keys)))
    print(f"  HNSW build {time.perf_counter() - t:.2f}s; recall@10 vs exact: {hnsw.info['recall_at_10']:.4f}")
    qv = enc.encode([f"{w} definition" for w in lemmas])
    fl = timed(lambda q: flat.search(q[None], 10), qv)
    hn = timed(lambda q: hnsw.search(q[None], 10), qv)
    line("flat (exact) search k=10", fl)
    line("HNSW search k=10", hn, fl)

    # ---------------------------------------------------------------- WebNLG linking accuracy
    webnlg_linking(args.webnlg, tmp, DBR, quote)
    return 0


def webnlg_linking(webnlg: Path, tmp: Path, DBR: str, quote) -> None:
    """Entity inventory = every resource in the dev triple sets; per entry, its first text is linked and
    the entities of its triples are the gold set (recall), linked mentions outside it count against precision."""
    from kgllm.corpus.webnlg import read_entries
    from kgllm.index.graph import GraphIndex
    from kgllm.index.lexicon import EntityLexicon
    from kgllm.index.linker import Linker
    from kgllm.index.stage import LinkerConfig
    from kgllm.rdf import DBO, GraphWriter, iter_graph

    entries = [(e.references[0], e.triples) for e in read_entries([webnlg]) if e.references and e.triples]

    def term(x):
        if x.startswith('"') or x[:1].isdigit():
            return '"' + x.strip('"').replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"<{DBR}{quote(x, safe=',()_:!$&*+;=@')}>"

    with GraphWriter(tmp / "webnlg") as w, w.shard({"source": "webnlg dev"}) as add:
        for _t, triples in entries:
            for s, p, o in triples:
                add(term(s), f"<{DBO}{quote(p)}>", term(o))
    g, _ = GraphIndex.build(iter_graph(tmp / "webnlg", with_provenance=True))
    lex = EntityLexicon.build(g)
    full = Linker(lex, g)
    exact = Linker(lex, g, LinkerConfig(fuzzy=False))

    def exact_only(key, words, surface):
        hits = lex.lookup(key)
        return ([(t, s, tid, "exact", 1.0) for t, s, tid in hits], 2) if hits else ([], -1)

    exact._match = exact_only
    for name, linker in (("exact lookup only (baseline)", exact), ("full linker", full)):
        gold_n = found = linked = correct = 0
        t = time.perf_counter()
        for text, triples in entries:
            gold = {term(x) for s, _p, o in triples for x in (s, o) if term(x).startswith("<")}
            got = {m.iri for m in linker.link(text)}
            gold_n += len(gold)
            found += len(gold & got)
            linked += len(got)
            correct += len(got & gold)
        ms = (time.perf_counter() - t) * 1000 / len(entries)
        print(f"WebNLG dev linking, {name}: recall {found / gold_n:.3f}, precision {correct / max(linked, 1):.3f} "
              f"({len(entries)} texts, {gold_n} gold entities, {ms:.2f} ms/text)")


if __name__ == "__main__":
    raise SystemExit(main())
