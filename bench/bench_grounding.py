"""Grounded generated answers (RAFT): the extractive answerer vs base SmolLM2-135M-Instruct vs SmolLM2 trained
on RAFT examples, answering from retrieved triples with citations that are checked.

1. Indices: the small index of bench/bench_ask.py (DBpedia sample core files + the WordNet subtree of
   dog.n.01) for examples/data/questions/dbpedia_wordnet.jsonl and handwritten.jsonl; the bundled index of
   bench/bench_qald.py (the sample's files incl. categories and infobox properties + the DBpedia ontology)
   for handwritten_shapes.jsonl and handwritten_shapes_b.jsonl. Reused from --work when present.
2. RAFT data: ``kgllm train raft-data`` on the small index and a graph of WebNLG 2020 train's DBpedia
   triples (``--raft-graphs``; each question set above excluded: their entities, the entities they name and
   their supporting triples stay out), ``--examples`` examples sampled in turn from each question type
   (one-hop, two-hop, inverse lists, WordNet definitions and hypernyms, absent relations); ``--small-only``:
   the small index alone (the data of the first runs).
3. Training: ``kgllm train sft`` of SmolLM2-135M-Instruct on them for ``--max-steps`` steps.
4. ``kgllm eval qa`` metrics (hybrid retriever) for the three systems on every set, each model decoded as
   ``--decoding`` lists (constrained: what ``ask --model`` does for a RAFT-trained model; free: the model's
   own text): answer F1, F1 without
   the fallback (the model's own), citation precision (of the answers shown, and of the model's own texts,
   kept or not) and recall, refusal accuracy on the unanswerable
   questions, the share of generated texts making a claim their facts do not support ("unsupported": a
   text failing the citation check, or a refusal although a fact shown holds a gold answer), the share
   failing the check as ``ask`` runs it, without gold answers ("failed the check": a refusal fails it
   wherever the extractive answerer found an answer, even a wrong one) and the fallbacks.
   Printed as a Markdown table with the run times; ``--out FILE`` also writes them as JSON.
5. ``--more-sets c,d,e,f``: more hand-written sets over the bundled index (handwritten_shapes_c.jsonl ...),
   scored the same way in a table of their own, pooled apart and outside the targets.

Targets for the trained model: citation precision >= 0.95, refusal accuracy >= 0.9, unsupported < 5%,
F1 within 0.05 of the extractive answerer or above; all well above the base model.

CPU (2 cores; the figures in docs/train.md came from this, with the times it printed)::

    .venv/bin/python bench/bench_grounding.py --work runs/bench-grounding --threads 1
    .venv/bin/python bench/bench_grounding.py --quick          # smoke run: a few steps, a few questions

On a shared, loaded machine ``--threads 1`` is faster than torch's default of one thread per core (the
threads wait on each other). GPU (the trainer and the generator use CUDA when torch sees it; bf16 is
automatic): more examples and steps in a few minutes::

    python bench/bench_grounding.py --work runs/bench-grounding-gpu --gpu

``--gpu`` sets ``--examples 0`` (all), ``--max-steps 300``, ``--batch-size 16``, three phrasings per fact.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("KGLLM_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
QDIR = ROOT / "examples" / "data" / "questions"
SMALL_SETS = ("dbpedia_wordnet.jsonl", "handwritten.jsonl")
BUNDLED_SETS = ("handwritten_shapes.jsonl", "handwritten_shapes_b.jsonl")
BASE = "smollm2-135m-instruct"
WEBNLG = ROOT.parent / "shared" / "data" / "webnlg" / "train"


def small_index(work: Path) -> Path:
    from bench_ask import build_small

    if (work / "small" / "index" / "manifest.json").exists():
        return work / "small" / "index"
    (work / "small").mkdir(parents=True, exist_ok=True)
    return build_small(work / "small")


def bundled_index(work: Path) -> Path:
    from bench_qald import build

    return build(work, with_qald=False)


def webnlg_index(work: Path) -> Path:
    """The DBpedia triples of WebNLG 2020 train (``../shared/data/webnlg``: development and training runs only,
    so the graph is written under ``--work``, never into the project) as a graph, labelled from the names,
    and indexed: entities that no evaluation set is about, for two-hop and inverse RAFT questions. An object
    is an entity when it is a subject somewhere or a capitalised name; numbers and quoted values are literals."""
    import re
    from urllib.parse import quote

    from kgllm.corpus.webnlg import read_entries
    from kgllm.rdf import DBO, DBR, RDFS_LABEL, GraphWriter, iri, literal
    from kgllm.registry import run_stage

    index = work / "webnlg-index"
    if (index / "manifest.json").exists():
        return index
    if not WEBNLG.is_dir():
        raise SystemExit(f"{WEBNLG}: WebNLG 2020 is not there (the webnlg RAFT graph needs it; use --raft-graphs small)")
    found = {t for e in read_entries([WEBNLG]) for t in e.triples}
    subjects = {s for s, _p, _o in found}

    def ent(x: str) -> str:
        return iri(DBR + quote(x, safe="()_,'.-!*&;=+$@~:"))

    def is_entity(o: str) -> bool:
        return o in subjects or (o[:1].isupper() and '"' not in o and not re.fullmatch(r"[-+\d.,]+", o))

    triples, named, preds = set(), set(), set()
    for s, p, o in sorted(found):
        thing = is_entity(o)
        triples.add((ent(s), iri(DBO + p), ent(o) if thing else literal(o.strip('"').replace("_", " "))))
        named |= {s, o} if thing else {s}
        preds.add(p)
    triples |= {(ent(x), RDFS_LABEL, literal(x.replace("_", " "), lang="en")) for x in named}
    triples |= {(iri(DBO + p), RDFS_LABEL, literal(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", p).lower(), lang="en"))
                for p in preds}
    with GraphWriter(work / "webnlg-graph") as w:
        w.add_all(sorted(triples), {"source": "WebNLG 2020 train (DBpedia triples), development use only"})
    run_stage("index", [work / "webnlg-graph"], index, {"vector": {"entities": False}})
    print(f"WebNLG graph: {len(found):,} distinct triples of {len(subjects):,} subjects -> {len(triples):,} with labels")
    return index


def qald_index(work: Path) -> Path:
    """QALD-9 train's graph (``../shared/data/qald9-train/kg.nt.xz``: each single-pattern question's triples with
    its gold answers; development use only, so pulled under --work) with the DBpedia ontology, indexed: the
    graph its questions, in their authors' own words, are RAFT examples over (``--raft-graphs ...,qald``)."""
    from bench_qald import ONTOLOGY, QALD, pulled

    from kgllm.registry import run_stage

    index = work / "index-qald-only"
    if (index / "manifest.json").exists():
        return index
    graphs = [pulled(work / "qald", [QALD / "kg.nt.xz"]), pulled(work / "ontology", [ONTOLOGY])]
    run_stage("index", graphs, index, {"vector": {"entities": False}})
    return index


