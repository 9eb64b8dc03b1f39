"""The data checks as a map-reduce over the graph's rows, in this process or as Ray tasks (kgllm.engine).

Takes: the shards of graph artifacts (canonical N-Triples, as :class:`~kgllm.rdf.GraphWriter` writes them), the
ontology, the check options and severities, feedback flags. Makes: :class:`DataChecks` (every violation in a
defined order, the duplicate rows, the terms of the quarantined rows, the flags found and not found) and,
block by block, the gzip members of the clean graph's shards (:func:`write_block`).

The plan (docs/scale.md, "validate"):

1. **map** (:func:`scan_block`): a block of ``block_triples`` rows of one shard is read and each row goes to
   the partition of its subject (a stable hash: the same in every process), so an entity's triples, its
   types and labels included, meet in one partition; a row whose object (an IRI or blank node) belongs to
   another partition goes there too, as a copy that only the object checks see (range, dangling
   reference: the object's types and triples are there). The rows of the predicates a check needs all at
   once (the acyclic hierarchies) also go to one more partition.
2. **reduce** (:func:`check_part`): each partition builds its :class:`~kgllm.validate.checks.TermIndex` and
   runs the checks, which judge only what is theirs there; it finds its duplicate rows (equal triples share
   a subject) and its flagged rows, and encodes its violations as the ``warnings.jsonl`` lines.
3. the driver merges (:func:`merge`): violations sorted by check, then row (or focus), the per-predicate
   and per-class tallies added up for ``undeclared_term``.
4. **write** (:func:`write_block`): each block again, its kept rows as one gzip member; the driver appends
   the members of a shard in block order.

One partition in this process, or as many as the cluster runs tasks at once: the result is the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import os
import pickle
import shutil
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import atomic_open, jsonl_line
from ..errors import ArtifactError
from ..log import logger
from ..rdf import graph_shards, gzip_member, iter_statements
from .checks import CHECKS, FOREIGN, OWN_BOTH, OWN_SUBJECT, CheckOptions, TermIndex, severity_of, tallies
from .feedback import Flag, flagged_rows

BLOCK_TRIPLES = 250_000


@dataclass(frozen=True)
class Block:
    """Rows ``lo`` to ``hi`` (0-based triples, blank lines not counted) of one input shard, read in one pass:
    one or more consecutive blocks of ``size`` rows (each block is one gzip member of the output)."""

    path: str
    shard: int          # index of the shard among all inputs' shards
    first: int          # global row of the shard's first triple
    lo: int
    hi: int
    size: int
    expected: int       # the triples the manifest gives the shard
    last: bool          # the shard's end: also checks the shard holds no more than ``expected``
    manifest: str

    def members(self) -> list[tuple[int, int]]:
        """The output members of these rows: ``(lo, hi)`` rows of the shard each."""
        return [(a, min(a + self.size, self.hi)) for a in range(self.lo, self.hi, self.size)] or [(0, 0)]


@dataclass(frozen=True)
class InputShard:
    graph: str
    file: str
    provenance: dict
    first: int
    triples: int


def plan(inputs: Iterable[Path], block_triples: int = BLOCK_TRIPLES, tasks: int = 1
         ) -> tuple[list[InputShard], list[Block]]:
    """The input shards (in order, with their first global row) and the reads: one per shard, or more
    (about ``tasks`` in all, each a run of whole blocks) when there are fewer shards than tasks. A read
    starts at the shard's beginning (gzip cannot seek), so fewer reads cost less."""
    graphs = [(d, graph_shards(d)) for d in inputs]
    n_shards = sum(len(s) for _d, s in graphs)
    shards, reads, row = [], [], 0
    for d, shs in graphs:
        for sh in shs:
            k = len(shards)
            n = int(sh["triples"])
            shards.append(InputShard(str(d), sh["file"], sh["provenance"], row, n))
            n_blocks = max(1, -(-n // block_triples))
            per = -(-n_blocks // max(1, min(n_blocks, -(-tasks // max(1, n_shards)))))   # blocks per read
            for lo in range(0, n_blocks * block_triples, per * block_triples):
                hi = min(n, lo + per * block_triples)
                reads.append(Block(str(sh["path"]), k, row, lo, hi, block_triples, n, hi >= n,
                                   str(Path(d) / "manifest.json")))
            row += n
    return shards, reads


def block_lines(b: Block) -> Iterator[str]:
    """The statements (``"s p o"``) of the block's rows, read from the start of its shard (gzip cannot seek:
    the rows before ``lo`` are only counted; :func:`kgllm.rdf.iter_statements` checks every line it passes)
    and, for the last block, that the shard holds the manifest's count."""
    n = 0
    for line in iter_statements(b.path):
        if n >= b.hi:
            if not b.last:
                return
        elif n >= b.lo:
            yield line
        n += 1
    if n != b.expected:
        raise ArtifactError(f"{b.path}: holds {n} triples but {b.manifest} says {b.expected}; the artifact is "
                            "damaged: rebuild it")


def key(term: str) -> int:
    """A term's place in the order of the checks' output: a hash every process computes alike (``hash()``
    is salted)."""
    return zlib.crc32(term.encode())


def owner(term: str, parts: int) -> int:
    """The partition of a subject or object: partition k holds the k-th of ``parts`` equal ranges of
    :func:`key`, so the partitions' outputs, each sorted by key, follow each other."""
    return (key(term) * parts) >> 32


# ----------------------------------------------------------------------------- map


@dataclass(frozen=True)
class ScanConfig:
    parts: int                      # subject partitions (the reduce has one more: the whole-graph predicates)
    whole: frozenset[str]           # predicates whose triples also go to the last partition


@dataclass
class Piece:
    """A block's rows for one partition: global row numbers, statements and per row who judges what."""

    rows: array = field(default_factory=lambda: array("q"))
    lines: list[str] = field(default_factory=list)
    kinds: bytearray = field(default_factory=bytearray)


def scan_block(cfg: ScanConfig, b: Block) -> list[Piece]:
    """The map: the block's rows by partition (``cfg.parts`` subject partitions, then the whole-graph one)."""
    parts = cfg.parts
    pieces = [Piece() for _ in range(parts + 1)]
    row = b.first + b.lo
    if parts == 1:   # one partition owns every row; the whole-graph checks run on it too
        p = pieces[0]
        p.lines = list(block_lines(b))
        p.rows = array("q", range(row, row + len(p.lines)))
        p.kinds = bytearray([OWN_BOTH]) * len(p.lines)
        return pieces
    crc, whole = zlib.crc32, cfg.whole   # owner() inlined: this loop runs once per row
    for line in block_lines(b):
        s, p, o = line.split(" ", 2)
        k = (crc(s.encode()) * parts) >> 32
        kind = OWN_BOTH
        if o[0] != '"':
            j = (crc(o.encode()) * parts) >> 32
            if j != k:
                kind = OWN_SUBJECT
                q = pieces[j]
                q.rows.append(row)
                q.lines.append(line)
                q.kinds.append(FOREIGN)
        q = pieces[k]
        q.rows.append(row)
        q.lines.append(line)
        q.kinds.append(kind)
        if p in whole:
            q = pieces[parts]
            q.rows.append(row)
            q.lines.append(line)
            q.kinds.append(OWN_BOTH)
        row += 1
    return pieces


# ----------------------------------------------------------------------------- reduce


@dataclass(frozen=True)
class CheckConfig:
    ontology: Any
    options: CheckOptions
    severities: dict[str, str]
    parts: int
    flags: dict[str, Flag]
    spill: str          # a directory every task can write: each partition's violations, check by check


@dataclass
class CheckOut:
    """One check's violations in one partition: their ``warnings.jsonl`` lines in the file ``path`` (beside the
    output, so the driver never holds them all), ordered by the :func:`key` of the entity that decided where
    they were judged (the subject; the object for an object check), then row, focus and message. The
    partitions own consecutive key ranges, so their files, one after the other, are the whole order."""

    severity: str
    rows: Any                                   # int64 array: each violation's global row, -1 for none
    path: str
    messages: list[str] | None = None           # error checks: each violation's message (quarantine reasons)


def write_check(path: Path, severity: str, vs: list, rows, keys, line) -> CheckOut:
    """Write ``line(v)`` of each violation to ``path`` in (key, row, focus, message) order (``rows``: -1 for a
    violation with no triple; ``keys``: int64 arrays, one per violation)."""
    import numpy as np

    rank = np.zeros(len(vs), dtype=np.int64)   # the rowless ones among themselves: by focus, then message
    rowless = np.nonzero(rows < 0)[0].tolist()
    rowless.sort(key=lambda i: (vs[i].focus or "", vs[i].message))
    rank[rowless] = np.arange(1, len(rowless) + 1)
    order = np.lexsort((rank, rows, keys)).tolist()
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(line(vs[i]) for i in order)
    return CheckOut(severity, rows[order], str(path), [vs[i].message for i in order] if severity == "error" else None)


@dataclass
class Merged:
    """One check's violations over all partitions (in partition order), in the order of ``warnings.jsonl``."""

    severity: str
    outs: list[CheckOut]
    rows: Any
    messages: list[str] | None

    @classmethod
    def of(cls, outs: list[CheckOut]) -> Merged:
        import numpy as np

        msgs = [m for o in outs for m in o.messages] if outs[0].messages is not None else None
        return cls(outs[0].severity, outs, np.concatenate([o.rows for o in outs]), msgs)

    def __len__(self) -> int:
        return len(self.rows)

    def lines(self) -> Iterator[str]:
        """Each violation's line, in order."""
        for o in self.outs:
            with open(o.path, encoding="utf-8") as f:
                yield from f

    def write(self, fh) -> None:
        """Copy the lines to the binary file ``fh`` (in the kernel where it can: hundreds of MB at scale)."""
        for o in self.outs:
            with open(o.path, "rb") as f:
                _append(f, fh)

    def head(self, n: int) -> list[str]:
        it = self.lines()
        try:
            return list(itertools.islice(it, n))
        finally:
            it.close()


@dataclass
class PartResult:
    part: int
    checks: dict[str, CheckOut]
    rows: int = 0                                     # rows whose subject this partition owns
    duplicates: list[int] = field(default_factory=list)
    terms: dict[int, tuple[str, str, str]] = field(default_factory=dict)   # quarantined or flagged rows
    flagged: dict[int, Flag] = field(default_factory=dict)
    missing: list[Flag] = field(default_factory=list)
    predicates: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)


def whole_graph_checks(opts: CheckOptions) -> dict[str, frozenset[str]]:
    """The checks that need every triple of some predicates at once, with those predicates."""
    return {name: frozenset(preds) for name, cls in CHECKS.items() if (preds := cls.predicates(opts)) is not None}


def check_part(cfg: CheckConfig, k: int, pieces: Iterable[Piece]) -> PartResult:
    """The reduce: partition ``k``'s index, checks, duplicates and flags (``k == cfg.parts``: the partition
    of the whole-graph checks' predicates). ``pieces``: the partition's piece of every block, in order."""
    with _no_gc():
        return _check_part(cfg, k, pieces)


@contextlib.contextmanager
def _no_gc():
    """Python's cyclic garbage collector off while millions of acyclic objects (terms, tuples) are made: it
    would scan them again and again for nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check_part(cfg: CheckConfig, k: int, pieces: Iterable[Piece]) -> PartResult:
    import numpy as np

    ctx = TermIndex(cfg.ontology, cfg.options)
    for piece in pieces:
        ctx.add_lines(piece.lines, piece.rows, piece.kinds)
    ctx.finish()
    whole = set(whole_graph_checks(cfg.options))
    live = [n for n in CHECKS if severity_of(n, cfg.severities) != "off" and n != "undeclared_term"]
    if cfg.parts > 1:
        live = [n for n in live if (n in whole) == (k == cfg.parts)]
    res = PartResult(k, {})
    for name in sorted(live):   # one check at a time, written out before the next
        sev = severity_of(name, cfg.severities)
        vs = list(CHECKS[name](sev).run(ctx))
        rows, keys = _order_keys(ctx, vs, CHECKS[name].judges == "object")
        if sev == "error":
            for v, row in zip(vs, rows.tolist(), strict=True):
                if row >= 0:
                    res.terms[row] = ctx.triple(v.triple)
        res.checks[name] = write_check(Path(cfg.spill) / f"{k}.{name}.jsonl", sev, vs, rows, keys,
                                       lambda v: _line(v, ctx.triple(v.triple) if v.triple is not None else None))
    if k == cfg.parts and cfg.parts > 1:
        return res
    own = np.arange(len(ctx), dtype=np.int64) if ctx.owned is None else np.nonzero(ctx.owned)[0]
    res.rows = len(own)
    # A row equal to an earlier one is a duplicate: equal triples share their subject, so they meet here.
    # lexsort is stable and the rows are in input order: the first occurrence comes first.
    order = own[np.lexsort((ctx.O[own], ctx.P[own], ctx.S[own]))]
    s_, p_, o_ = ctx.S[order], ctx.P[order], ctx.O[order]
    dup = (s_[1:] == s_[:-1]) & (p_[1:] == p_[:-1]) & (o_[1:] == o_[:-1])
    res.duplicates = ctx.rows[order[1:][dup]].tolist()
    mine = cfg.flags if cfg.parts == 1 else {t: f for t, f in cfg.flags.items() if owner(f.s, cfg.parts) == k}
    if mine:
        rows, res.missing = flagged_rows(ctx, mine)
        for n, f in rows.items():
            g = int(ctx.rows[n])
            res.flagged[g] = f
            res.terms[g] = ctx.triple(n)
    if severity_of("undeclared_term", cfg.severities) != "off":
        res.predicates, res.classes = tallies(ctx)
    return res


def _order_keys(ctx: TermIndex, vs: list, objects: bool):
    """Each violation's global row (-1: none) and :func:`key`: of its object for an object check when the
    object is no literal (the object's partition judged it), else of its subject, or of its focus."""
    import numpy as np

    n = np.array([-1 if v.triple is None else v.triple for v in vs], dtype=np.int64)
    has = n >= 0
    rows = np.full(len(vs), -1, dtype=np.int64)
    rows[has] = ctx.rows[n[has]]
    at = n[has]
    by = ctx.S[at]
    if objects:
        by = np.where(ctx.is_literal[ctx.O[at]], by, ctx.O[at])
    keys = np.zeros(len(vs), dtype=np.int64)
    uniq, inv = np.unique(by, return_inverse=True)
    keys[has] = np.array([key(ctx.terms[t]) for t in uniq.tolist()], dtype=np.int64)[inv.reshape(-1)]
    for i in np.nonzero(~has)[0].tolist():
        keys[i] = key(vs[i].focus or "")
    return rows, keys


def _line(v, triple) -> str:
    return jsonl_line({"check": v.check, "severity": v.severity, "message": v.message, "focus": v.focus,
                       "triple": list(triple) if triple is not None else None})


# ----------------------------------------------------------------------------- merge


@dataclass
class DataChecks:
    """Every partition's results, merged."""

    results: dict[str, Merged]             # by check name (sorted)
    duplicates: set[int]
    terms: dict[int, tuple[str, str, str]]
    flagged: dict[int, Flag]
    missing: list[Flag]
    rows: int
    resumed: int = 0                       # partitions whose results a stopped run had kept


def merge(parts: list[PartResult], cfg: CheckConfig, resumed: int = 0) -> DataChecks:
    by_check: dict[str, list[CheckOut]] = {}
    for r in sorted(parts, key=lambda r: r.part):
        for name, out in r.checks.items():
            by_check.setdefault(name, []).append(out)
    sev = severity_of("undeclared_term", cfg.severities)
    if sev != "off":
        preds: dict[str, int] = {}
        classes: dict[str, int] = {}
        for r in parts:
            for src, dst in ((r.predicates, preds), (r.classes, classes)):
                for t, n in src.items():
                    dst[t] = dst.get(t, 0) + n
        import numpy as np

        vs = list(CHECKS["undeclared_term"](sev).from_tallies(cfg.ontology, preds, classes))
        keys = np.array([key(v.focus or "") for v in vs], dtype=np.int64)
        by_check["undeclared_term"] = [write_check(Path(cfg.spill) / "undeclared_term.jsonl", sev, vs,
                                                   np.full(len(vs), -1, dtype=np.int64), keys,
                                                   lambda v: _line(v, None))]
    results = {name: Merged.of(by_check[name]) for name in sorted(by_check)}
    terms: dict[int, tuple[str, str, str]] = {}
    flagged: dict[int, Flag] = {}
    missing: dict[str, Flag] = {}
    for r in parts:
        terms.update(r.terms)
        flagged.update(r.flagged)
        for f in r.missing:
            missing[f.triple_id] = f
    return DataChecks(results, {n for r in parts for n in r.duplicates}, terms, flagged,
                      sorted(missing.values(), key=lambda f: f.triple_id), sum(r.rows for r in parts), resumed)


def run(inputs: list[Path], cfg: CheckConfig, engine=None, *, block_triples: int = BLOCK_TRIPLES,
        resume: Path | None = None) -> tuple[DataChecks, list[InputShard], list[Block]]:
    """The map and the reduce: in this process (one partition, each shard read once and indexed in turn), or
    on Ray when the engine says so (``engine.config.mode == "ray"`` or an address): :func:`partitions` subject
    partitions (two per task the cluster runs at once, or one per ``PART_ROWS`` rows), and about two reads
    per task.

    ``cfg.spill``: where the partitions write their violation files; ``resume``: a directory
    (kgllm.artifacts.resume_dir, then also ``cfg.spill``) where each finished partition's result is kept
    beside them; a rerun with the same partitions takes them from there and reduces only the others
    (``DataChecks.resumed``)."""
    ray = uses_ray(engine)
    whole = frozenset().union(*whole_graph_checks(cfg.options).values())
    slots = engine.task_slots() if ray else 0
    shards, blocks = plan(inputs, block_triples, 2 * slots if ray else 1)
    n = partitions(sum(s.triples for s in shards), slots) if ray else 1
    # The violation files beside the kept results (part_name), one directory per partition count.
    spill = Path(cfg.spill) / f"checks-{n}"
    spill.mkdir(exist_ok=True)
    cfg = dataclasses.replace(cfg, spill=str(spill))
    if not ray:
        got = load_kept(resume, part_name(1, 0))
        resumed = int(got is not None)
        if got is None:
            scan = ScanConfig(1, whole)
            got = check_part(cfg, 0, (scan_block(scan, b)[0] for b in blocks))
            keep(resume, part_name(1, 0), got)
        return merge([got], cfg, resumed), shards, blocks
    cfg = dataclasses.replace(cfg, parts=n)
    have = {k: r for k in range(n + 1) if (r := load_kept(resume, part_name(n, k))) is not None}
    resumed = len(have)
    if len(have) < n + 1:
        if have:
            logger.info("validate: %d of %d partitions' checks kept by a stopped run", len(have), n + 1)
        for k, r in engine.map_reduce(_scan_task, blocks, _check_task, n + 1, shared=(ScanConfig(n, whole), cfg),
                                      desc="validate: data checks", only=[k for k in range(n + 1) if k not in have]):
            keep(resume, part_name(n, k), r)
            have[k] = r
    return merge(list(have.values()), cfg, resumed), shards, blocks


# A subject partition's share of the rows at most (on Ray): its reduce task holds their index, so the memory of
# one task stays bounded whatever the graph's size and however few CPUs run it.
PART_ROWS = 1_000_000


def partitions(rows: int, slots: int) -> int:
    """Subject partitions on Ray: two per task slot (each task's index smaller, the last ones finishing close
    together), and more for a graph of more than ``PART_ROWS`` rows per partition. So a graph gets the same
    partitions, and the same work, on 1 CPU as on 2 (or 4) when it is large, and no reduce's index outgrows
    ``PART_ROWS`` rows (plus the copies of rows whose object it owns)."""
    return max(2, 2 * slots, -(-rows // PART_ROWS))


def part_name(parts: int, k: int) -> str:
    return f"checks-{parts}/part-{k}.pickle"


def write_name(b: Block) -> str:
    """A read's written members, by its rows (the same whatever the number of reads)."""
    return f"write/{b.shard}-{b.lo}-{b.hi}.pickle"


def keep(resume: Path | None, name: str, obj) -> None:
    """Keep a finished result in the resume directory (atomically: a stop leaves it whole or absent)."""
    if resume is None:
        return
    with atomic_open(Path(resume) / name, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_kept(resume: Path | None, name: str):
    """A result a stopped run kept (None: none, or unreadable, or its violation files are gone)."""
    if resume is None:
        return None
    try:
        with open(Path(resume) / name, "rb") as f:
            got = pickle.load(f)
    except FileNotFoundError:
        return None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        logger.warning("validate: %s/%s is unreadable (%s); redoing that work", resume, name, e)
        return None
    if isinstance(got, PartResult) and not all(Path(o.path).exists() for o in got.checks.values()):
        return None
    return got


def _append(src, dst) -> None:
    """Append the file ``src`` to ``dst`` (both binary): ``os.copy_file_range`` on Linux, else a buffered copy."""
    dst.flush()
    size = os.fstat(src.fileno()).st_size
    try:
        done = 0
        while done < size:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - done)
            if n == 0:
                break
            done += n
        if done == size:
            return
        src.seek(done)
    except (AttributeError, OSError):   # no copy_file_range here, or not between these files
        src.seek(0)
    shutil.copyfileobj(src, dst, 1 << 22)


def uses_ray(engine) -> bool:
    """Ray with ``--engine ray`` or an address (as the corpus stage): an embedded instance is not worth its start
    for a graph one process checks in seconds."""
    return engine is not None and (engine.config.mode == "ray" or (engine.config.mode == "auto"
                                                                   and not engine.config.embedded))


def _scan_task(shared, b: Block) -> list[Piece]:
    return scan_block(shared[0], b)


def _check_task(shared, k: int, pieces) -> PartResult:
    return check_part(shared[1], k, pieces)


# ----------------------------------------------------------------------------- write


@dataclass(frozen=True)
class WriteTask:
    block: Block
    skip: tuple[int, ...]       # global rows not to keep (duplicates and quarantined), sorted
    text: bool                  # also return the kept statements (for SHACL)


def write_block(_shared, t: WriteTask) -> list[tuple[bytes, int, str | None]]:
    """The kept rows of each block of a read as one gzip member (level 3, mtime 0: the same bytes wherever it
    ran and however the blocks were grouped into reads), with their count and, when asked, their text."""
    skip = set(t.skip)
    b = t.block
    lines = block_lines(b)
    out = []
    row = b.first + b.lo
    for lo, hi in b.members():
        kept = []
        for line in itertools.islice(lines, hi - lo):
            if row not in skip:
                kept.append(line)
            row += 1
        text = (" .\n".join(kept) + " .\n") if kept else ""
        data = gzip_member(text.encode()) if kept else b""
        out.append((data, len(kept), text if t.text else None))
    for _ in lines:   # the shard's end: block_lines checks its count
        pass
    return out


def write_tasks(blocks: list[Block], skip: Iterable[int], text: bool) -> list[WriteTask]:
    rows = sorted(skip)
    out = []
    for b in blocks:
        lo, hi = b.first + b.lo, b.first + b.hi
        a, z = bisect_right(rows, lo - 1), bisect_right(rows, hi - 1)
        out.append(WriteTask(b, tuple(rows[a:z]), text))
    return out


def shard_of(shards: list[InputShard], row: int) -> InputShard:
    return shards[bisect_right([s.first for s in shards], row) - 1]
