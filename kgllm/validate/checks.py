"""Scalable data checks: one streaming pass builds an integer index, then each registered check runs on it.

Takes: triples (N-Triples term strings, e.g. from :func:`kgllm.rdf.iter_graph`) and an
:class:`~kgllm.validate.ontology.Ontology`.
Makes: :class:`Violation` records. A check with severity ``error`` quarantines the triples it names; a
``warning`` is only reported. No DL reasoner is involved: the class hierarchy is a precomputed closure,
so each check is a dictionary lookup per triple (or per distinct term, or per distinct type set).

Memory: every distinct term is stored once (str -> int) and triples as three int arrays, i.e. a few
hundred bytes per distinct term plus 12 bytes per triple: tens of millions of triples fit in memory.

Adding a check: subclass :class:`Check`, set ``name``, ``severity``, ``description``, implement
``run(ctx)`` yielding violations, and decorate it with :func:`register`.
"""

from __future__ import annotations

import calendar
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..log import progress
from ..rdf import DBO, FOAF, ONTOLEX, OWL, PROV, RDF, RDFS, SKOS, WN, XSD, Triple
from .ontology import RDFS_LITERAL, Ontology

SEVERITIES = ("error", "warning", "off")
RDF_TYPE = f"<{RDF}type>"
LANG_STRING = f"{RDF}langString"
XSD_STRING = f"{XSD}string"


@dataclass(frozen=True)
class Violation:
    check: str
    severity: str
    message: str
    triple: int | None = None     # index into the GraphIndex arrays, when one triple is at fault
    focus: str | None = None      # the entity or term at fault (N-Triples form)


@dataclass
class CheckOptions:
    """Options of the data checks (a sub-config of the validate stage)."""

    # rdfs:subClassOf, hypernymy: a cycle there is an error. Each group is checked as one graph.
    acyclic: list[list[str]] = field(default_factory=lambda: [
        [f"{RDFS}subClassOf"], [f"{WN}hypernym", f"{WN}instance_hypernym"], [f"{WN}hyponym", f"{WN}instance_hyponym"]])
    label_predicates: list[str] = field(default_factory=lambda: [
        f"{RDFS}label", f"{SKOS}prefLabel", f"{FOAF}name", f"{ONTOLEX}writtenRep"])
    # Entities of these types need no label of their own (a sense is named by its entry).
    label_exempt_types: list[str] = field(default_factory=lambda: [f"{ONTOLEX}LexicalSense", f"{ONTOLEX}Form"])
    # Links to things outside the graph by design: not "dangling".
    dangling_ignore_predicates: list[str] = field(default_factory=lambda: [
        f"{RDF}type", f"{OWL}sameAs", f"{RDFS}seeAlso", f"{FOAF}isPrimaryTopicOf", f"{FOAF}primaryTopic",
        f"{FOAF}homepage", f"{FOAF}depiction", f"{DBO}thumbnail", f"{DBO}wikiPageExternalLink",
        f"{PROV}wasDerivedFrom", f"{ONTOLEX}canonicalForm"])


# ----------------------------------------------------------------------------- the index