def raft_data(work: Path, indices: list[Path], examples: int, phrasings: int, names: list[str]) -> tuple[Path, float]:
    from kgllm.artifacts import read_manifest
    from kgllm.registry import run_stage

    out = work / (f"raft-{examples}-{phrasings}" if names == ["small"] else
                  f"raft-{'+'.join(names)}-{examples}-{phrasings}")
    t = time.perf_counter()
    if not (out / "manifest.json").exists():
        from bench_qald import QALD

        run_stage("train.raft_data", indices, out, {
            "exclude_questions": [str(QDIR / f) for f in SMALL_SETS + BUNDLED_SETS],
            "questions": [str(QALD / "questions.jsonl")] if "qald" in names else [],
            "max_examples": examples, "phrasings": phrasings})
    secs = time.perf_counter() - t
    c = read_manifest(out).counts
    print(f"RAFT data {out.name}: {c['examples']} examples ({c['with_support']} with support, {c['unanswerable']} "
          f"unanswerable, {c['distractors']} distractors; train {c['sft_train']}, validation "
          f"{c['sft_validation']}, test {c['sft_test']}); {c['excluded_eval']} of {c['questions']} generated "
          f"questions excluded as about evaluated entities, {c.get('schema_questions', 0)} as about the ontology's "
          f"classes and properties; by type: "
          + ", ".join(f"{k.removeprefix('type_')} {v}" for k, v in sorted(c.items()) if k.startswith("type_"))
          + (f"; QALD-9 train questions: {c['asked_questions']} of {c['asked_read']} answered by the graphs "
             f"({c['asked_not_one_pattern']} not one pattern, {c['asked_too_many_answers']} with over 6 answers, "
             f"{c['asked_no_support']} unmatched)" if "asked_read" in c else "")
          + f"; {secs:.0f} s")
    return out, secs


