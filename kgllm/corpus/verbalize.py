"""The template verbalizer: templates learned from WebNLG train, and ``kgllm verbalize``.

Takes: WebNLG entries (:mod:`kgllm.corpus.webnlg`) to learn from, then triple sets (WebNLG-style strings
such as ``("Alan_Bean", "birthPlace", "Wheeler,_Texas")``, or IRIs / N-Triples terms in JSONL) to verbalize.
Makes:
- :func:`learn_templates`: delexicalised templates indexed by the triple set's shape. Each entity of an
  entry gets a slot numbered by first appearance in the canonically sorted triples; a reference whose
  entities are all found (case, accent and dash-insensitive) becomes a template ("{0} is served by
  {1}."); per shape the most typical template (the medoid by word overlap among the most frequent) is
  kept. Templates with a capitalised word outside the slots (a name from the training text, which would
  be a false statement about other entities) are avoided, and a shape with only such templates is
  dropped. Shipped as ``data/webnlg_templates.json.gz`` (learned from the WebNLG 2020 train split only;
  loaded by :func:`kgllm.corpus.lexicon.shipped_templates`).
- :class:`TemplateVerbalizer`: a whole-set template when the shape was seen in train; otherwise the set
  is covered greedily by the largest sub-shapes that have templates, and consecutive single-fact
  sentences about the same subject are aggregated ("X is in A and has B."); predicates never seen alone
  use the curated lexicon or the label fallback of :mod:`kgllm.corpus.lexicon`. A composed sentence that
  opens with the previous sentence's subject names it by a short form (:func:`referring_expression`: a
  person's surname, else "It").
- :func:`verbalize_jsonl`: ``{"id", "triples"}`` lines -> ``{"id", "text"}`` lines (``kgllm verbalize``).

Relearn the shipped templates: ``python -m kgllm.corpus.verbalize TRAIN_DIR OUT.json.gz``.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from urllib.parse import unquote

from ..artifacts import atomic_open, write_jsonl
from ..errors import InputError
from ..log import progress
from ..rdf import DBO, iri, lexical_form
from .lexicon import RelationLexicon, shipped_templates
from .render import split_camel
from .webnlg import Entry, Triple, parse_triple, read_entries

# ----------------------------------------------------------------------------- surfaces


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
# WebNLG writes a quantity as "17068.8 (millimetres)"; the unit may be camel-cased ("kilometrePerSeconds")
_QUANTITY = re.compile(r"(-?\d+(?:\.\d+)?) \(([A-Za-z][A-Za-z ]*)\)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# A range of dates or years, as WebNLG writes it: "May 1950 - August 1956", "1990-2001"
_RANGE_SIDE = r"(?:(?:\d{1,2} )?(?:" + "|".join(_MONTHS) + r") )?\d{4}"
_RANGE = re.compile(rf"({_RANGE_SIDE}) ?[-–] ?({_RANGE_SIDE})")


def _unquote(term: str) -> str:
    t = term.strip()
    return t[1:-1] if len(t) >= 2 and t[0] == t[-1] == '"' else t


def realize_date(text: str) -> str | None:
    """``1871-01-01`` -> ``1 January 1871``; ``1950-05`` -> ``May 1950``; None if not such a date."""
    m = _DATE.fullmatch(text)
    if m and 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31:
        return f"{int(m.group(3))} {_MONTHS[int(m.group(2)) - 1]} {int(m.group(1))}"
    m = _YEAR_MONTH.fullmatch(text)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{_MONTHS[int(m.group(2)) - 1]} {int(m.group(1))}"
    return None


def unit_words(unit: str) -> str:
    """A WebNLG/DBpedia unit name in words: ``millimetres`` stays, ``squareKilometres`` -> ``square
    kilometres``, ``kilometrePerSeconds`` -> ``kilometres per second``, ``kilogram`` -> ``kilograms``."""
    words = split_camel(unit).split(" per ")
    head = words[0].split()
    if head and not head[-1].endswith("s"):
        head[-1] += "es" if head[-1].endswith(("ch", "sh")) else "s"
    out = " ".join(head)
    for tail in words[1:]:
        t = tail.split()
        if t and t[-1].endswith("s") and not t[-1].endswith("ss"):
            t[-1] = t[-1][:-2] if t[-1].endswith(("ches", "shes")) else t[-1][:-1]
        out += " per " + " ".join(t)
    return out


def format_number(text: str) -> str:
    """``17068.8`` -> ``17,068.8``; ``610.0`` -> ``610``. Thousands separators from five integer digits on
    (a four-digit number is as often a year as a quantity); only for quantities, see :func:`realize`."""
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    frac = frac.rstrip("0")
    if len(whole) >= 5:
        whole = f"{int(whole):,}"
    return ("-" if neg else "") + whole + ("." + frac if frac else "")


def quantity(term: str) -> tuple[str, str] | None:
    """``17068.8 (millimetres)`` -> ``("17,068.8", "millimetres")``; a bare decimal number -> (number, "");
    None for anything else (a bare integer may be a code or a postcode, so it keeps its digits)."""
    t = _unquote(term)
    m = _QUANTITY.fullmatch(t)
    if m:
        return format_number(m.group(1)), unit_words(m.group(2))
    if _NUMBER.fullmatch(t) and "." in t:
        return format_number(t), ""
    return None


def realize(term: str) -> str:
    """WebNLG entity string -> text: ``Wheeler,_Texas`` -> ``Wheeler, Texas``; quotes dropped; dates,
    quantities and units in words (``1871-01-01`` -> ``1 January 1871``, ``17068.8 (millimetres)`` ->
    ``17,068.8 millimetres``); a year stays ``1871``."""
    t = _unquote(term)
    d = realize_date(t)
    if d is not None:
        return d
    q = quantity(t)
    if q is not None:
        return f"{q[0]} {q[1]}" if q[1] else q[0]
    t = t.replace("_", " ")
    t = re.sub(r"\s+\([^()]*\)$", "", t) if not t.startswith("(") else t
    return " ".join(t.split())


def surface_variants(term: str) -> list[tuple[str, bool]]:
    """Surface forms a reference may use for ``term``, longest first, each with whether it is the number
    of a quantity without its unit (the template then keeps the reference's own unit words: ``{1:n}``)."""
    v = realize(term)
    raw = _unquote(term)
    out = {v: False, term.replace("_", " ").strip('"'): False}
    q = quantity(term)
    if q is not None:
        num = _QUANTITY.fullmatch(raw).group(1) if _QUANTITY.fullmatch(raw) else raw
        nums = {num, q[0], q[0].replace(",", "")}
        if re.fullmatch(r"-?\d+\.0+", num):
            nums.add(num.split(".")[0])
        if q[1]:
            for n in nums:
                out.setdefault(f"{n} {q[1]}", False)
                out.setdefault(f"{n} ({q[1]})", False)
            for n in nums:
                out.setdefault(n, True)
        else:
            for n in nums:
                out.setdefault(n, False)
    d = realize_date(raw)
    if d is not None and _DATE.fullmatch(raw):
        day, month, year = d.split()
        nth = day + {"1": "st", "2": "nd", "3": "rd"}.get(day[-1] if day not in ("11", "12", "13") else "", "th")
        for f in (f"{month} {day}, {year}", f"{month} {day} {year}", f"{nth} {month} {year}", f"{month} {nth} {year}",
                  f"{nth} of {month} {year}", f"{month} {nth}, {year}", f"{nth} {month}, {year}",
                  f"{day} {month}, {year}"):
            out.setdefault(f, False)
    m = _RANGE.fullmatch(v)
    if m:
        out.setdefault(f"{m.group(1)} to {m.group(2)}", False)
    if re.fullmatch(r"-?\d+\.0+", v):
        out.setdefault(v.split(".")[0], False)
    if re.fullmatch(r"-?\d+(\.\d+)?", v) and "." in v:
        out.setdefault(v.rstrip("0").rstrip("."), False)
    if "," in v and q is None:
        out.setdefault(v.split(",")[0], False)  # "Wheeler, Texas" is often just "Wheeler"
    if v.lower().startswith("the "):
        out.setdefault(v[4:], False)
    return sorted(((x, n) for x, n in out.items() if x), key=lambda xn: (-len(xn[0]), xn[1], xn[0]))


@lru_cache(maxsize=1 << 16)
def _fold_char(c: str) -> str:
    if c in "–—‐‑":
        return "-"
    d = unicodedata.normalize("NFKD", c)
    base = d[0] if d else c
    return base.lower() if len(base.lower()) == 1 else base


def fold(text: str) -> str:
    """Case-, accent- and dash-insensitive form of the same length (so offsets carry over)."""
    return "".join(_fold_char(c) for c in text)


def canonical(triples: list[Triple]) -> tuple[str, list[str]]:
    """Shape key and the entities in slot order."""
    ts = sorted(triples, key=lambda t: (t[1], t[0], t[2]))
    ents: dict[str, int] = {}
    parts = []
    for s, p, o in ts:
        si = ents.setdefault(s, len(ents))
        oi = ents.setdefault(o, len(ents))
        parts.append(f"{p}:{si}>{oi}")
    return ";".join(parts), list(ents)


def delexicalise(text: str, entities: list[str]) -> str | None:
    """Replace every entity's mention by its slot ``{i}``; None if an entity is not found."""
    folded = fold(text)
    taken = [False] * len(text)
    spans: list[tuple[int, int, str]] = []
    order = sorted(range(len(entities)), key=lambda i: -len(realize(entities[i])))
    for i in order:
        found = False
        for v, number_only in surface_variants(entities[i]):
            fv = fold(v)
            for m in re.finditer(r"(?<!\w)" + re.escape(fv) + r"(?!\w)", folded):
                if not any(taken[m.start():m.end()]):
                    spans.append((m.start(), m.end(), f"{i}:n" if number_only else str(i)))
                    for k in range(m.start(), m.end()):
                        taken[k] = True
                    found = True
            if found:
                break
        if not found:
            return None
    spans.sort()
    out, pos = [], 0
    for a, b, i in spans:
        out.append(text[pos:a].replace("{", "(").replace("}", ")"))
        out.append(f"{{{i}}}")
        pos = b
    out.append(text[pos:].replace("{", "(").replace("}", ")"))
    return "".join(out)


_SLOT = re.compile(r"\{(\d+)(:n)?\}")


# A name of one word, no acronym and no plural ("France", not "BBC" or "Netherlands"): it takes no article.
_ONE_WORD_NAME = re.compile(r"(?![A-Z0-9]{2,}\b)[A-Z][\w\-]*[^\Ws]")


def fill(template: str, entities: list[str]) -> str:
    return fill_spans(template, entities)[0]


def fill_spans(template: str, entities: list[str]) -> tuple[str, list[tuple[int, int, int]]]:
    """The template with its slots realized, and the ``(start, end, entity index)`` span of each slot.
    ``{i:n}`` is the number of a quantity whose unit the template spells itself. A date range after a
    verb or a preposition reads "from May 1950 to August 1956" ("in"/"on"/"during" give way to "from");
    after "between", "May 1950 and August 1956"."""
    out = ""
    spans = []
    pos = 0
    for m in _SLOT.finditer(template):
        out += template[pos:m.start()]
        pos = m.end()
        term = entities[int(m.group(1))]
        q = quantity(term) if m.group(2) else None
        value = q[0] if q is not None else realize(term)
        r = _RANGE.fullmatch(value)
        if r:
            before = re.search(r"(\w+) $", out)
            word = before.group(1).lower() if before else ""
            if word == "between":
                value = f"{r.group(1)} and {r.group(2)}"
            elif word == "from":
                value = f"{r.group(1)} to {r.group(2)}"
            elif word in ("in", "on", "during", "at"):
                out = out[:before.start(1)]
                value = f"from {r.group(1)} to {r.group(2)}"
            elif before and word not in ("and", "or", "the", "a", "an", "of"):
                value = f"from {r.group(1)} to {r.group(2)}"
        art = re.search(r"\b[Tt]he $", out)
        if art and q is None and _ONE_WORD_NAME.fullmatch(value):
            out = out[:art.start()]   # "is in the {1}" (learned from "the United States") with "France"
        spans.append((len(out), len(out) + len(value), int(m.group(1))))
        out += value
        # "works in the {1} industry" with "Energy industry": the word is said once.
        nxt = re.match(r" ([^\W\d_]+)\b", template[pos:])
        if nxt and value.lower().endswith(" " + nxt.group(1).lower()):
            pos += len(nxt.group(0))
    out += template[pos:]
    return out, spans


# ----------------------------------------------------------------------------- learning


def _words(t: str) -> Counter:
    return Counter(re.findall(r"\w+|\{\d+\}", t.lower()))


def _overlap(a: Counter, b: Counter) -> float:
    common = sum((a & b).values())
    return 2 * common / max(1, sum(a.values()) + sum(b.values()))


def leaks_names(template: str) -> bool:
    """True if the template has a capitalised word outside its slots that does not start a sentence
    ("{0} is from the Nationwide in {1}"): a name from the training text, false for other entities."""
    for m in re.finditer(r"\b[A-Z][a-z]+\b", template):
        before = template[: m.start()]
        if not re.search(r"(?:^|[.!?]\s+)$", before) and m.group() not in _COMMON_CAPS:
            return True
    return False


# Capitalised words that are not names of particular things.
_COMMON_CAPS = {"I", "The", "A", "An", "It", "Its", "He", "She", "His", "Her", "They", "Their", "This", "In", "On"}


def _medoid(cands: Counter) -> str:
    clean = Counter({t: c for t, c in cands.items() if not leaks_names(t)})
    cands = clean or cands
    top = [t for t, _ in sorted(cands.items(), key=lambda kv: (-kv[1], kv[0]))[:12]]
    bags = {t: _words(t) for t in top}
    return max(top, key=lambda t: (sum(cands[u] * _overlap(bags[t], bags[u]) for u in top), cands[t], t))


def learn_templates(paths: Iterable[str | Path]) -> dict:
    """``{"templates": {shape: [template, support]}, "stats": {...}}`` from WebNLG training files."""
    return learn_from_entries(read_entries(paths))


def learn_from_entries(entries: Iterable[Entry]) -> dict:
    """:func:`learn_templates` from entries already read (e.g. train minus some categories)."""
    by_shape: dict[str, Counter] = defaultdict(Counter)
    refs = found = 0
    for e in progress(entries, desc="delexicalising", unit="entry"):
        key, ents = canonical(e.triples)
        for r in e.references:
            refs += 1
            t = delexicalise(r, ents)
            if t is not None and {int(x) for x in re.findall(r"\{(\d+)", t)} == set(range(len(ents))):
                by_shape[key][t] += 1
                found += 1
    templates = {}
    leaking = 0
    for k, c in sorted(by_shape.items()):
        t = _medoid(c)
        if leaks_names(t):
            leaking += 1  # every reference of this shape names something that is not in its triples
            continue
        templates[k] = [t, sum(c.values())]
    return {"templates": templates, "stats": {"references": refs, "delexicalised": found, "shapes": len(templates),
                                              "shapes_dropped_names_outside_slots": leaking}}


def save_templates(data: dict, path: Path) -> None:
    with atomic_open(path, "wb", encoding=None) as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0).encode())


