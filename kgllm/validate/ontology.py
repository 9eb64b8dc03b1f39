"""Ontology files: parse them (any RDF syntax, xz/gzip), index their TBox, convert them for owlready2.

Takes: ontology files (``.owl``/``.rdf``/``.xml`` RDF/XML, ``.ttl`` Turtle, ``.nt`` N-Triples, or any other
syntax :func:`kgllm.rdf.detect_format` knows, each optionally ``.xz``, ``.gz`` or ``.bz2``).
Makes: an :class:`Ontology` with the triples as N-Triples term strings and the indexed TBox the data
checks need (class hierarchy closure, domains, ranges, property kinds, functional properties,
disjointness, subclass cycles: networkx over the hierarchies), and an N-Triples file for owlready2
(which reads only RDF/XML and N-Triples).

``owl:imports`` are never fetched (everything runs offline): an import of an ontology that is not one
of the given files is listed in ``unresolved_imports`` and reported; the reasoner runs without it.
"""

from __future__ import annotations

import lzma
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..rdf import (
    CLASS_TYPES,
    OWL,
    PROPERTY_TYPES,
    RDF,
    RDF_LANGSTRING,
    RDF_TYPE,
    RDFS,
    RDFS_DOMAIN,
    RDFS_RANGE,
    RDFS_SUBCLASSOF,
    RDFS_SUBPROPERTYOF,
    XSD,
    Triple,
    detect_format,
    iri,
    open_rdf,
    oxigraph_format,
)

_EQCLASS = iri(OWL + "equivalentClass")
_DISJOINT = iri(OWL + "disjointWith")
_IMPORTS = iri(OWL + "imports")
_MEMBERS = iri(OWL + "members")
_ONTOLOGY = iri(OWL + "Ontology")
_ALL_DISJOINT = iri(OWL + "AllDisjointClasses")
_FIRST, _REST, _NIL = iri(RDF + "first"), iri(RDF + "rest"), iri(RDF + "nil")

OBJECT_PROPERTY = iri(OWL + "ObjectProperty")
DATATYPE_PROPERTY = iri(OWL + "DatatypeProperty")
FUNCTIONAL = iri(OWL + "FunctionalProperty")
DATATYPE = iri(RDFS + "Datatype")
RDFS_LITERAL = iri(RDFS + "Literal")
_LANGSTRING = iri(RDF_LANGSTRING)
_XSD_PREFIX = "<" + XSD
# Terms every ontology may use without declaring them.
_BUILTIN_NS = (RDF, RDFS, OWL, XSD)


def rdf_format(path: Path, what: str = "ontology file") -> tuple[str, str | None]:
    """``(format, compression)`` of an RDF file by :func:`kgllm.rdf.detect_format` (``dbo.owl.xz`` ->
    ``("rdfxml", ".xz")``); an unknown extension is an :class:`InputError` naming the file as ``what``."""
    try:
        return detect_format(path, what=what)
    except InputError:
        raise InputError(f"{path}: unknown RDF syntax; name {what}s .owl/.rdf (RDF/XML), .ttl (Turtle) "
                         f"or .nt (N-Triples), optionally with .xz or .gz") from None


def oxigraph_name(fmt: str) -> str:
    """pyoxigraph's constant name of a format (``rdfxml`` -> ``RDF_XML``), as reports have always shown it."""
    import pyoxigraph

    rf = oxigraph_format(fmt)
    return next(n for n in dir(pyoxigraph.RdfFormat) if n.isupper() and getattr(pyoxigraph.RdfFormat, n) == rf)


