"""Answers with citations: the ``ask`` stage's one entry point, :class:`Answerer`.

Takes: an index artifact (``kgllm index``; loaded with :func:`kgllm.index.facade.load_index`), a question, a retriever
(``vector`` | ``graph`` | ``hybrid``), optionally a SPARQL endpoint (else an embedded pyoxigraph store built
from the index's live triples) and a local model for generated answer text (kgllm.ask.generate).
Makes: one JSON-ready dict per question (the ``kgllm ask --json`` output and the ``POST /ask`` body)::

    question, answer (text), answers [{term, value, label, kind}], supported (bool), shape, retriever, mode,
    topic {iri, label}, path [{predicate, label, direction}], citations [{n, id, s, p, o, labels, text,
    provenance}], context [{id, score}], sparql (the query run, or null), scores, timings (ms), subgraph
    {nodes, edges}, grounding (null, or the check of a generated answer: kgllm.ask.grounding)

Extractive mode (the default, no model): the answers are exactly the graph terms the retrieval found, the
text is their labels. When nothing in the graph supports an answer the text is :data:`NOT_IN_GRAPH`,
``supported`` is false and no triple is cited: the answerer never guesses.
With a model (``mode`` generative, extractive-fallback or refusal-fallback): the model writes the answer
from the numbered retrieved facts; a text whose citations do not hold its claim is never shown.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyoxigraph  # the embedded SPARQL store of the default mode (sparql="store")

from ..errors import InputError
from ..index.facade import load_index, truncate
from ..index.lexicon import term_value
from ..rdf import XSD, iri_value, literal
from .generate import DECODINGS, Generator
from .grounding import COMPUTED_SHAPES, NOT_IN_GRAPH, choose_facts, ground, linked_terms, skipped
from .question import check_question
from .ranker import Ranker
from .retrieve import RETRIEVERS, Retrieval, RetrieveConfig, Retriever
from .sparql_templates import SparqlRunner
from .understand import UnderstandConfig

_XSD_INTEGER = XSD + "integer"


def store_from_index(index):
    """An in-memory pyoxigraph store holding the index's live triples (for the SPARQL templates)."""
    g = index.graph
    store = pyoxigraph.Store()
    buf: list[str] = []

    def flush():
        if buf:
            store.bulk_load(("".join(buf)).encode("utf-8"), format=pyoxigraph.RdfFormat.N_TRIPLES)
            buf.clear()

    for r in range(g.n_rows):
        if g.alive(r):
            s, p, o = g.triple_terms(r)
            buf.append(f"{s} {p} {o} .\n")
            if len(buf) >= 100_000:
                flush()
    flush()
    return store


