"""Benchmark of question answering on real benchmark questions: QALD-9 train over a small real DBpedia graph.

The graph: ../shared/data/qald9-train/kg.nt.xz (the gold triples of the 196 single-pattern QALD-9 train
questions, plus labels) + the bundled DBpedia sample (labels, types, mapping-based objects and literals, short
abstracts, categories, infobox properties) + the DBpedia ontology (ontologies/dbpedia/dbo.owl.xz). The
questions: ../shared/data/qald9-train/questions.jsonl (read in place; QALD data is not copied into the
project). Each question's shape is read from its gold SPARQL query (lookup, inverse, +class, intersection,
literal, two-hop, class).

Splits: ``dev`` (a third of the questions, by a hash of the id) is the only part looked at while developing;
``test`` (the other two thirds) is reported apart. A ranker trained on QALD-9 questions must be scored by
k-fold (``--kfold K``): each fold's questions are answered by a ranker trained without them.

Also: the hand-written question sets over the bundled graph: examples/data/questions/handwritten_shapes.jsonl
(set A: written before any tuning, then used to develop), handwritten_shapes_b.jsonl (set B: written later
by someone who did not see the answerer, and never used to develop) and handwritten_shapes_c.jsonl (set C:
written blind like B, weighted to paraphrases, two-hop and unanswerable questions; first scored 0.700 Hits@1,
then used to develop) and handwritten_shapes_d.jsonl (set D: written blind like B by a helper that saw only the
data and the file format, before any change of the session that added it; held out like B) and
handwritten_shapes_e.jsonl and handwritten_shapes_f.jsonl (sets E and F: written blind like D, E at the
start of a later session and F during it, each scored before any change it could have guided; held out).

Usage::

    python bench/bench_qald.py [--work DIR] [--ranker DIR] [--kfold 5 --lcquad PATH] [--errors dev] [--sets ACE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KGLLM_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
QALD = SHARED / "qald9-train"
LCQUAD = SHARED / "lcquad1" / "train-data.json.xz"
SAMPLE = ROOT / "examples" / "data" / "dbpedia-sample"
SAMPLE_FILES = ("labels_en.ttl.xz", "instance_types_transitive_en.ttl.xz", "mappingbased_objects_en.ttl.xz",
                "mappingbased_literals_en.ttl.xz", "short_abstracts_en.ttl.xz", "article_categories_en.ttl.xz",
                "infobox_properties_en.ttl.xz")
ONTOLOGY = ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"
# (handwritten.jsonl needs WordNet in the graph: bench/bench_ask.py scores it.)
# Set A (written before any tuning; since looked at while developing: a development set), sets B and D (written
# later, blind to the answerer, and only scored: the held-out sets) and set C (written blind, then developed on).
HANDWRITTEN = [ROOT / "examples" / "data" / "questions" / "handwritten_shapes.jsonl",
               ROOT / "examples" / "data" / "questions" / "handwritten_shapes_b.jsonl",
               ROOT / "examples" / "data" / "questions" / "handwritten_shapes_c.jsonl",
               ROOT / "examples" / "data" / "questions" / "handwritten_shapes_d.jsonl",
               ROOT / "examples" / "data" / "questions" / "handwritten_shapes_e.jsonl",
               ROOT / "examples" / "data" / "questions" / "handwritten_shapes_f.jsonl"]


def pulled(graph: Path, paths: list[Path]) -> Path:
    """``graph``: the files at ``paths`` pulled into it, unless an earlier run did."""
    from kgllm.registry import run_stage

    if not (graph / "manifest.json").exists():
        run_stage("pull.file", [], graph, {"paths": [str(p) for p in paths]})
    return graph


def build(work: Path, with_qald: bool = True) -> Path:
    """Pull the graphs and build the index (reused when ``work`` already has it)."""
    from kgllm.registry import run_stage

    index = work / ("index" if with_qald else "index-bundled")
    if (index / "manifest.json").exists():
        return index
    graphs = [pulled(work / "qald", [QALD / "kg.nt.xz"])] if with_qald else []
    graphs += [pulled(work / "sample", [SAMPLE / f for f in SAMPLE_FILES]), pulled(work / "ontology", [ONTOLOGY])]
    t = time.perf_counter()
    run_stage("index", graphs, index, {})
    print(f"index {index.name} built in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return index


def query_shape(query: str) -> str:
    """The shape of a gold QALD query: the form of its basic graph pattern."""
    body = re.search(r"\{(.*)\}", query, re.S).group(1)
    body = re.sub(r"FILTER.*", "", body, flags=re.S | re.I)
    triples = []
    for pat in re.split(r"\s\.(?:\s|$)|\.\s*$", " ".join(body.split())):
        parts = [x.strip() for x in pat.split(";") if x.strip()]
        if not parts:
            continue
        head = parts[0].split()
        if len(head) < 3:
            continue
        subj = head[0]
        triples.append((subj, head[1], " ".join(head[2:])))
        for extra in parts[1:]:
            w = extra.split()
            if len(w) >= 2:
                triples.append((subj, w[0], " ".join(w[1:])))
    typed = [t for t in triples if t[1] in ("a", "rdf:type", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>")]
    rel = [t for t in triples if t not in typed]
    if not rel:
        return "class"
    lit = any(t[2].startswith('"') or re.fullmatch(r"\d+", t[2]) for t in rel)
    if len(rel) == 1:
        _s, _p, o = rel[0]
        if lit:
            return "literal"
        return ("lookup" if o.startswith("?") else "inverse") + ("+class" if typed else "")
    if any(t[0].startswith("?") and t[0] != "?uri" for t in rel) or \
            any(t[2].startswith("?") and t[2] != "?uri" for t in rel):
        return "two_hop"
    return "intersection"


def split_of(qid: str) -> str:
    return "dev" if int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 3 == 0 else "test"


def fold_of(qid: str, k: int) -> int:
    return int(hashlib.sha1(("fold:" + qid).encode()).hexdigest(), 16) % k


def load_qald() -> list[dict]:
    qs = [json.loads(line) for line in open(QALD / "questions.jsonl", encoding="utf-8")]
    for q in qs:
        q["type"] = query_shape(q["query"])
        q["split"] = split_of(q["id"])
    return qs


def evaluate(index: Path, qs: list[dict], ranker=None, retrievers=("hybrid",)) -> dict:
    from kgllm.ask.answer import load_answerer
    from kgllm.eval.qa import EVAL_MAX_ANSWERS
    from kgllm.eval.qa import evaluate as ev

    return ev(load_answerer(index, ranker=ranker, max_answers=EVAL_MAX_ANSWERS), qs, list(retrievers))[1]


def table(preds: list[dict], qs: list[dict], by: str) -> list[tuple]:
    groups = defaultdict(list)
    for p, q in zip(preds, qs, strict=True):
        groups[q[by]].append(p)
        groups["all"].append(p)
    rows = []
    for k in sorted(groups, key=lambda x: (x != "all", x)):
        ps = groups[k]
        n = len(ps)
        rows.append((k, n, sum(p["precision"] for p in ps) / n, sum(p["recall"] for p in ps) / n,
                     sum(p["f1"] for p in ps) / n, sum(p["hits@1"] for p in ps) / n))
    return rows


def show(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}\n\n| group | n | P | R | F1 (macro) | Hits@1 |\n|---|---:|---:|---:|---:|---:|")
    for k, n, p, r, f, h in rows:
        print(f"| {k} | {n} | {p:.3f} | {r:.3f} | {f:.3f} | {h:.3f} |")


def errors(preds, qs, which) -> None:
    for p, q in zip(preds, qs, strict=True):
        if p["f1"] < 1 and (which == "all" or q.get("split", which) == which):
            gold = q.get("query") or ""
            print(f"  [{q['type']}] {q['question']} -> {p['answer'][:90]!r} f1={p['f1']:.2f}"
                  f" | gold {gold[gold.find('{'):][:110] if gold else q['answers'][:3]}")


def candidate_ceiling(index: Path, qs: list[dict], ranker=None) -> tuple[int, int]:
    """How many questions have a candidate query whose answer set is exactly the gold one, and for how many
    of those the ranking puts such a candidate first (what ranking alone could still gain)."""
    from kgllm.ask.answer import load_answerer
    from kgllm.ask.question import parse_question
    from kgllm.index.lexicon import term_value

    ans = load_answerer(index, ranker=ranker)
    r, u = ans.retriever, ans.retriever.understander
    reachable = first = 0
    for q in qs:
        r._ecache = {}
        mentions = u.drop_properties(ans.index.link(q["question"]))
        hits = ans.index.search(q["question"], r.config.vector_k) if "triple" in ans.index.vectors else []
        ents, classes, lits = u.mentions(q["question"], mentions)
        cands = u.candidates(parse_question(q["question"], mentions), q["question"], ents, classes, lits, hits)
        good = [c for c in cands if c.answers and {term_value(a) for a in c.answers} == set(q["answers"])]
        reachable += bool(good)
        first += bool(good) and cands[0] in good
    return reachable, first


def kfold(index: Path, qs: list[dict], k: int, work: Path, lcquad: Path | None) -> list[dict]:
    """Each fold answered by a ranker trained on LC-QuAD + the QALD-9 questions of the other folds."""
    from kgllm.registry import run_stage

    preds: list[dict | None] = [None] * len(qs)
    t = time.perf_counter()
    for f in range(k):
        held = [q["id"] for q in qs if fold_of(q["id"], k) == f]
        out = work / f"ranker-fold{f}of{k}"
        if not (out / "manifest.json").exists():
            run_stage("train.ranker", [], out, {"lcquad": str(lcquad) if lcquad else None,
                                                "qald": str(QALD / "qald-9-train-multilingual.json.xz"),
                                                "exclude_ids": held})
        sub = [q for q in qs if q["id"] in set(held)]
        got = evaluate(index, sub, out)["hybrid"]
        pos = {q["id"]: i for i, q in enumerate(qs)}
        for q, p in zip(sub, got, strict=True):
            preds[pos[q["id"]]] = p
    print(f"\nk-fold ({k}) training and answering: {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return preds  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, help="working directory (graphs and indices are reused when present)")
    ap.add_argument("--ranker", type=Path, help="a trained ranker (kgllm train ranker) to compare with zero-shot")
    ap.add_argument("--kfold", type=int, default=0, help="also train rankers with QALD-9 by k-fold (k folds)")
    ap.add_argument("--lcquad", type=Path, default=LCQUAD, help="LC-QuAD 1.0 train file for --kfold rankers")
    ap.add_argument("--errors", choices=["dev", "test", "all"], help="print the wrong answers of this split")
    ap.add_argument("--skip-handwritten", action="store_true")
    ap.add_argument("--sets", default="ABCDEF",
                    help="the hand-written sets to score, by letter (development only: --sets ACE)")
    ap.add_argument("--ceiling", action="store_true",
                    help="also count the questions some candidate answers exactly, and how often it ranks first")
    ap.add_argument("--skip-qald", action="store_true")
    ap.add_argument("--vector", action="store_true", help="also score vector-only retrieval (a baseline)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kgllm-qald-"))
    work.mkdir(parents=True, exist_ok=True)
    rankers = [None] + ([args.ranker] if args.ranker else [])
    if not args.skip_qald:
        index = build(work)
        qs = load_qald()
        retrievers = ("vector", "hybrid") if args.vector else ("hybrid",)
        for rk in rankers:
            name = "zero-shot" if rk is None else f"ranker {rk}"
            t = time.perf_counter()
            preds = evaluate(index, qs, rk, retrievers)
            for mode in retrievers:
                show(f"## QALD-9 train single-pattern, {mode}, {name}: by split", table(preds[mode], qs, "split"))
            ps = preds["hybrid"]
            test = [(p, q) for p, q in zip(ps, qs, strict=True) if q["split"] == "test"]
            show(f"## QALD-9 train, hybrid, {name}: test split by shape",
                 table([p for p, _ in test], [q for _, q in test], "type"))
            lat = sorted(p["latency_ms"] for p in ps)
            print(f"\nlatency p50 {lat[len(lat) // 2]:.1f} ms; {time.perf_counter() - t:.0f}s")
            if args.errors:
                errors(ps, qs, args.errors)
            if args.ceiling:
                reach, first = candidate_ceiling(index, qs, rk)
                print(f"\ncandidates: {reach} of {len(qs)} questions have one whose answer set is the gold set; "
                      f"the ranking puts one first for {first}")
        if args.kfold:
            ps = kfold(index, qs, args.kfold, work, args.lcquad)
            show(f"## QALD-9 train, hybrid, rankers trained with QALD-9 by {args.kfold}-fold (held-out folds only)",
                 table(ps, qs, "type"))
    if args.skip_handwritten:
        return
    bundled = build(work, with_qald=False)
    from kgllm.eval.qa import load_questions

    for letter, f in zip("ABCDEF", HANDWRITTEN, strict=True):
        if letter not in args.sets.upper():
            continue
        hq = load_questions(f)
        for rk in rankers:
            preds = evaluate(bundled, hq, rk)["hybrid"]
            show(f"## {f.name} over the bundled graph, hybrid, {'zero-shot' if rk is None else rk}",
                 table(preds, hq, "type"))
            if args.errors:
                errors(preds, hq, "all")


if __name__ == "__main__":
    main()
