"""Exact and near-duplicate detection over texts.

Takes: rows with an ``id`` and a text (a function gives the text of a row).
Makes: the rows to keep (first in id order wins) and a record per removed row
``{"id", "duplicate_of", "kind": "exact"|"near"}``.

Exact: BLAKE2b of the normalized text (NFKC, case-folded, punctuation removed, one space).
Near: MinHash (datasketch) over word 3-shingles of the normalized text with LSH at a Jaccard threshold;
an LSH candidate counts only if its MinHash Jaccard estimate really reaches the threshold.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable

from ..errors import ConfigError

_NON_WORD = re.compile(r"[^\w\s]+")
_WS = re.compile(r"\s+")


def normalize_for_dedup(text: str) -> str:
    """NFKC, case-folded, punctuation removed, one space: texts that differ only so are duplicates."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return _WS.sub(" ", _NON_WORD.sub(" ", t)).strip()


def exact_key(text: str) -> bytes:
    return hashlib.blake2b(normalize_for_dedup(text).encode(), digest_size=16).digest()


def shingles(text: str, k: int = 3) -> set[bytes]:
    words = normalize_for_dedup(text).split()
    if len(words) <= k:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + k]).encode() for i in range(len(words) - k + 1)}


def check_lsh(threshold: float, num_perm: int, key: str) -> None:
    """:class:`ConfigError` (naming the config ``key``) when MinHash LSH cannot work at ``threshold`` with
    ``num_perm`` permutations (a high threshold needs more permutations); called before any work."""
    from datasketch import MinHashLSH

    try:
        MinHashLSH(threshold=threshold, num_perm=num_perm)
    except ValueError as e:
        raise ConfigError(f"{key}={threshold} with dedup.num_perm={num_perm}: MinHash LSH cannot index at this "
                          f"threshold ({e}); lower the threshold or raise dedup.num_perm (e.g. 128)") from e


class NearDupIndex:
    """MinHash LSH over texts: ``add(key, text)`` then ``query(text)`` -> keys at or above the threshold."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, seed: int = 1):
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.hashes: dict[str, object] = {}
        self._perms = None

    def minhash(self, text: str):
        from datasketch import MinHash

        if self._perms is None:
            self._perms = MinHash(num_perm=self.num_perm, seed=self.seed).permutations
        # Permutations made once and shared (building them per text dominated the run time); crc32 is a
        # fast, deterministic 32-bit hash (datasketch's default is sha1 in Python).
        m = MinHash(num_perm=self.num_perm, seed=self.seed, hashfunc=zlib.crc32, permutations=self._perms,
                    scheme="affine32")
        m.update_batch(list(shingles(text)))
        return m

    def add(self, key: str, text: str, mh=None) -> None:
        mh = mh if mh is not None else self.minhash(text)
        self.lsh.insert(key, mh)
        self.hashes[key] = mh

    def query(self, text: str, mh=None) -> list[tuple[str, float]]:
        mh = mh if mh is not None else self.minhash(text)
        hits = []
        for key in self.lsh.query(mh):
            j = mh.jaccard(self.hashes[key])
            if j >= self.threshold:
                hits.append((key, j))
        return sorted(hits, key=lambda h: (-h[1], h[0]))


def dedup(rows: Iterable[dict], text: Callable[[dict], str], *, exact: bool = True, near: bool = True,
          threshold: float = 0.85, num_perm: int = 64) -> tuple[list[dict], list[dict]]:
    """Keep the first of each group of (near-)duplicates, in id order."""
    kept: list[dict] = []
    removed: list[dict] = []
    seen: dict[bytes, str] = {}
    index = NearDupIndex(threshold, num_perm) if near else None
    for row in sorted(rows, key=lambda r: r["id"]):
        t = text(row)
        if exact:
            k = exact_key(t)
            if k in seen:
                removed.append({"id": row["id"], "duplicate_of": seen[k], "kind": "exact"})
                continue
            seen[k] = row["id"]
        if index is not None:
            mh = index.minhash(t)
            hits = index.query(t, mh)
            if hits:
                removed.append({"id": row["id"], "duplicate_of": hits[0][0], "kind": "near",
                                "jaccard": round(hits[0][1], 3)})
                continue
            index.add(row["id"], t, mh)
        kept.append(row)
    return kept, removed


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) of datasketch's MinHashLSH at ``threshold`` (what :class:`NearDupIndex` uses)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def minhasher(num_perm: int, seed: int = 1) -> Callable[[str], object]:
    """``text -> hash values`` (uint32 array) of :meth:`NearDupIndex.minhash` with these settings."""
    index = NearDupIndex(0.5, num_perm, seed)

    def fn(text: str):
        return index.minhash(text).hashvalues
    return fn


class BandIndex:
    """The query side of :class:`NearDupIndex` over many MinHashes at once (numpy arrays of hash values):
    :meth:`any_hit` says for each query whether some indexed MinHash shares a whole LSH band with it
    (datasketch's candidates) and reaches ``threshold`` in estimated Jaccard (the same test, the same
    float). Bands are found by a 64-bit hash of their values, then compared value for value."""

    _MUL = 0x100000001B3

    def __init__(self, hashes, threshold: float, num_perm: int):
        import numpy as np

        self.threshold, self.num_perm = threshold, num_perm
        self.b, self.r = lsh_params(threshold, num_perm)
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
        self.bands = []
        for j in range(self.b):
            k = self._band_keys(self.hashes, j)
            order = np.argsort(k, kind="stable")
            self.bands.append((k[order], order))

    def _band_keys(self, h, j: int):
        import numpy as np

        out = np.zeros(len(h), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for c in range(j * self.r, (j + 1) * self.r):
                out = out * np.uint64(self._MUL) + h[:, c].astype(np.uint64)
        return out

    def any_hit(self, queries):
        import numpy as np

        q = np.ascontiguousarray(queries, dtype=np.uint32)
        hit = np.zeros(len(q), dtype=bool)
        if not len(self.hashes) or not len(q):
            return hit
        qs, hs = [], []
        for j, (keys, order) in enumerate(self.bands):
            kq = self._band_keys(q, j)
            lo = np.searchsorted(keys, kq, side="left")
            n = np.searchsorted(keys, kq, side="right") - lo
            sel = np.flatnonzero(n)
            if not len(sel):
                continue
            c = n[sel]
            starts = np.repeat(lo[sel] - np.concatenate([[0], np.cumsum(c)[:-1]]), c) + np.arange(int(c.sum()))
            qi, hi = np.repeat(sel, c), order[starts]
            band = slice(j * self.r, (j + 1) * self.r)
            same = (q[qi, band] == self.hashes[hi, band]).all(axis=1)
            qs.append(qi[same])
            hs.append(hi[same])
        if not qs:
            return hit
        pairs = np.unique(np.stack([np.concatenate(qs), np.concatenate(hs)], axis=1), axis=0)
        for a in range(0, len(pairs), 200_000):
            p = pairs[a:a + 200_000]
            jac = np.count_nonzero(q[p[:, 0]] == self.hashes[p[:, 1]], axis=1) / self.num_perm
            hit[p[jac >= self.threshold, 0]] = True
        return hit