# ----------------------------------------------------------------------------- verbalizing


class TemplateVerbalizer:
    def __init__(self, templates: dict[str, list] | None = None, *, referring: bool = True):
        self.templates = shipped_templates() if templates is None else templates
        self.referring = referring  # short forms ("It", a surname) after the first mention of a subject
        # The lexicon's WebNLG one-fact templates are the shipped ones: with a table of our own (a
        # leave-categories-out fold) they would leak the held-out categories back in.
        self.lexicon = RelationLexicon(use_webnlg=templates is None)
        self.stats: Counter = Counter()

    def _fallback(self, p: str) -> str:
        pred = p if p.startswith("<") else iri(DBO + p)
        t = self.lexicon.template(pred)
        if not t.curated and t.sentence.endswith(f"'s {t.label} is {{o}}."):  # the bare label fallback
            return lexicalize(p)
        return t.sentence.replace("{s}", "{0}").replace("{o}", "{1}")

    def verbalize(self, triples: list[Triple]) -> str:
        if not triples:
            return ""
        key, ents = canonical(triples)
        t = self.templates.get(key)
        if t is not None:
            self.stats["whole_set"] += 1
            return tidy(fill(t[0], ents))
        self.stats["composed"] += 1
        return tidy(self._compose(triples))

    def _compose(self, triples: list[Triple]) -> str:
        remaining = list(range(len(triples)))
        chunks: list[tuple[list[int], str, list[str]]] = []
        while remaining:
            best = None
            for size in range(len(remaining), 0, -1):
                for combo in combinations(remaining, size):
                    key, ents = canonical([triples[i] for i in combo])
                    t = self.templates.get(key)
                    if t is not None and (best is None or t[1] > best[1][1]):
                        best = (list(combo), t, ents)
                if best is not None:
                    break
            if best is None:  # a predicate never seen alone: curated lexicon or label fallback
                i = remaining[0]
                s, p, o = triples[i]
                best = ([i], [self._fallback(p), 0], [s, o])
                self.stats["fallback_triples"] += 1
            combo, t, ents = best
            chunks.append((combo, t[0], ents))
            remaining = [i for i in remaining if i not in combo]
        chunks.sort(key=lambda c: min(c[0]))
        chunks = _merge_objects(chunks)
        # Facts about one subject next to each other (in the order subjects first appear), so they aggregate.
        first = {}
        for c in chunks:
            first.setdefault(c[2][0], min(c[0]))
        chunks.sort(key=lambda c: (first[c[2][0]], min(c[0])))
        sentences: list[str] = []
        subjects: list[tuple[str, bool]] = []  # each sentence's subject and whether the sentence opens with it
        k = 0
        while k < len(chunks):
            combo, tpl, ents = chunks[k]
            subjects.append((ents[0], tpl.startswith("{0}") and tpl.count("{0}") == 1))
            # Aggregation: the following one-fact sentences about the same subject join this one
            # ("X was founded by A, is located in B and its leader title is C").
            parts = [fill(tpl[:-1], ents)] if len(combo) == 1 and _vp(tpl) or _noun(tpl) and len(combo) == 1 \
                else None
            j = k + 1
            while parts is not None and j < len(chunks) and len(parts) < 4:
                combo2, tpl2, ents2 = chunks[j]
                if len(combo2) != 1 or ents2[0] != ents[0]:
                    break
                if _vp(tpl2):
                    parts.append(fill(tpl2[4:-1], ents2))
                elif _noun(tpl2):
                    parts.append("its " + fill(tpl2[len("{0}'s "):-1], ents2))
                else:
                    break
                j += 1
            if parts is not None and len(parts) > 1:
                sentences.append(", ".join(parts[:-1]) + " and " + parts[-1] + ".")
                k = j
                continue
            # A name-based noun alone, about a subject the sentence before did not name: "The leader title of X
            # is Y." (after it, "Its leader title is Y." refers back).
            if len(combo) == 1 and _noun(tpl) and not (len(subjects) > 1 and subjects[-2][0] == ents[0]):
                tpl = "The " + tpl[len("{0}'s "):-len(" is {1}.")] + " of {0} is {1}."
                subjects[-1] = (ents[0], False)
            sentences.append(fill(tpl, ents))
            k += 1
        if self.referring:
            # A template that says "his" or "her" of its subject tells that the subject is a person.
            people = {ents[0] for _c, tpl, ents in chunks if _PERSONAL.search(_SLOT.sub(" ", tpl))}
            sentences = self._refer(sentences, subjects, triples, people)
        return " ".join(sentences)

    def _refer(self, sentences: list[str], subjects: list[tuple[str, bool]], triples: list[Triple],
               people: set[str] = frozenset()) -> list[str]:
        """Referring expressions: a sentence that opens with the subject of the sentence before names it
        again by a short form (:func:`referring_expression`); the first mention keeps the full name."""
        out = list(sentences)
        for i in range(1, len(out)):
            s, opens = subjects[i]
            if not opens or s != subjects[i - 1][0]:
                continue
            name = realize(s)
            short = referring_expression(s, triples, person=s in people)
            if short == name or not out[i].startswith(name):
                continue
            rest = out[i][len(name):]
            if short == "It" and rest.startswith("'s "):
                out[i] = "Its" + rest[2:]
            elif short == "It" and rest.startswith("' "):
                out[i] = "Its" + rest[1:]
            else:
                out[i] = short + rest
        return out


