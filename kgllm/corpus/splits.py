"""Entity-level train/validation/test splits with a leakage check.

Takes: the rows of each part (pretrain, sft, dpo), each with ``entity`` and its triple ids
(``triple_ids``, or for documents the ids of their sentences).
Makes: rows per part and split, and the leakage report ``leakage.json``::

    {"split_by": "entity", "held_out": ["validation", "test"],
     "removed": {"triple_overlap": {part: n}, "near_duplicate": {part: n}, "held_out_cross_split": {part: n}},
     "leaks": {"triple_ids": [...], "near_duplicates": [...]}, "counts": {...}}

An entity's split is a hash of (seed, entity), so it does not depend on input order or on other
entities. Two-hop questions cross entity boundaries: a held-out two-hop row that uses a fact of a train
entity is removed (``held_out_cross_split``). Then a train row is removed (and counted) when it uses a
triple that a validation/test row uses or when its text is a near-duplicate of a held-out text.
``leaks.triple_ids`` is then recomputed from the final splits: it is empty unless something is wrong.
``leaks.near_duplicates`` is empty by construction: the near-duplicate check is the LSH query that
removed each train row with a hit, and repeating it on the kept rows could find nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from ..log import progress
from .dedup import NearDupIndex

SPLITS = ("train", "validation", "test")
HELD_OUT = ("validation", "test")


def split_of(entity: str, validation: float, test: float, seed: int = 0) -> str:
    h = int.from_bytes(hashlib.blake2b(f"{seed}\x1f{entity}".encode(), digest_size=8).digest(), "big") / 2 ** 64
    if h < test:
        return "test"
    if h < test + validation:
        return "validation"
    return "train"


def row_triple_ids(row: dict) -> list[str]:
    if "triple_ids" in row:
        return row["triple_ids"]
    return [t for s in row.get("sentences", ()) for t in s["triple_ids"]]


def row_text(part: str, row: dict) -> str:
    if part == "pretrain":
        return row["text"]
    if part == "sft":
        return row["prompt"] + " " + row["completion"]
    return row["prompt"] + " " + row["chosen"]


def split_rows(parts: dict[str, list[dict]], *, validation: float, test: float, seed: int,
               near_dup_threshold: float = 0.8, num_perm: int = 64) -> tuple[dict, dict]:
    out: dict[str, dict[str, list[dict]]] = {p: {s: [] for s in SPLITS} for p in parts}
    for part, rows in parts.items():
        for r in rows:
            out[part][split_of(r["entity"], validation, test, seed)].append(r)

    # Rows that cross entities (two-hop questions use the middle entity's facts) must not decide for the
    # entities they borrow from: a held-out two-hop row that uses a train entity's fact is dropped, rather
    # than that entity's train document and questions.
    def own(r: dict) -> bool:
        return r.get("type") != "two_hop"

    train_own = {t for part in out for r in out[part]["train"] if own(r) for t in row_triple_ids(r)}
    removed_held: Counter = Counter()
    for part in out:
        for s in HELD_OUT:
            kept_held = [r for r in out[part][s] if own(r) or not any(t in train_own for t in row_triple_ids(r))]
            removed_held[part] += len(out[part][s]) - len(kept_held)
            out[part][s] = kept_held
    held_ids = {t for part in out for s in HELD_OUT for r in out[part][s] for t in row_triple_ids(r)}
    index = _held_out_index(out, near_dup_threshold, num_perm)
    removed_overlap: Counter = Counter()
    removed_near: Counter = Counter()
    for part in out:
        kept = []
        for r in progress(out[part]["train"], desc=f"leakage check ({part})", unit="row"):
            if any(t in held_ids for t in row_triple_ids(r)):
                removed_overlap[part] += 1
                continue
            if index.query(row_text(part, r)):
                removed_near[part] += 1
            else:
                kept.append(r)
        out[part]["train"] = kept
    for part in out:
        for s in SPLITS:
            out[part][s].sort(key=lambda r: r["id"])

    report = leakage_report(out)
    report["removed"] = {"triple_overlap": dict(sorted(removed_overlap.items())),
                         "near_duplicate": dict(sorted(removed_near.items())),
                         "held_out_cross_split": dict(sorted((k, v) for k, v in removed_held.items() if v))}
    return out, report


def _held_out_index(out: dict[str, dict[str, list[dict]]], threshold: float, num_perm: int) -> NearDupIndex:
    index = NearDupIndex(threshold, num_perm)
    for part in out:
        for s in HELD_OUT:
            for r in out[part][s]:
                index.add(f"{part}/{s}/{r['id']}", row_text(part, r))
    return index


def leakage_report(out: dict[str, dict[str, list[dict]]]) -> dict:
    """The report on the final splits: held-out triple ids that appear in train (should be none)."""
    held_ids = {t for part in out for s in HELD_OUT for r in out[part][s] for t in row_triple_ids(r)}
    train_ids = {t for part in out for r in out[part]["train"] for t in row_triple_ids(r)}
    entities = {s: len({r["entity"] for part in out for r in out[part][s]}) for s in SPLITS}
    return leakage_report_from(leaks=sorted(held_ids & train_ids), entities=entities,
                               rows={part: {s: len(out[part][s]) for s in SPLITS} for part in out},
                               held_out_triple_ids=len(held_ids), train_triple_ids=len(train_ids))


def leakage_report_from(*, leaks: list[str], entities: dict[str, int], rows: dict[str, dict[str, int]],
                        held_out_triple_ids: int, train_triple_ids: int) -> dict:
    """The report from its figures (:func:`leakage_report`, and the sharded path of kgllm.corpus.shards)."""
    return {
        "split_by": "entity",
        "held_out": list(HELD_OUT),
        # No near-duplicates: split_rows removed every train row whose LSH query hit a held-out text.
        "leaks": {"triple_ids": leaks, "near_duplicates": []},
        "counts": {"entities": entities, "rows": rows,
                   "held_out_triple_ids": held_out_triple_ids, "train_triple_ids": train_triple_ids},
    }