class GraphIndex:
    """Distinct terms as ints, triples as int arrays, and what the checks look up (types, subjects, labels)."""

    def __init__(self, ontology: Ontology, options: CheckOptions | None = None):
        self.ont = ontology
        self.opts = options or CheckOptions()
        self.terms: list[str] = []
        self.ids: dict[str, int] = {}
        self.S = array("i")
        self.P = array("i")
        self.O = array("i")
        self.types: dict[int, list[int]] = defaultdict(list)        # subject -> asserted classes
        self.type_triples: dict[int, list[int]] = defaultdict(list)  # subject -> its rdf:type triple indices
        self.by_pred: dict[int, array] = {}
        self.rdf_type = self.intern(RDF_TYPE)
        self._ancestors_cache: dict[tuple, frozenset[int]] = {}
        self._closure_by_subject: dict[int, frozenset[int]] | None = None

    def intern(self, term: str) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return i

    def add_all(self, triples: Iterable[Triple], total: int | None = None) -> None:
        ids, terms = self.ids, self.terms
        S, P, O = self.S, self.P, self.O  # noqa: E741
        by_pred: dict[int, array] = {}
        rdf_type = self.rdf_type
        types, type_triples = self.types, self.type_triples
        n = len(S)
        # The hot loop: inlined interning (a method call per term would double the cost).
        for s, p, o in progress(triples, desc="index", total=total, unit="triple"):
            si = ids.get(s)
            if si is None:
                si = ids[s] = len(terms)
                terms.append(s)
            pi = ids.get(p)
            if pi is None:
                pi = ids[p] = len(terms)
                terms.append(p)
            oi = ids.get(o)
            if oi is None:
                oi = ids[o] = len(terms)
                terms.append(o)
            S.append(si)
            P.append(pi)
            O.append(oi)
            bp = by_pred.get(pi)
            if bp is None:
                bp = by_pred[pi] = array("i")
            bp.append(n)
            if pi == rdf_type:
                types[si].append(oi)
                type_triples[si].append(n)
            n += 1
        for k, v in by_pred.items():
            if k in self.by_pred:
                self.by_pred[k].extend(v)
            else:
                self.by_pred[k] = v

    def __len__(self) -> int:
        return len(self.S)

    def triple(self, i: int) -> Triple:
        t = self.terms
        return t[self.S[i]], t[self.P[i]], t[self.O[i]]

    def pred_triples(self, predicate: str) -> array:
        pi = self.ids.get(predicate)
        return self.by_pred.get(pi, array("i")) if pi is not None else array("i")

    def subjects(self) -> set[int]:
        return set(self.S)

    def ancestors_of(self, subject: int) -> frozenset[str] | None:
        """All classes of an entity (asserted types and their superclasses), None if it has no type."""
        ts = self.types.get(subject)
        if not ts:
            return None
        key = tuple(sorted(set(ts)))
        got = self._ancestors_cache.get(key)
        if got is None:
            sup = self.ont.superclasses
            out = set()
            for t in key:
                term = self.terms[t]
                out |= sup.get(term, {term})
            got = self._ancestors_cache[key] = frozenset(out)
        return got


def is_literal(term: str) -> bool:
    return term[0] == '"'


def literal_datatype(term: str) -> str:
    """Datatype IRI (without brackets) of an N-Triples literal; rdf:langString / xsd:string when implicit."""
    if term[-1] == ">":
        return term[term.rindex("^^<") + 3:-1]
    if term[-1] == '"':
        return XSD_STRING
    return LANG_STRING


def literal_lexical(term: str) -> str:
    return term[1:term.rindex('"')]


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
    if rng == dt or rng == f"{RDFS}Literal":
        return True
    if rng == XSD_STRING and dt == LANG_STRING:
        return True  # a language-tagged string is fine where a string is expected
    if dt.startswith(XSD) and rng.startswith(XSD):
        d, r = dt[len(XSD):], rng[len(XSD):]
        while d in _XSD_PARENT:
            d = _XSD_PARENT[d]
            if d == r:
                return True
        return False
    numeric = ("double", "float", "decimal", *_INT_RANGES)
    if rng.startswith(XSD) and rng[len(XSD):] in numeric and not dt.startswith(XSD) and dt != LANG_STRING:
        return True  # a custom unit datatype (dbt:euro) where a number is expected: DBpedia's convention
    if not rng.startswith(XSD) and rng != LANG_STRING and dt.startswith(XSD):
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
    name: str = ""
    severity: str = "warning"       # default; the stage config may override it per check
    description: str = ""

    def __init__(self, severity: str | None = None):
        self.severity = severity or type(self).severity

    def run(self, ctx: GraphIndex) -> Iterator[Violation]:
        raise NotImplementedError

    def v(self, message: str, triple: int | None = None, focus: str | None = None) -> Violation:
        return Violation(self.name, self.severity, message, triple, focus)


def run_checks(ctx: GraphIndex, severities: dict[str, str] | None = None,
               only: Iterable[str] | None = None) -> dict[str, list[Violation]]:
    """Run every registered check (or ``only`` these) in name order; ``off`` disables a check."""
    severities = severities or {}
    unknown = set(severities) - set(CHECKS)
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"unknown check(s) {', '.join(sorted(unknown))}; checks: {', '.join(sorted(CHECKS))}")
    out: dict[str, list[Violation]] = {}
    for name in sorted(only if only is not None else CHECKS):
        sev = severities.get(name, CHECKS[name].severity)
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
        # One test per distinct literal term, then one set lookup per triple.
        bad: dict[int, str] = {}
        for i, term in enumerate(ctx.terms):
            if term[0] == '"' and term[-1] == ">":
                why = lexical_error(literal_lexical(term), literal_datatype(term))
                if why:
                    bad[i] = why
        if not bad:
            return
        for n, o in enumerate(ctx.O):
            if o in bad:
                yield self.v(bad[o], n, ctx.terms[o])


