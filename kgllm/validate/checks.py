"""Scalable data checks: one streaming pass builds an integer index, then each registered check runs on it.

Takes: triples (N-Triples term strings, e.g. from :func:`kgllm.rdf.iter_graph`) and an
:class:`~kgllm.validate.ontology.Ontology`.
Makes: :class:`Violation` records. A check with severity ``error`` quarantines the triples it names; a
``warning`` is only reported. No DL reasoner is involved: the class hierarchy is a precomputed closure,
so each check is a dictionary lookup per triple (or per distinct term, or per distinct type set).

Memory: every distinct term is stored once (str -> int) and triples as three int arrays, i.e. a few
hundred bytes per distinct term plus 12 bytes per triple: tens of millions of triples fit in memory.

Adding a check: subclass :class:`Check`, set ``name``, ``severity``, ``description``, implement
``run(ctx)`` yielding violations, and decorate it with :func:`register`. The index may be one partition of
the graph (kgllm.validate.parts runs the checks as a map-reduce): see :class:`Check` for what a check may
judge there.
"""

from __future__ import annotations

import calendar
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from ..errors import ConfigError
from ..log import progress
from ..rdf import (
    DBO,
    FOAF,
    ONTOLEX,
    OWL,
    PROV,
    RDF,
    RDF_LANGSTRING,
    RDF_TYPE,
    RDFS,
    SKOS,
    WN,
    XSD,
    XSD_STRING,
    Triple,
    iri,
    literal_datatype,
    literal_lexical,
    shorten,
)
from .ontology import RDFS_LITERAL, Ontology

SEVERITIES = ("error", "warning", "off")
# Per row of a partition's index (TermIndex.add_lines): who judges it here.
OWN_SUBJECT, OWN_BOTH, FOREIGN = 0, 1, 2
_RDFS_LITERAL_IRI = RDFS + "Literal"   # datatype IRIs are bare, as literal_datatype gives them


@dataclass(frozen=True)
class Violation:
    check: str
    severity: str
    message: str
    triple: int | None = None     # index into the TermIndex arrays, when one triple is at fault
    focus: str | None = None      # the entity or term at fault (N-Triples form)


@dataclass
class CheckOptions:
    """Options of the data checks (a sub-config of the validate stage)."""

    # rdfs:subClassOf, hypernymy: a cycle there is an error. Each group is checked as one graph.
    acyclic: list[list[str]] = field(default_factory=lambda: [
        [RDFS + "subClassOf"], [WN + "hypernym", WN + "instance_hypernym"], [WN + "hyponym", WN + "instance_hyponym"]])
    label_predicates: list[str] = field(default_factory=lambda: [
        RDFS + "label", SKOS + "prefLabel", FOAF + "name", ONTOLEX + "writtenRep"])
    # Entities of these types need no label of their own (a sense is named by its entry).
    label_exempt_types: list[str] = field(default_factory=lambda: [ONTOLEX + "LexicalSense", ONTOLEX + "Form"])
    # Links to things outside the graph by design: not "dangling".
    dangling_ignore_predicates: list[str] = field(default_factory=lambda: [
        RDF + "type", OWL + "sameAs", RDFS + "seeAlso", FOAF + "isPrimaryTopicOf", FOAF + "primaryTopic",
        FOAF + "homepage", FOAF + "depiction", DBO + "thumbnail", DBO + "wikiPageExternalLink",
        PROV + "wasDerivedFrom", ONTOLEX + "canonicalForm"])


# ----------------------------------------------------------------------------- the index