def _merge_objects(chunks: list[tuple[list[int], str, list[str]]]) -> list[tuple[list[int], str, list[str]]]:
    """One-fact sentences that say the same of one subject with different objects become one, the objects
    joined ("X's associated musical artist is A and B" rather than the relation twice). The joined objects
    travel as one quoted value, which :func:`realize` leaves as written."""
    out: list[tuple[list[int], str, list[str]]] = []
    where: dict[tuple[str, str], int] = {}
    for combo, tpl, ents in chunks:
        key = (tpl, ents[0])
        if len(combo) == 1 and len(ents) == 2 and tpl.count("{1") == 1 and key in where:
            k = where[key]
            c0, t0, e0 = out[k]
            names = [realize(x) for x in e0[1:]] + [realize(ents[1])] if not e0[1].startswith(_JOINED) \
                else e0[1][len(_JOINED):-1].split(_SEP) + [realize(ents[1])]
            out[k] = (c0 + combo, t0, [e0[0], _JOINED + _SEP.join(names) + '"'])
            continue
        if len(combo) == 1 and len(ents) == 2:
            where[key] = len(out)
        out.append((combo, tpl, ents))
    return [(c, t, [e[0], _join_names(e[1])] if e[1].startswith(_JOINED) else e) for c, t, e in out]