class Answerer:
    """Question -> answer dict. ``sparql``: "store" (embedded, built from the index), "off", or an endpoint URL."""

    def __init__(self, index, *, config: RetrieveConfig | None = None, sparql: str | None = "store",
                 generator=None, ranker=None, max_answers: int | None = None):
        self.index = index
        self.config = config or RetrieveConfig()
        self.generator = generator
        runner = None
        if sparql and sparql != "off":
            if sparql == "store":
                runner = SparqlRunner(store=lambda: store_from_index(index))
            else:
                runner = SparqlRunner(endpoint=sparql)
        self.sparql = runner
        if ranker is not None and not isinstance(ranker, Ranker):
            ranker = Ranker.from_dir(_ranker_model_dir(ranker))
        self.ranker_name = ranker.name if ranker is not None else "zero-shot"
        understand = None if max_answers is None else UnderstandConfig(max_answers=max_answers)
        self.retriever = Retriever(index, self.config, runner, ranker=ranker, understand=understand)

    @classmethod
    def from_dir(cls, index_dir, **kw) -> Answerer:
        return cls(load_index(index_dir), **kw)

    def warmup(self, retrievers=RETRIEVERS) -> None:
        """Load the encoder and build the cached matrices (and the embedded SPARQL store) of ``retrievers`` now
        (seconds), not in the first question's latency."""
        for mode in retrievers:
            self.ask("warm up", mode)

    def ask(self, question: str, retriever: str = "hybrid") -> dict:
        t0 = time.perf_counter()
        q = check_question(question)
        r = self.retriever.retrieve(q, retriever)
        out = self._format(r)
        if self.generator is not None:
            t1 = time.perf_counter()
            out = self._generate(out)
            r.timings["generate_ms"] = round((time.perf_counter() - t1) * 1000, 3)
        out["timings"] = {**r.timings, "total_ms": round((time.perf_counter() - t0) * 1000, 3)}
        return out

    def _generate(self, out: dict) -> dict:
        """The model writes the answer from the retrieved facts (the extractive citations first, then the
        context; the context alone when the graph answers nothing, so it can refuse); the text is checked
        and kept or replaced by a fallback (kgllm.ask.grounding; ``grounding`` records which)."""
        if out["supported"] and out["shape"] in COMPUTED_SHAPES:
            return {**out, "grounding": skipped(f"a {out['shape']} answer is computed by the query, not written")}
        context = [c["id"] for c in out["context"]]
        facts = self._citations(choose_facts(self.index, [c["id"] for c in out["citations"]], context))
        linked = linked_terms(out)
        res = ground(out, self.generator.generate(out["question"], facts, linked=linked), facts, out["question"])
        if res["grounding"]["refusal"] and res["grounding"]["fallback"] == "extractive":
            res = self._retry_refusal(out, facts, res, linked)
        if res["mode"] == "generative" and res["citations"] is not out["citations"]:
            res["subgraph"] = self._subgraph(res["citations"], context, None, [a["term"] for a in res["answers"]])
        return res

    def _retry_refusal(self, out: dict, facts: list[dict], res: dict, linked: set[str]) -> dict:
        """A refusal above cited facts that answer (``res``, its fallback): one more decoding, where the text
        cannot open with the refusal, kept only when it passes the check like any other text and names every
        answer of the graph query that the shown facts hold; else the fallback stands. ``grounding.retry``
        records the other text."""
        g = res["grounding"]
        again = ground(out, self.generator.generate(out["question"], facts, answer_only=True, linked=linked), facts,
                       out["question"])
        retry = {"generated": again["grounding"]["generated"], "supported": again["grounding"]["supported"],
                 "reason": again["grounding"]["reason"]}
        if again["mode"] == "generative":
            named = {a["term"] for a in again["answers"]}
            shown = {t for c in facts for t in (c["s"], c["o"])}
            missed = [a["label"] for a in out["answers"] if a["term"] in shown and a["term"] not in named]
            if not missed:
                again["grounding"]["retry"] = {"generated": g["generated"], "reason": g["reason"]}  # the refusal
                return again
            # Supported, but fewer answers than the graph query's: the forced text is no better answer.
            retry.update(supported=False, reason=f"names only some of the answers the facts hold (not {missed[0]})")
        g["retry"] = retry
        return res

    # ------------------------------------------------------------------ formatting

    def _format(self, r: Retrieval) -> dict:
        idx, cfg = self.index, self.config
        q = r.question
        answers: list[str] = []
        cited: list[str] = []
        topic, path, sparql, score, shape = None, [], None, 0.0, q.shape
        pa = r.structured
        if pa is not None and pa.answers:
            answers = pa.answers
            for a in answers:
                cited += [t for t in pa.support.get(a, []) if t not in cited]
            topic = pa.topic
            path = [{"predicate": iri_value(p), "label": idx.label(p), "direction": d} for p, d in pa.path]
            sparql = pa.query
            score = pa.score
            if shape == "one_hop" and pa.hops == 2:
                shape = "two_hop"
        # A vector hit answers alone only for vector-only retrieval, or in hybrid when the linker found no
        # entity: when the graph knows the entity but none of its relations matches, the honest answer is
        # "not in the graph" (the nearest triple then is about the entity, not about the question).
        if not answers and (r.retriever == "vector" or (r.retriever == "hybrid" and not q.mentions)) \
                and r.vector_hits and r.vector_hits[0].score >= cfg.min_vector:
            h = r.vector_hits[0]
            rec = idx.triples([h.key])
            low = q.text.lower()
            # The end the question names is the topic; the other end is the answer. A hit whose ends the
            # question names neither is about something else ("the IATA code of Qantas" is not Cathay
            # Pacific's), and answers nothing.
            over = (_overlap(idx.label(rec[0].s), low), _overlap(idx.label(rec[0].o), low)) if rec else (0, 0)
            if rec and max(over) > 0:
                rec = rec[0]
                ans = rec.s if over[1] > over[0] else rec.o
                answers, cited, score = [ans], [rec.id], h.score
                topic = rec.o if ans == rec.s else rec.s
                path = [{"predicate": iri_value(rec.p), "label": idx.label(rec.p),
                         "direction": "in" if ans == rec.s else "out"}]
        supported = bool(answers)
        aggregate = pa.aggregate if pa is not None and pa.answers else None
        total = (pa.total or len(answers)) if pa is not None and pa.answers else len(answers)
        if aggregate == "ask":
            shape = "yes_no"
            yes = bool(pa.boolean)
            ans_list = [{"term": literal("true" if yes else "false", datatype=XSD + "boolean"),
                         "value": "true" if yes else "false", "label": "yes" if yes else "no", "kind": "literal"}]
            text = "yes" if yes else "no"
        elif aggregate in ("max", "min"):
            shape = "superlative"
        if shape == "count" and supported and len(answers) == 1 and _is_number(answers[0]) and aggregate != "count":
            shape = "one_hop"  # "How many employees does X have?": the graph stores the count itself
        if aggregate == "ask":
            pass
        elif shape == "count" and supported:
            n = total
            ans_list = [{"term": literal(str(n), datatype=_XSD_INTEGER), "value": str(n),
                         "label": str(n), "kind": "literal"}]
            text = str(n)
        else:
            ans_list = [{"term": a, "value": term_value(a), "label": idx.label(a),
                         "kind": "iri" if a.startswith("<") else "literal"} for a in answers]
            text = _join([a["label"] for a in ans_list]) if supported else NOT_IN_GRAPH
            if supported and total > len(answers):
                text += f" (and {total - len(answers)} more)"
        citations = self._citations(cited)
        context = [{"id": t, "score": round(float(s), 6)} for t, s in r.ranked]
        return {
            "question": q.text,
            "answer": text,
            "answers": ans_list,
            "supported": supported,
            "shape": shape,
            "total": total if supported else 0,
            "confidence": round(float(score), 6) if supported else 0.0,
            "query": {"shape": pa.shape, "features": pa.features} if pa is not None and pa.answers else None,
            "retriever": r.retriever,
            "mode": "extractive",
            "topic": {"iri": iri_value(topic), "label": idx.label(topic)} if topic else None,
            "path": path,
            "citations": citations,
            "context": context,
            "sparql": sparql,
            "scores": {"answer": round(float(score), 6),
                       "vector_top": round(float(r.vector_hits[0].score), 6) if r.vector_hits else None},
            "seeds": [iri_value(s) for s in r.seeds],
            "subgraph": self._subgraph(citations, [c["id"] for c in context], topic, answers),
            "grounding": None,  # set when a model writes the answer (kgllm.ask.grounding)
        }

    def _citations(self, ids: list[str]) -> list[dict]:
        idx = self.index
        out = []
        for n, rec in enumerate(idx.triples(ids), 1):
            labels = {"s": idx.label(rec.s), "p": idx.label(rec.p), "o": idx.label(rec.o)}
            out.append({"n": n, "id": rec.id, "s": rec.s, "p": rec.p, "o": rec.o, "labels": labels,
                        "text": f"{labels['s']} {labels['p']} {labels['o']}", "provenance": rec.provenance})
        return out

    def _subgraph(self, citations: list[dict], context_ids: list[str], topic: str | None, answers: list[str],
                  max_edges: int = 30) -> dict:
        """Nodes and edges of the cited triples plus the best context triples, for the web page."""
        cited = {c["id"] for c in citations}
        recs = list(self.index.triples([c["id"] for c in citations]))
        recs += [t for t in self.index.triples([i for i in context_ids if i not in cited])]
        nodes: dict[str, dict] = {}
        edges = []
        for rec in recs[:max_edges]:
            for t in (rec.s, rec.o):
                if t not in nodes:
                    role = "topic" if t == topic else "answer" if t in answers else \
                        "literal" if t.startswith('"') else "entity"
                    label = self.index.label(t)
                    nodes[t] = {"id": t, "label": truncate(label, 80), "role": role}
            edges.append({"id": rec.id, "source": rec.s, "target": rec.o, "label": self.index.label(rec.p),
                          "cited": rec.id in cited})
        return {"nodes": list(nodes.values()), "edges": edges}