class TermIndex:
    """Distinct terms as ints, triples as int32 numpy arrays, plus per-term lookup tables for the checks.

    Build it with :meth:`add_all` (one streaming pass), then :meth:`finish` (numpy grouping; called by
    :func:`run_checks`). Per-triple work in the checks is vectorised: a check computes a verdict per
    distinct predicate, type set or term in Python, then applies it to all triples with numpy.
    """

    def __init__(self, ontology: Ontology, options: CheckOptions | None = None):
        self.ont = ontology
        self.opts = options or CheckOptions()
        self.ids: dict[str, int] = {}
        self._terms: list[str] = []
        self._S = array("i")
        self._P = array("i")
        self._O = array("i")
        self.rdf_type = self.intern(RDF_TYPE)
        self._finished = False
        # A partition of the graph (kgllm.validate.parts): the global row of each triple, and which rows this
        # index judges. None: an index of the whole graph, every row its own (rows = 0..n-1).
        self._rows: array | None = None
        self._kind: bytearray | None = None    # per row: OWN_SUBJECT, OWN_BOTH or FOREIGN (see add_lines)

    def intern(self, term: str) -> int:
        self._finished = False
        return self.ids.setdefault(term, len(self.ids))

    def add_all(self, triples: Iterable[Triple], total: int | None = None) -> None:
        self._intern(progress(triples, desc="index", total=total, unit="triple"))

    def _intern(self, triples: Iterable[Triple]) -> None:
        ids = self.ids
        intern = ids.setdefault
        S, P, O = self._S.append, self._P.append, self._O.append  # noqa: E741
        # The hot loop: one dict call per term; the id of a new term is its insertion rank, so the
        # term list is simply list(ids) afterwards.
        for s, p, o in triples:
            S(intern(s, len(ids)))
            P(intern(p, len(ids)))
            O(intern(o, len(ids)))
        self._finished = False

    def add_lines(self, lines: Iterable[str], rows: Iterable[int], kinds: bytes) -> None:
        """Add canonical N-Triples statements (``"s p o"``, no final ``" ."``) of a partition of the graph, with
        their global row numbers and, per row, whose checks judge it here: :data:`OWN_BOTH` (its subject and
        its object belong to this partition, or the object is a literal), :data:`OWN_SUBJECT` (only its
        subject: the object's partition judges the object) or :data:`FOREIGN` (a copy of another partition's
        row whose object belongs here: only the object checks see it)."""
        if self._rows is None:
            if len(self._S):
                raise ValueError("add_lines: the index already holds rows without row numbers")
            self._rows, self._kind = array("q"), bytearray()
        self._intern(line.split(" ", 2) for line in lines)
        self._rows.extend(rows)
        self._kind += kinds
        if len(self._rows) != len(self._S) or len(self._kind) != len(self._S):
            raise ValueError("add_lines: one row number and one kind per line")

    def finish(self) -> TermIndex:
        """Group triples by predicate and build the lookup tables (idempotent)."""
        if self._finished:
            return self
        import numpy as np

        self.terms: list[str] = list(self.ids)
        n_terms = len(self.terms)
        self.S = np.frombuffer(self._S, dtype=np.int32) if len(self._S) else np.zeros(0, np.int32)
        self.P = np.frombuffer(self._P, dtype=np.int32) if len(self._P) else np.zeros(0, np.int32)
        self.O = np.frombuffer(self._O, dtype=np.int32) if len(self._O) else np.zeros(0, np.int32)
        order = np.argsort(self.P, kind="stable")
        preds, starts = np.unique(self.P[order], return_index=True)
        bounds = list(starts) + [len(order)]
        self.by_pred = {int(p): order[bounds[k]:bounds[k + 1]] for k, p in enumerate(preds)}
        first = np.array(list(map(itemgetter(0), self.terms)) or [""], dtype="<U1")[:n_terms]
        self.is_literal = first == '"'
        self.is_subject = np.zeros(n_terms, dtype=bool)
        self.is_subject[self.S] = True
        if self._rows is None:
            self.rows = np.arange(len(self.S), dtype=np.int64)
            self.owned = self.judged = None
            self.own_subject = self.is_subject
        else:
            kind = np.frombuffer(bytes(self._kind), dtype=np.uint8)
            self.rows = np.frombuffer(self._rows, dtype=np.int64) if len(self._rows) else np.zeros(0, np.int64)
            self.owned = kind != FOREIGN        # subject checks: the rows whose subject is this partition's
            self.judged = kind != OWN_SUBJECT   # object checks: the rows whose object is judged here
            self.own_subject = np.zeros(n_terms, dtype=bool)
            self.own_subject[self.S[self.owned]] = True
        # Types, vectorised: type triples sorted by subject (for lookups), and per subject the id of its
        # set of asserted classes. A set is identified by the sum (mod 2**64) of random 64-bit codes of its
        # distinct classes, so ancestors are computed once per distinct type set, not per entity.
        tidx = self.pred_triples(RDF_TYPE)
        tidx = tidx[np.argsort(self.S[tidx], kind="stable")]
        self._type_idx = tidx
        self._type_subj = self.S[tidx]
        self.ancsets: list[frozenset[str]] = []
        self.ancset_of = np.full(n_terms, -1, dtype=np.int32)   # term -> index into ancsets, -1: untyped
        if len(tidx):
            pairs = np.unique(np.stack([self.S[tidx], self.O[tidx]], axis=1).astype(np.int64), axis=0)
            codes = np.random.default_rng(0).integers(0, 2**63, size=n_terms, dtype=np.uint64)
            subj, first_of = np.unique(pairs[:, 0], return_index=True)
            setkey = np.add.reduceat(codes[pairs[:, 1]], first_of)   # uint64 sums wrap: fine for a hash
            keys, rep, inverse = np.unique(setkey, return_index=True, return_inverse=True)
            sup = self.ont.superclasses
            bounds = list(first_of) + [len(pairs)]
            for r in rep.tolist():
                anc: set[str] = set()
                for t in pairs[bounds[r]:bounds[r + 1], 1].tolist():
                    term = self.terms[t]
                    anc |= sup.get(term, {term})
                self.ancsets.append(frozenset(anc))
            self.ancset_of[subj] = inverse.reshape(-1)
        self._finished = True
        return self

    def __len__(self) -> int:
        return len(self._S)

    def own(self, idx):
        """The rows of ``idx`` whose subject this index judges (all of them for a whole graph)."""
        return idx if self.owned is None else idx[self.owned[idx]]

    def judged_objects(self, idx):
        """The rows of ``idx`` whose object this index judges (all of them for a whole graph)."""
        return idx if self.judged is None else idx[self.judged[idx]]

    def triple(self, i: int) -> Triple:
        t = self.terms
        return t[self.S[i]], t[self.P[i]], t[self.O[i]]

    def pred_triples(self, predicate: str):
        import numpy as np

        pi = self.ids.get(predicate)
        return self.by_pred.get(pi, np.zeros(0, dtype=np.int64)) if pi is not None else np.zeros(0, dtype=np.int64)

    def term_mask(self, terms: Iterable[str]):
        """Boolean array over term ids: True for the given terms (those that occur)."""
        import numpy as np

        mask = np.zeros(len(self.terms), dtype=bool)
        ids = [self.ids[t] for t in terms if t in self.ids]
        mask[ids] = True
        return mask

    def type_triples_of(self, subject: int) -> list[int]:
        """Indices of the rdf:type triples of ``subject``."""
        import numpy as np

        lo, hi = np.searchsorted(self._type_subj, [subject, subject + 1])
        return self._type_idx[lo:hi].tolist()

    def types_of(self, subject: int) -> list[int]:
        return [int(self.O[n]) for n in self.type_triples_of(subject)]

    def ancestors_of(self, term_id: int) -> frozenset[str] | None:
        """All classes of an entity (asserted types and their superclasses), None if it has no type."""
        k = self.ancset_of[term_id]
        return None if k < 0 else self.ancsets[k]


