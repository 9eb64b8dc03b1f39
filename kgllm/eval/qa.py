"""``kgllm eval qa`` and the ``eval.qa`` stage (:func:`run_eval_qa`): answer quality of the ask stage, for the
vector-only, graph-only and hybrid retrievers.

Takes: an index artifact, a question file (JSONL, one ``{"question": str, "answers": [IRI or literal, ...]}``
per line; optional ``type``, ``id`` and ``triple_ids``: the gold supporting triples), optionally a model
(a name or checkpoint, or a model artifact as the stage's second input) that words the answers, and
optionally the questions that received feedback (``feedback_questions``: any JSONL file with a
``"question"`` per line, such as the recorded feedback file ``kgllm feedback import`` reads).
Makes: an artifact (kind ``eval.qa``)::

    report.json                  metrics overall and per question type, for each retriever (and, with
                                 feedback questions, per group: "feedback" and "held_out")
    table.md                     the same as a Markdown table (the README table)
    predictions/RETRIEVER.jsonl  one line per question: id, type, question, predicted answers, cited ids,
                                 per-question metrics and latency (and its group)

Feedback groups: an evaluated question is in the ``feedback`` group when its text (whitespace-normalized,
case-folded) is one of the feedback file's questions, else ``held_out``. Comparing the two groups before
and after the loop (corrections quarantined, index updated, model tuned on the export) shows whether
feedback fixed what people complained about without hurting the rest. A feedback file none of whose
questions is in the question set is an input error (there would be nothing to compare).

Metrics, per question then macro-averaged (over all questions, and per ``type``):

* ``hits@1``: the first predicted answer is a gold answer;
* ``em``: the predicted answer set equals the gold set;
* ``precision``/``recall``/``f1``: QALD-9 rules over answer sets: gold empty and prediction empty -> 1, 1, 1;
  gold empty but something predicted -> 0; prediction empty but gold not -> 0. ``f1`` is the mean of the
  per-question F1, ``f1_qald`` the harmonic mean of the macro precision and recall (as GERBIL reports it);
* ``citation_precision``: share of cited triples that contain a gold answer, are gold supporting triples, or
  are the first hop of a chain to a cited triple holding a gold answer (from an entity linked in the
  question to that triple's subject or object) (over questions that cite something);
* with a model, ``model_citation_precision``: the same for the facts the model's own texts cite (a chain's
  completed first hop included; a number that is no fact shown counts as wrong), whether the check kept
  the text or not: the answers shown after a fallback cite the extractive answer's facts instead (over
  the questions whose text cites something; ``model_cited_questions``);
* ``citation_recall``: share of the gold supporting triples (``triple_ids``) cited; for a question without
  ``triple_ids``, share of its gold answers that a cited triple contains (over answerable questions);
  neither is computed for a count or yes/no answer without ``triple_ids`` (no fact holds "3" or "true", so
  the counted or checked facts cannot be judged against the gold answer; such questions are left out of
  both means, like questions citing nothing);
* ``refusal_accuracy``: share of the unanswerable questions (empty gold) answered "not in the graph";
  ``false_refusals``: share of the answerable ones answered "not in the graph";
* with a model (kgllm.ask.grounding): ``generated`` (questions whose answer the model wrote and the check
  judged), ``unsupported_rate`` (share of those making a claim their facts do not support: a text that
  failed the check (a citation out of range, a claim no cited fact holds, no citation), or a refusal
  although a fact shown holds a gold answer), ``check_failed_rate`` (share failing the check as ``ask``
  runs it, without gold answers: a refusal fails it wherever the extractive answerer found an answer,
  right or wrong, e.g. on a question the graph cannot answer), ``fallbacks`` (how
  often the extractive answer or "not in the graph" replaced the text), ``conflicts`` (supported texts
  replaced because they name none of the extractive answers), ``completed`` (supported texts whose chain
  the check completed with an uncited first hop), ``retried`` / ``retry_kept`` (refusals above facts that
  answer, decoded again without the refusal / whose second text passed the check and was shown) and ``f1_no_fallback``: the F1 had
  every failed text been answered with "not in the graph" instead of the extractive answer (the model's
  own F1; equal to ``f1`` without a model);
* ``latency_p50_ms``/``latency_p95_ms``: wall time of ``Answerer.ask`` per question, and the same for
  retrieval alone (``retrieval_p50_ms``: linking + vector search + graph + SPARQL + fusion).

Unanswerable questions (empty gold) count as right when the answerer says "not in the graph".
Answers compare on the bare IRI, or on the literal's lexical form (whitespace-normalized, case-folded).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path

from .. import api
from ..artifacts import (
    REPLACE_OTHER_KINDS,
    ArtifactWriter,
    Manifest,
    atomic_write_json,
    check_destination,
    iter_jsonl,
    read_manifest,
    write_jsonl,
)
from ..ask.answer import RETRIEVERS, load_answerer
from ..ask.grounding import linked_entities
from ..ask.question import check_question
from ..errors import ConfigError, InputError, UsageError
from ..index.lexicon import term_value
from ..log import progress
from .stage import QAEvalConfig


def retrieval_ms(timings: dict) -> float:
    """Wall time of retrieval (``Retriever.retrieve`` records it: in hybrid the vector search runs beside the
    graph search, so the stage timings overlap)."""
    return timings.get("retrieval_ms", 0.0)


def load_questions(path: str | Path, limit: int = 0) -> list[dict]:
    """Read and check a question file (the first ``limit`` questions when ``limit > 0``). Every line must have
    ``question`` (a string within :func:`~kgllm.ask.question.check_question`'s limits) and ``answers`` (a list
    of strings or numbers); a bad line is an error naming file and line."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: question file does not exist")
    rows = []
    for n, r in iter_jsonl(p):
        if not isinstance(r.get("question"), str) or not isinstance(r.get("answers"), list):
            raise InputError(f'{p}:{n}: expected {{"question": str, "answers": [...]}}')
        try:
            check_question(r["question"])
        except UsageError as e:
            raise InputError(f"{p}:{n}: {e}") from e
        bad = [a for a in r["answers"] if isinstance(a, bool) or not isinstance(a, (str, int, float))]
        if bad:
            raise InputError(f"{p}:{n}: answer {json.dumps(bad[0])} is not a string (IRI or literal) or a number")
        for key in ("id", "type"):
            if key in r and not isinstance(r[key], str):
                raise InputError(f"{p}:{n}: {key!r} must be a string, not {json.dumps(r[key])}")
        tids = r.get("triple_ids", [])
        if not isinstance(tids, list) or not all(isinstance(t, str) for t in tids):
            raise InputError(f"{p}:{n}: 'triple_ids' must be a list of triple id strings")
        r.setdefault("id", f"line{n}")
        r.setdefault("type", "all")
        r["answers"] = [str(a) for a in r["answers"]]
        rows.append(r)
        if limit > 0 and len(rows) >= limit:
            break
    if not rows:
        raise InputError(f"{p}: no questions")
    return rows