_JOINED, _SEP = '"\x00', "\x00"


def _join_names(term: str) -> str:
    names = term[len(_JOINED):-1].split(_SEP)
    return '"' + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + '"'


# Predicates whose subject is a person (DBpedia ontology domain dbo:Person or its subclasses): such a subject
# is named again by its surname, never "it". Predicates that bands and teams share (genre, recordLabel,
# club) are left out: a band is not named by its last word.
PERSON_PREDICATES = frozenset({
    "birthPlace", "birthDate", "birthYear", "birthName", "deathPlace", "deathDate", "deathYear",
    "spouse", "almaMater", "nationality", "occupation", "profession", "militaryBranch", "party", "selectedByNasa",
    "timeInSpace", "dateOfRetirement", "mission", "inOfficeWhileMonarch", "inOfficeWhilePresident",
    "inOfficeWhilePrimeMinister", "inOfficeWhileVicePresident", "draftPick", "draftTeam", "debutTeam",
    "formerTeam", "currentclub", "youthclub", "child", "parent", "relative", "citizenship", "doctoralAdvisor",
    "doctoralStudent", "servedAsChiefOfTheAstronautOfficeIn", "backupPilot", "hasDeputy", "awards"})
_PERSONAL = re.compile(r"\b(?:his|her|he|she|him)\b", re.I)
_DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?=\s|$)")   # "F.C.." -> "F.C.", not an ellipsis
# a unit said twice, once by the value and once by the template ("490.9 square kilometres square kilometres")
_TWICE = re.compile(r"(\d[\d,.]* )((?:[A-Za-z]+ ){0,2}[A-Za-z]+) \2\b")
_S_POSSESSIVE = re.compile(r"(?<=[a-z]s)'s\b")   # "Systems's" -> "Systems'"


