"""Predicate templates: the curated lexicon, with a fallback built from the predicate's label.

Takes: ``data/lexicon.json`` (curated templates for common DBpedia and WordNet predicates) and a
:class:`~kgllm.corpus.kg.KG` (ontology/graph ``rdfs:label`` of predicates).
Makes: a :class:`Template` per predicate: a sentence pattern with ``{s}``/``{o}`` slots, question
phrasings and a noun label. Unknown predicates get ``"{s}'s <label> is {o}."`` where the label is the
ontology's ``rdfs:label`` or the split local name (``dbo:fooBar`` -> "foo bar").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .literals import split_camel


@dataclass(frozen=True)
class Template:
    predicate: str          # N-Triples IRI term
    sentence: str           # "{s} was born in {o}."
    questions: tuple[str, ...]
    label: str              # "birthplace"
    curated: bool

    @property
    def is_verb_phrase(self) -> bool:
        """Starts with "{s} " so that two such sentences can share their subject ("X did A and did B.")."""
        return self.sentence.startswith("{s} ") and self.sentence.endswith(".") and self.sentence.count("{s}") == 1


@lru_cache(maxsize=1)
def curated() -> dict[str, dict]:
    data = json.loads(resources.files("kgllm.corpus").joinpath("data/lexicon.json").read_text("utf-8"))
    return {f"<{k}>": v for k, v in data.items() if not k.startswith("_")}


class Lexicon:
    """Templates by predicate; ``label_of`` gives ontology labels for the fallback."""

    def __init__(self, label_of=None):
        self._label_of = label_of or (lambda p: None)
        self._cache: dict[str, Template] = {}
        self.order = {p: i for i, p in enumerate(curated())}

    def template(self, predicate: str) -> Template:
        t = self._cache.get(predicate)
        if t is None:
            t = self._cache[predicate] = self._make(predicate)
        return t

    def _make(self, p: str) -> Template:
        c = curated().get(p)
        if c is not None:
            return Template(p, c["sentence"], tuple(c["questions"]), c["label"], True)
        label = self._label_of(p)
        if not label:
            v = p[1:-1] if p.startswith("<") else p
            label = split_camel(v.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
        label = " ".join(label.split())
        return Template(p, "{s}'s " + label + " is {o}.",
                        (f"What is the {label} of {{s}}?", f"What is {{s}}'s {label}?",
                         f"Tell me the {label} of {{s}}."), label, False)

    def sort_key(self, predicate: str) -> tuple:
        """Curated predicates in lexicon order first, then the rest by label."""
        return (self.order.get(predicate, len(self.order)), self.template(predicate).label, predicate)