GROUPS = ("feedback", "held_out")

# QALD's precision and recall are over whole answer sets: the answerer scored lists every answer of its query
# (``kgllm ask`` lists the first 200 with the full count), up to this many.
EVAL_MAX_ANSWERS = 100_000


def norm_question(q: str) -> str:
    """What questions are matched on: whitespace-normalized and case-folded."""
    return " ".join(q.split()).casefold()


def load_feedback_questions(path: str | Path) -> set[str]:
    """The normalized questions of a feedback file: every JSONL line's ``"question"`` (a recorded feedback
    file, an export's rows, or a question file)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: feedback questions file does not exist (give the recorded feedback file, JSONL "
                         'with a "question" per line)')
    out = set()
    for n, r in iter_jsonl(p, hint='; expected JSONL with a "question" per line'):
        if not isinstance(r.get("question"), str) or not r["question"].strip():
            raise InputError(f'{p}:{n}: expected a "question" string')
        out.add(norm_question(r["question"]))
    if not out:
        raise InputError(f"{p}: no questions")
    return out


def assign_groups(questions: list[dict], feedback: set[str], source: str | Path) -> dict:
    """Mark each question's ``group`` (feedback or held_out); returns the group sizes."""
    for q in questions:
        q["group"] = "feedback" if norm_question(q["question"]) in feedback else "held_out"
    n = sum(q["group"] == "feedback" for q in questions)
    if n == 0:
        raise InputError(f"{source}: none of its {len(feedback)} questions is in the evaluated question set; "
                         "add them (with gold answers) to the question file, or leave feedback_questions out")
    return {"feedback": n, "held_out": len(questions) - n, "feedback_file_questions": len(feedback),
            "feedback_questions_not_evaluated": len(feedback - {norm_question(q["question"]) for q in questions})}


def norm_answer(a: str) -> str:
    a = a.strip()
    if a.startswith("<") and a.endswith(">"):
        a = a[1:-1]
    if a.startswith(("http://", "https://", "urn:")):
        return a
    return " ".join(a.split()).casefold()


