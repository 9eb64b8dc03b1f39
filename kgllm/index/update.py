"""Incremental index update: bring a loaded index to the triples of new graph artifacts, embedding only what
changed.

Takes: a :class:`~kgllm.index.facade.KGIndex` loaded from an index artifact (its settings equal to those of
the update: :func:`kgllm.index.facade.update_index` checks that and rebuilds otherwise), the graph artifacts
it should now hold, and the corpus texts to embed (a corpus artifact's ``triples.jsonl``, or none).
Makes: a new ``KGIndex`` (same class) and a report ``{"mode", "added", "removed", "kept", "reprovenanced",
"texts_encoded", "vectors_reused", ...}``. The old index object is consumed (its graph is edited).

How: one pass over the new graphs finds, by triple id, the triples that are gone (deleted from the graph
index: :meth:`~kgllm.index.graph.GraphIndex.delete`), new (:meth:`~kgllm.index.graph.GraphIndex.upsert`,
grouped by shard provenance) and kept (whose provenance is updated if their shard changed). The graph is
then compacted (sorted terms and rows, as a build makes them), the lexicon entries of every origin the
change touched are recomputed on it (and those of terms that left the graph dropped), and the vectors are
made as a build makes them, except that every triple text or entity description equal to the one the old
index embedded for the same key keeps its old vector. So the result answers exactly as a full rebuild
(same triple ids, lexicon and vector keys; vectors equal up to float rounding of batched encoding) while
the expensive part, encoding, runs only on new and changed texts.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..log import logger, progress
from ..rdf import DBR, count_triples, iter_graph
from .graph import distinct_triples
from .lexicon import LEXICAL_PREDICATES

_DBR_PREFIX = "<" + DBR


def snapshot_vectors(index) -> dict[str, dict[str, tuple[str, np.ndarray]]]:
    """Per vector kind, every live key with the text it stands for in ``index`` and its stored vector."""
    out = {}
    g = index.graph
    for kind, vi in sorted(index.vectors.items()):
        keys = sorted(vi.pos)
        if kind == "triple":
            texts = [index.triple_text(g.row_of(k)) for k in progress(keys, desc="index: old texts", unit="triple")]
        elif kind == "entity":
            texts = [index.entity_text(g.term_id(k)) for k in progress(keys, desc="index: old texts", unit="entity")]
        else:
            continue  # not made by the index stage: not reused
        vecs = vi.vectors_of(keys)
        out[kind] = {k: (t, vecs[i]) for i, (k, t) in enumerate(zip(keys, texts, strict=True))}
    return out


def apply_update(base, graph_dirs: Sequence[str | Path], corpus_texts: Mapping[str, str]) -> tuple[object, dict]:
    """Update ``base`` (a loaded index) to the triples of ``graph_dirs``; returns the new index and the report."""
    t0 = time.perf_counter()
    reuse = snapshot_vectors(base) if base.config.vector.enabled else {}
    g, lex = base.graph, base.lexicon
    old_terms = set(g.terms)

    # One pass over the new graphs: kept, new (grouped by provenance) and, by elimination, gone.
    seen: set[int] = set()
    new_by_src: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    provs: dict[int, dict] = {}
    moved: dict[int, list[int]] = defaultdict(list)
    kept = distinct = 0

    def source_id(prov: dict) -> int:
        si = g.source_id(prov)
        provs[si] = prov
        return si

    counts = {"read": 0}
    pairs = progress(iter_graph(list(graph_dirs), with_provenance=True), desc="index: diff",
                     total=count_triples(list(graph_dirs)), unit="triple")
    for s, p, o, t, si in distinct_triples(pairs, source_id, counts, seen):
        distinct += 1
        r = g.row_of(t)
        if r is not None and g.alive(r):
            kept += 1
            if g.row_source_id(r) != si:
                moved[si].append(r)
        else:
            new_by_src[si].append((s, p, o))
    read, dup = counts["read"], counts["read"] - distinct
    gone = [r for r in range(g.n_rows) if g.alive(r) and g.row_tid(r) not in seen]

    # The graph: delete, upsert, re-provenance; the lexicon origins touched, found as KGIndex.delete/upsert do.
    lexical = {i for i in (g.term_id(p) for p in LEXICAL_PREDICATES) if i is not None}
    origins = lex.origins_of_rows(g, [r for r in gone if g.row(r)[1] in lexical])  # before the edges go
    removed = g.delete(gone)
    added_rows: list[int] = []
    for si_, triples in sorted(new_by_src.items()):
        rows, _present = g.upsert(triples, provs[si_])
        added_rows += rows
    origins |= lex.origins_of_rows(g, [r for r in added_rows if g.triple_terms(r)[1] in LEXICAL_PREDICATES])
    reprov = sum(g.set_source(rows, provs[si_]) for si_, rows in sorted(moved.items()))

    # Compact (terms and rows sorted as a build sorts them), then recompute the touched lexicon entries on it.
    new = g.compacted()
    new_terms = set(new.terms)
    vanished = old_terms - new_terms
    origins |= {t for t in new_terms - old_terms if t.startswith(_DBR_PREFIX)}  # new IRI-name entries
    lex.remove_origins(vanished)
    lex.update_origins(new, origins - vanished)

    idx = type(base)(new, lex, base.settings, corpus_texts=dict(corpus_texts), engine=base.engine)
    idx.counts.update(graph_read=read, graph_duplicates=dup, graph_triples=len(new.a["tids"]))
    if corpus_texts:
        idx.counts["corpus_texts"] = len(corpus_texts)
    timings = {"diff_s": round(time.perf_counter() - t0, 3)}
    if idx.config.vector.enabled:
        t1 = time.perf_counter()
        idx._build_vectors(reuse=reuse)
        timings["vectors_s"] = round(time.perf_counter() - t1, 3)
    idx.counts["timings"] = timings
    encoded = sum(v for k, v in idx.counts.items() if k.endswith("_texts_encoded"))
    reused = sum(v for k, v in idx.counts.items() if k.endswith("_vectors_reused"))
    report = {"mode": "update", "added": len(added_rows), "removed": removed, "kept": kept,
              "reprovenanced": reprov, "lexicon_origins_recomputed": len(origins - vanished),
              "terms_gone": len(vanished), "texts_encoded": encoded, "vectors_reused": reused,
              **{k: idx.counts[k] for k in sorted(idx.counts) if k.endswith(("_texts_encoded", "_vectors_reused"))}}
    logger.info("index update: %d triples added, %d removed, %d kept; %d texts embedded, %d vectors reused",
                report["added"], removed, kept, encoded, reused)
    return idx, report


__all__ = ["apply_update", "snapshot_vectors"]