def train(work: Path, data: Path, steps: int, batch: int, lr: float) -> tuple[Path, float]:
    from kgllm.artifacts import read_manifest
    from kgllm.registry import run_stage

    out = work / f"sft-{data.name}-{steps}x{batch}-lr{lr:g}"
    t = time.perf_counter()
    if not (out / "manifest.json").exists():
        # Checkpoints every 10 steps and resume: a run stopped half-way continues where it was.
        run_stage("train.sft", [data], out, {
            "model": BASE, "max_steps": steps, "batch_size": batch, "lr": lr, "warmup_steps": max(1, steps // 20),
            "max_length": 384, "max_eval_examples": 16, "save_steps": 10, "logging_steps": 5, "resume": True})
    secs = time.perf_counter() - t
    m = read_manifest(out)
    met = m.extra.get("metrics", {})
    print(f"trained {out.name}: {m.counts['steps']} steps of {batch}, {m.counts['tokens']:,} tokens, train loss "
          f"{met.get('train_loss', float('nan')):.3f}, eval loss {met.get('eval_loss', float('nan')):.3f}; "
          f"{secs / 60:.1f} min ({met.get('train_runtime', 0) / max(m.counts['steps'], 1):.1f} s/step)")
    return out, secs


def evaluate_sets(index_dir: Path, sets: tuple[str, ...], systems: dict, limit: int, work: Path) -> list[dict]:
    """Every system on every question set of this index (the hybrid retriever). ``systems``: name -> (model,
    decoding) (model None: extractive). Each result is kept in ``work/eval/`` and reused by a rerun with the same model,
    set, limit and answering code (the sources of kgllm.ask, kgllm.eval and kgllm.index, hashed)."""
    import hashlib

    code = hashlib.blake2b(digest_size=6)
    for f in sorted(p for d in ("ask", "eval", "index") for p in (ROOT / "kgllm" / d).rglob("*.py")):
        code.update(f.read_bytes())

    from kgllm.ask.answer import Answerer
    from kgllm.ask.generate import Generator
    from kgllm.eval.qa import evaluate, load_questions
    from kgllm.index.facade import load_index

    index = load_index(index_dir)
    rows = []
    for name, (model, decoding) in systems.items():
        ans = None
        for f in sets:
            key = hashlib.blake2b(f"{model}|{decoding if model else ''}|{f}|{limit}|{code.hexdigest()}".encode(),
                                  digest_size=6).hexdigest()
            slug = re.sub(r"\W+", "-", name)
            cache = work / "eval" / f"{f.removesuffix('.jsonl')}-{slug}-{key}.json"
            if cache.exists():
                rows.append(json.loads(cache.read_text()))
                continue
            if ans is None:
                ans = Answerer(index, generator=Generator(model, constrained=decoding == "constrained") if model else None)
            qs = load_questions(QDIR / f, limit)
            t = time.perf_counter()
            rep, preds = evaluate(ans, qs, ("hybrid",))
            secs = time.perf_counter() - t
            rows.append({"set": f, "system": name, "seconds": round(secs, 1), **rep["retrievers"]["hybrid"]["overall"],
                         "by_type": {k: v["f1"] for k, v in rep["retrievers"]["hybrid"]["by_type"].items()},
                         "predictions": preds["hybrid"]})
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(rows[-1]))
            print(f"  {name:<10} {f:<28} {len(qs):>4} q  F1 {rows[-1]['f1']:.3f}  {secs:.0f} s", flush=True)
    return rows