def score(pred: dict, gold: dict, shown: list[dict] | None = None) -> dict:
    """Per-question metrics of one answer dict (kgllm.ask.answer) against one gold question. ``shown``: the
    facts (``id``, ``s``, ``o``; :func:`_shown`) a model was shown, when it wrote the answer: its refusal and
    its own citations are judged against them."""
    g = {norm_answer(a) for a in gold["answers"]}
    plist = [norm_answer(a["value"]) for a in pred.get("answers", [])] if pred.get("supported") else []
    pset = set(plist)
    if not g:
        ok = float(not pset)
        prec = rec = f1 = hits = em = ok
    elif not pset:
        prec = rec = f1 = hits = em = 0.0
    else:
        inter = len(pset & g)
        prec, rec = inter / len(pset), inter / len(g)
        f1 = 0.0 if inter == 0 else 2 * prec * rec / (prec + rec)
        hits = float(plist[0] in g)
        em = float(pset == g)
    cited = pred.get("citations", [])
    gold_ids = set(gold.get("triple_ids") or [])
    # No fact holds "3" or "true": without gold supporting triples a computed answer's citations are not judged.
    judged = bool(gold_ids) or pred.get("shape") not in COMPUTED_ANSWERS
    cit = cit_rec = None
    if judged and cited:
        cit = len(_good_citations(cited, g, gold_ids, linked_entities(pred))) / len(cited)
    if judged and g:
        if gold_ids:
            cit_rec = len(gold_ids & {c["id"] for c in cited}) / len(gold_ids)
        else:
            held = set().union(*(_ends(c) for c in cited)) if cited else set()
            cit_rec = len(g & held) / len(g)
    refused = not pset
    gr = pred.get("grounding") or {}
    checked = bool(gr.get("checked"))
    failed = checked and not gr.get("supported")
    unsupported = failed
    model_cit = None
    if checked and shown is not None:
        if gr.get("refusal"):
            # A refusal claims the facts do not answer: false when a fact shown holds a gold answer.
            unsupported = bool(g) and any(c is not None and _ends(c) & g for c in shown)
        elif judged:
            # The facts the model's own text cites (a chain's completed first hop too), kept or not.
            ns = list(dict.fromkeys([*(gr.get("completed") or []), *(gr.get("cited") or [])]))
            mine = [shown[n - 1] for n in ns if 1 <= n <= len(shown) and shown[n - 1] is not None]
            if ns:
                model_cit = len(_good_citations(mine, g, gold_ids, linked_entities(pred))) / len(ns)
    t = pred.get("timings", {})
    return {"hits@1": hits, "em": em, "precision": prec, "recall": rec, "f1": f1, "citation_precision": cit,
            "model_citation_precision": model_cit,
            "citation_recall": cit_rec, "refusal": float(refused) if not g else None,
            "false_refusal": float(refused) if g else None, "generated": checked,
            "unsupported": float(unsupported) if checked else None,
            "check_failed": float(failed) if checked else None, "fallback": gr.get("fallback"),
            "conflict": bool(gr.get("conflict")), "completed": bool(gr.get("completed")),
            "retried": bool(gr.get("retry")), "retry_kept": bool(gr.get("retry")) and gr.get("fallback") is None,
            "f1_no_fallback": float(not g) if failed else _set_f1(gr.get("answers") or [], g) if gr.get("conflict")
            else f1,
            "latency_ms": t.get("total_ms", 0.0),
            "retrieval_ms": retrieval_ms(t)}


def _set_f1(pred: list[str], g: set[str]) -> float:
    """QALD F1 of predicted answer values against the normalized gold set (a conflicting generated answer's)."""
    p = {norm_answer(a) for a in pred}
    if not g or not p:
        return float(not g and not p)
    inter = len(p & g)
    return 0.0 if inter == 0 else 2 * inter / (len(p) + len(g))


# Answers computed over the cited facts (the count of the facts, yes or no), not held by any of them.
COMPUTED_ANSWERS = ("count", "yes_no")


