"""Graph index: the triples of one or more graph artifacts as numpy arrays, with CSR adjacency.

Takes: triples as N-Triples term strings with a provenance record each (``kgllm.rdf.iter_graph``).
Makes: a directory of ``.npy`` arrays plus two text/JSON files, loaded back with ``np.load(mmap_mode="r")``::

    terms.txt          every distinct term (N-Triples form), one per line, sorted: the line number is the term id
    triples.npy        int32 (n, 3): s, p, o term ids of each triple row, rows sorted by (s, p, o)
    tids.npy           uint64 (n,): the triple id (kgllm.rdf.triple_id) of each row
    source.npy         int32 (n,): index into sources.json (the graph shard's provenance) of each row
    alive.npy          bool (n,): False for deleted rows (tombstones; removed at the next save)
    out_indptr.npy     int64 (terms+1,) CSR over edges whose object is an IRI or blank node, by subject ...
    out_nbr.npy, out_pred.npy, out_row.npy    ... neighbour term id, predicate term id, triple row
    in_indptr.npy, in_nbr.npy, in_pred.npy, in_row.npy   the same by object (reverse edges)
    sources.json       the provenance records

Ids come from the sorted term strings, so they do not depend on input order (as PyKEEN's
``TriplesFactory``). Literal objects are kept as triples but are not graph nodes (no edges), so
neighbourhoods, paths and PageRank run over entities only.

Upsert appends rows and keeps the new edges in a small in-memory delta adjacency (no CSR rebuild);
delete sets tombstones. ``compacted`` (and ``save``, which writes it) merges both into fresh sorted arrays:
the same arrays a build from the same live triples makes.
"""

from __future__ import annotations

import json
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..artifacts import atomic_open, atomic_write_json
from ..errors import InputError
from ..log import progress
from ..rdf import triple_id_int

_ARRAYS = ("triples", "tids", "source", "alive", "out_indptr", "out_nbr", "out_pred", "out_row",
           "in_indptr", "in_nbr", "in_pred", "in_row")


def is_node_term(term: str) -> bool:
    """IRIs and blank nodes are graph nodes; literals are not."""
    return term.startswith("<") or term.startswith("_:")


def distinct_triples(pairs: Iterable[tuple[tuple[str, str, str], dict]], source_id: Callable[[dict], int],
                     counts: dict, seen: set[int] | None = None) -> Iterator[tuple[str, str, str, int, int]]:
    """Each distinct triple of ``((s, p, o), provenance)`` pairs once, first occurrence first, as ``(s, p, o,
    triple id as int, source id)``. ``source_id`` maps a provenance to its id; readers yield one provenance
    object per shard, so it runs once per shard. ``counts["read"]`` is set to the pairs read when the pairs
    run out; ``seen`` (the ids yielded) may be the caller's."""
    seen = set() if seen is None else seen
    read = 0
    last_prov, si = None, -1
    try:
        for (s, p, o), prov in pairs:
            read += 1
            t = triple_id_int(s, p, o)
            if t in seen:
                continue
            seen.add(t)
            if prov is not last_prov:
                si = source_id(prov)
                last_prov = prov
            yield s, p, o, t, si
    finally:
        counts["read"] = read


def tid_int(tid: str) -> int:
    return int(tid, 16)


def tid_hex(v: int) -> str:
    return f"{int(v):016x}"


