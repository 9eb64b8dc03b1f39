"""Entity lexicon: normalized surface forms -> IRIs, built from the label triples of a graph index.

Takes: a :class:`~kgllm.index.graph.GraphIndex`.
Makes: ``lexicon.jsonl.gz`` (one entry per line: ``{"origin", "key", "iri", "source", "tid"}``, sorted) and
``labels.jsonl.gz`` (``{"iri", "label"}``: the display label of every labelled IRI).

Surface forms and their ``source``:

- ``label``: rdfs:label, skos:prefLabel, foaf:name, dbo:name (the entity's own names);
- ``alt``: skos:altLabel, foaf:nick, dbo:alias, dbo:birthName, dbo:longName, dbp:name, dbp:shortName;
- ``redirect``: ``X dbo:wikiPageRedirects Y`` gives X's label (or its IRI's local name) as a name of Y;
- ``lemma``: WordNet lemmas, ``form ontolex:writtenRep "dog"`` <- ``entry ontolex:canonicalForm form``,
  ``entry ontolex:sense s``, ``s ontolex:isLexicalizedSenseOf synset``: "dog" names every synset of the entry;
- ``iri``: the local name of a DBpedia resource IRI (``dbr:Aarhus_Airport`` -> "aarhus airport").

Keys are normalized by :func:`normalize_label` (Unicode NFKD with accents dropped, case-folded, punctuation to
spaces). Every entry remembers the triple it came from (``tid``) and its *origin* (the subject whose triples
produced it), so an upsert or delete recomputes only the entries of the touched origins.
Morphological variants (``dogs`` -> ``dog``) are found at lookup time with WordNet's morphy rules and
exception lists (:func:`morphy`), so they need no entries of their own.
"""

from __future__ import annotations

import difflib
import gzip
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from ..artifacts import write_jsonl
from ..rdf import (
    DBO,
    DBP,
    DBR,
    FOAF,
    ONTOLEX,
    ONTOLEX_CANONICAL_FORM,
    ONTOLEX_IS_LEXICALIZED_SENSE_OF,
    ONTOLEX_SENSE,
    ONTOLEX_WRITTEN_REP,
    RDF_TYPE,
    RDFS_LABEL,
    SKOS,
    SKOS_PREFLABEL,
    iri,
    iri_value,
    is_literal,
    lexical_form,
    parse_literal,
)
from ..resources import nltk_data_dir

LABEL_PREDICATES = {RDFS_LABEL: 0, SKOS_PREFLABEL: 1, iri(FOAF + "name"): 2, iri(DBO + "name"): 3}
ALT_PREDICATES = {iri(SKOS + "altLabel"), iri(FOAF + "nick"), iri(DBO + "alias"), iri(DBO + "birthName"),
                  iri(DBO + "longName"), iri(DBP + "name"), iri(DBP + "shortName")}
REDIRECT = iri(DBO + "wikiPageRedirects")
_LEXICAL_TYPES = {iri(ONTOLEX + "LexicalEntry"), iri(ONTOLEX + "LexicalSense")}
_DBR_PREFIX = "<" + DBR
# Predicates whose change alters some entries (used to find the origins an update touches).
LEXICAL_PREDICATES = set(LABEL_PREDICATES) | ALT_PREDICATES | {REDIRECT, ONTOLEX_WRITTEN_REP, ONTOLEX_CANONICAL_FORM, ONTOLEX_SENSE,
                                                               ONTOLEX_IS_LEXICALIZED_SENSE_OF}

# The predicates whose rows make entries or labels in update_origins.
_ENTRY_PREDICATES = frozenset(LABEL_PREDICATES) | ALT_PREDICATES | {REDIRECT, ONTOLEX_WRITTEN_REP}

_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$|,\s[^,]+$")
_NONWORD = re.compile(r"[^\w]+|_")