def fmt(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if pct else f"{v:.2f}"


def table(rows: list[dict]) -> str:
    out = ["| question set | system | n | F1 | F1 without fallback | citation precision | model's citation "
           "precision | citation recall | refusal accuracy | unsupported | failed the check | fallbacks: extractive / not in graph | p50 ms |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        gen = r.get("generated", 0)
        fb = r.get("fallbacks", {})
        out.append(f"| {r['set'].removesuffix('.jsonl')} | {r['system']} | {r['questions']} | {r['f1']:.3f} "
                   f"| {fmt(r['f1_no_fallback'])} | {fmt(r['citation_precision'])} "
                   f"| {fmt(r.get('model_citation_precision'))} | {fmt(r['citation_recall'])} "
                   f"| {fmt(r['refusal_accuracy'])} | {fmt(r['unsupported_rate'], True) if gen else '-'} "
                   f"| {fmt(r.get('check_failed_rate'), True) if gen else '-'} "
                   f"| {(str(fb.get('extractive', 0)) + ' / ' + str(fb.get('not_in_graph', 0))) if gen else '-'} "
                   f"| {r['latency_p50_ms']:.0f} |")
    return "\n".join(out)


def pooled(rows: list[dict], system: str) -> dict:
    """Question-weighted means over all sets of one system."""
    rs = [r for r in rows if r["system"] == system]
    n = sum(r["questions"] for r in rs)

    def w(k: str, by: str = "questions") -> float | None:
        pairs = [(r[k], r[by] if by != "unanswerable" else r["unanswerable_questions"]) for r in rs
                 if r.get(k) is not None]
        tot = sum(x for _v, x in pairs)
        return sum(v * x for v, x in pairs) / tot if tot else None

    gen = sum(r["generated"] for r in rs)
    return {"questions": n, "f1": w("f1"), "f1_no_fallback": w("f1_no_fallback"),
            "citation_precision": w("citation_precision", "cited_questions"),
            "model_citation_precision": w("model_citation_precision", "model_cited_questions"),
            "refusal_accuracy": w("refusal_accuracy", "unanswerable"),
            "unsupported_rate": w("unsupported_rate", "generated") if gen else None,
            "check_failed_rate": w("check_failed_rate", "generated") if gen else None}


def pooled_table(pools: dict[str, dict]) -> str:
    """The pooled figures of each system (:func:`pooled`) as a Markdown table."""
    out = ["| system | n | F1 | F1 without fallback | citation precision | model's citation precision "
           "| refusal accuracy | unsupported | failed the check |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, p in pools.items():
        out.append(f"| {s} | {p['questions']} | {fmt(p['f1'])} | {fmt(p['f1_no_fallback'])} | "
                   f"{fmt(p['citation_precision'])} | {fmt(p['model_citation_precision'])} "
                   f"| {fmt(p['refusal_accuracy'])} | {fmt(p['unsupported_rate'], True)} "
                   f"| {fmt(p['check_failed_rate'], True)} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, help="working directory (indices, data and models are reused when present)")
    ap.add_argument("--examples", type=int, default=600, help="RAFT examples built (0: all)")
    ap.add_argument("--phrasings", type=int, default=2, help="question wordings per fact in the RAFT data")
    ap.add_argument("--max-steps", type=int, default=80, help="SFT optimizer steps")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--limit", type=int, default=0, help="first N questions of each set (0: all)")
    ap.add_argument("--skip-bundled", action="store_true", help="leave out the hand-written shapes sets")
    ap.add_argument("--skip-base", action="store_true", help="leave out the base model")
    ap.add_argument("--more-sets", default="",
                    help="more hand-written sets over the bundled index, scored apart from the others, e.g. "
                         "c,d,e,f for handwritten_shapes_c.jsonl ...; the RAFT data leaves out only the "
                         "entities of the sets above, so theirs may be in it")
    ap.add_argument("--raft-graphs", default="small,webnlg",
                    help="the indices the RAFT data comes from: small, and optionally bundled (the bundled sample: "
                         "almost all of it is about evaluated entities or the ontology), webnlg (WebNLG 2020 "
                         "train's DBpedia triples, built under --work) and qald (QALD-9 train's graph, its "
                         "single-pattern questions as examples in their own words: raft-data --questions)")
    ap.add_argument("--small-only", action="store_true", help="--raft-graphs small (the data of the first runs)")
    ap.add_argument("--data-only", action="store_true", help="stop after the RAFT data (print its counts)")
    ap.add_argument("--model", help="a trained model to evaluate instead of training one")
    ap.add_argument("--decoding", default="constrained,free",
                    help="how the models' answers are decoded, comma-separated; the first is the one the targets "
                         "judge (constrained: `ask --model`'s default for a RAFT-trained model), the others are "
                         "reported as 'MODEL, DECODING'")
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a loaded machine)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 24 examples, 2 steps, 4 questions per set")
    ap.add_argument("--gpu", action="store_true", help="GPU recipe: all examples, 3 phrasings, 300 steps of 16")
    ap.add_argument("--out", type=Path, help="also write the results (JSON) here")
    args = ap.parse_args()
    if args.quick:
        args.examples, args.max_steps, args.batch_size, args.limit = 24, 2, 4, args.limit or 4
        args.skip_bundled = True
    if args.gpu:
        args.examples, args.phrasings, args.max_steps, args.batch_size = 0, 3, 300, 16
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-grounding-"))
    more = [f"handwritten_shapes_{x.strip().lower()}.jsonl" for x in args.more_sets.split(",") if x.strip()]
    missing = [f for f in more if not (QDIR / f).is_file()]
    if missing:   # before any index is built or model trained
        raise SystemExit(f"--more-sets: no {QDIR / missing[0]}")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    times = {}
    t = time.perf_counter()
    small = small_index(work)
    times["small index"] = time.perf_counter() - t
    model = args.model
    if model is None:
        names = ["small"] if args.small_only else [g.strip() for g in args.raft_graphs.split(",") if g.strip()]
        if "small" not in names or not set(names) <= {"small", "bundled", "webnlg", "qald"}:
            raise SystemExit(f"--raft-graphs {args.raft_graphs!r}: small, and optionally bundled, webnlg and qald")
        indices = [small]
        t1 = time.perf_counter()
        if "bundled" in names:
            indices.append(bundled_index(work))
            times["bundled index"] = time.perf_counter() - t1
        if "webnlg" in names:
            t1 = time.perf_counter()
            indices.append(webnlg_index(work))
            times["WebNLG index"] = time.perf_counter() - t1
        if "qald" in names:
            t1 = time.perf_counter()
            indices.append(qald_index(work))
            times["QALD index"] = time.perf_counter() - t1
        data, times["RAFT data"] = raft_data(work, indices, args.examples, args.phrasings, names)
        if args.data_only:
            return 0
        model, times["training"] = train(work, data, args.max_steps, args.batch_size, args.lr)
    decodings = [d.strip() for d in args.decoding.split(",") if d.strip()]
    if not decodings or any(d not in ("constrained", "free") for d in decodings):
        raise SystemExit(f"--decoding {args.decoding!r}: constrained and/or free")
    systems = {"extractive": (None, None)}
    for name, m in ([] if args.skip_base else [("base", BASE)]) + [("trained", str(model))]:
        for d in decodings:
            systems[name if d == decodings[0] else f"{name}, {d}"] = (m, d)
    t = time.perf_counter()
    rows = evaluate_sets(small, SMALL_SETS, systems, args.limit, work)
    building = 0.0
    if not args.skip_bundled:
        t1 = time.perf_counter()
        bundled = bundled_index(work)
        building = time.perf_counter() - t1
        times["bundled index"] = times.get("bundled index", 0.0) + building
        rows += evaluate_sets(bundled, BUNDLED_SETS, systems, args.limit, work)
    extra = evaluate_sets(bundled_index(work), more, systems, args.limit, work) if more else []
    times["evaluation"] = time.perf_counter() - t - building
    print("\n## Grounded answers: extractive vs base SmolLM2-135M-Instruct vs RAFT-trained (hybrid retriever)\n")
    print(table(rows))
    print("\nAll sets pooled (question-weighted):\n")
    pools = {s: pooled(rows, s) for s in systems}
    print(pooled_table(pools))
    tr, ex = pools["trained"], pools["extractive"]
    more_pools = {s: pooled(extra, s) for s in systems} if extra else None
    if extra:
        print("\n## More hand-written sets, scored apart (not part of the pooled figures or the targets)\n")
        print(table(extra))
        print()
        print(pooled_table(more_pools))
    checks = {"citation precision >= 0.95": (tr["citation_precision"] or 0) >= 0.95,
              "refusal accuracy >= 0.9": (tr["refusal_accuracy"] or 0) >= 0.9,
              "unsupported < 5%": tr["unsupported_rate"] is not None and tr["unsupported_rate"] < 0.05,
              "F1 >= extractive - 0.05": (tr["f1"] or 0) >= (ex["f1"] or 0) - 0.05}
    print(f"\ntargets (trained, {decodings[0]} decoding): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in checks.items()))
    times["total"] = time.perf_counter() - t0
    print("run times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "pooled": pools, "more_rows": extra,
                                        "more_pooled": more_pools, "targets": checks, "times_s": times,
                                        "args": {k: str(v) for k, v in vars(args).items()}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