def _good_citations(cited: list[dict], g: set[str], gold_ids: set[str], seeds: list[str]) -> list[dict]:
    """The cited triples that are gold supporting triples, hold a gold answer, or are the first hop of a
    chain to one: the hop links an entity the question names (``seeds``, linked by the retrieval, or the
    ``topic`` of the answer's query: :func:`kgllm.ask.grounding.linked_entities`) to the
    subject or object of a cited triple that holds a gold answer ("Erich Marcks | death place | Normandy"
    before "Normandy | utc offset | +1"); a triple merely sharing a term with the answer's is not."""
    holding = [c for c in cited if c["id"] in gold_ids or _ends(c) & g]
    topics = {norm_answer(t) for c in holding for t in (c["s"], c["o"])} - g
    named = {norm_answer(x) for x in seeds}
    hops = [c for c in cited if c not in holding
            and (ends := {norm_answer(c["s"]), norm_answer(c["o"])}) & topics and ends & named]
    return holding + hops


def _shown(answerer, out: dict) -> list[dict] | None:
    """The facts a model was shown for ``out`` (``id``, ``s``, ``o``), in their numbered order (a fact no
    longer in the index: None); None when no model wrote the answer."""
    ids = (out.get("grounding") or {}).get("facts")
    if not ids:
        return None
    live = {r.id: {"id": r.id, "s": r.s, "o": r.o} for r in answerer.index.triples(ids)}
    return [live.get(i) for i in ids]


def _ends(c: dict) -> set[str]:
    """A cited triple's subject and object as compared with gold answers."""
    return {norm_answer(c["s"]), norm_answer(term_value(c["o"])), norm_answer(c["o"])}


def _pct(vals: list[float], q: float) -> float:
    if not vals:
        return 0.0
    s = sorted(vals)
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return round(s[i], 3)