@register
class PropertyKind(Check):
    name = "property_kind"
    severity = "error"
    description = "a literal as the value of an owl:ObjectProperty, or an IRI/blank node as the value of an owl:DatatypeProperty"

    def run(self, ctx):
        for pi, idx in sorted(ctx.by_pred.items()):
            p = ctx.terms[pi]
            obj = p in ctx.ont.object_properties
            dat = p in ctx.ont.datatype_properties
            if not (obj or dat) or (obj and dat):
                continue
            terms, objs = ctx.terms, ctx.O
            for n in idx:
                lit = terms[objs[n]][0] == '"'
                if obj and lit:
                    yield self.v(f"{_short(p)} is an object property but has the literal {terms[objs[n]][:80]}", n)
                elif dat and not lit:
                    yield self.v(f"{_short(p)} is a datatype property but has the resource {terms[objs[n]]}", n)


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
            cache: dict[frozenset, bool] = {}
            for n in idx:
                anc = ctx.ancestors_of(ctx.S[n])
                if anc is None:
                    continue
                ok = cache.get(anc)
                if ok is None:
                    ok = cache[anc] = dom <= anc
                if not ok:
                    yield self.v(f"subject of {_short(p)} is not a {'/'.join(map(_short, sorted(dom)))}", n,
                                 ctx.terms[ctx.S[n]])


@register
class Range(Check):
    name = "range"
    severity = "warning"
    description = ("the object of a property with a class range has types, none of them the range; or a literal's "
                   "datatype does not fit a datatype range (xsd:integer fits xsd:decimal; custom unit datatypes "
                   "accept numbers). Literal-vs-resource mismatches are property_kind errors")

    def run(self, ctx):
        ont = ctx.ont
        for pi, idx in sorted(ctx.by_pred.items()):
            p = ctx.terms[pi]
            rng = ont.ranges.get(p)
            if not rng or RDFS_LITERAL in rng:
                continue
            classes = {r for r in rng if not ont.is_datatype(r)}
            dtypes = {r[1:-1] for r in rng if ont.is_datatype(r)}
            cache: dict = {}
            for n in idx:
                o = ctx.O[n]
                term = ctx.terms[o]
                if term[0] == '"':
                    if not dtypes:
                        continue  # literal for a class range: property_kind's business when declared
                    dt = literal_datatype(term)
                    ok = cache.get(dt)
                    if ok is None:
                        ok = cache[dt] = all(datatype_fits(dt, r) for r in dtypes)
                    if not ok:
                        yield self.v(f"{_short(p)} expects {'/'.join(map(_short_iri, sorted(dtypes)))}, "
                                     f"got {_short_iri(dt)}", n)
                elif classes:
                    anc = ctx.ancestors_of(o)
                    if anc is None:
                        continue
                    ok = cache.get(anc)
                    if ok is None:
                        ok = cache[anc] = classes <= anc
                    if not ok:
                        yield self.v(f"object of {_short(p)} is not a {'/'.join(map(_short, sorted(classes)))}",
                                     n, term)


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
        cache: dict[frozenset, list[tuple[str, str]]] = {}
        for s in sorted(ctx.types):
            anc = ctx.ancestors_of(s)
            pairs = cache.get(anc)
            if pairs is None:
                pairs = cache[anc] = sorted({tuple(sorted((a, b))) for a in anc for b in disjoint.get(a, ())
                                             if b in anc})
            if not pairs:
                continue
            involved = {c for pair in pairs for c in pair}
            what = ", ".join(f"{_short(a)} and {_short(b)}" for a, b in pairs)
            for n in ctx.type_triples[s]:
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
        for p in sorted(ctx.ont.functional):
            idx = ctx.pred_triples(p)
            by_subject: dict[int, list[int]] = defaultdict(list)
            for n in idx:
                by_subject[ctx.S[n]].append(n)
            for s, ns in sorted(by_subject.items()):
                if len({ctx.O[n] for n in ns}) > 1:
                    for n in ns:
                        yield self.v(f"{_short(p)} is functional but {ctx.terms[s]} has {len(ns)} values", n,
                                     ctx.terms[s])