# ----------------------------------------------------------------------------- lexical forms of XSD types

_TZ = r"(Z|[+-](0\d|1[0-4]):[0-5]\d)?"
_YEAR = r"-?([1-9]\d{4,}|\d{4})"
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DOUBLE = re.compile(r"([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?INF|NaN)")
_DATE = re.compile(_YEAR + r"-(\d\d)-(\d\d)" + _TZ)
_DATETIME = re.compile(_YEAR + r"-(\d\d)-(\d\d)T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?" + _TZ + "|"
                       + _YEAR + r"-(\d\d)-(\d\d)T24:00:00(\.0+)?" + _TZ)
_TIME = re.compile(r"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?|24:00:00(\.0+)?)" + _TZ)
_GYEAR = re.compile(_YEAR + _TZ)
_GYEARMONTH = re.compile(_YEAR + r"-(0[1-9]|1[0-2])" + _TZ)
_GMONTHDAY = re.compile(r"--(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])" + _TZ)
_GDAY = re.compile(r"---(0[1-9]|[12]\d|3[01])" + _TZ)
_GMONTH = re.compile(r"--(0[1-9]|1[0-2])" + _TZ)
_BOOLEAN = re.compile(r"true|false|1|0")
_DURATION = re.compile(r"-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")
# Integer subtypes: inclusive bounds (None = unbounded).
_INT_RANGES = {
    "integer": (None, None), "nonNegativeInteger": (0, None), "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0), "negativeInteger": (None, -1),
    "long": (-2**63, 2**63 - 1), "int": (-2**31, 2**31 - 1), "short": (-2**15, 2**15 - 1), "byte": (-128, 127),
    "unsignedLong": (0, 2**64 - 1), "unsignedInt": (0, 2**32 - 1), "unsignedShort": (0, 65535),
    "unsignedByte": (0, 255),
}


