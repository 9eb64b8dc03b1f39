"""Entity linking: mentions in free text (a question) -> candidate IRIs with scores.

Takes: a text, a :class:`~kgllm.index.lexicon.EntityLexicon`, the :class:`~kgllm.index.graph.GraphIndex`
(for the degree prior and the entities' types) and a :class:`~kgllm.index.stage.LinkerConfig`.
Makes: a list of :class:`LinkedMention` (character span, surface, ranked candidates), non-overlapping, in text
order.

How a span is matched (n-grams of up to ``max_ngram`` words; a possessive's "s" is part of its word):

1. exact: the span's normalized key is a lexicon key (labels, alternative labels, redirects, lemmas, IRI names);
2. morphological: the last token reduced by WordNet's morphy (``hot dogs`` -> ``hot dog``, ``mice`` -> ``mouse``);
3. fuzzy: character-trigram candidates verified by difflib's ratio (typos, small spelling variants), tried only
   for spans with no exact or morphological match that look like names (a capital letter or >= 6 characters).

A candidate's score is ``match * (0.75 + 0.25 * prior) + type_bonus`` where ``match`` is 1.0 for labels and
lemmas, 0.95 for alternative labels/redirects, 0.9 for IRI names (times 0.95 for a morphological match, times
the ratio for a fuzzy one), ``prior = log(1 + degree) / log(1 + max degree)`` (popular entities win ties), and
``type_bonus`` is +0.2 when the candidate has one of the expected ``types`` (rdf:type or wn:partOfSpeech) and
-0.2 when types were given and it has none of them. Overlapping spans are resolved greedily: exact before
morphological before fuzzy, then longer spans, then higher scores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..rdf import RDF_TYPE, WN_PART_OF_SPEECH
from .lexicon import morphy, normalize_label
from .stage import LinkerConfig

_TOKEN = re.compile(r"\w+", re.UNICODE)
_POSSESSIVE = re.compile(r"\w['\u2019]s")
_SOURCE_WEIGHT = {"label": 1.0, "lemma": 1.0, "alt": 0.95, "redirect": 0.95, "iri": 0.9}
# Function words never linked on their own (WordNet has entries for some, e.g. "be", "a", "who").
STOPWORDS = frozenset("""a an the of in on at to for from by with and or but not no is are was were be been being am
do does did has have had it its this that these those which who whom whose what when where why how i you he she
we they me him her us them my your his our their there here as if than then so such can could would should will
shall may might must about into over under up down out off s d ll ve re t also very just only many much more most
some any each every all both few other another same own one two three""".split())


@dataclass
class Candidate:
    iri: str            # N-Triples IRI term, e.g. "<http://dbpedia.org/resource/Aarhus_Airport>"
    score: float
    label: str          # display label
    source: str         # label | alt | redirect | lemma | iri
    match: str          # exact | morph | fuzzy
    tid: str | None = None  # the triple that gave the surface form (None for IRI names)


@dataclass
class LinkedMention:
    start: int          # character offsets into the text
    end: int
    surface: str
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def iri(self) -> str | None:
        return self.candidates[0].iri if self.candidates else None

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0


class Linker:
    def __init__(self, lexicon, graph, config: LinkerConfig | None = None):
        config = config or LinkerConfig()
        self.lex = lexicon
        self.graph = graph
        self.max_ngram = config.max_ngram
        self.max_candidates = config.max_candidates
        self.fuzzy = config.fuzzy
        self.min_fuzzy_ratio = config.min_fuzzy_ratio
        self._log_max_deg: float | None = None
        self._types: dict[str, frozenset[str]] = {}

    def link(self, text: str, types: list[str] | None = None) -> list[LinkedMention]:
        toks = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        norm_toks = [normalize_label(text[a:b]) for a, b in toks]
        # A possessive's "s" is part of its word, not a word of the span ("Knight's Cross of the Iron Cross"
        # is six words long).
        words_to = [0]
        for a, b in toks:
            words_to.append(words_to[-1] + (0 if a >= 2 and _POSSESSIVE.fullmatch(text, a - 2, b) else 1))
        want = frozenset(types or ())
        spans = []  # (rank, n_tokens, best score, start_tok, end_tok, candidates)
        for i in range(len(toks)):
            last = i
            while last < len(toks) and words_to[last + 1] - words_to[i] <= self.max_ngram:
                last += 1
            for n in range(last - i, 0, -1):
                j = i + n
                words = norm_toks[i:j]
                if all(w in STOPWORDS for w in words) or words[0] in STOPWORDS and n > 1 and \
                        words[-1] in STOPWORDS:
                    continue
                key = " ".join(words)
                if len(key) < 2:
                    continue
                surface = text[toks[i][0]:toks[j - 1][1]]
                cands, rank = self._match(key, words, surface)
                if not cands:
                    continue
                scored = self._score(cands, want)
                spans.append((rank, n, scored[0].score, i, j, scored))
        spans.sort(key=lambda s: (-s[0], -s[1], -s[2], s[3]))
        taken = [False] * len(toks)
        out = []
        for _rank, _n, _sc, i, j, scored in spans:
            if any(taken[i:j]):
                continue
            for t in range(i, j):
                taken[t] = True
            a, b = toks[i][0], toks[j - 1][1]
            out.append(LinkedMention(a, b, text[a:b], scored[: self.max_candidates]))
        out.sort(key=lambda m: m.start)
        return out

    def _match(self, key: str, words: list[str], surface: str):
        """Lexicon entries for a span: ``([(iri, source, tid, match, factor)], rank)``."""
        hits = self.lex.lookup(key)
        if hits:
            return [(t, s, tid, "exact", 1.0) for t, s, tid in hits], 2
        if words[-1] not in STOPWORDS and len(words[-1]) > 2:
            out = []
            for base in morphy(words[-1]):
                k2 = " ".join(words[:-1] + [normalize_label(base)])
                out += [(t, s, tid, "morph", 0.95) for t, s, tid in self.lex.lookup(k2)]
            if out:
                return out, 1
        # Fuzzy matching is the expensive step: only for name-like spans of content words.
        if self.fuzzy and len(words) <= 4 and (any(c.isupper() for c in surface) or len(key) >= 6) \
                and len(key) >= 4 and not any(w in STOPWORDS for w in words):
            out = []
            for k2, ratio in self.lex.fuzzy(key, min_ratio=self.min_fuzzy_ratio):
                out += [(t, s, tid, "fuzzy", ratio) for t, s, tid in self.lex.lookup(k2)]
            if out:
                return out, 0
        return [], -1

    def _score(self, cands, want: frozenset[str]) -> list[Candidate]:
        best: dict[str, Candidate] = {}
        for t, source, tid, match, factor in cands:
            node = self.graph.term_id(t)
            if node is None:
                continue
            prior = math.log1p(self.graph.degree(node)) / self.log_max_degree()
            sc = _SOURCE_WEIGHT.get(source, 0.9) * factor * (0.75 + 0.25 * prior)
            if want:
                sc += 0.2 if self.types_of(t) & want else -0.2
            c = best.get(t)
            if c is None or sc > c.score:
                best[t] = Candidate(t, round(sc, 6), self.lex.label(t), source, match, tid)
        return sorted(best.values(), key=lambda c: (-c.score, c.iri))

    def log_max_degree(self) -> float:
        if self._log_max_deg is None:
            a = self.graph.a
            deg = np.diff(np.asarray(a["out_indptr"])) + np.diff(np.asarray(a["in_indptr"]))
            self._log_max_deg = math.log1p(max(int(deg.max()) if len(deg) else 1, 1))
        return self._log_max_deg

    def types_of(self, t: str) -> frozenset[str]:
        """rdf:type and wn:partOfSpeech objects of an entity (cached)."""
        got = self._types.get(t)
        if got is None:
            node = self.graph.term_id(t)
            got = frozenset() if node is None else frozenset(
                self.graph.terms[o] for o, p, _r, _d in self.graph.edges(node, "out")
                if self.graph.terms[p] in (RDF_TYPE, WN_PART_OF_SPEECH))
            self._types[t] = got
        return got

    def invalidate(self) -> None:
        """Forget cached types and degrees after an update."""
        self._types.clear()
        self._log_max_deg = None
