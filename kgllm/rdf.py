"""RDF basics shared by every stage, and the only module that knows them: namespaces and the terms used
by name (``RDF_TYPE``, ``RDFS_LABEL``...), literal parsing and formatting, RDF file formats and
compressions, triple ids and the graph artifact.

Takes: triples as N-Triples term strings (``<http://...>``, ``"lit"@en``, ``_:b0``) or pyoxigraph terms.
Makes: graph artifacts, i.e. directories of gzip N-Triples shards plus ``manifest.json``.

Graph artifact layout (kind ``graph``)::

    manifest.json          counts: triples, duplicates, shards; extra.shards: per-shard provenance
    triples/00000.nt.gz    one canonical N-Triples statement per line, no duplicates in the artifact

Each shard carries one provenance record (source, endpoint, query, page, time...), so every triple's
origin is recoverable from the manifest. The **triple id** is the first 64 bits of BLAKE2b over the
canonical ``s p o`` line, as 16 hex digits: identical facts get identical ids in every stage and run.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from .artifacts import GZIP_LEVEL, ArtifactWriter, read_manifest
from .errors import InputError

GRAPH_KIND = "graph"
SHARD_DIR = "triples"

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
DC = "http://purl.org/dc/elements/1.1/"
DCT = "http://purl.org/dc/terms/"
PROV = "http://www.w3.org/ns/prov#"
FOAF = "http://xmlns.com/foaf/0.1/"
SCHEMA = "http://schema.org/"
DBO = "http://dbpedia.org/ontology/"
DBR = "http://dbpedia.org/resource/"
DBP = "http://dbpedia.org/property/"
# DBpedia's intermediate nodes (dbr:Saab_9000__1): the rows of an infobox table, reachable through a relation
# ("engine"); some are typed entities of their own (dbr:Hokkaido__island__1).
_AUXILIARY = re.compile("<" + re.escape(DBR) + r"[^>]*__\d+>")


def is_auxiliary(term: str) -> bool:
    """Whether ``term`` (N-Triples form) is a DBpedia intermediate node such as ``dbr:Saab_9000__1``."""
    return term.endswith(">") and _AUXILIARY.fullmatch(term) is not None

WN = "https://globalwordnet.github.io/schemas/wn#"
ONTOLEX = "http://www.w3.org/ns/lemon/ontolex#"
LEXINFO = "http://www.lexinfo.net/ontology/3.0/lexinfo#"
SH = "http://www.w3.org/ns/shacl#"
# Instance namespace for WordNet 3.0 synsets, entries and senses pulled by kgllm.
KGWN = "https://w3id.org/kgllm/wordnet/3.0/"

PREFIXES = {
    "rdf": RDF, "rdfs": RDFS, "owl": OWL, "xsd": XSD, "skos": SKOS, "dc": DC, "dct": DCT, "prov": PROV,
    "foaf": FOAF, "schema": SCHEMA, "dbo": DBO, "dbr": DBR, "dbp": DBP, "wn": WN, "ontolex": ONTOLEX,
    "lexinfo": LEXINFO, "wn30": KGWN, "sh": SH,
}

Triple = tuple[str, str, str]


def iri(value: str) -> str:
    """N-Triples form of an IRI."""
    return f"<{value}>"


# Terms used by name across the stages, in N-Triples form.
RDF_TYPE = iri(RDF + "type")
RDF_LANGSTRING = RDF + "langString"   # datatype IRIs are bare (as pyoxigraph gives them)
RDFS_LABEL = iri(RDFS + "label")
RDFS_COMMENT = iri(RDFS + "comment")
RDFS_SUBCLASSOF = iri(RDFS + "subClassOf")
RDFS_SUBPROPERTYOF = iri(RDFS + "subPropertyOf")
RDFS_DOMAIN = iri(RDFS + "domain")
RDFS_RANGE = iri(RDFS + "range")
OWL_CLASS = iri(OWL + "Class")
OWL_SAMEAS = iri(OWL + "sameAs")
# What makes a term a class or a property, and the classes every entity belongs to (no constraint).
CLASS_TYPES = frozenset({OWL_CLASS, iri(RDFS + "Class")})
PROPERTY_TYPES = frozenset(iri(OWL + n) for n in (
    "ObjectProperty", "DatatypeProperty", "FunctionalProperty", "AnnotationProperty", "InverseFunctionalProperty",
    "TransitiveProperty", "SymmetricProperty", "AsymmetricProperty", "ReflexiveProperty",
    "IrreflexiveProperty")) | {iri(RDF + "Property")}
# The types of the schema's own terms (classes, properties, the ontology): an ontology loaded with the data is
# not what people ask about.
SCHEMA_TYPES = CLASS_TYPES | PROPERTY_TYPES | {iri(OWL + "Ontology")}
GENERIC_CLASSES = frozenset({iri(OWL + "Thing"), iri(RDFS + "Resource")})
SKOS_PREFLABEL = iri(SKOS + "prefLabel")
DCT_SUBJECT = iri(DCT + "subject")
XSD_STRING = XSD + "string"
WN_DEFINITION = iri(WN + "definition")
WN_PART_OF_SPEECH = iri(WN + "partOfSpeech")
ONTOLEX_SENSE = iri(ONTOLEX + "sense")
ONTOLEX_IS_LEXICALIZED_SENSE_OF = iri(ONTOLEX + "isLexicalizedSenseOf")
ONTOLEX_WRITTEN_REP = iri(ONTOLEX + "writtenRep")
ONTOLEX_CANONICAL_FORM = iri(ONTOLEX + "canonicalForm")


# ----------------------------------------------------------------------------- literals


def is_literal(term: str) -> bool:
    return term[:1] == '"'


@lru_cache(maxsize=1 << 16)
def parse_literal(term: str) -> tuple[str, str | None, str | None]:
    """``(lexical form, language, datatype IRI)`` of an N-Triples literal, escapes decoded; language and
    datatype are None when absent (a plain literal has neither). Pure Python: no parser call per term."""
    if not term.startswith('"'):
        raise ValueError(f"not a literal: {term}")
    end = term.rfind('"')
    raw = term[1:end]
    rest = term[end + 1:]
    if "\\" in raw:
        raw = _unescape(raw)
    if rest.startswith("@"):
        return raw, rest[1:], None
    if rest.startswith("^^<"):
        return raw, None, rest[3:-1]
    return raw, None, None


_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[tnrbf\"'\\])")
_UNESCAPES = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(s: str) -> str:
    def rep(m: re.Match) -> str:
        c = m.group(1)
        return chr(int(c[1:], 16)) if c[0] in "uU" else _UNESCAPES[c]

    return _ESCAPE.sub(rep, s)


def lexical_form(term: str) -> str:
    """The lexical form of an N-Triples literal, escapes decoded."""
    return parse_literal(term)[0]


def literal_datatype(term: str) -> str:
    """Datatype IRI of an N-Triples literal, the implicit ones included (``xsd:string`` for a plain
    literal, ``rdf:langString`` for a tagged one). A slice, for hot loops over millions of terms."""
    if term[-1] == ">":
        return term[term.rindex("^^<") + 3:-1]
    if term[-1] == '"':
        return XSD_STRING
    return RDF_LANGSTRING


def literal_lexical(term: str) -> str:
    """The lexical form of an N-Triples literal as written (escapes kept): a slice, for hot loops."""
    return term[1:term.rindex('"')]


# As pyoxigraph writes them (canonical N-Triples): the named escapes, other controls as \\uXXXX.
_NT_ESCAPES = {**{chr(c): f"\\u{c:04X}" for c in (*range(0x20), 0x7F)},
               "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def literal(value: str, lang: str | None = None, datatype: str | None = None) -> str:
    """The N-Triples term of a literal: ``"value"@lang`` or ``"value"^^<datatype>`` (IRI without <>)."""
    if lang and datatype:
        raise ValueError("a literal has a language tag or a datatype, not both")
    body = "".join(_NT_ESCAPES.get(c, c) for c in value)
    if lang:
        return f'"{body}"@{lang}'
    if datatype and datatype != XSD_STRING:
        return f'"{body}"^^<{datatype}>'
    return f'"{body}"'


# ----------------------------------------------------------------------------- file formats

# Canonical format names, what each file extension means, and pyoxigraph's name for each format.
FORMATS = ("ntriples", "turtle", "rdfxml", "nquads", "n3", "trig", "jsonld")
FORMAT_ALIASES = {"nt": "ntriples", "ntriples": "ntriples", "n-triples": "ntriples",
                  "ttl": "turtle", "turtle": "turtle",
                  "xml": "rdfxml", "rdf": "rdfxml", "owl": "rdfxml", "rdfxml": "rdfxml", "rdf/xml": "rdfxml",
                  "nq": "nquads", "nquads": "nquads", "n-quads": "nquads",
                  "n3": "n3", "trig": "trig", "jsonld": "jsonld", "json-ld": "jsonld"}
EXTENSIONS = {".nt": "ntriples", ".ttl": "turtle", ".rdf": "rdfxml", ".owl": "rdfxml", ".xml": "rdfxml",
              ".nq": "nquads", ".n3": "n3", ".trig": "trig", ".jsonld": "jsonld"}
FORMAT_SHORT = {"ntriples": "nt", "turtle": "ttl", "rdfxml": "xml", "nquads": "nq", "n3": "n3", "trig": "trig",
                "jsonld": "jsonld"}
LINE_BASED = ("ntriples", "nquads")
_OXIGRAPH = {"ntriples": "N_TRIPLES", "turtle": "TURTLE", "rdfxml": "RDF_XML", "nquads": "N_QUADS",
             "n3": "N3", "trig": "TRIG", "jsonld": "JSON_LD"}
COMPRESSIONS: dict[str, Callable[..., IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_EXT_HELP = ".nt/.ttl/.rdf/.owl/.xml/.nq/.n3/.trig/.jsonld (optionally + .gz/.bz2/.xz)"


def format_name(name: str) -> str:
    """The canonical name of a format or one of its aliases (``ttl`` -> ``turtle``); ValueError if unknown."""
    try:
        return FORMAT_ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"{name!r} is not a supported RDF format; use one of {', '.join(FORMATS)} "
                         "(or nt, ttl, xml, nq)") from None


def detect_format(path: str | os.PathLike, override: str | None = None,
                  what: str = "RDF file") -> tuple[str, str | None]:
    """``(format, compression suffix or None)`` of a file, from ``override`` or its extension:
    ``dbo.owl.xz`` -> ``("rdfxml", ".xz")``. An unknown extension is an :class:`InputError` naming the
    file (described as ``what``), never a guess."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    if override:
        try:
            return format_name(override), comp
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
    ext = suffixes[-2] if comp and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not comp else "")
    if ext not in EXTENSIONS:
        raise InputError(f"{path}: cannot tell the RDF format of this {what} from its extension "
                         f"{ext or '(none)'!r}; name it {_EXT_HELP}")
    return EXTENSIONS[ext], comp


