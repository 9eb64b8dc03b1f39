"""Ontology files: parse them (any RDF syntax, xz/gzip), index their TBox, convert them for owlready2.

Takes: ontology files (``.owl``/``.rdf``/``.xml`` RDF/XML, ``.ttl`` Turtle, ``.nt`` N-Triples, each
optionally ``.xz`` or ``.gz``).
Makes: an :class:`Ontology` with the triples as N-Triples term strings and the indexed TBox the data
checks need (class hierarchy closure, domains, ranges, property kinds, functional properties,
disjointness), and an N-Triples file for owlready2 (which reads only RDF/XML and N-Triples).

``owl:imports`` are never fetched (everything runs offline): an import of an ontology that is not one
of the given files is listed in ``unresolved_imports`` and reported; the reasoner runs without it.
"""

from __future__ import annotations

import gzip
import lzma
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..rdf import OWL, RDF, RDFS, XSD, Triple

_RDF_TYPE = f"<{RDF}type>"
_SUBCLASS = f"<{RDFS}subClassOf>"
_SUBPROP = f"<{RDFS}subPropertyOf>"
_EQCLASS = f"<{OWL}equivalentClass>"
_EQPROP = f"<{OWL}equivalentProperty>"
_DOMAIN = f"<{RDFS}domain>"
_RANGE = f"<{RDFS}range>"
_DISJOINT = f"<{OWL}disjointWith>"
_IMPORTS = f"<{OWL}imports>"
_MEMBERS = f"<{OWL}members>"
_FIRST, _REST, _NIL = f"<{RDF}first>", f"<{RDF}rest>", f"<{RDF}nil>"

CLASS_TYPES = {f"<{OWL}Class>", f"<{RDFS}Class>"}
OBJECT_PROPERTY = f"<{OWL}ObjectProperty>"
DATATYPE_PROPERTY = f"<{OWL}DatatypeProperty>"
PROPERTY_TYPES = {OBJECT_PROPERTY, DATATYPE_PROPERTY, f"<{OWL}AnnotationProperty>", f"<{RDF}Property>",
                  f"<{OWL}FunctionalProperty>", f"<{OWL}InverseFunctionalProperty>",
                  f"<{OWL}TransitiveProperty>", f"<{OWL}SymmetricProperty>", f"<{OWL}AsymmetricProperty>",
                  f"<{OWL}ReflexiveProperty>", f"<{OWL}IrreflexiveProperty>"}
FUNCTIONAL = f"<{OWL}FunctionalProperty>"
DATATYPE = f"<{RDFS}Datatype>"
RDFS_LITERAL = f"<{RDFS}Literal>"
# Terms every ontology may use without declaring them.
_BUILTIN_NS = (RDF, RDFS, OWL, XSD)

_FORMATS = {".owl": "RDF_XML", ".rdf": "RDF_XML", ".xml": "RDF_XML", ".ttl": "TURTLE", ".nt": "N_TRIPLES",
            ".n3": "N3", ".trig": "TRIG", ".nq": "N_QUADS", ".jsonld": "JSON_LD"}


def rdf_format(path: Path, what: str = "ontology file") -> tuple[str, str | None]:
    """(pyoxigraph format name, compression) from the file name, e.g. ``dbo.owl.xz`` -> (RDF_XML, xz)."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = None
    if suffixes and suffixes[-1] in (".xz", ".gz"):
        comp = suffixes.pop()[1:]
    fmt = _FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError(f"{path}: unknown RDF syntax; name {what}s .owl/.rdf (RDF/XML), .ttl (Turtle) "
                         f"or .nt (N-Triples), optionally with .xz or .gz")
    return fmt, comp


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
    opener = {"xz": lzma.open, "gz": gzip.open}.get(comp, open)
    try:
        with opener(path, "rb") as fh:
            return [(str(q.subject), str(q.predicate), str(q.object))
                    for q in pyoxigraph.parse(fh, format=getattr(pyoxigraph.RdfFormat, fmt),
                                              base_iri=path.resolve().as_uri())]
    except SyntaxError as e:
        raise InputError(f"{path}: not valid {fmt.replace('_', '/')}: {e}; fix the file or give it the right "
                         f"extension") from e
    except (lzma.LZMAError, OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read ({comp or 'plain'} file): {e}") from e


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
        return term in self.datatypes or term.startswith(f"<{XSD}") or term in (RDFS_LITERAL, f"<{RDF}langString>")


def load_ontologies(paths: Iterable[str | Path]) -> Ontology:
    ont = Ontology()
    for p in paths:
        p = Path(p)
        triples = parse_rdf_file(p)
        iris = sorted({s for s, pr, o in triples if pr == _RDF_TYPE and o == f"<{OWL}Ontology>"})
        imports = sorted({o for s, pr, o in triples if pr == _IMPORTS})
        ont.files.append({"path": str(p), "format": rdf_format(p)[0], "triples": len(triples),
                          "ontology_iris": [i[1:-1] for i in iris], "imports": [i[1:-1] for i in imports]})
        ont.ontology_iris.extend(iris)
        ont.triples.extend(triples)
    given = set(ont.ontology_iris)
    for f in ont.files:
        for imp in f["imports"]:
            if f"<{imp}>" not in given:
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
        if p == _RDF_TYPE:
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
            elif o == f"<{OWL}AllDisjointClasses>":
                all_disjoint.append(s)
        elif p == _SUBCLASS and o.startswith("<"):
            sup[s].add(o)
        elif p == _EQCLASS and o.startswith("<") and s.startswith("<"):
            eqclass.append((s, o))
        elif p == _SUBPROP and o.startswith("<"):
            # Only rdfs:subPropertyOf passes domains/ranges down: DBpedia's owl:equivalentProperty links to
            # external vocabularies would chain unrelated properties together (hubAirport -> Stream).
            subprop[s].add(o)
        elif p == _DOMAIN and o.startswith("<"):
            domains[s].add(o)
        elif p == _RANGE and o.startswith("<"):
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
    """Reflexive-transitive closure of ``parents`` for every node (iterative, cycle-safe)."""
    out: dict[str, set[str]] = {}
    for n in set(nodes) | set(parents):
        seen = {n}
        stack = [n]
        while stack:
            for q in parents.get(stack.pop(), ()):
                if q not in seen:
                    seen.add(q)
                    stack.append(q)
        out[n] = seen
    return out


def find_cycles(edges: dict[str, list[str]], exclude_pairs: set[tuple[str, str]] = frozenset()) -> list[list[str]]:
    """Strongly connected components with more than one node (or a self-loop), each sorted; sorted list.

    ``exclude_pairs`` are edges to ignore (e.g. owl:equivalentClass, which is a 2-cycle by design).
    """
    from .checks import strongly_connected

    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    index = {n: i for i, n in enumerate(nodes)}
    adj = [[] for _ in nodes]
    for a, ts in edges.items():
        for b in ts:
            if (a, b) not in exclude_pairs:
                adj[index[a]].append(index[b])
    cycles = []
    for comp in strongly_connected(adj):
        if len(comp) > 1 or comp[0] in adj[comp[0]]:
            cycles.append(sorted(nodes[i] for i in comp))
    return sorted(cycles)


def write_ntriples_for_owlready(ont: Ontology, out: Path) -> Path:
    """One N-Triples file with all ontology triples except ``owl:imports`` (owlready2 would try to fetch them)."""
    with open(out, "w", encoding="utf-8") as f:
        for s, p, o in ont.triples:
            if p != _IMPORTS:
                f.write(f"{s} {p} {o} .\n")
    return out