def _valid_date(m: re.Match) -> bool:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= month <= 12:
        return False
    # XSD 1.1 years: year 0 is 1 BCE (a leap year); calendar handles proleptic years >= 1.
    leap = calendar.isleap(year) if year > 0 else (-year - 1) % 4 == 0 if year < 0 else True
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


def lexical_error(lexical: str, datatype: str) -> str | None:
    """Why ``lexical`` is not a valid form of XSD ``datatype``, or None (also None for datatypes not checked)."""
    if not datatype.startswith(XSD):
        return None
    local = datatype[len(XSD):]
    if local in _INT_RANGES:
        if not _INT.fullmatch(lexical):
            return f"{lexical!r} is not an integer"
        lo, hi = _INT_RANGES[local]
        v = int(lexical)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return f"{lexical!r} is out of range for xsd:{local}"
        return None
    simple = {"decimal": _DECIMAL, "double": _DOUBLE, "float": _DOUBLE, "boolean": _BOOLEAN, "time": _TIME,
              "gYear": _GYEAR, "gYearMonth": _GYEARMONTH, "gMonthDay": _GMONTHDAY, "gDay": _GDAY,
              "gMonth": _GMONTH, "duration": _DURATION}
    if local in simple:
        return None if simple[local].fullmatch(lexical) else f"{lexical!r} is not a valid xsd:{local}"
    if local == "date":
        m = _DATE.fullmatch(lexical)
        return None if m and _valid_date(m) else f"{lexical!r} is not a valid xsd:date (YYYY-MM-DD)"
    if local == "dateTime":
        m = _DATETIME.fullmatch(lexical)
        ok = m and (_valid_date(m) if m.group(1) else True)
        return None if ok else f"{lexical!r} is not a valid xsd:dateTime"
    return None


# Datatype compatibility for ranges: a literal of type T fits a range R if R is T or an ancestor of T.
_XSD_PARENT = {
    "integer": "decimal", "long": "integer", "int": "long", "short": "int", "byte": "short",
    "nonNegativeInteger": "integer", "positiveInteger": "nonNegativeInteger", "unsignedLong": "nonNegativeInteger",
    "unsignedInt": "unsignedLong", "unsignedShort": "unsignedInt", "unsignedByte": "unsignedShort",
    "nonPositiveInteger": "integer", "negativeInteger": "nonPositiveInteger",
    "normalizedString": "string", "token": "normalizedString", "language": "token", "Name": "token",
    "NMTOKEN": "token", "NCName": "Name", "dateTimeStamp": "dateTime",
}


def datatype_fits(dt: str, rng: str) -> bool:
    if rng == dt or rng == _RDFS_LITERAL_IRI:
        return True
    if rng == XSD_STRING and dt == RDF_LANGSTRING:
        return True  # a language-tagged string is fine where a string is expected
    if dt.startswith(XSD) and rng.startswith(XSD):
        d, r = dt[len(XSD):], rng[len(XSD):]
        while d in _XSD_PARENT:
            d = _XSD_PARENT[d]
            if d == r:
                return True
        return False
    numeric = ("double", "float", "decimal", *_INT_RANGES)
    if rng.startswith(XSD) and rng[len(XSD):] in numeric and not dt.startswith(XSD) and dt != RDF_LANGSTRING:
        return True  # a custom unit datatype (dbt:euro) where a number is expected: DBpedia's convention
    if not rng.startswith(XSD) and rng != RDF_LANGSTRING and dt.startswith(XSD):
        # Custom datatypes (DBpedia units such as dbt:kilometre) are numbers: accept numeric XSD literals.
        return dt[len(XSD):] in numeric
    return False