def check_rdf_file(path: str | Path, what: str = "ontology file") -> Path:
    """``path`` as a Path if it is an existing file with a known RDF syntax, else :class:`InputError`
    naming it as ``what`` (``ontology file``, ``shapes file``): a check before any work."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} does not exist")
    if not path.is_file():
        raise InputError(f"{path}: {what} is not a file (a directory?); give the RDF file itself")
    rdf_format(path, what)
    return path


def parse_rdf_file(path: str | Path, what: str = "ontology file") -> list[Triple]:
    """All triples of an RDF file as N-Triples term strings; a syntax error names the file and position."""
    import pyoxigraph

    path = check_rdf_file(path, what)
    fmt, comp = rdf_format(path, what)
    try:
        with open_rdf(path, comp) as fh:
            return [(str(q.subject), str(q.predicate), str(q.object))
                    for q in pyoxigraph.parse(fh, format=oxigraph_format(fmt), base_iri=path.resolve().as_uri())]
    except SyntaxError as e:
        raise InputError(f"{path}: not valid {oxigraph_name(fmt).replace('_', '/')}: {e}; fix the file or give "
                         f"it the right extension") from e
    except (lzma.LZMAError, OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read ({comp[1:] if comp else 'plain'} file): {e}") from e


@dataclass
class Ontology:
    """The union of one or more ontology files, indexed for the data checks (all terms in N-Triples form)."""

    files: list[dict] = field(default_factory=list)          # {path, format, triples, ontology_iris, imports}
    triples: list[Triple] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    object_properties: set[str] = field(default_factory=set)
    datatype_properties: set[str] = field(default_factory=set)
    functional: set[str] = field(default_factory=set)
    datatypes: set[str] = field(default_factory=set)
    described: set[str] = field(default_factory=set)          # every subject in the ontology files
    superclasses: dict[str, frozenset[str]] = field(default_factory=dict)   # class -> itself + all ancestors
    domains: dict[str, set[str]] = field(default_factory=dict)              # incl. inherited from superproperties
    ranges: dict[str, set[str]] = field(default_factory=dict)
    disjoint: dict[str, set[str]] = field(default_factory=dict)             # class -> classes disjoint with it
    ontology_iris: list[str] = field(default_factory=list)
    unresolved_imports: list[dict] = field(default_factory=list)            # {file, import}
    subclass_cycles: list[list[str]] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        """Namespaces the ontologies own (their ontology IRI + ``#`` or ``/``): terms used there must be declared."""
        declared = self.classes | self.properties
        out = set()
        for o in self.ontology_iris:
            v = o[1:-1]
            for ns in (v, v + "#", v + "/"):
                if ns[-1] in "#/" and any(t.startswith("<" + ns) for t in declared):
                    out.add(ns)
        return sorted(out)

    def is_builtin(self, term: str) -> bool:
        return any(term.startswith("<" + ns) for ns in _BUILTIN_NS)

    def is_datatype(self, term: str) -> bool:
        return term in self.datatypes or term.startswith(_XSD_PREFIX) or term in (RDFS_LITERAL, _LANGSTRING)


def load_ontologies(paths: Iterable[str | Path]) -> Ontology:
    ont = Ontology()
    for p in paths:
        p = Path(p)
        triples = parse_rdf_file(p)
        iris = sorted({s for s, pr, o in triples if pr == RDF_TYPE and o == _ONTOLOGY})
        imports = sorted({o for s, pr, o in triples if pr == _IMPORTS})
        ont.files.append({"path": str(p), "format": oxigraph_name(rdf_format(p)[0]), "triples": len(triples),
                          "ontology_iris": [i[1:-1] for i in iris], "imports": [i[1:-1] for i in imports]})
        ont.ontology_iris.extend(iris)
        ont.triples.extend(triples)
    given = set(ont.ontology_iris)
    for f in ont.files:
        for imp in f["imports"]:
            if iri(imp) not in given:
                ont.unresolved_imports.append({"file": f["path"], "import": imp})
    _index(ont)
    return ont


def _index(ont: Ontology) -> None:
    sup: dict[str, set[str]] = defaultdict(set)
    subprop: dict[str, set[str]] = defaultdict(set)
    domains: dict[str, set[str]] = defaultdict(set)
    ranges: dict[str, set[str]] = defaultdict(set)
    lists: dict[str, tuple[str, str]] = {}
    all_disjoint: list[str] = []
    eqclass: list[tuple[str, str]] = []
    for s, p, o in ont.triples:
        ont.described.add(s)
        if p == RDF_TYPE:
            if o in CLASS_TYPES:
                ont.classes.add(s)
            elif o in PROPERTY_TYPES:
                ont.properties.add(s)
                if o == OBJECT_PROPERTY:
                    ont.object_properties.add(s)
                elif o == DATATYPE_PROPERTY:
                    ont.datatype_properties.add(s)
                elif o == FUNCTIONAL:
                    ont.functional.add(s)
            elif o == DATATYPE:
                ont.datatypes.add(s)
            elif o == _ALL_DISJOINT:
                all_disjoint.append(s)
        elif p == RDFS_SUBCLASSOF and o.startswith("<"):
            sup[s].add(o)
        elif p == _EQCLASS and o.startswith("<") and s.startswith("<"):
            eqclass.append((s, o))
        elif p == RDFS_SUBPROPERTYOF and o.startswith("<"):
            # Only rdfs:subPropertyOf passes domains/ranges down: DBpedia's owl:equivalentProperty links to
            # external vocabularies would chain unrelated properties together (hubAirport -> Stream).
            subprop[s].add(o)
        elif p == RDFS_DOMAIN and o.startswith("<"):
            domains[s].add(o)
        elif p == RDFS_RANGE and o.startswith("<"):
            ranges[s].add(o)
        elif p == _DISJOINT and o.startswith("<") and s.startswith("<"):
            ont.disjoint.setdefault(s, set()).add(o)
            ont.disjoint.setdefault(o, set()).add(s)
        elif p in (_FIRST, _REST):
            first, rest = lists.get(s, (None, None))
            lists[s] = (o, rest) if p == _FIRST else (first, o)
        elif p == _MEMBERS:
            lists.setdefault(f"members:{s}", (o, None))
    # owl:equivalentClass: both ways between declared classes; to an external class (schema.org, Wikidata)
    # one way only, so that two classes mapped to the same external class do not merge.
    for a, b in eqclass:
        if a in ont.classes:
            sup[a].add(b)
        if b in ont.classes:
            sup[b].add(a)
    # owl:AllDisjointClasses: pairwise disjointness of the named members of its rdf:List.
    for node in all_disjoint:
        head = lists.get(f"members:{node}", (None, None))[0]
        members = _rdf_list(lists, head)
        named = [m for m in members if m.startswith("<")]
        for a in named:
            for b in named:
                if a != b:
                    ont.disjoint.setdefault(a, set()).add(b)
    ont.superclasses = {c: frozenset(a) for c, a in _closure(sup, ont.classes).items()}
    # A property inherits the domains and ranges of its superproperties (rdfs7 + rdfs2/3).
    props = set(domains) | set(ranges) | ont.properties
    for prop, ancestors in _closure(subprop, props).items():
        d = set().union(*(domains.get(a, ()) for a in ancestors))
        r = set().union(*(ranges.get(a, ()) for a in ancestors))
        if d:
            ont.domains[prop] = d
        if r:
            ont.ranges[prop] = r
    ont.subclass_cycles = find_cycles({c: sorted(v) for c, v in sup.items()},
                                      exclude_pairs=_equivalences(ont.triples))


def _rdf_list(lists: dict, head: str | None) -> list[str]:
    out, seen = [], set()
    while head and head != _NIL and head not in seen:
        seen.add(head)
        first, rest = lists.get(head, (None, None))
        if first is not None:
            out.append(first)
        head = rest
    return out


def _equivalences(triples: list[Triple]) -> set[tuple[str, str]]:
    eq = set()
    for s, p, o in triples:
        if p == _EQCLASS:
            eq.add((s, o))
            eq.add((o, s))
    return eq


def _closure(parents: dict[str, set[str]], nodes: Iterable[str]) -> dict[str, set[str]]:
    """Reflexive-transitive closure of ``parents`` for every node (cycle-safe): the node and everything
    reachable from it in the hierarchy."""
    import networkx as nx  # ~0.1 s to import, and `kgllm --help` imports this module (the stage registry)

    g = nx.DiGraph()
    g.add_edges_from((a, b) for a, bs in parents.items() for b in bs)
    return {n: (nx.descendants(g, n) | {n}) if n in g else {n} for n in set(nodes) | set(parents)}


def find_cycles(edges: dict[str, list[str]], exclude_pairs: set[tuple[str, str]] = frozenset()) -> list[list[str]]:
    """Strongly connected components with more than one node (or a self-loop), each sorted; sorted list.

    ``exclude_pairs`` are edges to ignore (e.g. owl:equivalentClass, which is a 2-cycle by design).
    """
    import networkx as nx  # see _closure

    g = nx.DiGraph()
    g.add_nodes_from(edges)
    g.add_edges_from((a, b) for a, bs in edges.items() for b in bs if (a, b) not in exclude_pairs)
    return sorted(sorted(c) for c in nx.strongly_connected_components(g)
                  if len(c) > 1 or g.has_edge(next(iter(c)), next(iter(c))))


def write_ntriples_for_owlready(ont: Ontology, out: Path) -> Path:
    """One N-Triples file with all ontology triples except ``owl:imports`` (owlready2 would try to fetch them)."""
    with open(out, "w", encoding="utf-8") as f:
        for s, p, o in ont.triples:
            if p != _IMPORTS:
                f.write(f"{s} {p} {o} .\n")
    return out