def _ranker_model_dir(path):
    """A ``train.ranker`` artifact holds its model in ``model/``; a sentence-transformers directory is taken as is."""
    p = Path(path)
    if (p / "model").is_dir():
        return p / "model"
    if not p.is_dir():
        raise InputError(f"--ranker {p}: not a directory (give a `kgllm train ranker` output)")
    if not (p / "modules.json").is_file():
        raise InputError(f"--ranker {p}: not a ranker (no model/ and no modules.json of a sentence-transformers "
                         "model); give a `kgllm train ranker` output")
    return p


def load_answerer(index_dir, *, model=None, sparql: str = "store", ranker=None,
                  decoding: str = "auto", max_answers: int | None = None) -> Answerer:
    """The answerer of ``kgllm ask``, ``serve`` and ``eval qa``: over an index artifact directory, its answers
    written from the retrieved facts by the local ``model`` (name or checkpoint directory) and checked when
    one is given, else extractive. ``decoding``: ``constrained`` (the model writes only the shown facts'
    labels and numbers, kgllm.ask.generate), ``free``, or ``auto`` (constrained for a model trained on RAFT
    examples). ``max_answers``: answers listed at most (default :attr:`UnderstandConfig.max_answers`; the full
    count is always given)."""
    if decoding not in DECODINGS:
        raise InputError(f"decoding {decoding!r}: choose {' or '.join(DECODINGS)}")
    if max_answers is not None and max_answers < 1:
        raise InputError(f"max_answers {max_answers}: give 1 or more")
    generator = Generator(model, constrained=DECODINGS[decoding]) if model else None
    return Answerer.from_dir(index_dir, sparql=sparql, generator=generator, ranker=ranker, max_answers=max_answers)