# ----------------------------------------------------------------------------- registry

CHECKS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    if cls.name in CHECKS:
        raise ValueError(f"check {cls.name!r} registered twice")
    CHECKS[cls.name] = cls
    return cls


class Check:
    """A data check. ``run(ctx)`` yields violations over a :class:`TermIndex`, which holds the whole graph or one
    partition of it (the triples of the subjects that hash to it, kgllm.validate.parts): a check then judges
    a row's subject only on ``ctx.own(idx)`` and its object only on ``ctx.judged_objects(idx)`` (or the
    ``ctx.owned`` / ``ctx.judged`` masks; None for a whole graph), and a subject only where
    ``ctx.own_subject``. A check that needs every triple of a few predicates at once (a cycle) names them in
    :meth:`predicates` and runs on an index of exactly those triples."""

    name: str = ""
    severity: str = "warning"       # default; the stage config may override it per check
    description: str = ""
    judges: str = "subject"         # or "object": where a partitioned run judges a violation (see above)

    @classmethod
    def predicates(cls, opts: CheckOptions) -> set[str] | None:
        """The predicates (N-Triples IRIs) whose triples this check needs all at once; None: any partition."""
        return None

    def __init__(self, severity: str | None = None):
        self.severity = severity or type(self).severity

    def run(self, ctx: TermIndex) -> Iterator[Violation]:
        raise NotImplementedError

    def v(self, message: str, triple: int | None = None, focus: str | None = None) -> Violation:
        return Violation(self.name, self.severity, message, None if triple is None else int(triple), focus)


def severity_of(name: str, severities: dict[str, str] | None) -> str:
    """A check's severity: the config's override, else its default."""
    return (severities or {}).get(name, CHECKS[name].severity)


def run_checks(ctx: TermIndex, severities: dict[str, str] | None = None,
               only: Iterable[str] | None = None) -> dict[str, list[Violation]]:
    """Run every registered check (or ``only`` these) in name order; ``off`` disables a check."""
    ctx.finish()
    severities = severities or {}
    unknown = set(severities) - set(CHECKS)
    if unknown:
        raise ConfigError(f"unknown check(s) {', '.join(sorted(unknown))}; checks: {', '.join(sorted(CHECKS))}")
    out: dict[str, list[Violation]] = {}
    for name in sorted(only if only is not None else CHECKS):
        sev = severity_of(name, severities)
        if sev == "off":
            continue
        out[name] = list(CHECKS[name](sev).run(ctx))
    return out


# ----------------------------------------------------------------------------- the checks


@register
class LiteralLexicalForm(Check):
    name = "literal_lexical_form"
    severity = "error"
    description = ("a literal's lexical form is not valid for its XSD datatype (xsd:integer and subtypes, "
                   "decimal, double, float, boolean, date, dateTime, time, gYear, gYearMonth, gMonthDay, "
                   "gDay, gMonth, duration)")

    def run(self, ctx):
        import numpy as np

        # One test per distinct typed literal, then one vectorised lookup over all objects.
        bad = np.zeros(len(ctx.terms), dtype=bool)
        why: dict[int, str] = {}
        for i, term in enumerate(ctx.terms):
            if term[-1] == ">" and term[0] == '"' and f"^^<{XSD}" in term:
                err = lexical_error(literal_lexical(term), literal_datatype(term))
                if err:
                    bad[i] = True
                    why[i] = err
        hit = bad[ctx.O]
        if ctx.owned is not None:
            hit &= ctx.owned
        for n in np.nonzero(hit)[0].tolist():
            o = int(ctx.O[n])
            yield self.v(why[o], n, ctx.terms[o])