def open_rdf(path: str | os.PathLike, comp: str | None) -> IO[bytes]:
    """The decompressed bytes of an RDF file (``comp`` as returned by :func:`detect_format`)."""
    return COMPRESSIONS[comp](path, "rb") if comp else open(path, "rb")  # noqa: SIM115


def oxigraph_format(fmt: str):
    """pyoxigraph's ``RdfFormat`` for a canonical format name."""
    import pyoxigraph

    return getattr(pyoxigraph.RdfFormat, _OXIGRAPH[fmt])


def triple_id(s: str, p: str, o: str) -> str:
    """Stable id of a triple given in canonical N-Triples terms: the hex digits of its statement line's
    :func:`line_key`."""
    return line_key(f"{s} {p} {o}").hex()


def triple_id_int(s: str, p: str, o: str) -> int:
    """:func:`triple_id` as the unsigned 64-bit integer its hex digits spell (how indices store it)."""
    return int.from_bytes(line_key(f"{s} {p} {o}"), "big")


def term_str(term: Any) -> str:
    """N-Triples string of a pyoxigraph term, or a string already in that form."""
    return term if isinstance(term, str) else str(term)


def shorten(term: str) -> str:
    """``<http://dbpedia.org/ontology/birthPlace>`` -> ``dbo:birthPlace`` (for messages and reports)."""
    if term.startswith("<") and term.endswith(">"):
        v = term[1:-1]
        for prefix, ns in PREFIXES.items():
            if v.startswith(ns):
                return f"{prefix}:{v[len(ns):]}"
    return term


