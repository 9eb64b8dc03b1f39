"""A KG-verifiable reward: does a generated statement match a triple of the graph?

Takes: the corpus's ``triples.jsonl`` (``{"id","s","p","o","text"}``; ``rdfs:label`` triples give
entity names, otherwise an IRI's local name is used) and statements in natural language.
Makes: a :class:`Verdict` per statement: ``supported`` (+1: it names a triple's subject, its object and the
relation's wording), ``contradicted`` (-1: it names a subject and a relation of the graph, but none of
the graph's objects for them) or ``unverifiable`` (0), with the id of the triple it was checked against.

It needs no training and no model, so it serves as an evaluation metric (``kgllm eval facts`` reports
the share of supported answers) and as a reward function for RL: a :class:`KGReward` instance has
trl's reward-function signature ``reward(completions, **kwargs) -> list[float]`` (e.g. for GRPOTrainer's
``reward_funcs``).

Matching is lexical and deliberately conservative: names must occur as whole words after normalisation,
and at least two thirds of the relation's words from the triple's verbalisation must occur too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..eval.metrics import contains_words, normalize_answer
from ..rdf import RDFS_LABEL, lexical_form
from . import data as tdata


@dataclass(frozen=True)
class Verdict:
    score: float          # +1 supported, -1 contradicted, 0 unverifiable
    status: str
    triple_id: str | None


@dataclass(frozen=True)
class _Fact:
    id: str
    s: str
    p: str
    subject_forms: tuple[str, ...]
    object_forms: tuple[str, ...]
    cues: tuple[str, ...]  # the relation's words in the verbalisation (text minus subject and object)


def local_name_forms(iri: str) -> list[str]:
    """Names an IRI (without brackets) goes by when it has no label: its local name with underscores as
    spaces, and that without a trailing parenthetical ("Kaleidoscope (novel)" -> "Kaleidoscope")."""
    local = unquote(re.split(r"[/#]", iri.rstrip("/"))[-1]).replace("_", " ")
    return [local, re.sub(r"\s*\([^)]*\)$", "", local)]


def _term_forms(term: str, labels: dict[str, str]) -> tuple[str, ...]:
    if term.startswith("<"):
        v = term[1:-1]
        if v in labels:
            return (normalize_answer(labels[v]),)
        forms = {normalize_answer(f) for f in local_name_forms(v)}
        return tuple(sorted(f for f in forms if f))
    if term.startswith('"'):
        return (normalize_answer(lexical_form(term)),)
    return ()


class KGReward:
    """Verify statements against a set of triples (see the module docstring)."""

    __name__ = "kg_reward"  # trl names reward functions by __name__ in its logs

    def __init__(self, triples: list[dict]):
        labels = tdata.triple_labels(triples)
        self.facts: list[_Fact] = []
        self.objects: dict[tuple[str, str], set[str]] = defaultdict(set)
        for t in sorted(triples, key=lambda t: t.get("id", "")):
            if t.get("p") == RDFS_LABEL:
                continue
            sf, of = _term_forms(t["s"], labels), _term_forms(t["o"], labels)
            if not sf or not of:
                continue  # blank nodes: nothing to name
            words = normalize_answer(t.get("text", "")).split()
            drop = set(" ".join(sf + of).split())
            cues = tuple(w for w in words if w not in drop)
            self.facts.append(_Fact(t["id"], t["s"], t["p"], sf, of, cues))
            self.objects[(t["s"], t["p"])].update(of)
        self.by_subject: dict[str, list[_Fact]] = defaultdict(list)
        for f in self.facts:
            for form in f.subject_forms:
                self.by_subject[form].append(f)

    @classmethod
    def from_corpus(cls, corpus: str | Path) -> KGReward:
        return cls(tdata.read_triples(Path(corpus)))

    def verify(self, statement: str) -> Verdict:
        st = normalize_answer(statement)
        candidates = [f for form, facts in self.by_subject.items() if contains_words(st, form) for f in facts]
        best_contra = None
        for f in sorted(candidates, key=lambda f: f.id):
            cue_hits = sum(contains_words(st, c) for c in f.cues)
            relation = not f.cues or cue_hits * 3 >= 2 * len(f.cues)
            if not relation:
                continue
            if any(contains_words(st, o) for o in f.object_forms):
                return Verdict(1.0, "supported", f.id)
            if best_contra is None and not any(contains_words(st, o) for o in self.objects[(f.s, f.p)]):
                best_contra = f
        if best_contra is not None:
            return Verdict(-1.0, "contradicted", best_contra.id)
        return Verdict(0.0, "unverifiable", None)

    def __call__(self, completions: list, **kwargs) -> list[float]:
        """trl reward-function signature; conversational completions use their last message's text."""
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        return [self.verify(t).score for t in texts]