def tidy(text: str) -> str:
    """What filling slots can leave: a sentence's full stop after a value that ends with one, a unit that
    the value and the template both say, "'s" after a name that ends in s."""
    return _S_POSSESSIVE.sub("'", _TWICE.sub(r"\1\2", _DOUBLE_STOP.sub(".", text)))


_NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def is_person(term: str, triples: Iterable[Triple]) -> bool:
    """Whether the triples say ``term`` is a person: it is the subject of a :data:`PERSON_PREDICATES` fact."""
    return any(s == term and to_webnlg(p) in PERSON_PREDICATES for s, p, _ in triples)


def referring_expression(term: str, triples: Iterable[Triple], *, person: bool = False) -> str:
    """How a text names ``term`` again after its first mention: a person's surname ("Bean" for Alan_Bean;
    the gender, and so "he" or "she", is not in the triples), "It" for anything else. A person's one-word
    name, and a value without letters (a number), stay as they are."""
    name = realize(term)
    triples = list(triples)
    if person or is_person(term, triples):
        words = name.split(",")[0].split()
        while len(words) > 2 and words[-1].lower() in _NAME_SUFFIXES:
            words = words[:-1]
        if len(words) > 1 and re.search(r"[^\W\d_]", words[-1]):
            return words[-1]
        return name   # one word, or a last "word" that is no name ("Apollo 8" taken for a person: not "8")
    if not re.search(r"[^\W\d_]", name):
        return name
    return "It"


