"""Feedback corrections for validate: the triples people flagged as wrong, read from a feedback export.

Takes: corrections directories: the ``corrections/`` graph artifact of ``kgllm feedback export`` (kind
``graph``; beside its shards, ``flags.jsonl``: one ``{"triple_id","s","p","o","reasons":[...],
"feedback_ids":[...]}`` per flagged triple), or the export itself (kind ``corpus.feedback``: its
``corrections/`` is read).
Makes: :class:`Flag` records by triple id (:func:`load_flags`) and the rows of a
:class:`~kgllm.validate.checks.TermIndex` that hold a flagged triple (:func:`flagged_rows`). The validate
stage quarantines those rows with the reason :data:`REASON`; nothing is removed from any input.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import iter_jsonl, read_manifest
from ..errors import InputError
from ..rdf import GRAPH_KIND, iter_graph, triple_id

EXPORT_KIND = "corpus.feedback"
CORRECTIONS = "corrections"
FLAGS_FILE = "flags.jsonl"
REASON = "flagged by feedback"


@dataclass
class Flag:
    """A triple people flagged, with every reason and feedback id given for it (across exports)."""

    triple_id: str
    s: str
    p: str
    o: str
    reasons: list[str] = field(default_factory=list)
    feedback_ids: list = field(default_factory=list)
    sources: list[str] = field(default_factory=list)   # the corrections artifacts that name it


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a feedback export (kind ``corpus.feedback``), not a graph to validate."""
    kind = read_manifest(path).kind
    return kind == EXPORT_KIND or kind.startswith(EXPORT_KIND + ".")


def corrections_dir(path: str | Path) -> Path:
    """The corrections graph artifact of ``path``: ``path`` itself when it is a graph artifact, its
    ``corrections/`` when it is a feedback export. Anything else is an input error naming the path."""
    p = Path(path)
    kind = read_manifest(p).kind  # ArtifactError (exit 2) when it is no artifact at all
    if kind == GRAPH_KIND:
        return p
    if (p / CORRECTIONS).is_dir():
        read_manifest(p / CORRECTIONS, GRAPH_KIND)
        return p / CORRECTIONS
    raise InputError(f"{p}: a {kind!r} artifact, not corrections; give the corrections/ graph artifact of "
                     "`kgllm feedback export` or the export directory itself")


def load_flags(paths: list[str | Path]) -> dict[str, Flag]:
    """Every flagged triple of these corrections artifacts (graph artifacts or exports), by triple id.

    The triples come from the graph's shards; ``flags.jsonl`` adds the people's reasons and feedback ids
    (a line naming a triple the graph does not hold is an input error: the artifact is inconsistent)."""
    flags: dict[str, Flag] = {}
    for path in paths:
        cdir = corrections_dir(path)
        for s, p, o in iter_graph(cdir):
            tid = triple_id(s, p, o)
            f = flags.setdefault(tid, Flag(tid, s, p, o))
            if str(cdir) not in f.sources:
                f.sources.append(str(cdir))
        fl = cdir / FLAGS_FILE
        if not fl.exists():
            continue
        hint = f"; {fl} should be written by `kgllm feedback export`"
        for n, row in iter_jsonl(fl, hint=hint):
            tid = row.get("triple_id")
            if tid not in flags or str(cdir) not in flags[tid].sources:
                raise InputError(f"{fl}:{n}: triple {tid!r} is not in the corrections graph {cdir}{hint}")
            reasons, ids = row.get("reasons") or [], row.get("feedback_ids") or []
            if not isinstance(reasons, list) or not isinstance(ids, list):
                raise InputError(f"{fl}:{n}: 'reasons' and 'feedback_ids' must be lists{hint}")
            f = flags[tid]
            f.reasons += [str(r) for r in reasons if str(r) not in f.reasons]
            f.feedback_ids += [i for i in ids if i not in f.feedback_ids]
    return flags


def flagged_rows(ctx, flags: dict[str, Flag]) -> tuple[dict[int, Flag], list[Flag]]:
    """The rows of ``ctx`` (a finished :class:`~kgllm.validate.checks.TermIndex`) holding a flagged triple
    (every occurrence; the writer counts the later ones as duplicates), and the flags the graph lacks.

    Looked up on interned term ids, per predicate: no triple id is computed for the validated triples."""
    import numpy as np

    rows: dict[int, Flag] = {}
    missing: list[Flag] = []
    by_pred: dict[int, list[tuple[int, int, Flag]]] = defaultdict(list)
    for f in flags.values():
        ids = [ctx.ids.get(t) for t in (f.s, f.p, f.o)]
        if None in ids:
            missing.append(f)
            continue
        by_pred[ids[1]].append((ids[0], ids[2], f))
    n_terms = np.int64(len(ctx.terms))
    for pi, wanted in by_pred.items():
        idx = ctx.by_pred.get(pi)
        if idx is not None:
            idx = ctx.own(idx)   # a partition's index: only the rows whose subject is its own
        if idx is None or not len(idx):
            missing.extend(f for _s, _o, f in wanted)
            continue
        # (subject, object) of each of the predicate's rows as one sorted int64 key: one binary search per flag.
        keys = ctx.S[idx].astype(np.int64) * n_terms + ctx.O[idx].astype(np.int64)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        want = np.array([si * int(n_terms) + oi for si, oi, _f in wanted], dtype=np.int64)
        lo, hi = np.searchsorted(keys, want, "left"), np.searchsorted(keys, want, "right")
        for (_si, _oi, f), a, b in zip(wanted, lo.tolist(), hi.tolist(), strict=True):
            if a == b:
                missing.append(f)
            for n in idx[order[a:b]].tolist():
                rows[int(n)] = f
    missing.sort(key=lambda f: f.triple_id)
    return rows, missing