@register
class PropertyKind(Check):
    name = "property_kind"
    severity = "error"
    description = ("a literal as the value of an owl:ObjectProperty, or an IRI/blank node as the value of an "
                   "owl:DatatypeProperty")

    def run(self, ctx):
        for pi, idx in sorted(ctx.by_pred.items()):
            p = ctx.terms[pi]
            obj = p in ctx.ont.object_properties
            dat = p in ctx.ont.datatype_properties
            if obj == dat:  # neither, or declared both ways (an ontology bug the reasoner reports)
                continue
            idx = ctx.own(idx)
            lit = ctx.is_literal[ctx.O[idx]]
            for n in (idx[lit] if obj else idx[~lit]).tolist():
                o = ctx.terms[ctx.O[n]]
                yield self.v(f"{shorten(p)} is an object property but has the literal {o[:80]}" if obj else
                             f"{shorten(p)} is a datatype property but has the resource {o}", n)


def _class_verdicts(ctx, classes: set[str]):
    """ok[k] for every type set k (classes <= its ancestors), plus a last True entry for untyped (-1)."""
    import numpy as np

    return np.array([classes <= a for a in ctx.ancsets] + [True], dtype=bool)


@register
class Domain(Check):
    name = "domain"
    severity = "warning"
    description = ("the subject of a property with an rdfs:domain has types, none of them (or their superclasses) "
                   "the domain; untyped subjects are not judged (open world)")

    def run(self, ctx):
        for pi, idx in sorted(ctx.by_pred.items()):
            p = ctx.terms[pi]
            dom = ctx.ont.domains.get(p)
            if not dom:
                continue
            ok = _class_verdicts(ctx, dom)
            idx = ctx.own(idx)
            for n in idx[~ok[ctx.ancset_of[ctx.S[idx]]]].tolist():
                yield self.v(f"subject of {shorten(p)} is not a {'/'.join(map(shorten, sorted(dom)))}", n,
                             ctx.terms[ctx.S[n]])


@register
class Range(Check):
    name = "range"
    severity = "warning"
    judges = "object"
    description = ("the object of a property with a class range has types, none of them the range; or a literal's "
                   "datatype does not fit a datatype range (xsd:integer fits xsd:decimal; custom unit datatypes "
                   "accept numbers). Literal-vs-resource mismatches are property_kind errors")

    def run(self, ctx):
        import numpy as np

        ont = ctx.ont
        for pi, idx in sorted(ctx.by_pred.items()):
            p = ctx.terms[pi]
            rng = ont.ranges.get(p)
            if not rng or RDFS_LITERAL in rng:
                continue
            classes = {r for r in rng if not ont.is_datatype(r)}
            dtypes = {r[1:-1] for r in rng if ont.is_datatype(r)}
            idx = ctx.judged_objects(idx)
            objs = ctx.O[idx]
            lit = ctx.is_literal[objs]
            bad = np.zeros(len(idx), dtype=bool)
            if dtypes and lit.any():
                # One verdict per distinct literal object (a literal for a class range: property_kind's business).
                fits: dict[str, bool] = {}
                verdict = {}
                for o in np.unique(objs[lit]).tolist():
                    dt = literal_datatype(ctx.terms[o])
                    f = fits.get(dt)
                    if f is None:
                        f = fits[dt] = all(datatype_fits(dt, r) for r in dtypes)
                    verdict[o] = not f
                bad[lit] = [verdict[o] for o in objs[lit].tolist()]
            if classes:
                ok = _class_verdicts(ctx, classes)
                bad |= ~lit & ~ok[ctx.ancset_of[objs]]
            for n in idx[bad].tolist():
                term = ctx.terms[ctx.O[n]]
                if term[0] == '"':
                    yield self.v(f"{shorten(p)} expects {'/'.join(map(_short_iri, sorted(dtypes)))}, "
                                 f"got {_short_iri(literal_datatype(term))}", n)
                else:
                    yield self.v(f"object of {shorten(p)} is not a {'/'.join(map(shorten, sorted(classes)))}", n,
                                 term)