_PREPOSITIONS = {"by", "in", "of", "to", "from", "at", "on", "with", "for", "as", "into", "after"}
# Participles that describe a lasting state ("is located in"); any other participle tells of an event ("was
# founded by"). Irregular participles are recognised by this short list, regular ones by their "-ed".
_STATIVE = {"located", "based", "situated", "known", "owned", "operated", "affiliated", "named", "called",
            "made", "used", "connected", "related", "married"}
_IRREGULAR = {"born", "built", "made", "written", "known", "held", "given", "run", "led", "won", "drawn", "sung",
              "begun", "chosen", "shown", "taken", "sold", "bought", "brought", "taught", "thought", "found"}


def lexicalize(predicate: str) -> str:
    """A one-fact template for a predicate with no learned one, from its local name alone:
    ``foundedBy`` -> "{0} was founded by {1}."; ``isPartOf`` -> "{0} is part of {1}."; ``locatedIn`` ->
    "{0} is located in {1}."; a noun (``leaderTitle``) -> "{0}'s leader title is {1}."."""
    local = predicate[1:-1] if predicate.startswith("<") else predicate
    local = local.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    words = [_ORDINAL_WORDS.get(w, w) for w in split_camel(local).split()]  # "1stRunway": the first runway
    if not words:
        return "{0} is related to {1}."
    if words[0] in ("is", "has", "was", "had", "are", "have") and len(words) > 1:
        return "{0} " + " ".join(words) + " {1}."
    unit = ""
    for n in (2, 1):  # a unit the name spells ("runwayLengthFeet", "elevationInMetres") follows the value
        tail = words[-n:]
        if len(words) > n and tail[-1] in _UNIT_WORDS and (n == 1 or tail[0] == "in"):
            unit, words = " " + tail[-1], words[:-n]
            break
    if len(words) == 2 and words[0] in _EVENTS and words[1] in _WHEN_WHERE and not unit:
        # "deathYear": "died in 1941"; "deathDate": "died on 4 May 1941"
        return "{0} " + _EVENTS[words[0]] + (" on {1}." if words[1] == "date" else " in {1}.")
    verb = _present(words[0]) if len(words) == 1 else None
    if verb:   # "starring": "stars"
        return "{0} " + verb + " {1}."
    if words[:2] == ["number", "of"] and len(words) > 2 and not unit:  # "numberOfLocations": has 295 locations
        return "{0} has {1} " + " ".join(words[2:]) + "."
    participle = next((k for k, w in enumerate(words) if w in _IRREGULAR or (w.endswith("ed") and len(w) > 4)), None)
    if participle not in (None, 0) and words[participle - 1] not in _PREPOSITIONS:
        participle = None  # "cityServed", "numberOfVotesAttained": a noun phrase, not a verb about the subject
    if participle is not None and (participle == len(words) - 1 or words[-1] in _PREPOSITIONS) and not unit:
        verb = "is" if words[participle] in _STATIVE else "was"
        return f"{{0}} {verb} " + " ".join(words[participle:]) + " {1}."
    if words[-1] in _PREPOSITIONS:  # "partOf", "memberOf": a noun and its preposition
        return "{0} is " + ("a " if words[0] not in ("part",) else "") + " ".join(words) + " {1}."
    return "{0}'s " + " ".join(words) + " is {1}" + unit + "."


