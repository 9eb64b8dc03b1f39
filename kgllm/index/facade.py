"""``KGIndex``: one facade over the graph index, the entity lexicon/linker and the faiss vector indices,
and the run function of the ``index`` stage (:func:`run_index`; with ``update: true`` it updates an existing
index through :func:`update_index`, see :mod:`kgllm.index.update`).

Takes: graph artifacts (and optionally a corpus artifact whose ``triples.jsonl`` texts are embedded) and an
:class:`~kgllm.index.stage.IndexConfig`, or an index artifact written earlier (:func:`load_index`).
Makes: an index artifact (kind ``index``)::

    index/manifest.json        counts (triples, terms, lexicon entries, vectors...), recall@10, config
    index/index.json           settings the loaded index needs (encoder, skipped predicates, linker options):
                               the IndexConfig it was built with, the skipped predicates spelled out
    index/graph/               GraphIndex arrays (see kgllm.index.graph)
    index/lexicon/             lexicon.jsonl.gz, labels.jsonl.gz (see kgllm.index.lexicon)
    index/vectors/             triple.faiss, entity.faiss (+ .keys.jsonl, .json) (see kgllm.index.vector)

All terms in the API are IRIs, given either bare (``http://dbpedia.org/resource/Rome``) or in N-Triples form
(``<http://...>``); results give N-Triples terms. Facts are identified by triple ids (kgllm.rdf.triple_id).
No method ever returns a deleted triple (tombstones are checked on every path, and entity descriptions that
mentioned a deleted fact are re-embedded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as cfgmod
from ..artifacts import (
    ArtifactWriter,
    Manifest,
    artifact_kind,
    atomic_write_json,
    canonical_json,
    iter_jsonl,
    read_manifest,
    write_jsonl,
)
from ..engine import Engine, open_engine
from ..errors import InputError, UsageError
from ..log import RateProgress, logger, progress
from ..rdf import DBO, DC, GENERIC_CLASSES, ONTOLEX, OWL, RDF_TYPE, RDFS, count_triples, iri, iter_graph
from .graph import GraphIndex, is_node_term, tid_hex
from .lexicon import ALT_PREDICATES, LABEL_PREDICATES, LEXICAL_PREDICATES, EntityLexicon
from .linker import Candidate, LinkedMention, Linker
from .stage import IndexConfig
from .update import apply_update
from .vector import EmbedActor, Encoder, VectorIndex

INDEX_KIND = "index"
# Predicates whose triples are not embedded as facts (labels are in the entity index; the rest is
# bookkeeping that no question asks about).
DEFAULT_SKIP_PREDICATES = sorted({p[1:-1] for p in LABEL_PREDICATES} | {p[1:-1] for p in ALT_PREDICATES} | {
    ONTOLEX + "canonicalForm", ONTOLEX + "sense", ONTOLEX + "isLexicalizedSenseOf", ONTOLEX + "writtenRep",
    OWL + "sameAs", DBO + "wikiPageID", DBO + "wikiPageRevisionID", DBO + "wikiPageLength",
    DBO + "wikiPageOutDegree", DBO + "wikiPageRedirects", DC + "identifier",
})
# Lexical bookkeeping nodes get no entity vector (their synsets and entities do).
SKIP_ENTITY_TYPES = (ONTOLEX + "LexicalEntry", ONTOLEX + "LexicalSense", ONTOLEX + "Form")
_SKIP_ENTITY_TYPE_TERMS = {iri(t) for t in SKIP_ENTITY_TYPES}
_DESCRIBED_TYPES = ("<" + DBO, "<" + RDFS, "<http")   # type IRIs an entity text names (not blank nodes)


@dataclass
class Hit:
    """A search result: ``kind`` "triple" (``key`` = triple id) or "entity" (``key`` = IRI term)."""

    kind: str
    key: str
    score: float
    text: str = ""

    @property
    def triple_id(self) -> str | None:
        return self.key if self.kind == "triple" else None

    @property
    def iri(self) -> str | None:
        return self.key if self.kind == "entity" else None


@dataclass
class TripleRecord:
    id: str
    s: str
    p: str
    o: str
    provenance: dict = field(default_factory=dict)


def _term(x: str) -> str:
    """Accept bare IRIs as well as N-Triples terms."""
    return x if x.startswith(("<", "_:", '"')) else iri(x)


def index_settings(config: IndexConfig) -> dict:
    """What ``index.json`` records of an :class:`IndexConfig` (the corpus is an input, not a setting),
    with the skipped predicates spelled out."""
    return {"seed": config.seed, "skip_predicates": skip_predicates(config),
            "path_exclude": list(config.path_exclude), "vector": dataclasses.asdict(config.vector),
            "linker": dataclasses.asdict(config.linker)}


def skip_predicates(config: IndexConfig) -> list[str]:
    """The predicates whose triples are not embedded: the config's, else :data:`DEFAULT_SKIP_PREDICATES`."""
    return list(config.skip_predicates) if config.skip_predicates is not None else list(DEFAULT_SKIP_PREDICATES)