def format_text(out: dict) -> str:
    """The human-readable form of an answer dict (``kgllm ask`` without ``--json``)."""
    lines = [out["answer"]]
    for c in out["citations"]:
        prov = c.get("provenance") or {}
        src = prov.get("path") or prov.get("endpoint") or prov.get("source") or "?"
        lines.append(f"  [{c['n']}] {c['labels']['s']} | {c['labels']['p']} | {truncate(c['labels']['o'], 100)}"
                     f"   (triple {c['id']}, from {src})")
    g = out.get("grounding")
    if g and g.get("fallback"):
        lines.append(f"(the model's answer {truncate(g['generated'] or '', 100)!r} is not shown: {g['reason']})")
    path = " -> ".join(p["label"] for p in out["path"]) or "-"
    lines.append(f"retriever: {out['retriever']}; path: {path}; {out['timings'].get('total_ms', 0):.1f} ms")
    return "\n".join(lines)


def _is_number(term: str) -> bool:
    if not term.startswith('"'):
        return False
    try:
        float(term_value(term))
    except ValueError:
        return False
    return True


def _overlap(label: str, question: str) -> float:
    """Share of a label's words found in the (lower-cased) question."""
    words = [w for w in re.findall(r"\w+", label.lower()) if len(w) > 2]
    return sum(1 for w in words if re.search(r"\b" + re.escape(w) + r"\b", question)) / len(words) if words else 0.0


def _join(labels: list[str]) -> str:
    if len(labels) <= 2:
        return " and ".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


__all__ = ["NOT_IN_GRAPH", "RETRIEVERS", "Answerer", "RetrieveConfig", "format_text", "load_answerer",
           "store_from_index", "term_value"]
