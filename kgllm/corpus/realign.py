"""Annotations of generated text, re-aligned from the faithfulness check's mentions; neural corpus documents.

Takes: a text, the triples it verbalizes (N-Triples terms) with their triple ids, and its
:class:`~kgllm.corpus.faithfulness.Finding` (the check found every subject and object mention); for
:func:`verbalize_documents`, the planner's documents and a :class:`~kgllm.corpus.neural.NeuralVerbalizer`.
Makes:
- :func:`sentence_ranges`: the text's sentences as ``(start, end)``, never cut inside a mention ("B.S.",
  "U.S. Navy");
- :func:`annotate`: the document annotations the corpus contract has (``spans``: ``{"start", "end",
  "surface", "iri", "types"}`` for each mention of an IRI; ``sentences``: ``{"start", "end", "triple_ids"}``,
  a triple in the sentences that mention its object, or its subject where the object is not mentioned);
- :func:`verbalize_documents`: each entity document's fact sentences (after its abstract and class
  sentence), taken in consecutive runs of at most ``max_triples`` facts, are written by the model; a run
  whose output fails the check (and its retry) keeps the planner's template sentences, with their spans
  (pronoun mentions included) as they were. Returns the :func:`~kgllm.corpus.neural.tally` counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from ..rdf import is_literal
from .faithfulness import Finding, KnownEntities
from .kg import KG, ROLE_FACT
from .neural import NeuralVerbalizer, Verbalized, tally
from .planner import EntityPlan, plain

Triple = tuple[str, str, str]
# A sentence ends at ., ! or ? followed by space and a capital letter, a digit or a quote.
_BOUNDARY = re.compile(r"[.!?][\"')\]]?(\s+)(?=[A-Z0-9\"'(])")


def sentence_ranges(text: str, mentions: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence (its end punctuation included, surrounding spaces not); a
    boundary inside one of ``mentions`` is none ("Abraham A. Ribicoff", "B.S. 1955")."""
    inside = sorted(mentions)
    out = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        cut = m.start(1)
        if any(a < cut < b for a, b in inside):  # the mention goes on after the space
            continue
        if text[start:cut].strip():
            out.append(_strip(text, start, cut))
        start = m.end(1)
    if text[start:].strip():
        out.append(_strip(text, start, len(text)))
    return out


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def annotate(text: str, triples: Sequence[Triple], triple_ids: Sequence[str], finding: Finding,
             types: Callable[[str], Iterable[str]] | None = None) -> dict:
    """``{"spans": [...], "sentences": [...]}`` for ``text`` (offsets into it) from the check's mentions:
    every mention of an IRI subject/object is a span (literals are values, not entities, as in the
    planner's documents); each sentence gets the ids of the triples it expresses (module docstring). A
    triple found in no sentence (its mentions cut by a boundary the check did not see) goes to the first
    sentence that mentions its subject, else the first, so every triple stays in the document."""
    spans = []
    for term, sp in finding.spans.items():
        if is_literal(term) or not term.startswith("<"):
            continue
        for a, b in sp:
            spans.append({"start": a, "end": b, "surface": text[a:b], "iri": plain(term),
                          "types": sorted(plain(t) for t in (types(term) if types else ()))})
    spans.sort(key=lambda s: (s["start"], s["end"], s["iri"]))
    ranges = sentence_ranges(text, [sp for v in finding.spans.values() for sp in v])
    per = finding.sentence_triples(ranges) if ranges else []
    seen = {i for ids in per for i in ids}
    for i in range(len(triples)):
        if i in seen or not ranges:
            continue
        s_spans = finding.spans.get(triples[i][0], [])
        k = next((k for k, (a, b) in enumerate(ranges) if any(a <= x < b for x, _ in s_spans)), 0)
        per[k] = sorted({*per[k], i})
    sentences = [{"start": a, "end": b, "triple_ids": sorted({triple_ids[i] for i in ids})}
                 for (a, b), ids in zip(ranges, per, strict=True)]
    return {"spans": spans, "sentences": sentences}


# ----------------------------------------------------------------------------- corpus documents


def _fact_triples(plan: EntityPlan) -> dict[str, Triple]:
    return {tid: (g.subject, g.predicate, o) for g in plan.groups for tid, o in zip(g.ids, g.objects, strict=True)}


def _runs(doc: dict, facts: dict[str, Triple], max_triples: int) -> list[list[int]]:
    """Consecutive fact sentences (indices into ``doc["sentences"]``) grouped into runs of at most
    ``max_triples`` facts (a single sentence with more is a run of its own)."""
    sents = doc["sentences"]
    first = next((k for k, s in enumerate(sents) if s["triple_ids"] and all(t in facts for t in s["triple_ids"])),
                 None)
    if first is None or not all(s["triple_ids"] and all(t in facts for t in s["triple_ids"]) for s in sents[first:]):
        return []  # no fact sentences, or not all at the end (a layout this function does not know)
    runs: list[list[int]] = []
    size = 0
    for k in range(first, len(sents)):
        n = len(sents[k]["triple_ids"])
        if runs and size + n <= max_triples:
            runs[-1].append(k)
            size += n
        else:
            runs.append([k])
            size = n
    return runs


