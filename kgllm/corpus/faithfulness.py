"""Faithfulness check of a generated text against the triples it verbalizes: omissions and hallucinations.

Takes: a text and its triples, either N-Triples terms (``<http://dbpedia.org/resource/Alan_Bean>``,
``"1871-01-01"^^<...#date>``; an IRI is named by the ``label`` function, else by its local name) or
WebNLG-style strings (``("Alan_Bean", "birthPlace", "Wheeler,_Texas")``, ``"17068.8 (millimetres)"``), and
optionally the labels of known entities (e.g. every entity of the dataset, or of the lexicon).
Makes: a :class:`Finding` per text:
- ``omissions``: the subjects/objects with no mention in the text. A mention is any realized form of the
  term, matched case-, accent- and dash-insensitively on word boundaries, a plural or possessive ending
  allowed: the realized label (underscores as spaces, a parenthesized qualifier dropped), the verbalizer's
  variants (:func:`kgllm.corpus.verbalize.surface_variants`: "Wheeler" for "Wheeler, Texas", "April 15th 1986",
  "17068.8 mm"), :func:`kgllm.corpus.render.render_literal` of an N-Triples literal ("1 January 1871",
  "17,068.8 mm") and its lexical form, and number variants (with and without thousands separators,
  rounded).
- ``hallucinations``: ``(surface, (start, end))`` of concrete unexpected things: a known entity's name
  (capitalised in the text, outside every input mention, not a part of an input's name) that is not among
  the input's subjects/objects, and a number (a year, a date's day, a quantity) that matches no number of
  the input at its written precision ("17,069" matches 17068.8; "2.5 billion" matches 2.5E9).
- ``spans``: term -> ``[(start, end), ...]`` of its mentions (``text[start:end]`` is the surface), and per
  triple through :attr:`Finding.triple_spans` / :meth:`Finding.sentence_triples`, so standoff entity spans
  and sentence -> triple ids can be re-aligned from the checked mentions.
:func:`summarize` counts many findings (triples, omissions, hallucinations, texts failing, rates) for a
manifest or a benchmark (``python bench/bench_webnlg.py --faithfulness``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from ..rdf import is_literal, parse_literal
from .render import render_literal, split_camel
from .verbalize import fold, realize, surface_variants, to_webnlg

Triple = tuple[str, str, str]
Span = tuple[int, int]

_NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:st|nd|rd|th)?(?!\w)(?![.,]\d)")
_SCALE = re.compile(r"\s+(thousand|million|billion|trillion)\b", re.I)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_SUFFIX = r"(?:'s|’s|'|’|s|es)?"
# Capitalised words that are not names of particular things, whatever a dataset calls an entity.
# Other names of a few entities that texts name by their short or adjectival forms.
_ALIASES = {
    "united states": ("US", "U.S.", "USA", "U.S.A.", "America", "American", "Americans"),
    "united kingdom": ("UK", "U.K.", "Britain", "Great Britain", "British"),
    "americans": ("American",), "native americans in the united states": ("Native Americans", "Native American"),
}
_COMMON = {"yes", "no", "true", "false", "none", "unknown", "the", "a", "an", "it", "he", "she", "they", "english",
           "american", "british", "french", "german", "italian", "spanish", "indian", "chinese", "japanese"}


@dataclass
class Finding:
    text: str
    triples: list[Triple]
    omissions: list[str] = field(default_factory=list)
    hallucinations: list[tuple[str, Span]] = field(default_factory=list)
    spans: dict[str, list[Span]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.omissions and not self.hallucinations

    @property
    def omitted_triples(self) -> list[int]:
        """Indices of the triples whose subject or object is omitted."""
        gone = set(self.omissions)
        return [i for i, (s, _, o) in enumerate(self.triples) if s in gone or o in gone]

    @property
    def triple_spans(self) -> list[dict[str, list[Span]]]:
        """Per triple, ``{"s": spans of its subject, "o": spans of its object}``."""
        return [{"s": self.spans.get(s, []), "o": self.spans.get(o, [])} for s, _, o in self.triples]

    def sentence_triples(self, sentences: Iterable[Span]) -> list[list[int]]:
        """For each sentence ``(start, end)``, the indices of the triples it expresses: those with a
        mention of their object in it, or, for an object mentioned nowhere else, of their subject."""
        out = []
        for a, b in sentences:
            ids = []
            for i, (s, _, o) in enumerate(self.triples):
                os_ = self.spans.get(o, [])
                if any(a <= x < b for x, _ in os_) or (not os_ and any(a <= x < b for x, _ in self.spans.get(s, []))):
                    ids.append(i)
            out.append(ids)
        return out


# ----------------------------------------------------------------------------- surface forms


def _number_forms(num: str) -> list[str]:
    """``17068.8`` -> 17068.8, 17,068.8, 17069, 17,069; ``610.0`` -> 610; ``19238`` -> 19,238."""
    try:
        x = float(num.replace(",", ""))
    except ValueError:
        return []
    out = [num, num.replace(",", "")]
    decimals = len(num.partition(".")[2])
    for d in range(0 if abs(x) >= 100 else 1, decimals + 1):  # "2" is no rounding of 1.5
        r = round(x, d)
        s = f"{r:.{d}f}"
        out += [s, f"{r:,.{d}f}"]
    return out


def label_of(term: str, label: Callable[[str], str | None] | None = None) -> str:
    """The term's name as text: ``label(term)`` when given and known, else the realized local name or
    literal (``<http://dbpedia.org/resource/Wheeler,_Texas>`` -> "Wheeler, Texas")."""
    if label is not None:
        name = label(term)
        if name:
            return name
    if is_literal(term):
        return render_literal(term)
    return realize(to_webnlg(term) if term.startswith("<") else term)


@lru_cache(maxsize=1 << 15)
def _forms(term: str, name: str) -> tuple[str, ...]:
    """Every surface form counting as a mention of ``term`` (named ``name``), folded, longest first."""
    raw = term
    out = {name}
    if is_literal(term):
        value, _, dt = parse_literal(term)
        raw = value
        out.add(render_literal(term))
        if dt is not None:  # a typed number: its digits alone ("17068.8 mm" is "17,068.8 millimetres" too)
            m = _DIGITS.fullmatch(value.strip().lstrip("-+")) or _DIGITS.fullmatch(value.strip())
            if m:
                out.update(_number_forms(m.group()))
    elif term.startswith("<"):
        raw = to_webnlg(term)
    out.add(realize(raw))
    out.add(" ".join(raw.replace("_", " ").strip('"').split()))
    out.update(v for v, _ in surface_variants(raw))
    for n in list(out):
        low = n.lower()
        out.update(_ALIASES.get(low, ()))
        m = re.fullmatch(r"(.+) (?:language|music|people)", low)
        if m:  # "English language" -> "English", "Pop music" -> "pop"
            out.add(m.group(1))
        if re.fullmatch(r"-?\d+(?:,\d{3})*(?:\.\d+)?", n):
            out.update(_number_forms(n.lstrip("-")))
        if n.lower().startswith("the "):
            out.add(n[4:])
        r = re.fullmatch(r"(.+?\d) ?[-–] ?(\D.*\d|\d+)", n)
        if r:  # a range "May 1950 - August 1956": "... and ...", "... to ..."
            out.update({f"{r.group(1)} and {r.group(2)}", f"{r.group(1)} to {r.group(2)}"})
    out = {fold(x).strip(" '\"’") for x in out}
    return tuple(sorted((x for x in out if x), key=lambda x: (-len(x), x)))


def _numbers_in(term: str, name: str) -> list[float]:
    """The numbers a term carries (a date's year, month and day; a quantity; digits in a name)."""
    raw = parse_literal(term)[0] if is_literal(term) else to_webnlg(term) if term.startswith("<") else term
    out = []
    for s in (raw, name):
        for m in re.finditer(r"\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?", s):
            try:
                out.append(float(m.group().replace(",", "")))
            except ValueError:
                pass
    return out


# ----------------------------------------------------------------------------- known entities


class KnownEntities:
    """An index of entity names for the hallucination check: names with a letter, three characters or
    more, not a bare number or date, not a common word ("Yes", "English")."""

    def __init__(self, names: Iterable[str], label: Callable[[str], str | None] | None = None):
        self.by_form: dict[str, str] = {}
        self.max_words = 1
        for t in names:
            name = label_of(t, label) if (t.startswith(("<", '"')) or "_" in t) else t
            f = " ".join(fold(name).split())
            if (len(f) < 3 or not re.search(r"[^\W\d_]", f) or f in _COMMON or re.search(r"\d{4}", f)
                    or not re.match(r"[^\W\d_]", name)):
                continue
            self.by_form.setdefault(f, name)
            self.max_words = max(self.max_words, len(f.split()))

    def __len__(self) -> int:
        return len(self.by_form)

    def find(self, text: str, folded: str | None = None) -> list[tuple[str, Span]]:
        """Longest non-overlapping matches ``(name, (start, end))`` in ``text``, each starting with a
        capital letter in the text (a name, not a common noun)."""
        folded = fold(text) if folded is None else folded
        starts = [m.start() for m in re.finditer(r"\w+", folded)]
        ends = {m.start(): m.end() for m in re.finditer(r"\w+", folded)}
        word_ends = sorted(ends.values())
        out: list[tuple[str, Span]] = []
        pos = 0
        for a in starts:
            if a < pos or not text[a].isupper():
                continue
            k = next(i for i, e in enumerate(word_ends) if e > a)
            best = None
            for e in word_ends[k:k + self.max_words + 2]:
                s = " ".join(folded[a:e].split())
                if s in self.by_form:
                    best = e
            for e in ([best] if best is not None else []):
                out.append((self.by_form[" ".join(folded[a:e].split())], (a, e)))
                pos = e
        return out


# ----------------------------------------------------------------------------- the check


@lru_cache(maxsize=1 << 16)
def _pattern(form: str) -> re.Pattern:
    """A folded form as a pattern: dots and apostrophes optional ("Abraham A Ribicoff", "F.C", "Martyrs
    Memorial"), any run of spaces, a plural or possessive ending allowed after a word."""
    out = []
    for i, c in enumerate(form):
        if c in ".'’":
            out.append(re.escape(c) + "?")
        elif c == " ":
            out.append(r"\s*" if i and form[i - 1] in ".'’" else r"\s+")
        else:
            out.append(re.escape(c))
    core = "".join(out)
    tail = _SUFFIX if form[-1:].isalpha() else ""
    return re.compile(r"(?<!\w)(" + core + ")" + tail + r"(?!\w)" + (r"(?![.,]\d)" if form[-1:].isdigit() else ""))


def _find(folded: str, form: str) -> list[Span]:
    return [m.span(1) for m in _pattern(form).finditer(folded)]


def check(text: str, triples: Iterable[Triple], label: Callable[[str], str | None] | None = None,
          known_entities: KnownEntities | Iterable[str] | None = None) -> Finding:
    """Check ``text`` against ``triples`` (see the module docstring); ``known_entities`` is a
    :class:`KnownEntities` (build it once for many texts) or names / terms to build one from."""
    triples = [tuple(t) for t in triples]
    folded = fold(text)
    terms: list[str] = []
    for s, _, o in triples:
        for t in (s, o):
            if t not in terms:
                terms.append(t)
    names = {t: label_of(t, label) for t in terms}
    # the predicates' words are input too ("selectedByNasa" names NASA, "1stRunwaySurfaceType" the 1st runway)
    predicate_words = [fold(split_camel(to_webnlg(p).replace("/", " "))) for _, p, _ in triples]
    forms = {t: _forms(t, names[t]) for t in terms}
    finding = Finding(text, triples)
    taken = [False] * len(text)
    # longest names first claim their characters ("Wheeler, Texas" before "Texas"); a term found only
    # inside another's mention ("Texas" in "Wheeler, Texas") is mentioned there
    order = sorted(terms, key=lambda t: -len(forms[t][0]) if forms[t] else 0)
    nested: dict[str, list[Span]] = {}
    for t in order:
        spans: list[Span] = []
        inner: list[Span] = []
        for f in forms[t]:
            for a, b in _find(folded, f):
                if any(a < y and x < b for x, y in spans):
                    continue
                (inner if any(taken[a:b]) else spans).append((a, b))
        for a, b in spans:
            taken[a:b] = [True] * (b - a)
        if spans:
            finding.spans[t] = sorted(spans)
        elif inner:
            nested[t] = sorted(inner)
    for t, sp in nested.items():
        finding.spans[t] = sp
    finding.omissions = [t for t in terms if t not in finding.spans]
    mentioned = sorted(sp for v in finding.spans.values() for sp in v)

    def inside(a: int, b: int) -> bool:
        return any(x <= a and b <= y for x, y in mentioned)

    if known_entities is not None:
        index = known_entities if isinstance(known_entities, KnownEntities) else KnownEntities(known_entities, label)
        own = {f for t in terms for f in forms[t]}
        own_text = " | ".join([*own, *predicate_words])
        for _, (a, b) in index.find(text, folded):
            f = " ".join(folded[a:b].split())
            if f in own or inside(a, b) or any(a < y and x < b for x, y in mentioned):
                continue
            if re.search(r"(?<!\w)" + re.escape(f) + r"(?!\w)", own_text):  # "Texas" of "Abilene, Texas"
                continue
            if " " not in f and re.search(r"(?:^|\b(?:the|a|an) )$", folded[max(0, a - 4):a]):
                continue  # "the Mayor", "a Guitarist": a title or a kind, not a name
            finding.hallucinations.append((text[a:b], (a, b)))
    known_numbers = [x for t in terms for x in _numbers_in(t, names[t])]
    known_numbers += [float(x) for w in predicate_words for x in re.findall(r"\d+", w)]  # "1stRunway..."
    flagged = [sp for _, sp in finding.hallucinations]
    for m in _NUM.finditer(text):
        a, b = m.span()
        if inside(a, b) or any(x <= a and b <= y for x, y in flagged):
            continue
        whole, frac = m.group(1), m.group(2) or ""
        value = float(whole.replace(",", "") + frac)
        tol = 0.5 * 10 ** -(len(frac) - 1 if frac else 0) + 1e-9
        candidates = [(value, tol)]
        sc = _SCALE.match(text, b)
        if sc:  # "2.5 billion"
            k = _SCALES[sc.group(1).lower()]
            candidates.append((value * k, tol * k))
        if any(abs(v - x) <= t for v, t in candidates for x in known_numbers):
            continue
        finding.hallucinations.append((text[a:b], (a, b)))
    finding.hallucinations.sort(key=lambda h: h[1])
    return finding


def summarize(findings: Iterable[Finding]) -> dict:
    """Counts for a manifest: texts, triples, terms (distinct subjects/objects per text), omissions
    (omitted terms), triples_with_omission, hallucinations, texts_failing, and the rates
    (omission_rate and hallucination_rate per triple, failing_rate per text)."""
    n = {"texts": 0, "triples": 0, "terms": 0, "omissions": 0, "triples_with_omission": 0, "hallucinations": 0,
         "hallucinated_entities": 0, "hallucinated_numbers": 0, "texts_failing": 0}
    for f in findings:
        n["texts"] += 1
        n["triples"] += len(f.triples)
        n["terms"] += len({t for s, _, o in f.triples for t in (s, o)})
        n["omissions"] += len(f.omissions)
        n["triples_with_omission"] += len(f.omitted_triples)
        n["hallucinations"] += len(f.hallucinations)
        numbers = sum(1 for s, _ in f.hallucinations if _NUM.fullmatch(s))
        n["hallucinated_numbers"] += numbers
        n["hallucinated_entities"] += len(f.hallucinations) - numbers
        n["texts_failing"] += not f.ok
    n["omission_rate"] = round(n["triples_with_omission"] / max(1, n["triples"]), 4)
    n["hallucination_rate"] = round(n["hallucinations"] / max(1, n["triples"]), 4)
    n["failing_rate"] = round(n["texts_failing"] / max(1, n["texts"]), 4)
    return n