class KGIndex:
    """The facade. Build with :meth:`build`, load with :func:`load_index`; see docs/index.md."""

    def __init__(self, graph: GraphIndex, lexicon: EntityLexicon, settings: dict,
                 vectors: dict | None = None, corpus_texts: dict[str, str] | None = None,
                 engine: Engine | None = None):
        self.graph = graph
        self.lexicon = lexicon
        self.settings = settings  # as index.json records them
        # Keys the settings leave out take the IndexConfig defaults (stated there only).
        self.config = cfgmod.build(IndexConfig, settings, source="index settings")
        self.vectors = vectors or {}
        self.corpus_texts = corpus_texts or {}
        self.linker = Linker(lexicon, graph, self.config.linker)
        self._encoder = None
        # Where many texts are embedded (kgllm.engine: in-process or a Ray actor pool); None: in-process.
        self.engine = engine
        # Where each embedded chunk is kept until the artifact is written (a stopped run resumes from them).
        self.chunk_cache: Path | None = None
        self._skip = {iri(p) for p in skip_predicates(self.config)}
        self._path_exclude = {i for i in (graph.term_id(iri(p)) for p in self.config.path_exclude)
                              if i is not None}
        self.counts: dict = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, graph_dirs: Sequence[str | Path], corpus: str | Path | None = None,
              config: IndexConfig | Mapping | None = None, engine: Engine | None = None,
              chunk_cache: Path | None = None) -> KGIndex:
        """Build from graph artifacts; ``config`` is an :class:`IndexConfig` or a mapping of its keys
        (``{"vector": {"enabled": False}}``); its ``corpus`` key is not read (give ``corpus``). ``engine``
        embeds the texts (an open :class:`kgllm.engine.Engine`; None: in this process); the index is the
        same either way."""
        if not isinstance(config, IndexConfig):
            config = cfgmod.build(IndexConfig, config, source="index config")
        settings = index_settings(config)
        t0 = time.perf_counter()
        graph, gcounts = GraphIndex.build(iter_graph(list(graph_dirs), with_provenance=True),
                                          total=count_triples(list(graph_dirs)))
        timings = {"graph_s": round(time.perf_counter() - t0, 3)}
        t0 = time.perf_counter()
        lex = EntityLexicon.build(graph)
        timings["lexicon_s"] = round(time.perf_counter() - t0, 3)
        corpus_texts = _read_corpus_texts(corpus) if corpus else {}
        idx = cls(graph, lex, settings, corpus_texts=corpus_texts, engine=engine)
        idx.chunk_cache = chunk_cache
        idx.counts.update({f"graph_{k}": v for k, v in gcounts.items()})
        if corpus:
            idx.counts["corpus_texts"] = len(corpus_texts)
        if config.vector.enabled:
            t0 = time.perf_counter()
            idx._build_vectors()
            timings["vectors_s"] = round(time.perf_counter() - t0, 3)
        idx.counts["timings"] = timings
        return idx

    def _build_vectors(self, reuse: Mapping[str, Mapping[str, tuple[str, np.ndarray]]] | None = None) -> None:
        """Embed the triple texts and entity descriptions. ``reuse``: per kind, key -> (text, vector) of an
        earlier index; a key whose text is unchanged keeps its vector instead of being encoded again (an
        update re-embeds only new and changed texts). The result is the same index either way."""
        vs = self.config.vector
        cap_t, cap_e = vs.max_triples, vs.max_entities
        build_kw = dict(exact_threshold=vs.exact_threshold, hnsw_m=vs.hnsw_m, ef_search=vs.ef_search,
                        seed=self.config.seed, recall_queries=vs.recall_queries)
        reuse = reuse or {}
        plans: dict[str, tuple[list[str], list[str], dict]] = {}   # kind -> keys, texts, counts
        if vs.triples:
            rows, skipped = self._embeddable_rows(range(self.graph.n_rows))
            over = max(0, len(rows) - cap_t) if cap_t else 0
            rows = rows[: cap_t] if cap_t else rows
            keys = [tid_hex(self.graph.row_tid(r)) for r in rows]
            texts = [self.triple_text(r) for r in progress(rows, desc="index: verbalize", unit="triple")]
            plans["triple"] = (keys, texts, dict(triples_embedded=len(keys), triples_not_embedded_predicate=skipped,
                                                 triples_not_embedded_cap=over))
        if vs.entities:
            ents, skipped = self._embeddable_entities()
            over = max(0, len(ents) - cap_e) if cap_e else 0
            ents = ents[: cap_e] if cap_e else ents
            texts = [self.entity_text(e) for e in progress(ents, desc="index: describe", unit="entity")]
            keys = [self.graph.terms[e] for e in ents]
            plans["entity"] = (keys, texts, dict(entities_embedded=len(ents), entities_not_embedded_type=skipped,
                                                 entities_not_embedded_cap=over))
        # Both kinds are embedded in one go: on Ray, one actor pool (each actor loads the model once).
        vecs = self._vectors({kind: (keys, texts, reuse.get(kind)) for kind, (keys, texts, _) in plans.items()})
        for kind, (keys, _texts, counts) in plans.items():
            self.vectors[kind] = VectorIndex.build(keys, vecs[kind], **build_kw)
            self.counts.update(counts)
            self.counts[f"{kind}_recall_at_10"] = self.vectors[kind].info["recall_at_10"]
            self.counts[f"{kind}_index"] = self.vectors[kind].kind

    def _vectors(self, parts: Mapping[str, tuple[list[str], list[str], Mapping[str, tuple[str, np.ndarray]] | None]]
                 ) -> dict[str, np.ndarray]:
        """Per kind, the vectors of ``(keys, texts, reuse)``: reused where ``reuse`` has the key with the same
        text, encoded otherwise (all of them when ``reuse`` is None). Counts ``{kind}_texts_encoded`` and
        ``{kind}_vectors_reused``."""
        todo = {kind: list(range(len(texts))) if old is None else
                [i for i, (k, t) in enumerate(zip(keys, texts, strict=True)) if k not in old or old[k][0] != t]
                for kind, (keys, texts, old) in parts.items()}
        new = self._encode_parts({kind: [parts[kind][1][i] for i in idx] for kind, idx in todo.items()
                                  if idx or parts[kind][2] is None})
        out = {}
        for kind, (keys, _texts, old) in parts.items():
            idx = todo[kind]
            self.counts[f"{kind}_texts_encoded"] = len(idx)
            if old is None:
                out[kind] = new[kind]
                continue
            dim = new[kind].shape[1] if kind in new else (len(next(iter(old.values()))[1]) if old else 384)
            v = np.empty((len(keys), dim), dtype=np.float32)
            done = set(idx)
            for i, k in enumerate(keys):
                if i not in done:
                    v[i] = old[k][1]
            if idx:
                v[idx] = new[kind]
            self.counts[f"{kind}_vectors_reused"] = len(keys) - len(idx)
            out[kind] = v
        return out

    def _encode_parts(self, parts: Mapping[str, list[str]], chunk: int | None = None) -> dict[str, np.ndarray]:
        """Encode each kind's texts in chunks of ``chunk`` (``vector.chunk_size``; each kind chunked on its
        own): in this process, with progress (a bar with texts/s and ETA, or when bars are off a log line
        every 30 s), or when the engine says so (kgllm.engine: Ray when asked, or for many texts) in one Ray
        Data actor pool, one chunk per block. The encoder sorts a chunk by length into batches, so the chunk
        decides the vectors' last bits: the same chunks either way give the same vectors. With a
        ``chunk_cache`` directory, each chunk's vectors are kept there as it is done, and a chunk found there
        (the same model, batch size and texts: a stopped run's) is not encoded again."""
        vs = self.config.vector
        size = chunk or vs.chunk_size
        chunks = [(kind, texts[a:a + size]) for kind, texts in parts.items() for a in range(0, len(texts), size)]
        got = self._cached_chunks(chunks)
        todo = [i for i in range(len(chunks)) if i not in got]
        if self.chunk_cache is not None:
            self.counts["vector_chunks_reused"] = self.counts.get("vector_chunks_reused", 0) + len(got)
            if got:
                logger.info("index: %d of %d embedding chunks finished by a stopped run are reused", len(got),
                            len(chunks))

        def save(i: int, v: np.ndarray) -> None:
            if self.chunk_cache is not None:
                f = self._chunk_file(chunks[i][1])
                f.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.with_name(f".{f.name}.tmp-{os.getpid()}")
                with open(tmp, "wb") as fh:
                    np.save(fh, v)
                tmp.replace(f)

        def keep(i: int, v: np.ndarray) -> None:
            got[i] = v
            save(i, v)

        desc = f"index: embedding {' and '.join(parts)} texts"
        n_todo = sum(len(chunks[i][1]) for i in todo)
        if n_todo and self.engine is not None and self.engine.wants_ray(n_todo):
            starts = {}
            pos = 0
            for i in todo:  # each part is one chunk: one Ray Data block, the same cut as in this process
                starts[pos] = i
                pos += len(chunks[i][1])
            # Each chunk is saved as it comes back; the vectors are taken from the engine's one array.
            arrays = self.engine.map_chunks(
                [chunks[i][1] for i in todo], EmbedActor, chunk=size, unit="text", desc=desc,
                actor_kwargs={"model": vs.model, "batch_size": vs.batch_size},
                on_block=(lambda a, _b, out: save(starts[a], np.asarray(out))) if self.chunk_cache else None)
            got.update(zip(todo, arrays, strict=True))
        elif len(todo) == 1:  # one call, no progress to show
            keep(todo[0], self.encoder.encode(chunks[todo[0]][1], progress=False))
        elif todo:
            with RateProgress(n_todo, desc, unit="text") as bar:
                for i in todo:
                    keep(i, self.encoder.encode(chunks[i][1], progress=False))
                    bar.update(len(chunks[i][1]))
        dim = next((v.shape[1] for v in got.values()), None)
        out = {}
        for kind in parts:
            mine = [got[i] for i, (k, _ts) in enumerate(chunks) if k == kind]
            out[kind] = np.concatenate(mine) if mine else (
                np.zeros((0, dim), dtype=np.float32) if dim else self.encoder.encode([], progress=False))
        return out

    def _chunk_file(self, texts: Sequence[str]) -> Path:
        vs = self.config.vector
        h = hashlib.blake2b(f"{vs.model}\0{vs.batch_size}\0{len(texts)}".encode(), digest_size=16)
        for t in texts:
            h.update(t.encode("utf-8") + b"\0")
        return self.chunk_cache / f"{h.hexdigest()}.npy"

    def _cached_chunks(self, chunks: list[tuple[str, list[str]]]) -> dict[int, np.ndarray]:
        """The chunks (by position) whose vectors a stopped run left in ``chunk_cache``."""
        got: dict[int, np.ndarray] = {}
        if self.chunk_cache is None:
            return got
        for i, (_kind, ts) in enumerate(chunks):
            f = self._chunk_file(ts)
            try:
                v = np.load(f) if f.exists() else None
            except (OSError, ValueError):  # a file cut short: encode the chunk again
                v = None
            if v is not None and len(v) == len(ts):
                got[i] = v
        return got

    def _embeddable_rows(self, rows: Iterable[int]) -> tuple[list[int], int]:
        skip_ids = {i for i in (self.graph.term_id(p) for p in self._skip) if i is not None}
        out, skipped = [], 0
        for r in rows:
            if not self.graph.alive(r):
                continue
            if self.graph.row(r)[1] in skip_ids:
                skipped += 1
            else:
                out.append(r)
        return out, skipped

    def _embeddable_entities(self, nodes: Iterable[int] | None = None) -> tuple[list[int], int]:
        """Subject IRIs with a label, minus lexical bookkeeping nodes (entries, senses, forms)."""
        g = self.graph
        if nodes is None:
            tri = np.asarray(g.a["triples"])
            nodes = sorted(set(np.unique(tri[np.asarray(g._alive[: len(tri)]), 0]).tolist())
                           | {s for s, _p, _o in g._new_rows})
        out, skipped = [], 0
        for n in nodes:
            t = g.terms[n]
            if not t.startswith("<") or t not in self.lexicon.labels:
                continue
            if any(g.terms[o] in _SKIP_ENTITY_TYPE_TERMS for o, p, _r, _d in g.edges(n, "out")
                   if g.terms[p] == RDF_TYPE):
                skipped += 1
                continue
            if not g.subject_rows(n):
                continue
            out.append(n)
        return out, skipped

    def triple_text(self, r: int) -> str:
        tid = tid_hex(self.graph.row_tid(r))
        if tid in self.corpus_texts:
            return self.corpus_texts[tid]
        s, p, o = self.graph.triple_terms(r)
        return f"{self.label(s)} {self.label(p)} {truncate(self.label(o), 300)}"

    def entity_text(self, node: int, max_facts: int = 6) -> str:
        """``label (type, type): predicate object; ...`` from the entity's live triples."""
        g = self.graph
        t = g.terms[node]
        types, facts = [], []
        for _r, _s, p, o, _t in g.subject_triples(node):
            if p == RDF_TYPE:
                if o not in GENERIC_CLASSES and len(types) < 3 and o.startswith(_DESCRIBED_TYPES):
                    types.append(self.label(o))
            elif p not in self._skip and len(facts) < max_facts:
                facts.append(f"{self.label(p)} {truncate(self.label(o), 200)}")
        head = self.label(t) + (f" ({', '.join(types)})" if types else "")
        return head + (": " + "; ".join(facts) if facts else "")

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = Encoder(self.config.vector.model, self.config.vector.batch_size)
        return self._encoder

    # ------------------------------------------------------------------ queries

    def link(self, text: str, types: list[str] | None = None) -> list[LinkedMention]:
        """Entity mentions in ``text`` with ranked candidate IRIs (see kgllm.index.linker)."""
        return self.linker.link(text, [_term(t) for t in types] if types else None)

    def search(self, text: str, k: int = 10, kind: str = "triple") -> list[Hit]:
        """Nearest triples (``kind="triple"``, key = triple id) or entities (``"entity"``, key = IRI term)
        by cosine similarity of sentence embeddings; never a deleted triple."""
        vi = self.vectors.get(kind)
        if vi is None:
            raise InputError(f"this index has no {kind!r} vectors (built with vector.{kind}s: false?); "
                             f"available: {', '.join(sorted(self.vectors)) or 'none'}")
        q = self.encoder.encode([text])
        hits = []
        for key, score in vi.search(q, k)[0]:
            if kind == "triple":
                r = self.graph.row_of(key)
                if r is None or not self.graph.alive(r):
                    continue  # belt and braces: deleted triples are also removed from the faiss index
                hits.append(Hit("triple", key, score, self.triple_text(r)))
            else:
                hits.append(Hit("entity", key, score, self.label(key)))
        return hits

    def neighbors(self, iri_: str, hops: int = 1, predicates: Iterable[str] | None = None,
                  limit: int = 10_000) -> list[str]:
        """Triple ids of the live triples within ``hops`` edges of an entity (either direction),
        restricted to ``predicates`` (IRIs) when given; BFS order, at most ``limit``."""
        n = self.graph.term_id(_term(iri_))
        if n is None:
            return []
        pset = None if predicates is None else {i for i in (self.graph.term_id(_term(p)) for p in predicates)
                                                 if i is not None}
        rows = self.graph.neighbors(n, hops, pset, max_rows=limit)
        if hops >= 1 and (predicates is None):
            # Literal-valued facts of the entity itself belong to its 1-hop neighbourhood too.
            extra = [r for r, _s, _p, o, _t in self.graph.subject_triples(n) if not is_node_term(o)]
            rows = rows + extra[: max(0, limit - len(rows))]
        return [tid_hex(self.graph.row_tid(r)) for r in rows]

    def ppr(self, seeds: Iterable[str], k: int = 20, alpha: float = 0.15) -> list[tuple[str, float]]:
        """Personalized PageRank from seed IRIs over the entity graph (rdf:type edges left out by default:
        class nodes are hubs). Returns the top ``k`` ``(IRI term, score)``, seeds included."""
        ids = [i for i in (self.graph.term_id(_term(s)) for s in seeds) if i is not None]
        return [(self.graph.terms[n], s) for n, s in
                self.graph.ppr(ids, k, alpha=alpha, exclude=self._path_exclude)]

    def paths(self, a: str, b: str, max_len: int = 3, limit: int = 10) -> list[list[str]]:
        """Shortest paths (at most ``max_len`` triples, either direction) between two entities, each a list
        of triple ids from ``a`` to ``b``."""
        ia, ib = self.graph.term_id(_term(a)), self.graph.term_id(_term(b))
        if ia is None or ib is None:
            return []
        return [[tid_hex(self.graph.row_tid(r)) for r in p]
                for p in self.graph.paths(ia, ib, max_len, limit, exclude=self._path_exclude)]

    def triples(self, ids: Iterable[str]) -> list[TripleRecord]:
        """The live triples of these ids (unknown or deleted ids are left out), with provenance."""
        out = []
        for t in ids:
            r = self.graph.row_of(t)
            if r is None or not self.graph.alive(r):
                continue
            s, p, o = self.graph.triple_terms(r)
            out.append(TripleRecord(t, s, p, o, self.graph.row_source(r)))
        return out

    def label(self, term: str) -> str:
        """Display label of an IRI (its rdfs:label etc., else its local name) or a literal's text."""
        return self.lexicon.label(_term(term))

    # ------------------------------------------------------------------ updates

    def upsert(self, triples: Iterable[tuple[str, str, str]], provenance: dict | None = None) -> list[str]:
        """Add triples (N-Triples terms) to every part without a rebuild; returns the ids added
        (triples already present are not added again)."""
        prov = provenance or {"source": "upsert", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        rows, _present = self.graph.upsert([tuple(map(_term, t)) for t in triples], prov)
        if not rows:
            return []
        self._refresh(rows, removed_triples=[])
        return [tid_hex(self.graph.row_tid(r)) for r in rows]

    def delete(self, triple_ids: Iterable[str]) -> int:
        """Delete triples by id from every part; returns how many were live."""
        rows = [r for r in (self.graph.row_of(t) for t in triple_ids) if r is not None and self.graph.alive(r)]
        if not rows:
            return 0
        lex_rows = [r for r in rows if self.graph.triple_terms(r)[1] in LEXICAL_PREDICATES]
        origins = self.lexicon.origins_of_rows(self.graph, lex_rows)  # before the edges disappear
        n = self.graph.delete(rows)
        self._refresh(rows, removed_triples=rows, origins=origins)
        return n

    def _refresh(self, rows: list[int], removed_triples: list[int], origins: set[str] | None = None) -> None:
        g = self.graph
        lex_rows = [r for r in rows if g.triple_terms(r)[1] in LEXICAL_PREDICATES]
        origins = set(origins or ()) | self.lexicon.origins_of_rows(g, lex_rows)
        if origins:
            self.lexicon.update_origins(g, origins)
        self.linker.invalidate()
        if "triple" in self.vectors:
            vi = self.vectors["triple"]
            if removed_triples:
                vi.remove([tid_hex(g.row_tid(r)) for r in removed_triples])
            else:
                emb, _ = self._embeddable_rows(rows)
                if emb:
                    vi.add([tid_hex(g.row_tid(r)) for r in emb], self.encoder.encode([self.triple_text(r)
                                                                                      for r in emb]))
        if "entity" in self.vectors:
            vi = self.vectors["entity"]
            subjects = sorted({g.row(r)[0] for r in rows})
            keep, _ = self._embeddable_entities(subjects)
            vi.remove([g.terms[s] for s in subjects if s not in set(keep)])
            if keep:
                vi.add([g.terms[s] for s in keep], self.encoder.encode([self.entity_text(s) for s in keep]))

    # ------------------------------------------------------------------ persistence

    def save(self, out: str | Path, *, config=None, inputs=None, pipeline_key: str | None = None,
             extra: Mapping | None = None) -> Manifest:
        """Write an index artifact (compacted: deleted triples dropped, upserts merged); ``extra`` goes
        into the manifest's ``extra``."""
        with ArtifactWriter(out, INDEX_KIND, config=config if config is not None else self.settings,
                            inputs=inputs, pipeline_key=pipeline_key) as w:
            gcounts = self.graph.save(w.path / "graph")
            # The lexicon keeps its entries (IRIs, triple ids), which compaction does not change.
            lcounts = self.lexicon.save(w.path / "lexicon")
            vinfo = {name: vi.save(w.path / "vectors", name) for name, vi in sorted(self.vectors.items())}
            atomic_write_json(w.path / "index.json", self.settings)
            if self.corpus_texts:
                write_jsonl(w.path / "corpus_texts.jsonl",
                            ({"id": k, "text": self.corpus_texts[k]} for k in sorted(self.corpus_texts)))
            w.counts.update({k: v for k, v in self.counts.items() if k != "timings"})
            w.counts.update(triples=gcounts["triples"], terms=gcounts["terms"], edges=gcounts["edges"],
                            lexicon_entries=lcounts["entries"], lexicon_keys=lcounts["keys"],
                            labels=lcounts["labels"])
            for name, info in vinfo.items():
                w.counts[f"{name}_vectors"] = info["live"]
            w.extra.update(lexicon_entries_by_source=lcounts["entries_by_source"], vectors=vinfo,
                           timings=self.counts.get("timings", {}))
            w.extra.update(extra or {})
        return w.manifest


def load_index(d: str | Path, mmap: bool = True) -> KGIndex:
    """Load an index artifact (graph arrays memory-mapped; faiss indices read; encoder loaded on first use)."""
    d = Path(d)
    man = read_manifest(d, INDEX_KIND)
    t0 = time.perf_counter()
    settings = json.loads((d / "index.json").read_text("utf-8"))
    graph = GraphIndex.load(d / "graph", mmap=mmap)
    lex = EntityLexicon.load(d / "lexicon")
    vectors = {}
    vdir = d / "vectors"
    if vdir.exists():
        for f in sorted(vdir.glob("*.faiss")):
            vectors[f.stem] = VectorIndex.load(vdir, f.stem)
    texts = {}
    if (d / "corpus_texts.jsonl").exists():
        for _n, e in iter_jsonl(d / "corpus_texts.jsonl"):
            texts[e["id"]] = e["text"]
    idx = KGIndex(graph, lex, settings, vectors, texts)
    idx.counts = {k: v for k, v in man.counts.items()}
    logger.debug("loaded index %s in %.2fs", d, time.perf_counter() - t0)
    return idx


def update_index(base: str | Path | None, graph_dirs: Sequence[str | Path], corpus: str | Path | None,
                 config: IndexConfig, engine: Engine | None = None) -> tuple[KGIndex, dict]:
    """The index of ``graph_dirs`` (and ``corpus``'s texts) made by updating the index artifact ``base``
    (:mod:`kgllm.index.update`): only new and changed texts are embedded. Without a base, or when its
    settings (encoder, skipped predicates, linker...) differ from ``config``'s, it is built anew; the report
    says which (``mode``: update, build or rebuild) and what changed."""
    if base is None:
        idx = KGIndex.build(graph_dirs, corpus, config, engine=engine)
        return idx, {"mode": "build", "reason": "no index to update at the output", "added": idx.graph.n_live,
                     "removed": 0, "kept": 0, "texts_encoded": _encoded(idx), "vectors_reused": 0}
    base_man = read_manifest(base, INDEX_KIND)
    old = load_index(base)
    old.engine = engine
    settings = index_settings(config)
    if canonical_json(old.settings) != canonical_json(settings):
        changed = sorted(k for k in set(settings) | set(old.settings) if old.settings.get(k) != settings.get(k))
        logger.warning("index update: the settings differ from %s's (%s): building anew", base, ", ".join(changed))
        n_old = old.graph.n_live
        idx = KGIndex.build(graph_dirs, corpus, config, engine=engine)
        return idx, {"mode": "rebuild", "reason": f"settings changed: {', '.join(changed)}",
                     "base": {"path": str(base), "content_sha256": base_man.content_sha256},
                     "added": idx.graph.n_live, "removed": n_old, "kept": 0, "texts_encoded": _encoded(idx),
                     "vectors_reused": 0}
    idx, report = apply_update(old, graph_dirs, _read_corpus_texts(corpus) if corpus else {})
    report["base"] = {"path": str(base), "content_sha256": base_man.content_sha256}
    return idx, report


def _encoded(idx: KGIndex) -> int:
    return sum(v for k, v in idx.counts.items() if k.endswith("_texts_encoded"))


def _read_corpus_texts(corpus: str | Path) -> dict[str, str]:
    p = Path(corpus) / "triples.jsonl"
    hint = "; give a corpus artifact written by `kgllm corpus`"
    if not p.exists():
        raise InputError(f"{corpus}: no triples.jsonl{hint}")
    out = {}
    for n, e in iter_jsonl(p, hint=hint):
        if "id" not in e or "text" not in e:
            raise InputError(f"{p}:{n}: not a triples.jsonl record with 'id' and 'text'{hint}")
        out[e["id"]] = e["text"]
    return out


def truncate(s: str, n: int) -> str:
    """``s`` cut to at most ``n`` characters, an ellipsis marking a cut."""
    return s if len(s) <= n else s[: n - 1] + "…"


def run_index(inputs: list[Path], out: Path, config: IndexConfig, *, pipeline_key: str | None = None) -> Manifest:
    """The ``index`` stage: graph artifacts (and at most one corpus artifact: an input of kind ``corpus``,
    or ``config.corpus``) -> an index artifact. With ``config.update``, the index artifact among the inputs
    (or else the one at ``out``) is updated to the graphs (:func:`kgllm.index.facade.update_index`)."""
    graphs, corpora, bases = [], [], []
    for p in inputs:
        kind = read_manifest(p).kind
        if kind == "corpus" or kind.startswith("corpus."):
            corpora.append(p)
        elif kind == "graph" or kind.startswith("graph."):
            graphs.append(p)
        elif kind == INDEX_KIND:
            bases.append(p)
        else:
            raise UsageError(f"{p}: index takes graph artifacts (and one corpus artifact, and with update: true the "
                             f"index to update), not {kind!r}")
    if config.corpus is not None:
        corpora.append(Path(config.corpus))
    if not graphs:
        raise UsageError("index: give at least one graph artifact")
    if len(corpora) > 1:
        raise UsageError(f"index: give at most one corpus artifact, got {', '.join(map(str, corpora))}")
    if bases and not config.update:
        raise UsageError(f"index: {bases[0]} is an index artifact; to update it give --update (update: true), "
                         "else give graph artifacts only")
    if len(bases) > 1:
        raise UsageError(f"index: give at most one index artifact to update, got {', '.join(map(str, bases))}")
    corpus = corpora[0] if corpora else None
    extra = {}
    # The engine (kgllm.engine) embeds the texts: in-process, or Ray Data actors when it says so; Ray, if
    # started, stops when the block ends (Ctrl-C and SIGTERM included). Where it ran goes in the manifest's
    # extra, no part of the content hash: the files are the same either way.
    # Embedded chunks are kept beside `out` until the artifact is written, so a stopped run resumes from
    # them (content-addressed: the model, batch size and texts of a chunk; docs/scale.md).
    cache = chunk_cache_dir(Path(out)) if config.vector.enabled and not config.update else None
    try:
        with open_engine() as eng:
            if config.update:
                base = bases[0] if bases else (Path(out) if artifact_kind(out) == INDEX_KIND else None)
                idx, report = update_index(base, graphs, corpus, config, engine=eng)
                extra["update"] = report
                idx.counts.update(update_added=report["added"], update_removed=report["removed"],
                                  update_kept=report["kept"], update_reembedded=report["texts_encoded"])
            else:
                idx = KGIndex.build(graphs, corpus, config, engine=eng, chunk_cache=cache)
        idx.engine = None
        extra["engine"] = eng.report()
        ins = graphs + ([corpus] if corpus is not None and corpus not in inputs else [])
        man = idx.save(out, config=config, inputs=list(inputs) + [c for c in ins if c not in inputs],
                       pipeline_key=pipeline_key, extra=extra)
    except BaseException:
        # Finished chunks stay for the rerun after a stop or a crash; an empty cache does not.
        if cache is not None and not any(cache.glob("*.npy")):
            shutil.rmtree(cache, ignore_errors=True)
        raise
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    return man


CHUNK_CACHE_OWNER = "kgllm-index-chunks"


def chunk_cache_dir(out: Path) -> Path:
    """``.NAME.chunks`` beside ``out``, marked as kgllm's by its owner file."""
    d = out.parent / f".{out.name}.chunks"
    d.mkdir(parents=True, exist_ok=True)
    (d / CHUNK_CACHE_OWNER).write_text(f"{os.getpid()}\n")
    return d


__all__ = ["Candidate", "Hit", "KGIndex", "LinkedMention", "TripleRecord", "load_index", "run_index", "update_index"]