class GraphIndex:
    """Triples + CSR adjacency. Term ids index ``terms``; a *row* indexes ``triples``."""

    def __init__(self, terms: list[str], arrays: dict[str, np.ndarray], sources: list[dict]):
        self.terms = terms
        self.a = arrays
        self.sources = sources
        self._term_ids: dict[str, int] | None = None
        self._row_of: dict[int, int] | None = None
        self._alive = np.array(arrays["alive"], dtype=bool)  # writable copy (mmap is read-only)
        # Rows added by upsert since the arrays were built: kept in Python lists until save().
        self._new_rows: list[tuple[int, int, int]] = []
        self._new_tids: list[int] = []
        self._new_src: list[int] = []
        self._delta_out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        self._delta_in: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        self._ppr_matrix = None
        self._ppr_key: tuple = ()
        self._source_keys: dict[str, int] | None = None   # provenance (canonical JSON) -> index in sources

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, triples: Iterable[tuple[tuple[str, str, str], dict]], total: int | None = None
              ) -> tuple[GraphIndex, dict]:
        """Build from ``((s, p, o), provenance)`` pairs. Returns the index and counts
        (``read``, ``duplicates``, ``triples``); a triple seen twice (in two inputs) is kept once."""
        src_keys: dict[str, int] = {}
        sources: list[dict] = []

        def source_id(prov: dict) -> int:
            key = json.dumps(prov, sort_keys=True, default=str)
            if key not in src_keys:
                src_keys[key] = len(sources)
                sources.append(prov)
            return src_keys[key]

        # Terms are interned as they come (one string per distinct term, ids in order of appearance) and rows
        # kept as machine integers: the memory is the distinct terms', not three strings per triple. A triple
        # read twice (in two inputs) is dropped afterwards, its first occurrence kept, by its id in an array
        # (8 bytes a row, where a set of the ids seen held about 70).
        ids: dict[str, int] = {}
        flat, tids, srcs = array("i"), array("Q"), array("i")
        last_prov, si = None, -1
        for (s, p, o), prov in progress(triples, desc="index: read triples", total=total, unit="triple"):
            if prov is not last_prov:   # readers yield one provenance object per shard
                si = source_id(prov)
                last_prov = prov
            for x in (s, p, o):
                i = ids.get(x)
                if i is None:
                    i = ids[x] = len(ids)
                flat.append(i)
            tids.append(triple_id_int(s, p, o))
            srcs.append(si)
        read = len(tids)
        tri_in = np.frombuffer(flat, dtype=np.int32).reshape(read, 3)
        tid_in, src_in = np.frombuffer(tids, dtype=np.uint64), np.frombuffer(srcs, dtype=np.int32)
        if read:
            first = np.unique(tid_in, return_index=True)[1]   # each id's first row (a stable sort)
            if len(first) < read:
                keep = np.sort(first)
                tri_in, tid_in, src_in = tri_in[keep], tid_in[keep], src_in[keep]
                # Sources in order of first use among the rows kept (a shard of duplicates only has none).
                used = _first_use(src_in)
                src_in = _renumber(src_in, used, len(sources))
                sources = [sources[i] for i in used.tolist()]
        n = len(tid_in)
        dup = read - n
        # Term ids in sorted order of the terms (as the arrays have always been laid out).
        seen_order = list(ids)
        order = sorted(range(len(seen_order)), key=seen_order.__getitem__)
        terms = [seen_order[i] for i in order]
        del seen_order
        final = np.empty(len(order), dtype=np.int32)
        final[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
        del order
        for i, term in enumerate(terms):
            ids[term] = i
        tri = final[tri_in] if n else np.empty((0, 3), dtype=np.int32)
        del tri_in, flat, final
        idx = cls(terms, _compact_arrays(terms, tri, tid_in.copy(), src_in.copy(), np.ones(n, dtype=bool)), sources)
        idx._term_ids = ids
        return idx, {"read": read, "duplicates": dup, "triples": n}

    # ------------------------------------------------------------------ persistence

    def compacted(self) -> GraphIndex:
        """A new index of the live rows only, as :meth:`build` makes it: terms sorted (so term ids do not
        depend on the order of updates), rows sorted by (s, p, o), fresh CSR arrays, no delta, only the
        sources some row uses."""
        tri, tids, src, alive = self._all_rows()
        everything = not self._new_rows and bool(alive.all())
        if not everything:
            tri, tids, src = tri[alive], tids[alive], src[alive]
        used = np.unique(tri.ravel()) if len(tri) else np.zeros(0, dtype=np.int64)
        # Sources in order of first use; unused ones (every row of a shard deleted) are dropped.
        src_order = _first_use(src)
        if everything and len(tri) and len(used) == len(self.terms) and len(src_order) == len(self.sources) \
                and bool((src_order == np.arange(len(src_order))).all()):
            # Already what this would make (a fresh build: every term and source used, in order): no copy of the
            # terms, which at 4M triples was the index stage's peak memory.
            return self
        old_terms = [self.terms[i] for i in used]
        order = sorted(range(len(old_terms)), key=old_terms.__getitem__)
        terms = [old_terms[i] for i in order]
        remap = np.zeros(len(self.terms), dtype=np.int32)
        remap[used[order]] = np.arange(len(terms), dtype=np.int32)
        arrays = _compact_arrays(terms, remap[tri] if len(tri) else tri, tids,
                                 _renumber(src, src_order, len(self.sources)), np.ones(len(tids), dtype=bool))
        out = GraphIndex(terms, arrays, [self.sources[i] for i in src_order.tolist()])
        out._term_ids = {t: i for i, t in enumerate(terms)}
        return out

    def save(self, d: str | Path) -> dict:
        """Write the compacted index (deleted rows dropped, upserted rows merged) into ``d``."""
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        c = self.compacted()
        with atomic_open(d / "terms.txt") as f:
            for t in c.terms:
                f.write(t + "\n")
        for name in _ARRAYS:
            with atomic_open(d / f"{name}.npy", "wb") as f:
                np.save(f, c.a[name])
        atomic_write_json(d / "sources.json", c.sources)
        return {"terms": len(c.terms), "triples": int(len(c.a["tids"])), "edges": int(len(c.a["out_nbr"]))}

    @classmethod
    def load(cls, d: str | Path, mmap: bool = True) -> GraphIndex:
        d = Path(d)
        if not (d / "terms.txt").exists():
            raise InputError(f"{d}: not a graph index (no terms.txt); build it with `kgllm index`")
        with open(d / "terms.txt", encoding="utf-8") as f:
            terms = f.read().split("\n")[:-1]
        arrays = {n: np.load(d / f"{n}.npy", mmap_mode="r" if mmap else None) for n in _ARRAYS}
        sources = json.loads((d / "sources.json").read_text("utf-8"))
        return cls(terms, arrays, sources)

    # ------------------------------------------------------------------ lookups

    @property
    def n_rows(self) -> int:
        return len(self.a["tids"]) + len(self._new_tids)

    @property
    def n_live(self) -> int:
        return int(self._alive.sum())

    def term_id(self, term: str) -> int | None:
        if self._term_ids is None:
            self._term_ids = {t: i for i, t in enumerate(self.terms)}
        return self._term_ids.get(term)

    def _intern(self, term: str) -> int:
        i = self.term_id(term)
        if i is None:
            i = len(self.terms)
            self.terms.append(term)
            self._term_ids[term] = i
        return i

    def row(self, r: int) -> tuple[int, int, int]:
        n0 = len(self.a["tids"])
        if r < n0:
            s, p, o = self.a["triples"][r]
            return int(s), int(p), int(o)
        return self._new_rows[r - n0]

    def row_tid(self, r: int) -> int:
        n0 = len(self.a["tids"])
        return int(self.a["tids"][r]) if r < n0 else self._new_tids[r - n0]

    def row_source(self, r: int) -> dict:
        return self.sources[self.row_source_id(r)]

    def row_source_id(self, r: int) -> int:
        """Index into :attr:`sources` of row ``r``'s provenance."""
        n0 = len(self.a["tids"])
        return int(self.a["source"][r]) if r < n0 else self._new_src[r - n0]

    def source_id(self, provenance: dict) -> int:
        """Index of ``provenance`` in :attr:`sources` (appended when new)."""
        key = json.dumps(provenance, sort_keys=True, default=str)
        if self._source_keys is None or len(self._source_keys) != len(self.sources):
            self._source_keys = {json.dumps(s, sort_keys=True, default=str): i for i, s in enumerate(self.sources)}
        i = self._source_keys.get(key)
        if i is None:
            i = self._source_keys[key] = len(self.sources)
            self.sources.append(provenance)
        return i

    def set_source(self, rows: Iterable[int], provenance: dict) -> int:
        """Give these rows another provenance (the same triple now comes from another shard); returns how
        many changed."""
        si = self.source_id(provenance)
        n0 = len(self.a["tids"])
        changed = 0
        for r in rows:
            if self.row_source_id(r) == si:
                continue
            if r < n0:
                if not self.a["source"].flags.writeable:  # memory-mapped: copy once, then edit
                    self.a["source"] = np.array(self.a["source"])
                self.a["source"][r] = si
            else:
                self._new_src[r - n0] = si
            changed += 1
        return changed

    def row_of(self, tid: str | int) -> int | None:
        """Row of a triple id (hex string or int); None if unknown. Deleted rows are still found."""
        if self._row_of is None:
            self._row_of = {int(t): i for i, t in enumerate(self.a["tids"])}
            n0 = len(self.a["tids"])
            self._row_of.update({t: n0 + i for i, t in enumerate(self._new_tids)})
        return self._row_of.get(tid_int(tid) if isinstance(tid, str) else int(tid))

    def alive(self, r: int) -> bool:
        return bool(self._alive[r])

    def triple_terms(self, r: int) -> tuple[str, str, str]:
        s, p, o = self.row(r)
        return self.terms[s], self.terms[p], self.terms[o]

    def rows_with_predicates(self, preds: Sequence[str]) -> np.ndarray:
        """Live rows whose predicate is one of ``preds`` (term strings)."""
        pids = [i for i in (self.term_id(p) for p in preds) if i is not None]
        tri, _, _, alive = self._all_rows()
        if not pids or not len(tri):
            return np.zeros(0, dtype=np.int64)
        return np.nonzero(np.isin(tri[:, 1], pids) & alive)[0]

    # ------------------------------------------------------------------ adjacency

    def edges(self, node: int, direction: str = "both", predicates: set[int] | None = None):
        """Live edges at ``node``: ``(neighbour, predicate, row, "out"|"in")``."""
        for dname in (("out", "in") if direction == "both" else (direction,)):
            if node < len(self.a[f"{dname}_indptr"]) - 1:
                lo, hi = int(self.a[f"{dname}_indptr"][node]), int(self.a[f"{dname}_indptr"][node + 1])
                if hi > lo:
                    nbr = self.a[f"{dname}_nbr"][lo:hi]
                    pred = self.a[f"{dname}_pred"][lo:hi]
                    rows = self.a[f"{dname}_row"][lo:hi]
                    for n, p, r in zip(nbr.tolist(), pred.tolist(), rows.tolist(), strict=True):
                        if self._alive[r] and (predicates is None or p in predicates):
                            yield n, p, r, dname
            delta = self._delta_out if dname == "out" else self._delta_in
            for n, p, r in delta.get(node, ()):
                if self._alive[r] and (predicates is None or p in predicates):
                    yield n, p, r, dname

    def degree(self, node: int) -> int:
        """Number of stored entity edges at a node (both directions; tombstones not subtracted: a prior)."""
        d = 0
        for dname in ("out", "in"):
            ip = self.a[f"{dname}_indptr"]
            if node < len(ip) - 1:
                d += int(ip[node + 1] - ip[node])
        return d + len(self._delta_out.get(node, ())) + len(self._delta_in.get(node, ()))

    def subject_rows(self, node: int) -> list[int]:
        """Live rows with ``node`` as subject, literal objects included (labels, descriptions)."""
        lo, hi = self._subject_block(node)
        n0 = len(self.a["tids"])
        return [lo + k for k in np.flatnonzero(self._alive[lo:hi]).tolist()] + \
            [n0 + i for i in self._new_subject_rows(node)]

    def subject_triples(self, node: int) -> list[tuple[int, str, str, str, int]]:
        """``(row, s, p, o, tid)`` of the live rows with ``node`` as subject, in row order: the stored ones
        read as one slice (this runs once per entity when the lexicon is built)."""
        terms, out = self.terms, []
        lo, hi = self._subject_block(node)
        if hi > lo:
            live = self._alive[lo:hi].tolist()
            tids = self.a["tids"][lo:hi].tolist()
            for k, (s, p, o) in enumerate(self.a["triples"][lo:hi].tolist()):
                if live[k]:
                    out.append((lo + k, terms[s], terms[p], terms[o], tids[k]))
        n0 = len(self.a["tids"])
        for i in self._new_subject_rows(node):
            s, p, o = self._new_rows[i]
            out.append((n0 + i, terms[s], terms[p], terms[o], self._new_tids[i]))
        return out

    def _subject_block(self, node: int) -> tuple[int, int]:
        """The stored rows of ``node`` as subject, ``lo`` to ``hi`` (deleted ones included): rows are sorted by
        subject, so they are one contiguous block."""
        ptr = getattr(self, "_subj_ptr", None)
        if ptr is None:
            # Start row of every subject term id, computed once with one vectorized search (a scalar
            # searchsorted per call would cast the whole int32 column each time).
            subj = np.asarray(self.a["triples"][:, 0], dtype=np.int64)
            ptr = self._subj_ptr = np.searchsorted(subj, np.arange(len(self.a["out_indptr"]), dtype=np.int64))
        if node + 1 < len(ptr):
            return int(ptr[node]), int(ptr[node + 1])
        return 0, 0

    def _new_subject_rows(self, node: int) -> list[int]:
        """Indices into the rows added since the build (upserts) of the live ones with ``node`` as subject."""
        n0 = len(self.a["tids"])
        return [i for i, (s, _, _) in enumerate(self._new_rows) if s == node and self._alive[n0 + i]]

    def neighbors(self, node: int, hops: int = 1, predicates: set[int] | None = None,
                  max_rows: int = 10_000) -> list[int]:
        """Rows of the live edges within ``hops`` of ``node`` (both directions), BFS order, at most ``max_rows``."""
        seen_nodes = {node}
        frontier = [node]
        rows: list[int] = []
        seen_rows: set[int] = set()
        for _ in range(hops):
            nxt = []
            for n in frontier:
                for nb, _p, r, _d in self.edges(n, predicates=predicates):
                    if r not in seen_rows:
                        seen_rows.add(r)
                        rows.append(r)
                        if len(rows) >= max_rows:
                            return rows
                    if nb not in seen_nodes:
                        seen_nodes.add(nb)
                        nxt.append(nb)
            frontier = nxt
        return rows

    def paths(self, a: int, b: int, max_len: int = 3, limit: int = 10, max_visit: int = 200_000,
              exclude: set[int] | None = None) -> list[list[int]]:
        """Up to ``limit`` shortest paths (edges in either direction) from ``a`` to ``b`` of at most
        ``max_len`` edges, each a list of rows. BFS that keeps every parent at the shortest depth.
        Edges with a predicate in ``exclude`` are not walked (e.g. rdf:type, whose class nodes are hubs
        that would connect everything through ``owl:Thing``)."""
        if a == b:
            return [[]]
        depth = {a: 0}
        parents: dict[int, list[tuple[int, int]]] = defaultdict(list)
        q = deque([a])
        found = False
        while q and len(depth) < max_visit:
            n = q.popleft()
            dn = depth[n]
            if dn >= max_len or (found and dn >= depth[b]):
                break
            for nb, p, r, _d in self.edges(n):
                if exclude and p in exclude:
                    continue
                if nb not in depth:
                    depth[nb] = dn + 1
                    parents[nb].append((n, r))
                    if nb == b:
                        found = True
                    else:
                        q.append(nb)
                elif depth[nb] == dn + 1:
                    parents[nb].append((n, r))
        if b not in depth:
            return []
        out: list[list[int]] = []

        def walk(n: int, acc: list[int]) -> None:
            if len(out) >= limit:
                return
            if n == a:
                out.append(list(reversed(acc)))
                return
            for pn, r in parents[n]:
                walk(pn, acc + [r])

        walk(b, [])
        return out

    def ppr(self, seeds: Sequence[int], k: int = 20, alpha: float = 0.15, iters: int = 50, tol: float = 1e-8,
            exclude: set[int] | None = None) -> list[tuple[int, float]]:
        """Personalized PageRank from ``seeds`` by power iteration over the live, undirected entity graph
        (CSR sparse matrix-vector products). ``alpha`` is the restart probability; edges with a predicate in
        ``exclude`` are left out. Returns the top ``k`` nodes with their scores, seeds included."""
        import scipy.sparse as sp

        n = len(self.terms)
        key = tuple(sorted(exclude or ()))
        if self._ppr_matrix is None or self._ppr_matrix.shape[0] != n or self._ppr_key != key:
            self._ppr_key = key
            tri, _, _, alive = self._all_rows()
            node = np.fromiter((is_node_term(t) for t in self.terms), bool, n)
            m = alive & node[tri[:, 2]] if len(tri) else np.zeros(0, bool)
            if key and len(tri):
                m &= ~np.isin(tri[:, 1], key)
            s, o = tri[m, 0].astype(np.int64), tri[m, 2].astype(np.int64)
            rows = np.concatenate([s, o])
            cols = np.concatenate([o, s])
            adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, n))
            deg = np.asarray(adj.sum(axis=1)).ravel()
            inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
            # Column-stochastic transition: P[j, i] = A[i, j] / deg(i); stored transposed for r @ P.
            self._ppr_matrix = (sp.diags(inv) @ adj).tocsr()
            self._ppr_dangling = deg == 0
        seeds = [s for s in seeds if 0 <= s < n]
        if not seeds:
            return []
        e = np.zeros(n)
        e[seeds] = 1.0 / len(seeds)
        r = e.copy()
        P = self._ppr_matrix
        for _ in range(iters):
            walked = P.T @ r
            # Mass at dangling nodes (no edges) restarts at the seeds, so r stays a distribution.
            lost = r[self._ppr_dangling].sum()
            new = alpha * e + (1 - alpha) * (walked + lost * e)
            if np.abs(new - r).sum() < tol:
                r = new
                break
            r = new
        top = np.argsort(-r, kind="stable")[:k]
        return [(int(i), float(r[i])) for i in top if r[i] > 0]

    # ------------------------------------------------------------------ updates

    def upsert(self, triples: Iterable[tuple[str, str, str]], provenance: dict) -> tuple[list[int], int]:
        """Add triples (N-Triples terms). Returns the rows of the new triples and the number that were
        already present and live (not added again). A deleted triple added again gets a new row."""
        src = self.source_id(provenance)
        added: list[int] = []
        present = 0
        for s, p, o in triples:
            t = triple_id_int(s, p, o)
            r0 = self.row_of(t)
            if r0 is not None and self._alive[r0]:
                present += 1
                continue
            si, pi, oi = self._intern(s), self._intern(p), self._intern(o)
            r = self.n_rows
            self._new_rows.append((si, pi, oi))
            self._new_tids.append(t)
            self._new_src.append(src)
            self._alive = np.append(self._alive, True)
            self._row_of[t] = r
            if is_node_term(o):
                self._delta_out[si].append((oi, pi, r))
                self._delta_in[oi].append((si, pi, r))
            added.append(r)
        if added:
            self._ppr_matrix = None
        return added, present

    def delete(self, rows: Iterable[int]) -> int:
        """Tombstone rows; returns how many were live."""
        n = 0
        for r in rows:
            if self._alive[r]:
                self._alive[r] = False
                n += 1
        if n:
            self._ppr_matrix = None
        return n

    def _all_rows(self):
        tri = np.asarray(self.a["triples"])
        tids = np.asarray(self.a["tids"])
        src = np.asarray(self.a["source"])
        if self._new_rows:
            tri = np.concatenate([tri, np.array(self._new_rows, dtype=np.int32).reshape(-1, 3)])
            tids = np.concatenate([tids, np.array(self._new_tids, dtype=np.uint64)])
            src = np.concatenate([src, np.array(self._new_src, dtype=np.int32)])
        return tri, tids, src, self._alive