# An event noun and how a sentence says that the subject's event happened: "birthYear" -> "was born in 1930".
_EVENTS = {"birth": "was born", "death": "died", "founding": "was founded", "foundation": "was founded",
           "formation": "was formed", "opening": "opened", "closing": "closed", "closure": "closed",
           "completion": "was completed", "construction": "was built", "launch": "was launched",
           "release": "was released", "publication": "was published", "retirement": "retired",
           "burial": "was buried", "election": "was elected", "dissolution": "was dissolved",
           "establishment": "was established", "inauguration": "was inaugurated", "debut": "made its debut"}
_WHEN_WHERE = {"year", "date", "place", "location", "city", "country"}


def _present(word: str) -> str | None:
    """The third person present of a verb from an "-ing" form whose doubled consonant shows its stem
    ("starring" -> "stars", "running" -> "runs"); None for anything else (without a dictionary, "featur-ing"
    and "headquarter-ing" cannot be told apart)."""
    stem = word[:-3]
    if not word.endswith("ing") or len(stem) < 3 or stem[-1] != stem[-2] or stem[-1] in "lsaeiouy":
        return None
    return stem[:-1] + "s"


_ORDINAL_WORDS = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth", "6th": "sixth",
                  "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth"}
_UNIT_WORDS = frozenset("feet foot metres metre meters meter kilometres kilometers km miles inches inch tonnes tons "
                        "kilograms kg pounds seconds minutes hours days years percent".split())