def verbalize_documents(plans: dict[str, EntityPlan], kg: KG, verbalizer: NeuralVerbalizer, *,
                        max_triples: int = 4) -> dict:
    """Rewrite the fact sentences of every planned document with the model (module docstring), in place.
    Returns :func:`~kgllm.corpus.neural.tally`'s counts over the runs."""
    jobs: list[tuple[str, list[int], list[str], list[Triple]]] = []  # (entity, sentence indices, ids, triples)
    for e, plan in plans.items():
        if plan.doc is None:
            continue
        facts = _fact_triples(plan)
        for run in _runs(plan.doc, facts, max_triples):
            ids = [t for k in run for t in plan.doc["sentences"][k]["triple_ids"]]
            jobs.append((e, run, ids, [facts[t] for t in ids]))
    if not jobs:
        return tally([])

    def label(term: str) -> str | None:
        return kg.name(term) if term.startswith("<") else None

    def template_text(i: int, _triples: list[Triple]) -> str:
        e, run, _, _ = jobs[i]
        sents = plans[e].doc["sentences"]
        return plans[e].doc["text"][sents[run[0]]["start"]:sents[run[-1]]["end"]]

    # Known entities for the hallucination check: every subject and every entity a fact points to.
    names = {s for s in kg.out if s.startswith("<")}
    names |= {o for s, po in kg.out.items() for p, o in po if o.startswith("<") and kg.role(s, p, o) == ROLE_FACT}
    known = KnownEntities(sorted(names), label)
    results = verbalizer.verbalize_many([j[3] for j in jobs], label=label, predicate_label=kg.label_of,
                                        known_entities=known, fallback=template_text)
    by_entity: dict[str, list[tuple[list[int], list[str], list[Triple], Verbalized]]] = {}
    kept = []
    for (e, run, ids, triples), r in zip(jobs, results, strict=True):
        if r.path == "templates":
            r = _credit_referring(r, plans[e].doc, run)
        by_entity.setdefault(e, []).append((run, ids, triples, r))
        kept.append(r)
    for e, items in by_entity.items():
        plans[e].doc = _rebuild(plans[e].doc, items, kg)
    return tally(kept)


def _credit_referring(r: Verbalized, doc: dict, run: list[int]) -> Verbalized:
    """A template run names its entity by "it" or a surname after the document's first mention; the
    planner spans those mentions, so they count: the check's omission of such a term is none."""
    a, b = doc["sentences"][run[0]]["start"], doc["sentences"][run[-1]]["end"]
    spanned = {"<" + s["iri"] + ">": (s["start"] - a, s["end"] - a) for s in doc["spans"]
               if a <= s["start"] and s["end"] <= b}
    gone = [t for t in r.finding.omissions if t in spanned]
    if not gone:
        return r
    f = replace(r.finding, omissions=[t for t in r.finding.omissions if t not in spanned],
                spans={**r.finding.spans, **{t: [spanned[t]] for t in gone}})
    return replace(r, finding=f)


def _rebuild(doc: dict, items: list[tuple[list[int], list[str], list[Triple], Verbalized]], kg: KG) -> dict:
    """The document with each model-written run's text, spans and sentences in place of the planner's."""
    text = doc["text"]
    sents = doc["sentences"]
    pieces: list[str] = []
    spans: list[dict] = []
    sentences: list[dict] = []
    pos = 0      # in the old text
    new_len = 0  # of the new text so far

    def keep(a: int, b: int) -> None:
        """Copy old text [a, b) with its spans and sentences, shifted."""
        nonlocal new_len
        shift = new_len - a
        pieces.append(text[a:b])
        spans.extend({**s, "start": s["start"] + shift, "end": s["end"] + shift}
                     for s in doc["spans"] if a <= s["start"] and s["end"] <= b)
        sentences.extend({**s, "start": s["start"] + shift, "end": s["end"] + shift}
                         for s in sents if a <= s["start"] and s["end"] <= b)
        new_len += b - a

    for run, ids, triples, r in sorted(items, key=lambda x: x[0][0]):
        a, b = sents[run[0]]["start"], sents[run[-1]]["end"]
        keep(pos, a)
        if r.path == "templates":
            keep(a, b)
        else:
            ann = annotate(r.text, triples, ids, r.finding, lambda t: kg.types.get(t, ()))
            spans.extend({**s, "start": s["start"] + new_len, "end": s["end"] + new_len} for s in ann["spans"])
            sentences.extend({**s, "start": s["start"] + new_len, "end": s["end"] + new_len}
                             for s in ann["sentences"])
            pieces.append(r.text)
            new_len += len(r.text)
        pos = b
    keep(pos, len(text))
    return {**doc, "text": "".join(pieces), "spans": spans, "sentences": sentences}
