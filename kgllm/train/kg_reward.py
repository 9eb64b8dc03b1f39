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

from ..rdf import RDFS
from . import data as tdata

_LABEL_P = f"<{RDFS}label>"


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


def _norm(text: str) -> str:
    from ..eval.facts import normalize

    return normalize(text)


def _has(hay: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(^| ){re.escape(needle)}( |$)", hay) is not None


def _term_forms(term: str, labels: dict[str, str]) -> tuple[str, ...]:
    if term.startswith("<"):
        v = term[1:-1]
        if v in labels:
            return (_norm(labels[v]),)
        local = unquote(re.split(r"[/#]", v.rstrip("/"))[-1]).replace("_", " ")
        forms = {_norm(local), _norm(re.sub(r"\s*\([^)]*\)$", "", local))}
        return tuple(sorted(f for f in forms if f))
    if term.startswith('"'):
        from ..rdf import parse_literal

        return (_norm(parse_literal(term)[0]),)
    return ()


class KGReward:
    """Verify statements against a set of triples (see the module docstring)."""

    __name__ = "kg_reward"  # trl names reward functions by __name__ in its logs

    def __init__(self, triples: list[dict]):
        labels: dict[str, str] = {}
        for t in sorted(triples, key=lambda t: t.get("id", "")):
            if t.get("p") == _LABEL_P and t.get("s", "").startswith("<") and t.get("o", "").startswith('"'):
                from ..rdf import parse_literal

                labels.setdefault(t["s"][1:-1], parse_literal(t["o"])[0])
        self.facts: list[_Fact] = []
        self.objects: dict[tuple[str, str], set[str]] = defaultdict(set)
        for t in sorted(triples, key=lambda t: t.get("id", "")):
            if t.get("p") == _LABEL_P:
                continue
            sf, of = _term_forms(t["s"], labels), _term_forms(t["o"], labels)
            if not sf or not of:
                continue  # blank nodes: nothing to name
            words = _norm(t.get("text", "")).split()
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
        st = _norm(statement)
        candidates = [f for form, facts in self.by_subject.items() if _has(st, form) for f in facts]
        best_contra = None
        for f in sorted(candidates, key=lambda f: f.id):
            cue_hits = sum(_has(st, c) for c in f.cues)
            relation = not f.cues or cue_hits * 3 >= 2 * len(f.cues)
            if not relation:
                continue
            if any(_has(st, o) for o in f.object_forms):
                return Verdict(1.0, "supported", f.id)
            if best_contra is None and not any(_has(st, o) for o in self.objects[(f.s, f.p)]):
                best_contra = f
        if best_contra is not None:
            return Verdict(-1.0, "contradicted", best_contra.id)
        return Verdict(0.0, "unverifiable", None)

    def __call__(self, completions: list, **kwargs) -> list[float]:
        """trl reward-function signature; conversational completions use their last message's text."""
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        return [self.verify(t).score for t in texts]