def strongly_connected(adj: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm, iterative (hierarchies are deep: no recursion limit)."""
    index = [-1] * len(adj)
    low = [0] * len(adj)
    on_stack = [False] * len(adj)
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in range(len(adj)):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            recurse = False
            while i < len(adj[v]):
                w = adj[v][i]
                i += 1
                if index[w] == -1:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if on_stack[w]:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
    return comps


@register
class HierarchyCycle(Check):
    name = "hierarchy_cycle"
    severity = "error"
    description = ("a cycle in a relation that must be acyclic (rdfs:subClassOf; wn:hypernym with "
                   "wn:instance_hypernym; their inverses): every edge inside a cycle is quarantined")

    def run(self, ctx):
        for group in ctx.opts.acyclic:
            idx = [n for p in group for n in ctx.pred_triples(f"<{p}>")]
            if not idx:
                continue
            nodes: dict[int, int] = {}
            edges = []
            for n in idx:
                a = nodes.setdefault(ctx.S[n], len(nodes))
                b = nodes.setdefault(ctx.O[n], len(nodes))
                edges.append((a, b, n))
            adj: list[list[int]] = [[] for _ in nodes]
            for a, b, _ in edges:
                adj[a].append(b)
            comp_of = {}
            for k, comp in enumerate(strongly_connected(adj)):
                if len(comp) > 1:
                    for v in comp:
                        comp_of[v] = k
            names = "/".join(_short(f"<{p}>") for p in group)
            for a, b, n in sorted(edges, key=lambda e: e[2]):
                if a == b:
                    yield self.v(f"{names} self-loop on {ctx.terms[ctx.S[n]]}", n, ctx.terms[ctx.S[n]])
                elif a in comp_of and comp_of.get(b) == comp_of[a]:
                    yield self.v(f"{names} cycle through {ctx.terms[ctx.S[n]]}", n, ctx.terms[ctx.S[n]])


@register
class DanglingReference(Check):
    name = "dangling_reference"
    severity = "warning"
    description = ("an IRI or blank node object that is never a subject in the graph nor described in the "
                   "ontologies (links to external pages, images and rdf:type objects are exempt)")

    def run(self, ctx):
        subjects = ctx.subjects()
        ignore = {ctx.ids[f"<{p}>"] for p in ctx.opts.dangling_ignore_predicates if f"<{p}>" in ctx.ids}
        described = ctx.ont.described
        terms = ctx.terms
        verdict: dict[int, bool] = {}
        for pi, idx in sorted(ctx.by_pred.items()):
            if pi in ignore:
                continue
            for n in idx:
                o = ctx.O[n]
                bad = verdict.get(o)
                if bad is None:
                    bad = verdict[o] = terms[o][0] != '"' and o not in subjects and terms[o] not in described
                if bad:
                    yield self.v(f"{terms[o]} is referenced but never described", n, terms[o])


@register
class MissingLabel(Check):
    name = "missing_label"
    severity = "warning"
    description = "an IRI subject without any label (rdfs:label, skos:prefLabel, foaf:name, ontolex:writtenRep)"

    def run(self, ctx):
        labelled = set()
        for p in ctx.opts.label_predicates:
            labelled.update(ctx.S[n] for n in ctx.pred_triples(f"<{p}>"))
        exempt = {f"<{t}>" for t in ctx.opts.label_exempt_types}
        for s in sorted(ctx.subjects() - labelled):
            term = ctx.terms[s]
            if term[0] != "<":
                continue
            if exempt and any(ctx.terms[t] in exempt for t in ctx.types.get(s, ())):
                continue
            yield self.v(f"{term} has no label", None, term)


@register
class UndeclaredTerm(Check):
    name = "undeclared_term"
    severity = "warning"
    description = ("a property or class in a namespace the ontologies own (e.g. dbo:, wn:) that they do not "
                   "declare: a typo or a term renamed since the data was made; one entry per term with its count")

    def run(self, ctx):
        namespaces = tuple("<" + ns for ns in ctx.ont.namespaces)
        if not namespaces:
            return
        declared_props = ctx.ont.properties | set(ctx.ont.domains) | set(ctx.ont.ranges)
        declared_classes = ctx.ont.classes | set(ctx.ont.superclasses)
        for pi, idx in sorted(ctx.by_pred.items(), key=lambda kv: ctx.terms[kv[0]]):
            p = ctx.terms[pi]
            if p.startswith(namespaces) and p not in declared_props:
                yield self.v(f"property {_short(p)} is not declared in the ontologies ({len(idx)} triples)", None, p)
        counts: dict[int, int] = defaultdict(int)
        for n in ctx.pred_triples(RDF_TYPE):
            counts[ctx.O[n]] += 1
        for c, k in sorted(counts.items(), key=lambda kv: ctx.terms[kv[0]]):
            term = ctx.terms[c]
            if term.startswith(namespaces) and term not in declared_classes and term not in ctx.ont.described:
                yield self.v(f"class {_short(term)} is not declared in the ontologies ({k} instances)", None, term)


def _short(term: str) -> str:
    from ..rdf import shorten

    return shorten(term)


def _short_iri(value: str) -> str:
    return _short(f"<{value}>")