@register
class DisjointClasses(Check):
    name = "disjoint_classes"
    severity = "error"
    description = ("an entity is an instance of two disjoint classes (owl:disjointWith, owl:AllDisjointClasses, "
                   "through the class hierarchy); its rdf:type triples that lead to either class are quarantined")

    def run(self, ctx):
        disjoint = ctx.ont.disjoint
        if not disjoint:
            return
        sup = ctx.ont.superclasses
        pairs_of = [sorted({tuple(sorted((a, b))) for a in anc for b in disjoint.get(a, ()) if b in anc})
                    for anc in ctx.ancsets]
        import numpy as np

        has_pairs = np.array([bool(p) for p in pairs_of] + [False], dtype=bool)
        for s in np.nonzero(has_pairs[ctx.ancset_of] & ctx.own_subject)[0].tolist():
            pairs = pairs_of[ctx.ancset_of[s]]
            involved = {c for pair in pairs for c in pair}
            what = ", ".join(f"{shorten(a)} and {shorten(b)}" for a, b in pairs)
            for n in ctx.type_triples_of(s):
                cls = ctx.terms[ctx.O[n]]
                if sup.get(cls, frozenset((cls,))) & involved:
                    yield self.v(f"{ctx.terms[s]} is in disjoint classes {what}", n, ctx.terms[s])


@register
class FunctionalProperty(Check):
    name = "functional_property"
    severity = "warning"
    description = ("a subject has more than one distinct value for an owl:FunctionalProperty; which value is "
                   "right cannot be decided from the data, so all are reported and none quarantined by default")

    def run(self, ctx):
        import numpy as np

        for p in sorted(ctx.ont.functional):
            idx = ctx.own(ctx.pred_triples(p))
            if len(idx) < 2:
                continue
            pairs = np.unique(np.stack([ctx.S[idx], ctx.O[idx]], axis=1), axis=0)
            subj, counts = np.unique(pairs[:, 0], return_counts=True)
            multi = subj[counts > 1]
            if not len(multi):
                continue
            sel = idx[np.isin(ctx.S[idx], multi)]
            per_subject = defaultdict(int)
            for n in sel.tolist():
                per_subject[int(ctx.S[n])] += 1
            for n in sel.tolist():
                s = int(ctx.S[n])
                yield self.v(f"{shorten(p)} is functional but {ctx.terms[s]} has {per_subject[s]} values", n,
                             ctx.terms[s])


@register
class HierarchyCycle(Check):
    name = "hierarchy_cycle"
    severity = "error"
    description = ("a cycle in a relation that must be acyclic (rdfs:subClassOf; wn:hypernym with "
                   "wn:instance_hypernym; their inverses): every edge inside a cycle is quarantined")

    @classmethod
    def predicates(cls, opts):
        return {iri(p) for group in opts.acyclic for p in group}

    def run(self, ctx):
        import networkx as nx  # ~0.1 s to import, and `kgllm --help` imports this module (the stage registry)
        import numpy as np

        for group in ctx.opts.acyclic:
            idx = np.concatenate([ctx.pred_triples(iri(p)) for p in group])
            if not len(idx):
                continue
            # Prune (vectorised) edges that cannot be on a cycle: from a node nothing points to, or to a node
            # that points nowhere. A DAG prunes to nothing in (depth) rounds; networkx sees only what is left.
            a, b = ctx.S[idx], ctx.O[idx]
            keep = np.ones(len(idx), dtype=bool)
            while True:
                indeg = np.bincount(b[keep], minlength=len(ctx.terms))
                outdeg = np.bincount(a[keep], minlength=len(ctx.terms))
                new = keep & (indeg[a] > 0) & (outdeg[b] > 0)
                if (new == keep).all():
                    break
                keep = new
            rest = idx[keep]
            if not len(rest):
                continue
            edges = [(int(ctx.S[n]), int(ctx.O[n]), n) for n in sorted(rest.tolist())]
            g = nx.DiGraph()
            g.add_edges_from((x, y) for x, y, _ in edges)
            comp_of = {}
            for k, comp in enumerate(nx.strongly_connected_components(g)):
                if len(comp) > 1:
                    for v in comp:
                        comp_of[v] = k
            names = "/".join(shorten(iri(p)) for p in group)
            for x, y, n in edges:
                subj = ctx.terms[ctx.S[n]]
                if x == y:
                    yield self.v(f"{names} self-loop on {subj}", n, subj)
                elif x in comp_of and comp_of.get(y) == comp_of[x]:
                    yield self.v(f"{names} cycle through {subj}", n, subj)