def iri_value(term: str) -> str | None:
    """``<x>`` -> ``x``; None for literals and blank nodes."""
    return term[1:-1] if term.startswith("<") else None


# ----------------------------------------------------------------------------- writing


def line_key(line: str) -> bytes:
    """The key :class:`GraphWriter` de-duplicates a statement line (``"s p o"``) by: 8 bytes of BLAKE2b."""
    return hashlib.blake2b(line.encode(), digest_size=8).digest()


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member, compressed as the shards are: members appended to a shard
    (:meth:`GraphWriter.members`) give the same bytes wherever they were made."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


@dataclass
class _Shard:
    file: str
    provenance: dict
    triples: int = 0


class GraphWriter:
    """Write a graph artifact; duplicates (across all shards) are dropped and counted.

    >>> with GraphWriter(out, config=cfg, inputs=[...]) as g:
    ...     with g.shard({"source": "file", "path": "x.nt"}) as add:
    ...         add(s, p, o)
    """

    def __init__(self, out: str | os.PathLike, *, config: Any = None, inputs=None, kind: str = GRAPH_KIND,
                 shard_size: int = 1_000_000, pipeline_key: str | None = None):
        self._writer = ArtifactWriter(out, kind, config=config, inputs=inputs, pipeline_key=pipeline_key)
        self.shard_size = shard_size
        self._seen: set[bytes] = set()
        self._shards: list[_Shard] = []
        self.duplicates = 0

    @property
    def path(self) -> Path:
        return self._writer.path

    @property
    def counts(self) -> dict:
        return self._writer.counts

    @property
    def extra(self) -> dict:
        return self._writer.extra

    @property
    def problems(self) -> list[str]:
        return self._writer.problems

    @property
    def manifest(self):
        return self._writer.manifest

    def __enter__(self) -> GraphWriter:
        self._writer.__enter__()
        (self.path / SHARD_DIR).mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.counts.update(triples=sum(s.triples for s in self._shards), duplicates=self.duplicates,
                               shards=len(self._shards))
            self.extra["shards"] = [{"file": s.file, "triples": s.triples, "provenance": s.provenance}
                                    for s in self._shards]
        self._writer.__exit__(exc_type, exc, tb)

    def shard(self, provenance: dict) -> _ShardContext:
        """Open a new shard (a new file) whose triples all share ``provenance``. The context yields
        ``add(s, p, o) -> bool`` (False for a duplicate); the context itself also has ``add_keyed`` for
        statement lines keyed elsewhere."""
        return _ShardContext(self, provenance)

    def members(self, provenance: dict) -> _MemberShard:
        """Open a new shard (a new file) written as ready-made gzip members: the context yields
        ``add(member, triples)``, ``member`` being whole ``" .\n"``-ended statements already compressed, with
        no duplicates across everything written (validate's blocks, made in parallel). An empty shard is
        dropped, as by :meth:`shard`."""
        return _MemberShard(self, provenance)

    def _new_shard(self, provenance: dict, *, raw: bool = False) -> tuple[_Shard, Any]:
        """A new shard file: a gzip stream, or (``raw``) a binary file the caller writes gzip members to."""
        sh = _Shard(f"{SHARD_DIR}/{len(self._shards):05d}.nt.gz", dict(provenance))
        self._shards.append(sh)
        path = self.path / sh.file
        fh = open(path, "wb") if raw else gzip.GzipFile(path, "wb", compresslevel=GZIP_LEVEL, mtime=0)  # noqa: SIM115
        return sh, fh

    def _end_shard(self, sh: _Shard, fh, ok: bool) -> None:
        """Close a shard; drop it when it ended empty (so counts and files agree)."""
        fh.close()
        if sh.triples == 0 and ok:
            (self.path / sh.file).unlink()
            self._shards.remove(sh)

    def add_all(self, triples: Iterable[Triple], provenance: dict) -> int:
        with self.shard(provenance) as add:
            for t in triples:
                add(*t)
        return self._shards[-1].triples if self._shards else 0

    def seen(self, s: str, p: str, o: str) -> bool:
        return line_key(f"{s} {p} {o}") in self._seen