def aggregate(scores: list[dict]) -> dict:
    n = len(scores)
    if not n:
        return {"questions": 0}
    mean = lambda k: round(sum(s[k] for s in scores) / n, 4)  # noqa: E731
    cits = [s["citation_precision"] for s in scores if s["citation_precision"] is not None]
    p, r = mean("precision"), mean("recall")
    lat = [s["latency_ms"] for s in scores]
    ret = [s["retrieval_ms"] for s in scores]

    def mean_of(k: str) -> float | None:  # over the questions the metric applies to
        vals = [s[k] for s in scores if s.get(k) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    fallbacks = Counter(s.get("fallback") for s in scores if s.get("fallback"))
    return {"questions": n, "hits@1": mean("hits@1"), "em": mean("em"), "precision": p, "recall": r,
            "f1": mean("f1"), "f1_qald": round(0.0 if p + r == 0 else 2 * p * r / (p + r), 4),
            "citation_precision": round(sum(cits) / len(cits), 4) if cits else None,
            "cited_questions": len(cits),
            "model_citation_precision": mean_of("model_citation_precision"),
            "model_cited_questions": sum(s.get("model_citation_precision") is not None for s in scores),
            "citation_recall": mean_of("citation_recall"), "refusal_accuracy": mean_of("refusal"),
            "unanswerable_questions": sum(s.get("refusal") is not None for s in scores),
            "false_refusals": mean_of("false_refusal"),
            "generated": sum(bool(s.get("generated")) for s in scores), "unsupported_rate": mean_of("unsupported"),
            "check_failed_rate": mean_of("check_failed"),
            "fallbacks": {k: fallbacks.get(k, 0) for k in ("extractive", "not_in_graph")},
            "conflicts": sum(bool(s.get("conflict")) for s in scores),
            "completed": sum(bool(s.get("completed")) for s in scores),
            "retried": sum(bool(s.get("retried")) for s in scores),
            "retry_kept": sum(bool(s.get("retry_kept")) for s in scores),
            "f1_no_fallback": mean_of("f1_no_fallback"),
            "latency_p50_ms": _pct(lat, 0.5), "latency_p95_ms": _pct(lat, 0.95),
            "retrieval_p50_ms": _pct(ret, 0.5), "retrieval_p95_ms": _pct(ret, 0.95)}


def evaluate(answerer, questions: list[dict], retrievers=("vector", "graph", "hybrid")
             ) -> tuple[dict, dict[str, list[dict]]]:
    """Run every question through every retriever. Returns the report and the predictions per retriever.

    The answerer is warmed up first (:meth:`~kgllm.ask.answer.Answerer.warmup`) so that loading the encoder
    is not counted as latency.
    """
    answerer.warmup(retrievers)
    report: dict = {"retrievers": {}, "questions": len(questions),
                    "types": dict(sorted(Counter(q["type"] for q in questions).items()))}
    grouped = any("group" in q for q in questions)
    preds: dict[str, list[dict]] = {}
    for mode in retrievers:
        rows, by_type, by_group = [], defaultdict(list), defaultdict(list)
        t0 = time.perf_counter()
        for q in progress(questions, desc=f"eval qa: {mode}", unit="q"):
            out = answerer.ask(q["question"], mode)
            sc = score(out, q, _shown(answerer, out))
            by_type[q["type"]].append(sc)
            row = {"id": q["id"], "type": q["type"], "question": q["question"], "gold": q["answers"],
                   "answer": out["answer"], "answers": [a["value"] for a in out["answers"]],
                   "supported": out["supported"], "shape": out["shape"], "mode": out["mode"],
                   "cited": [c["id"] for c in out["citations"]], **sc}
            if out.get("grounding"):
                g = out["grounding"]
                row["grounding"] = {k: g.get(k) for k in ("supported", "refusal", "conflict", "fallback", "reason",
                                                          "generated", "cited", "completed", "retry")}
            if grouped:
                by_group[q["group"]].append(sc)
                row["group"] = q["group"]
            rows.append(row)
        allsc = [s for v in by_type.values() for s in v]
        report["retrievers"][mode] = {"overall": aggregate(allsc),
                                      "by_type": {t: aggregate(v) for t, v in sorted(by_type.items())},
                                      "wall_s": round(time.perf_counter() - t0, 3)}
        if grouped:
            report["retrievers"][mode]["by_group"] = {g: aggregate(by_group[g]) for g in GROUPS}
        preds[mode] = rows
    return report, preds


def format_table(report: dict) -> str:
    """Markdown: one row per retriever and question type, with Hits@1, EM, F1, citation precision, latency;
    with feedback groups, a second table with one row per retriever and group."""
    head = "| retriever | {} | n | Hits@1 | EM | F1 (QALD macro) | citation precision | p50 ms | p95 ms |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|"

    def row(mode: str, name: str, a: dict) -> str:
        if not a.get("questions"):
            return f"| {mode} | {name} | 0 | - | - | - | - | - | - |"
        cp = "-" if a.get("citation_precision") is None else f"{a['citation_precision']:.2f}"
        return (f"| {mode} | {name} | {a['questions']} | {a['hits@1']:.2f} | {a['em']:.2f} | {a['f1']:.2f} "
                f"| {cp} | {a['latency_p50_ms']:.1f} | {a['latency_p95_ms']:.1f} |")

    lines = [head.format("type"), rule]
    for mode, r in report["retrievers"].items():
        # Questions without a type are all of type "all": that row is the overall one, not printed twice.
        types = [(t, a) for t, a in r["by_type"].items() if t != "all"]
        lines += [row(mode, t, a) for t, a in [("all", r["overall"]), *types]]
    lines += ["", "Grounding: citation recall, refusals of the unanswerable questions and, when a model writes the "
              "answers, the share of texts making a claim their facts do not support (a refusal judged against the gold "
              "answers), the share failing the citation check as ask runs it and the fallbacks that replaced them:", "",
              "| retriever | n | F1 | F1 without fallback | citation precision | citation recall | refusal accuracy "
              "| unsupported | failed the check | fallbacks: extractive / not in graph |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for mode, r in report["retrievers"].items():
        lines.append(grounding_row(mode, r["overall"]))
    if any("by_group" in r for r in report["retrievers"].values()):
        lines += ["", "Questions that received feedback against held-out questions:", "", head.format("group"), rule]
        for mode, r in report["retrievers"].items():
            lines += [row(mode, g, r["by_group"][g]) for g in GROUPS]
    return "\n".join(lines) + "\n"


def grounding_row(name: str, a: dict) -> str:
    """One row of the grounding table (an ``aggregate`` result)."""
    if not a.get("questions"):
        return f"| {name} | 0 | - | - | - | - | - | - | - | - |"

    def f(k: str) -> str:
        return "-" if a.get(k) is None else f"{a[k]:.2f}"

    fb = a.get("fallbacks") or {}
    unsup = f"{a['unsupported_rate']:.1%} of {a['generated']}" if a.get("generated") else "-"
    failed = f"{a['check_failed_rate']:.1%}" if a.get("generated") and a.get("check_failed_rate") is not None else "-"
    fbs = f"{fb.get('extractive', 0)} / {fb.get('not_in_graph', 0)}" if a.get("generated") else "-"
    return (f"| {name} | {a['questions']} | {a['f1']:.2f} | {f('f1_no_fallback')} | {f('citation_precision')} "
            f"| {f('citation_recall')} | {f('refusal_accuracy')} | {unsup} | {failed} | {fbs} |")


def run_eval(index_dir: str | Path, questions_file: str | Path, out: str | Path, *, retrievers=None,
             model: str | Path | None = None, sparql: str = "store", limit: int = 0, config=None,
             pipeline_key: str | None = None, feedback_questions: str | Path | None = None,
             model_input: Path | None = None, ranker: str | Path | None = None, decoding: str = "auto"):
    """Evaluate and write the ``eval.qa`` artifact; returns its manifest. ``feedback_questions``: report the
    questions that received feedback and the held-out ones as two groups. ``model_input``: a model artifact
    that words the answers (recorded as an input)."""
    check_destination(out, "eval.qa", force=REPLACE_OTHER_KINDS.get())  # before the index loads
    retrievers = list(retrievers or RETRIEVERS)
    bad = [r for r in retrievers if r not in RETRIEVERS]
    if bad:
        raise InputError(f"unknown retriever(s) {bad}; choose from {', '.join(RETRIEVERS)}")
    qs = load_questions(questions_file, limit)
    groups = None
    if feedback_questions is not None:
        groups = assign_groups(qs, load_feedback_questions(feedback_questions), feedback_questions)
    if model_input is not None:
        model = model_input
    answerer = load_answerer(index_dir, model=model, sparql=sparql, ranker=ranker, decoding=decoding,
                             max_answers=EVAL_MAX_ANSWERS)
    report, preds = evaluate(answerer, qs, retrievers)
    report["ranker"] = str(ranker) if ranker else "zero-shot"
    report["index"] = str(index_dir)
    report["questions_file"] = str(questions_file)
    report["model"] = str(model) if model else None
    gen = answerer.generator
    report["decoding"] = None if gen is None else "constrained" if gen.constrained else "free"
    if groups is not None:
        report["groups"] = {"feedback_questions_file": str(feedback_questions), **groups}
    cfg = config if config is not None else {"questions": str(questions_file), "retrievers": retrievers,
                                            "model": str(model) if model else None, "sparql": sparql,
                                            "limit": limit, "feedback_questions": feedback_questions,
                                            "ranker": str(ranker) if ranker else None, "decoding": decoding}
    inputs = [index_dir, *([model_input] if model_input is not None else []), questions_file,
              *([feedback_questions] if feedback_questions is not None else [])]
    with ArtifactWriter(out, "eval.qa", config=cfg, inputs=inputs, pipeline_key=pipeline_key) as w:
        atomic_write_json(w.path / "report.json", report)
        (w.path / "table.md").write_text(format_table(report), encoding="utf-8")
        (w.path / "predictions").mkdir()
        for mode, rows in preds.items():
            write_jsonl(w.path / "predictions" / f"{mode}.jsonl", rows)
        w.counts["questions"] = len(qs)
        if groups is not None:
            w.counts.update(feedback_questions=groups["feedback"], held_out_questions=groups["held_out"])
        for mode, r in report["retrievers"].items():
            w.counts[f"{mode}_hits@1"] = r["overall"]["hits@1"]
            w.counts[f"{mode}_f1"] = r["overall"]["f1"]
            for g, a in r.get("by_group", {}).items():
                w.counts[f"{mode}_{g}_hits@1"] = a.get("hits@1", 0.0)
                w.counts[f"{mode}_{g}_f1"] = a.get("f1", 0.0)
    return w.manifest


def run_eval_qa(inputs: list[Path], out: Path, config: QAEvalConfig, *, pipeline_key: str | None = None
                ) -> Manifest:
    """The ``eval.qa`` stage: one index artifact (and optionally a model artifact, which then words the
    answers instead of ``config.model``) and ``config.questions`` -> an ``eval.qa`` artifact."""
    if config.questions is None:
        raise ConfigError("eval.qa: set `questions:` to a question file (JSONL), e.g. "
                          "examples/data/questions/dbpedia_wordnet.jsonl")
    read_manifest(inputs[0], "index")
    model_input = None
    if len(inputs) > 1:
        read_manifest(inputs[1], "model")  # a clear error for anything else
        model_input = Path(inputs[1])
    return run_eval(inputs[0], config.questions, out, retrievers=config.retrievers, model=config.model,
                    sparql=config.sparql, limit=config.limit, config=config, pipeline_key=pipeline_key,
                    feedback_questions=config.feedback_questions, model_input=model_input, ranker=config.ranker,
                    decoding=config.decoding)


# ``kgllm.eval.qa(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.eval_qa)
