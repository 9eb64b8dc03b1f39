"""Predicate phrasings: the curated lexicon, the one-fact templates learned from WebNLG, and a fallback
built from the predicate's label.

Takes: ``data/lexicon.json`` (curated templates for common DBpedia and WordNet predicates),
``data/webnlg_templates.json.gz`` (templates learned from WebNLG train by :mod:`kgllm.corpus.verbalize`,
loaded here by :func:`shipped_templates`) and a label function (ontology/graph ``rdfs:label`` of predicates,
e.g. :meth:`kgllm.corpus.kg.KG.label_of`).
Makes: a :class:`PhraseTemplate` per predicate: a sentence pattern with ``{s}``/``{o}`` slots, question
phrasings and a noun label. A DBpedia predicate missing from the curated lexicon uses its one-fact template
learned from WebNLG train when that is one sentence; any other predicate gets ``"{s}'s <label> is {o}."``
where the label is the ontology's ``rdfs:label`` or the split local name (``dbo:fooBar`` -> "foo bar").
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..rdf import DBO, DBP, iri
from .render import split_camel

TEMPLATES_FILE = "data/webnlg_templates.json.gz"


@dataclass(frozen=True)
class PhraseTemplate:
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
    return {iri(k): v for k, v in data.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def shipped_templates() -> dict[str, list]:
    """The WebNLG templates shipped with kgllm: ``{shape: [template, support]}`` (see
    :func:`kgllm.corpus.verbalize.learn_templates`); empty when the data file is absent."""
    res = resources.files("kgllm.corpus").joinpath(TEMPLATES_FILE)
    if not res.is_file():
        return {}
    return json.loads(gzip.decompress(res.read_bytes()))["templates"]


_DBPEDIA_PREFIXES = ("<" + DBO, "<" + DBP)  # IRI terms in these namespaces start so


def webnlg_sentence(predicate: str) -> str | None:
    """The WebNLG-learned one-fact template of a DBpedia predicate as a one-sentence ``{s}``/``{o}`` pattern."""
    if not predicate.startswith(_DBPEDIA_PREFIXES):
        return None
    t = shipped_templates().get(predicate[1:-1].rsplit("/", 1)[-1] + ":0>1")
    if t is None:
        return None
    text = t[0]
    one_sentence = text.endswith(".") and text.count(".") == 1 and "{2}" not in text
    if not one_sentence or text.count("{0}") != 1 or text.count("{1}") != 1:
        return None
    # Units, numbers and acronyms in a template restate a value the corpus renders itself ("2,600 mm
    # inches") or leak training text ("{o} and 94531 are postal codes for {s}, CA"): not for the corpus.
    bare = re.sub(r"\{\d\}", " ", text)
    if re.search(r"\d|\b[A-Z]{2,}\b", bare) or _UNIT_WORDS & set(re.findall(r"[a-z]+", bare.lower())):
        return None
    text = re.sub(r"^The \{0\}", "{0}", text).replace("{0}' ", "{0}'s ")
    return text.replace("{0}", "{s}").replace("{1}", "{o}")


_UNIT_WORDS = {"kilograms", "kilogram", "kg", "inches", "inch", "metres", "meters", "metre", "meter", "km",
               "kilometres", "kilometers", "feet", "foot", "ft", "miles", "mile", "pounds", "lbs", "euros", "dollars",
               "mm", "millimetres", "cm", "centimetres", "square", "inhabitants", "tonnes", "tons", "litres", "hp",
               "horsepower", "seconds", "minutes", "hours", "days", "years", "percent"}


class RelationLexicon:
    """Templates by predicate; ``label_of`` gives ontology labels for the fallback."""

    def __init__(self, label_of=None, use_webnlg: bool = True):
        self._label_of = label_of or (lambda p: None)
        self.use_webnlg = use_webnlg
        self._cache: dict[str, PhraseTemplate] = {}
        self.order = {p: i for i, p in enumerate(curated())}

    def template(self, predicate: str) -> PhraseTemplate:
        t = self._cache.get(predicate)
        if t is None:
            t = self._cache[predicate] = self._make(predicate)
        return t

    def _make(self, p: str) -> PhraseTemplate:
        c = curated().get(p)
        if c is not None:
            return PhraseTemplate(p, c["sentence"], tuple(c["questions"]), c["label"], True)
        label = self._label_of(p)
        if not label:
            v = p[1:-1] if p.startswith("<") else p
            label = split_camel(v.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
        label = " ".join(label.split())
        questions = (f"What is the {label} of {{s}}?", f"What is {{s}}'s {label}?", f"Tell me the {label} of {{s}}.")
        learned = webnlg_sentence(p) if self.use_webnlg else None
        if learned is not None:
            return PhraseTemplate(p, learned, questions, label, False)
        return PhraseTemplate(p, "{s}'s " + label + " is {o}.", questions, label, False)

    def sort_key(self, predicate: str) -> tuple:
        """Curated predicates in lexicon order first, then the rest by label."""
        return (self.order.get(predicate, len(self.order)), self.template(predicate).label, predicate)