@register
class DanglingReference(Check):
    name = "dangling_reference"
    severity = "warning"
    judges = "object"
    description = ("an IRI or blank node object that is never a subject in the graph nor described in the "
                   "ontologies (links to external pages, images and rdf:type objects are exempt)")

    def run(self, ctx):
        import numpy as np

        described = ctx.term_mask(ctx.ont.described)
        dangling = ~ctx.is_literal & ~ctx.is_subject & ~described   # per term
        ignore = ctx.term_mask(iri(p) for p in ctx.opts.dangling_ignore_predicates)
        bad = dangling[ctx.O] & ~ignore[ctx.P]
        if ctx.judged is not None:
            bad &= ctx.judged
        for n in np.nonzero(bad)[0].tolist():
            o = ctx.terms[ctx.O[n]]
            yield self.v(f"{o} is referenced but never described", n, o)


@register
class MissingLabel(Check):
    name = "missing_label"
    severity = "warning"
    description = "an IRI subject without any label (rdfs:label, skos:prefLabel, foaf:name, ontolex:writtenRep)"

    def run(self, ctx):
        import numpy as np

        labelled = np.zeros(len(ctx.terms), dtype=bool)
        for p in ctx.opts.label_predicates:
            labelled[ctx.S[ctx.pred_triples(iri(p))]] = True
        exempt_class = ctx.term_mask(iri(t) for t in ctx.opts.label_exempt_types)
        tidx = ctx.pred_triples(RDF_TYPE)
        labelled[ctx.S[tidx][exempt_class[ctx.O[tidx]]]] = True  # exempt entities count as labelled
        for s in np.nonzero(ctx.own_subject & ~labelled)[0].tolist():
            term = ctx.terms[s]
            if term[0] == "<":
                yield self.v(f"{term} has no label", None, term)


@register
class UndeclaredTerm(Check):
    name = "undeclared_term"
    severity = "warning"
    description = ("a property or class in a namespace the ontologies own (e.g. dbo:, wn:) that they do not "
                   "declare: a typo or a term renamed since the data was made; one entry per term with its count")

    def run(self, ctx):
        yield from self.from_tallies(ctx.ont, *tallies(ctx))

    def from_tallies(self, ont, predicates: dict[str, int], classes: dict[str, int]) -> Iterator[Violation]:
        """The violations from the triple count per predicate and the instance count per class (of the whole
        graph: partitions' :func:`tallies` add up)."""
        namespaces = tuple("<" + ns for ns in ont.namespaces)
        if not namespaces:
            return
        declared_props = ont.properties | set(ont.domains) | set(ont.ranges)
        declared_classes = ont.classes | set(ont.superclasses)
        for p, n in sorted(predicates.items()):
            if p.startswith(namespaces) and p not in declared_props:
                yield self.v(f"property {shorten(p)} is not declared in the ontologies ({n} triples)", None, p)
        for term, k in sorted(classes.items()):
            if term.startswith(namespaces) and term not in declared_classes and term not in ont.described:
                yield self.v(f"class {shorten(term)} is not declared in the ontologies ({k} instances)", None, term)


def tallies(ctx: TermIndex) -> tuple[dict[str, int], dict[str, int]]:
    """Triples per predicate and rdf:type triples per class, over the rows whose subject ``ctx`` judges."""
    import numpy as np

    ctx.finish()
    preds = {ctx.terms[pi]: len(ctx.own(idx)) for pi, idx in ctx.by_pred.items()}
    classes, counts = np.unique(ctx.O[ctx.own(ctx.pred_triples(RDF_TYPE))], return_counts=True)
    return ({p: n for p, n in preds.items() if n},
            {ctx.terms[c]: k for c, k in zip(classes.tolist(), counts.tolist(), strict=True)})


def _short_iri(value: str) -> str:
    return shorten(iri(value))