class _MemberShard:
    def __init__(self, g: GraphWriter, provenance: dict):
        self.g = g
        self.provenance = provenance
        self.shard: _Shard | None = None
        self.fh = None

    def __enter__(self):
        self.shard, self.fh = self.g._new_shard(self.provenance, raw=True)
        return self.add

    def add(self, member: bytes, triples: int) -> None:
        if triples:
            self.fh.write(member)
            self.shard.triples += triples

    def __exit__(self, exc_type, exc, tb) -> None:
        self.g._end_shard(self.shard, self.fh, exc_type is None)


class _ShardContext:
    def __init__(self, g: GraphWriter, provenance: dict):
        self.g = g
        self.provenance = provenance
        self.shard: _Shard | None = None
        self.fh = None
        self.buf: list[str] = []

    def __enter__(self):
        self.shard, self.fh = self.g._new_shard(self.provenance)
        return self.add

    def add_line(self, line: str) -> None:
        """Add one N-Triples statement without its final " ." (the caller guarantees it is new)."""
        self.buf.append(line)
        self.shard.triples += 1
        if len(self.buf) >= 50_000:
            self._flush()
        if self.shard.triples >= self.g.shard_size:
            self._rotate()

    def add(self, s: Any, p: Any, o: Any) -> bool:
        """Add a triple; returns False when it was a duplicate."""
        line = f"{term_str(s)} {term_str(p)} {term_str(o)}"
        return self.add_keyed(line, line_key(line))

    def add_keyed(self, line: str, key: bytes) -> bool:
        """Add a statement line whose :func:`line_key` was computed elsewhere (a Ray task); False for a
        duplicate of anything this writer holds."""
        seen = self.g._seen
        if key in seen:
            self.g.duplicates += 1
            return False
        seen.add(key)
        self.add_line(line)
        return True

    def _flush(self) -> None:
        if self.buf:
            self.fh.write((" .\n".join(self.buf) + " .\n").encode())
            self.buf.clear()

    def _rotate(self) -> None:
        self._flush()
        self.fh.close()
        self.shard, self.fh = self.g._new_shard(self.provenance)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._flush()
        self.g._end_shard(self.shard, self.fh, exc_type is None)


