"""RDF basics shared by every stage: namespaces, triple ids and the graph artifact.

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

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import ArtifactWriter, read_manifest
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
WN = "https://globalwordnet.github.io/schemas/wn#"
ONTOLEX = "http://www.w3.org/ns/lemon/ontolex#"
LEXINFO = "http://www.lexinfo.net/ontology/3.0/lexinfo#"
# Instance namespace for WordNet 3.0 synsets, entries and senses pulled by kgllm.
KGWN = "https://w3id.org/kgllm/wordnet/3.0/"

PREFIXES = {
    "rdf": RDF, "rdfs": RDFS, "owl": OWL, "xsd": XSD, "skos": SKOS, "dc": DC, "dct": DCT, "prov": PROV,
    "foaf": FOAF, "schema": SCHEMA, "dbo": DBO, "dbr": DBR, "dbp": DBP, "wn": WN, "ontolex": ONTOLEX,
    "lexinfo": LEXINFO, "wn30": KGWN,
}

Triple = tuple[str, str, str]


def iri(value: str) -> str:
    """N-Triples form of an IRI."""
    return f"<{value}>"


def triple_id(s: str, p: str, o: str) -> str:
    """Stable id of a triple given in canonical N-Triples terms."""
    return hashlib.blake2b(f"{s} {p} {o}".encode(), digest_size=8).hexdigest()


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


def literal_parts(term: str) -> tuple[str, str | None, str | None]:
    """Lexical form, language tag and datatype IRI of an N-Triples literal term."""
    import pyoxigraph

    lit = _parse_term(term)
    if not isinstance(lit, pyoxigraph.Literal):
        raise ValueError(f"not a literal: {term}")
    return lit.value, lit.language, lit.datatype.value if lit.datatype else None


def _parse_term(term: str):
    import pyoxigraph

    q = next(iter(pyoxigraph.parse(f"<urn:s> <urn:p> {term} .".encode(), format=pyoxigraph.RdfFormat.N_TRIPLES)))
    return q.object


# ----------------------------------------------------------------------------- writing


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

    def shard(self, provenance: dict, *, unique_lines: bool = False) -> _ShardContext:
        """Open a new shard (a new file) whose triples all share ``provenance``.

        The context yields ``add(s, p, o) -> bool`` (False for a duplicate). With ``unique_lines`` it yields
        ``add_line("<s> <p> <o>")`` instead, with no de-duplication: for a caller that has already removed
        duplicates across everything it writes (validate does, on interned term ids)."""
        return _ShardContext(self, provenance, unique_lines)

    def _new_shard(self, provenance: dict) -> tuple[_Shard, Any]:
        sh = _Shard(f"{SHARD_DIR}/{len(self._shards):05d}.nt.gz", dict(provenance))
        self._shards.append(sh)
        # mtime=0 and a fixed level keep shards byte-identical across runs (deterministic hashes).
        # Level 3: all of WordNet (388 MB of N-Triples) in 1.4 s and 27.0 MB, against 3.7 s and 25.8 MB at
        # level 5 (bench/bench_gzip.py); shards are intermediate artifacts, written once and read a few times.
        fh = gzip.GzipFile(self.path / sh.file, "wb", compresslevel=3, mtime=0)
        return sh, fh

    def add_all(self, triples: Iterable[Triple], provenance: dict) -> int:
        with self.shard(provenance) as add:
            for t in triples:
                add(*t)
        return self._shards[-1].triples if self._shards else 0

    def seen(self, s: str, p: str, o: str) -> bool:
        return hashlib.blake2b(f"{s} {p} {o}".encode(), digest_size=8).digest() in self._seen


class _ShardContext:
    def __init__(self, g: GraphWriter, provenance: dict, unique_lines: bool = False):
        self.g = g
        self.provenance = provenance
        self.unique_lines = unique_lines
        self.shard: _Shard | None = None
        self.fh = None
        self.buf: list[str] = []

    def __enter__(self):
        self.shard, self.fh = self.g._new_shard(self.provenance)
        return self.add_line if self.unique_lines else self.add

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
        key = hashlib.blake2b(line.encode(), digest_size=8).digest()
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
        self.fh.close()
        if self.shard.triples == 0 and exc_type is None:
            # Drop an empty trailing shard so counts and files agree.
            (self.g.path / self.shard.file).unlink()
            self.g._shards.remove(self.shard)


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


def iter_ntriples_file(path: str | os.PathLike) -> Iterator[Triple]:
    """Fast reader for canonical N-Triples written by :class:`GraphWriter` (not for arbitrary files:
    use :mod:`kgllm.pull.files` for those)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(" .\n"):
                if not line.strip():
                    continue
                raise InputError(f"{path}:{n}: not a canonical N-Triples line")
            s, p, o = line[:-3].split(" ", 2)
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