def _first_use(ids: np.ndarray) -> np.ndarray:
    """The distinct values of ``ids`` in order of their first occurrence."""
    if not len(ids):
        return np.zeros(0, dtype=np.int32)
    values, first = np.unique(ids, return_index=True)
    return values[np.argsort(first, kind="stable")]


def _renumber(ids: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """``ids`` (values below ``n``) renumbered to their position in ``order``."""
    if not len(ids):
        return ids
    new = np.zeros(n, dtype=np.int32)
    new[order] = np.arange(len(order), dtype=np.int32)
    return new[ids]


def _compact_arrays(terms: list[str], tri: np.ndarray, tids: np.ndarray, src: np.ndarray,
                    alive: np.ndarray) -> dict[str, np.ndarray]:
    """Sort rows by (s, p, o) and build both CSR directions over entity edges."""
    n_terms = len(terms)
    if len(tri):
        order = np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))
        tri, tids, src, alive = tri[order], tids[order], src[order], alive[order]
    node = np.fromiter((is_node_term(t) for t in terms), bool, n_terms)
    rows = np.nonzero(node[tri[:, 2]])[0] if len(tri) else np.zeros(0, dtype=np.int64)
    out = {"triples": tri.astype(np.int32), "tids": tids.astype(np.uint64), "source": src.astype(np.int32),
           "alive": alive.astype(bool)}
    for dname, key, other in (("out", 0, 2), ("in", 2, 0)):
        k = tri[rows, key].astype(np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
        order = np.argsort(k, kind="stable")
        r = rows[order]
        out[f"{dname}_indptr"] = np.concatenate([[0], np.cumsum(np.bincount(k, minlength=n_terms))]).astype(np.int64)
        out[f"{dname}_nbr"] = tri[r, other].astype(np.int32) if len(r) else np.zeros(0, dtype=np.int32)
        out[f"{dname}_pred"] = tri[r, 1].astype(np.int32) if len(r) else np.zeros(0, dtype=np.int32)
        out[f"{dname}_row"] = r.astype(np.int64)
    return out