# ----------------------------------------------------------------------------- reading


def graph_shards(graph_dir: str | os.PathLike) -> list[dict]:
    """The shards of a graph artifact: ``[{file, triples, provenance}]`` with absolute ``path`` added."""
    d = Path(graph_dir)
    man = read_manifest(d, GRAPH_KIND)
    return [{**s, "path": d / s["file"]} for s in man.extra.get("shards", [])]


def iter_graph(graph_dirs: str | os.PathLike | Iterable[str | os.PathLike], with_provenance: bool = False
               ) -> Iterator[Triple] | Iterator[tuple[Triple, dict]]:
    """Stream the triples of one or more graph artifacts (N-Triples term strings)."""
    dirs = [graph_dirs] if isinstance(graph_dirs, (str, os.PathLike)) else list(graph_dirs)
    for d in dirs:
        for shard in graph_shards(d):
            for t in iter_ntriples_file(shard["path"]):
                yield (t, shard["provenance"]) if with_provenance else t


def iter_statements(path: str | os.PathLike) -> Iterator[str]:
    """Each statement of a canonical N-Triples file written by :class:`GraphWriter`, as ``"s p o"`` (without
    its final ``" ."``); blank lines are skipped, any other line is an :class:`InputError` with its line
    number. Reads 4 MB at a time, so splitting and decoding stay in C (not for arbitrary files: use
    :mod:`kgllm.pull.files` for those)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    lineno = 0
    rest = b""
    with opener(path, "rb") as f:
        while chunk := f.read(1 << 22):
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest += chunk
                continue
            lines = (rest + chunk[:cut]).decode("utf-8").split("\n")
            rest = chunk[cut + 1:]
            for line in lines:
                lineno += 1
                if not line.endswith(" ."):
                    if line.endswith(" .\r"):   # a CRLF line end
                        line = line[:-1]
                    elif not line.strip():
                        continue
                    else:
                        raise InputError(f"{path}:{lineno}: not a canonical N-Triples line")
                yield line[:-2]
    if rest.strip():   # a last line without its newline
        raise InputError(f"{path}:{lineno + 1}: not a canonical N-Triples line")


def iter_ntriples_file(path: str | os.PathLike) -> Iterator[Triple]:
    """The triples of a canonical N-Triples file written by :class:`GraphWriter` (:func:`iter_statements`)."""
    for line in iter_statements(path):
        s, p, o = line.split(" ", 2)
        yield s, p, o


def count_triples(graph_dirs) -> int:
    dirs = [graph_dirs] if isinstance(graph_dirs, (str, os.PathLike)) else list(graph_dirs)
    return sum(read_manifest(d, GRAPH_KIND).counts.get("triples", 0) for d in dirs)


def load_store(graph_dirs, store=None):
    """Load graph artifacts into an embedded pyoxigraph store (in memory unless ``store`` is given)."""
    import pyoxigraph

    store = store if store is not None else pyoxigraph.Store()
    dirs = [graph_dirs] if isinstance(graph_dirs, (str, os.PathLike)) else list(graph_dirs)
    for d in dirs:
        for shard in graph_shards(d):
            with gzip.open(shard["path"], "rb") as f:
                store.bulk_load(f, format=pyoxigraph.RdfFormat.N_TRIPLES)
    return store