def normalize_label(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key: ``"Zürich-Airport's"`` -> ``"zurich airport s"``."""
    if text.isascii():   # no accents to strip (NFKD leaves ASCII as it is): most labels, at a fraction of the cost
        t = text.lower()
    else:
        t = unicodedata.normalize("NFKD", text)
        t = "".join(c for c in t if not unicodedata.combining(c)).casefold()
    return " ".join(_NONWORD.sub(" ", t).split())


def _literal(term: str) -> tuple[str, str | None, str | None] | None:
    """``(lexical form, language, datatype)`` of a literal term, None for IRIs and blank nodes."""
    return parse_literal(term) if is_literal(term) else None


def term_value(term: str) -> str:
    """What answers are compared on: the bare IRI of an IRI term, the lexical form of a literal (else the term)."""
    v = iri_value(term)
    if v is not None:
        return v
    return lexical_form(term) if is_literal(term) else term


def local_name(term: str) -> str:
    """Readable local name of an IRI term: ``<.../Aarhus_Airport>`` -> ``Aarhus Airport``,
    ``<...#birthPlace>`` -> ``birth place``."""
    v = term[1:-1] if term.startswith("<") else term
    name = _LOCAL_SEP.split(v.rstrip("/#"))[-1]
    if "%" in name:
        name = unquote(name)
    name = name.replace("_", " ")
    if " " not in name and _CAMEL.search(name):  # camelCase predicate names
        name = _CAMEL_SPLIT.sub(" ", name).lower()
    return name


_LOCAL_SEP = re.compile(r"[/#]")
_CAMEL = re.compile(r"[a-z][A-Z]")
_CAMEL_SPLIT = re.compile(r"(?<=[a-z])(?=[A-Z])")


# ----------------------------------------------------------------------------- morphy

_EXC: dict[str, dict[str, list[str]]] | None = None
_POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


def _exceptions() -> dict[str, dict[str, list[str]]]:
    """WordNet's exception lists (``mice -> mouse``) from the prepared nltk data or Debian's wordnet-base."""
    global _EXC
    if _EXC is None:
        _EXC = {p: {} for p in _POS_FILES}
        for root in (nltk_data_dir() / "corpora" / "wordnet", Path("/usr/share/wordnet")):
            if (root / "noun.exc").exists():
                for pos, name in _POS_FILES.items():
                    with open(root / f"{name}.exc", encoding="utf-8") as f:
                        for line in f:
                            parts = line.split()
                            if len(parts) >= 2:
                                _EXC[pos].setdefault(parts[0], parts[1:])
                break
    return _EXC


def morphy(word: str) -> list[str]:
    """Base-form candidates of ``word`` by WordNet's morphy: exception lists, then the detachment rules of
    nltk's WordNet reader (``MORPHOLOGICAL_SUBSTITUTIONS``); ``dogs`` -> ``[dog]``. Unverified: the caller
    keeps only candidates its lexicon knows."""
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    w = word.lower().replace(" ", "_")
    out: list[str] = []
    exc = _exceptions()
    for pos, rules in WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS.items():
        if pos == "s":
            continue
        for base in exc.get(pos, {}).get(w, []):
            out.append(base)
        for old, new in rules:
            if w.endswith(old) and len(w) > len(old):
                out.append(w[: len(w) - len(old)] + new)
    seen = set()
    return [x.replace("_", " ") for x in out if x != w and not (x in seen or seen.add(x))]


# ----------------------------------------------------------------------------- the lexicon


_MANY = 16  # entries of one key from which its duplicate check uses a set


class EntityLexicon:
    """``key -> [(iri, source, tid)]`` with the display labels. Entries are grouped by origin."""

    def __init__(self):
        self.by_origin: dict[str, list[tuple[str, str, str, str | None]]] = {}
        self.keys: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
        # The entries of keys many things share ("air india" in every copy of a graph, a common name), as a
        # set: the duplicate check of a long list would make building the lexicon quadratic in them.
        self._many: dict[str, set[tuple[str, str, str | None]]] = {}
        self.labels: dict[str, str] = {}
        self._trigrams: dict[str, list[str]] | None = None
        self._tokens: dict[str, list[str]] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, graph) -> EntityLexicon:
        lex = cls()
        origins = lex.origins_of_rows(graph, graph.rows_with_predicates(sorted(LEXICAL_PREDICATES)))
        # DBpedia resources also get their IRI's local name: a name even without a label triple.
        origins.update(t for t in graph.terms if t.startswith(_DBR_PREFIX))
        lex.update_origins(graph, origins)
        return lex

    def origins_of_rows(self, graph, rows: Iterable[int]) -> set[str]:
        """The origins whose entries depend on these rows (live or deleted)."""
        origins: set[str] = set()
        for r in rows:
            s, p, o = graph.triple_terms(r)
            if p in (ONTOLEX_CANONICAL_FORM,):
                origins.add(o)
            elif p == ONTOLEX_SENSE:
                origins.update(self._forms_of_entry(graph, s))
            elif p == ONTOLEX_IS_LEXICALIZED_SENSE_OF:
                si = graph.term_id(s)
                if si is not None:
                    for entry, pid, _r, _d in graph.edges(si, "in"):
                        if graph.terms[pid] == ONTOLEX_SENSE:
                            origins.update(self._forms_of_entry(graph, graph.terms[entry]))
            else:
                origins.add(s)
        return origins

    def _forms_of_entry(self, graph, entry: str) -> list[str]:
        ei = graph.term_id(entry)
        if ei is None:
            return []
        return [graph.terms[f] for f, p, _r, _d in graph.edges(ei, "out") if graph.terms[p] == ONTOLEX_CANONICAL_FORM]

    def remove_origins(self, origins: Iterable[str]) -> None:
        """Drop every entry and the label of ``origins`` (terms no longer in the graph)."""
        for origin in sorted(origins):
            self._drop(origin)
        self._trigrams = None
        self._tokens = None

    def _drop(self, origin: str) -> None:
        for key, target, src, tid in self.by_origin.pop(origin, []):
            lst = self.keys.get(key, [])
            many = self._many.get(key)
            entry = (target, src, tid)
            if (entry in many) if many is not None else (entry in lst):
                lst.remove(entry)
                if many is not None:
                    many.discard(entry)
            if not lst:
                self.keys.pop(key, None)
                self._many.pop(key, None)
        self.labels.pop(origin, None)

    def update_origins(self, graph, origins: Iterable[str]) -> None:
        """Recompute the entries of ``origins`` from the graph's live triples."""
        for origin in sorted(origins):
            self._drop(origin)
            # The rank of the best label so far (lower wins: the predicate's rank, English first).
            best = 1 << 30
            if origin.startswith(_DBR_PREFIX):
                name = local_name(origin)
                self._add_name(origin, name, origin, "iri", None)
                if name.startswith("Category:"):
                    # A category is named in text without its prefix ("motor vehicle manufacturers of Finland").
                    self._add(origin, normalize_label(name[9:]), origin, "alt", None)
                self.labels[origin] = name
                best = 1 << 20   # the local name: below every label triple
            oi = graph.term_id(origin)
            if oi is None:
                continue
            rows = graph.subject_triples(oi)
            # WordNet entries and senses keep a display label but are not link targets: their lemma
            # already names the synsets (the concepts a question is about).
            lexical = any(p == RDF_TYPE and o in _LEXICAL_TYPES for _r, _s, p, o, _t in rows)
            for _r, s, p, o, t in rows:
                if p not in _ENTRY_PREDICATES:   # most rows: no entry, no label (and no hex id to make)
                    continue
                tid = f"{t:016x}"
                lit = _literal(o)
                if p in LABEL_PREDICATES and lit:
                    if not lexical:
                        self._add_name(origin, lit[0], s, "label", tid)
                    rank = LABEL_PREDICATES[p] * 2 + (0 if lit[1] in (None, "en") or (lit[1] or "").startswith("en") else 1)
                    if rank < best:   # (s is the origin: these are its rows)
                        best = rank
                        self.labels[s] = lit[0]
                elif p in ALT_PREDICATES and lit:
                    self._add(origin, normalize_label(lit[0]), s, "alt", tid)
                elif p == REDIRECT and not lit:
                    name = self._name_of(graph, oi) or local_name(s)
                    self._add(origin, normalize_label(name), o, "redirect", tid)
                elif p == ONTOLEX_WRITTEN_REP and lit:
                    for synset in self._synsets_of_form(graph, oi):
                        self._add(origin, normalize_label(lit[0]), synset, "lemma", tid)
        self._trigrams = None
        self._tokens = None

    def _name_of(self, graph, node: int) -> str | None:
        for _r, _s, p, o, _t in graph.subject_triples(node):
            if p in LABEL_PREDICATES and (lit := _literal(o)):
                return lit[0]
        return None

    def _synsets_of_form(self, graph, form: int) -> list[str]:
        out = []
        for entry, p, _r, _d in graph.edges(form, "in"):
            if graph.terms[p] != ONTOLEX_CANONICAL_FORM:
                continue
            for sense, p2, _r2, _d2 in graph.edges(entry, "out"):
                if graph.terms[p2] != ONTOLEX_SENSE:
                    continue
                for syn, p3, _r3, _d3 in graph.edges(sense, "out"):
                    if graph.terms[p3] == ONTOLEX_IS_LEXICALIZED_SENSE_OF:
                        out.append(graph.terms[syn])
        return sorted(set(out))

    def _add_name(self, origin: str, name: str, target: str, source: str, tid: str | None) -> None:
        """A name and, as ``alt``, its head without a disambiguating qualifier: Wikipedia-style titles
        ``Abilene, Texas`` and ``Distinguished Service Medal (United States Navy)`` are mentioned in text as
        ``Abilene`` and ``Distinguished Service Medal``."""
        self._add(origin, normalize_label(name), target, source, tid)
        if ")" not in name and "," not in name:   # no qualifier to drop (most names; the pattern costs more)
            return
        head = _QUALIFIER.sub("", name).strip()
        if head and head != name.strip():
            self._add(origin, normalize_label(head), target, "alt", tid)

    def _add(self, origin: str, key: str, target: str, source: str, tid: str | None) -> None:
        if not key:
            return
        entry = (target, source, tid)
        lst = self.keys[key]
        many = self._many.get(key)
        if many is None and len(lst) >= _MANY:
            many = self._many[key] = set(lst)
        if many is not None:
            if entry in many:
                return
            many.add(entry)
        elif entry in lst:
            return
        lst.append(entry)
        self.by_origin.setdefault(origin, []).append((key, target, source, tid))

    # ------------------------------------------------------------------ lookups

    def lookup(self, key: str) -> list[tuple[str, str, str | None]]:
        return self.keys.get(key, [])

    def label(self, term: str) -> str:
        """Display label of an IRI term (its best label, else its local name); a literal's lexical form."""
        lab = self.labels.get(term)
        if lab is not None:
            return lab
        if is_literal(term):
            return lexical_form(term)
        return local_name(term)

    def fuzzy(self, key: str, limit: int = 5, min_ratio: float = 0.85, max_posting: int = 2000
              ) -> list[tuple[str, float]]:
        """Keys similar to ``key`` (character-trigram candidates, then difflib's ratio >= ``min_ratio``)."""
        if self._trigrams is None:
            tri: dict[str, list[str]] = defaultdict(list)
            for k in self.keys:
                if len(k) >= 4:
                    for g in _trigrams(k):
                        tri[g].append(k)
            self._trigrams = dict(tri)
        grams = _trigrams(key)
        counts: Counter = Counter()
        for g in grams:
            post = self._trigrams.get(g)
            if post and len(post) <= max_posting:
                counts.update(post)
        out = []
        for k, c in counts.most_common(30):
            if c < len(grams) * 0.4:
                break
            ratio = difflib.SequenceMatcher(None, key, k).ratio()
            if ratio >= min_ratio:
                out.append((k, ratio))
        out.sort(key=lambda x: (-x[1], x[0]))
        return out[:limit]

    def containing(self, words: list[str], extra: int = 2, limit: int = 20, max_posting: int = 5000) -> list[str]:
        """Keys holding every one of ``words`` (normalized) in order, with at most ``extra`` more words:
        "amsterdam schiphol" finds "amsterdam airport schiphol". Shortest keys first."""
        words = [w for w in words if w]
        if not words:
            return []
        if self._tokens is None:
            tok: dict[str, list[str]] = defaultdict(list)
            for k in self.keys:
                for w in set(k.split()):
                    tok[w].append(k)
            self._tokens = dict(tok)
        posts = [self._tokens.get(w, []) for w in set(words)]
        if not all(posts):
            return []
        posts.sort(key=len)
        if len(posts[0]) > max_posting:
            return []
        rest = [set(p) for p in posts[1:]]
        out = []
        for k in posts[0]:
            if not all(k in r for r in rest):
                continue
            ks = k.split()
            if len(ks) > len(words) + extra:
                continue
            it = iter(ks)
            if all(w in it for w in words):  # in order
                out.append(k)
        out.sort(key=lambda k: (len(k.split()), k))
        return out[:limit]

    # ------------------------------------------------------------------ persistence

    def save(self, d: str | Path) -> dict:
        d = Path(d)
        by_source: dict[str, int] = defaultdict(int)

        def rows():
            # Sorted by (origin, key, iri, source, tid), one origin's entries at a time: a sorted copy of every
            # entry at once was the index stage's peak memory.
            for o in sorted(self.by_origin):
                for k, t, s, tid in sorted((k, t, s, tid or "") for k, t, s, tid in self.by_origin[o]):
                    by_source[s] += 1
                    yield {"origin": o, "key": k, "iri": t, "source": s, "tid": tid or None}

        write_jsonl(d / "lexicon.jsonl.gz", rows())
        write_jsonl(d / "labels.jsonl.gz", ({"iri": t, "label": self.labels[t]} for t in sorted(self.labels)))
        return {"entries": sum(by_source.values()), "keys": len(self.keys), "labels": len(self.labels),
                "entries_by_source": dict(sorted(by_source.items()))}

    @classmethod
    def load(cls, d: str | Path) -> EntityLexicon:
        d = Path(d)
        lex = cls()
        with gzip.open(d / "lexicon.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                lex._add(e["origin"], e["key"], e["iri"], e["source"], e["tid"])
        with gzip.open(d / "labels.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                lex.labels[e["iri"]] = e["label"]
        return lex


def _trigrams(key: str) -> list[str]:
    k = f" {key} "
    return sorted({k[i:i + 3] for i in range(len(k) - 2)})