def _noun(tpl: str) -> bool:
    """The name-based template of a noun predicate: "{0}'s <label> is {1}."."""
    return tpl.startswith("{0}'s ") and tpl.endswith(" is {1}.") and tpl.count("{") == 2


def _vp(tpl: str) -> bool:
    """A one-sentence template "{0} <verb phrase>." whose subject slot appears once."""
    return (tpl.startswith("{0} ") and tpl.endswith(".") and tpl.count("{0}") == 1
            and tpl.count(".") == 1 and re.search(r"\{1(:n)?\}", tpl) is not None)


# ----------------------------------------------------------------------------- JSONL


def to_webnlg(term: str) -> str:
    """IRIs / N-Triples terms -> WebNLG-style strings (``<http://dbpedia.org/resource/X_Y>`` -> ``X_Y``)."""
    t = term.strip()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1]
    if t.startswith('"'):
        return lexical_form(t)
    if re.match(r"^[a-z][a-z0-9+.-]*://", t):
        return unquote(t.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return t


def verbalize_jsonl(inp: Path, out: Path) -> int:
    """Verbalize each ``{"id", "triples"}`` line of ``inp`` into an ``{"id", "text"}`` line of ``out``
    (written atomically); returns the number of lines written."""
    return write_jsonl(out, _verbalized_rows(inp, TemplateVerbalizer()))


def _verbalized_rows(inp: Path, v: TemplateVerbalizer) -> Iterator[dict]:
    for rid, triples in read_triple_sets(inp):
        yield {"id": rid, "text": v.verbalize(triples)}


def read_triple_sets(inp: Path) -> Iterator[tuple[object, list[Triple]]]:
    """``(id, triples)`` of each ``{"id", "triples"}`` line; a triple is ``"s | p | o"`` or ``[s, p, o]``
    (IRIs / N-Triples terms become WebNLG-style strings, :func:`to_webnlg`)."""
    with open(inp, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                raw = row["triples"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"{inp}:{lineno}: expected {{\"id\": ..., \"triples\": [[s, p, o], ...]}} ({e})") \
                    from e
            triples = []
            for t in raw:
                if isinstance(t, str):
                    triples.append(parse_triple(t, f"{inp}:{lineno}"))
                elif isinstance(t, (list, tuple)) and len(t) == 3:
                    triples.append(tuple(to_webnlg(str(x)) for x in t))
                else:
                    raise InputError(f"{inp}:{lineno}: a triple must be [s, p, o] or 's | p | o', got {t!r}")
            yield row.get("id"), triples


if __name__ == "__main__":  # python -m kgllm.corpus.verbalize TRAIN_DIR OUT.json.gz: relearn the shipped templates
    import sys

    data = learn_templates([sys.argv[1]])
    save_templates(data, Path(sys.argv[2]))
    print(json.dumps(data["stats"]))
