"""The corpus stage's work in shards: per-entity work shard by shard (in this process or as Ray tasks), then
the global steps (dedup, splits, leakage check) over compact per-row keys, then the files.

Takes: a loaded :class:`~kgllm.corpus.kg.KG`, the :class:`~kgllm.corpus.stage.CorpusConfig`, the artifact's
temp directory (``w.path``) and an :class:`~kgllm.engine.Engine`.
Makes: the corpus files of :mod:`kgllm.corpus.stage` (pretrain/sft/dpo/markup/ner splits, ``triples.jsonl``,
``leakage.json``, ``dedup.json``) and the counts, byte for byte those of the all-in-memory path
(:func:`kgllm.corpus.stage.build` + :func:`kgllm.corpus.splits.split_rows`), whatever the number of shards
and wherever they ran.

A shard is the entities (and triple subjects) whose owner (a sense's synset, else the subject itself) hashes
to it (crc32 mod the number of shards). A shard plans its entities' documents, makes their SFT and DPO rows
(a two-hop question reads the plan of an entity of another shard: planned again on demand), their
``triples.jsonl`` lines, markup and CoNLL; and per row the keys the global steps need: the id (64 bits of
its hex), the exact-duplicate key, the split, the triple ids and the MinHash. The shard's files go to a
work directory in the artifact's temp directory (removed with it, also on SIGINT/SIGTERM), rows sorted by
id, so that the final files are a merge in id order. Memory: the graph, one shard's rows, and a few
dozen bytes per row for the keys (MinHashes stay on disk until a step needs them).
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..artifacts import jsonl_line
from ..errors import EmptyResultError
from ..log import RateProgress, logger
from ..rdf import WN_DEFINITION, lexical_form, triple_id
from .annotate import conll_lines, default_label, inline_markup
from .clean import clean_text
from .dedup import BandIndex, exact_key, lsh_params, minhasher
from .kg import (
    DC_IDENTIFIER,
    KG,
    ROLE_ABSTRACT,
    ROLE_BNODE,
    ROLE_FACT,
    ROLE_GLOSS,
    ROLE_NAME,
    ROLE_OTHER_LANG,
    ROLE_SKIP,
    ROLE_TYPE,
    WN_EXAMPLE,
)
from .lexicon import RelationLexicon
from .planner import EntityPlan, Planner, article, plain
from .preferences import Corrupter, dpo_rows
from .realign import verbalize_documents
from .render import render_literal, split_camel
from .sft import sft_rows
from .splits import HELD_OUT, SPLITS, leakage_report_from, row_text, row_triple_ids, split_of

PARTS = ("pretrain", "sft", "dpo")
ID_PREFIX = {"pretrain": "doc-", "sft": "sft-", "dpo": "dpo-"}
SHARD_ENTITIES = 2500      # entities per shard (bounds the rows held at once)
TRAIN = SPLITS.index("train")


def shard_of(owner: str, n: int) -> int:
    return zlib.crc32(owner.encode()) % n if n > 1 else 0


def shard_count(entities: int, per_shard: int = SHARD_ENTITIES, at_least: int = 1) -> int:
    return max(at_least, -(-entities // per_shard), 1)


class ShardContext:
    """What every shard of one run shares (built once per process: the driver, or a Ray worker)."""

    def __init__(self, kg: KG, config, entities: list[str]):
        self.kg = kg
        self.config = config
        self.entities = entities                      # sorted: the subjects that get a plan
        self.entity_set = frozenset(entities)
        self.planner = Planner(kg, RelationLexicon(kg.label_of), include_abstracts=config.include_abstracts,
                               max_facts=config.max_facts_per_entity)
        self.corrupter = Corrupter(self.planner, config.seed)
        self._assigned: dict[int, tuple[list[list[str]], list[list[str]]]] = {}

    def assignment(self, n: int) -> tuple[list[list[str]], list[list[str]]]:
        """(entities, triple subjects) of each of ``n`` shards."""
        if n not in self._assigned:
            ents: list[list[str]] = [[] for _ in range(n)]
            subs: list[list[str]] = [[] for _ in range(n)]
            for e in self.entities:
                ents[shard_of(e, n)].append(e)
            for s in self.kg.out:
                subs[shard_of(self.kg.synset_of(s) or s, n)].append(s)
            self._assigned = {n: (ents, subs)}
        return self._assigned[n]


class _Plans(Mapping):
    """A shard's plans; looking up another entity plans its fact groups on demand (two-hop questions)."""

    def __init__(self, own: dict[str, EntityPlan], planner: Planner, entities: frozenset):
        self.own, self.planner, self.entities = own, planner, entities
        self._other: dict[str, EntityPlan] = {}

    def __getitem__(self, e: str) -> EntityPlan:
        p = self.own.get(e)
        if p is not None:
            return p
        if e not in self.entities:
            raise KeyError(e)
        p = self._other.get(e)
        if p is None:
            if len(self._other) > 4096:
                self._other.clear()
            groups, truncated = self.planner.groups(e)
            p = self._other[e] = EntityPlan(e, groups, truncated=truncated)
        return p

    def __iter__(self) -> Iterator[str]:
        return iter(self.own)

    def __len__(self) -> int:
        return len(self.own)


def build_shard(ctx: ShardContext, k: int, n: int, neural=None) -> dict:
    """Shard ``k`` of ``n``: its rows (JSONL bytes, sorted by id), keys (numpy arrays), triples.jsonl lines,
    markup and CoNLL, and counts. Pure: the same whatever process runs it."""
    import numpy as np

    kg, cfg, planner = ctx.kg, ctx.config, ctx.planner
    ents, subs = ctx.assignment(n)
    ents, subs = ents[k], subs[k]
    plans = {e: planner.plan(e) for e in ents}
    counts: Counter = Counter()
    if neural is not None:
        tally = verbalize_documents(plans, kg, neural, max_triples=cfg.verbalizer.max_triples)
        counts.update({f"verbalizer_{key}": v for key, v in tally.items()})
    counts["entities"] = len(plans)
    counts["documents"] = sum(1 for p in plans.values() if p.doc)
    counts["facts_truncated"] = sum(p.truncated for p in plans.values())
    view = _Plans(plans, planner, ctx.entity_set)
    cor = ctx.corrupter
    before = cor.no_candidate
    rows = {
        "pretrain": [p.doc for p in plans.values() if p.doc is not None],
        "sft": list(sft_rows(planner, view, phrasings=cfg.sft_phrasings, max_two_hop=cfg.max_two_hop,
                             max_list_objects=cfg.max_list_objects)),
        "dpo": list(dpo_rows(planner, view, per_group=cfg.dpo_per_fact, seed=cfg.seed, corrupter=cor)),
    }
    counts["dpo_facts_without_false_candidate"] = cor.no_candidate - before
    ent_key = {plain(e): (k << 32) | i for i, e in enumerate(ents)}
    sp = cfg.split
    mh = minhasher(cfg.dedup.num_perm)
    out: dict = {"k": k, "counts": dict(counts), "parts": {}}
    for part in PARTS:
        rs = sorted(rows[part], key=lambda r: r["id"])
        prefix = ID_PREFIX[part]
        ids, keys, split, own, ent, off, tids, hashes, types = [], [], [], [], [], [0], [], [], []
        for r in rs:
            rid = r["id"]
            if len(rid) != len(prefix) + 16 or not rid.startswith(prefix):
                raise RuntimeError(f"corpus: row id {rid!r} is not {prefix}<16 hex digits>")
            text = row_text(part, r)
            ids.append(int(rid[len(prefix):], 16))
            keys.append(exact_key(text))
            split.append(SPLITS.index(split_of(r["entity"], sp.validation, sp.test, sp.seed)))
            own.append(r.get("type") != "two_hop")
            ent.append(ent_key[r["entity"]])
            t = [int(x, 16) for x in row_triple_ids(r)]
            tids += t
            off.append(len(tids))
            hashes.append(mh(text))
            types.append(r.get("type", ""))
        names = sorted(set(types))
        arrays = {
            "ids": np.array(ids, dtype=np.uint64), "keys": np.frombuffer(b"".join(keys), dtype="V16"),
            "split": np.array(split, dtype=np.uint8), "own": np.array(own, dtype=bool),
            "ent": np.array(ent, dtype=np.uint64), "off": np.array(off, dtype=np.int64),
            "tids": np.array(tids, dtype=np.uint64),
            "type": np.array([names.index(x) for x in types], dtype=np.int32),
        }
        minhashes = (np.stack(hashes).astype(np.uint32) if hashes
                     else np.zeros((0, cfg.dedup.num_perm), dtype=np.uint32))
        entry = {"arrays": arrays, "mh": minhashes, "types": names,
                 "lines": "".join(jsonl_line(r) for r in rs).encode("utf-8")}
        if part == "pretrain":
            def label(span):
                return default_label(span["types"], kg.main_type, span["iri"])
            entry["markup"] = "".join(jsonl_line({"id": d["id"], "entity": d["entity"], "text": inline_markup(d)})
                                      for d in rs).encode("utf-8")
            entry["conll"] = "".join(jsonl_line("".join(x + "\n" for x in conll_lines([d], label)))
                                     for d in rs).encode("utf-8")
        out["parts"][part] = entry
        rows[part] = None
    # triples.jsonl lines of the shard's subjects; roles and which triples no document tells.
    in_docs = {t for p in plans.values() if p.doc for s in p.doc["sentences"] for t in s["triple_ids"]}
    roles: Counter = Counter()
    not_in_docs: Counter = Counter()
    lines = []
    for s in subs:
        for p, o in kg.out[s]:
            role = kg.role(s, p, o)
            roles[role] += 1
            tid = triple_id(s, p, o)
            if tid not in in_docs:
                not_in_docs[role] += 1
            if role in (ROLE_SKIP, ROLE_BNODE, ROLE_OTHER_LANG):
                continue
            lines.append(jsonl_line({"id": tid, "s": s, "p": p, "o": o, "text": triple_text(planner, s, p, o, role)}))
    lines.sort()  # lines start {"id": "<16 hex>", so this is (id, line) order
    out["triples"] = "".join(lines).encode("utf-8")
    out["roles"], out["not_in_docs"] = dict(roles), dict(not_in_docs)
    return out


def triple_text(planner: Planner, s: str, p: str, o: str, role: str) -> str:
    """The ``text`` of a triple's ``triples.jsonl`` line: one standalone sentence (or the free text)."""
    kg = planner.kg
    name = kg.name(s)
    if role == ROLE_FACT:
        return planner.fact_text(s, p, [o])
    if role == ROLE_NAME:
        return f'{name[:1].upper() + name[1:]} is called "{lexical_form(o)}".'
    if role == ROLE_TYPE:
        label = kg.label_of(o) or split_camel(o[1:-1].rsplit("/", 1)[-1].rsplit("#", 1)[-1])
        return f"{name[:1].upper() + name[1:]} is {article(label)} {label}."
    if role == ROLE_ABSTRACT:
        return clean_text(lexical_form(o))
    if role == ROLE_GLOSS:
        value = render_literal(o, kg.language) if o.startswith('"') else kg.name(o)
        if p == WN_DEFINITION:
            return f"{name[:1].upper() + name[1:]}: {value}."
        if p == WN_EXAMPLE:
            return f'An example of "{name}": "{value}".'
        if p == DC_IDENTIFIER:
            return f'"{name}" has the WordNet identifier {value}.'
        return f'"{name}" has the {split_camel(p[1:-1].rsplit("#", 1)[-1])} {value}.'
    value = render_literal(o, kg.language) if o.startswith('"') else kg.name(o)
    return f"{name} {split_camel(p[1:-1].rsplit('/', 1)[-1].rsplit('#', 1)[-1])} {value}."


# ----------------------------------------------------------------------------- shard files


def save_shard(res: dict, work: Path) -> dict:
    """Write a shard's result under ``work``; returns what the driver keeps of it (counts, no rows)."""
    import numpy as np

    k = res["k"]
    (work / f"{k}.triples.jsonl").write_bytes(res["triples"])
    keep = {"k": k, "counts": res["counts"], "roles": res["roles"], "not_in_docs": res["not_in_docs"], "types": {}}
    for part, e in res["parts"].items():
        (work / f"{k}.{part}.jsonl").write_bytes(e["lines"])
        for extra in ("markup", "conll"):
            if extra in e:
                (work / f"{k}.{part}.{extra}.jsonl").write_bytes(e[extra])
        np.savez(work / f"{k}.{part}.npz", **e["arrays"])
        np.save(work / f"{k}.{part}.mh.npy", e["mh"])
        keep["types"][part] = e["types"]
    # Last and atomically: a shard counts as finished (and a resumed run reuses it) only with this file.
    tmp = work / f".{k}.done.json.tmp"
    tmp.write_text(json.dumps(keep))
    os.replace(tmp, work / f"{k}.done.json")
    return keep


def load_finished(work: Path, n: int) -> list[dict | None]:
    """The kept summaries of the shards a stopped run finished in ``work`` (None for the others)."""
    out: list[dict | None] = [None] * n
    for k in range(n):
        f = work / f"{k}.done.json"
        try:
            keep = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if keep.get("k") == k:
            out[k] = keep
    return out


class _Part:
    """One part's per-row keys over all shards (rows of shard k at ``base[k]:base[k+1]``)."""

    def __init__(self, work: Path, part: str, n: int, types: list[list[str]]):
        import numpy as np

        self.work, self.part, self.n = work, part, n
        cols: dict[str, list] = {c: [] for c in ("ids", "keys", "split", "own", "ent", "type")}
        offs, tids, base, shift = [], [], [0], 0
        type_names = sorted({t for ts in types for t in ts})
        self.type_names = type_names
        for k in range(n):
            with np.load(work / f"{k}.{part}.npz") as z:
                for c in cols:
                    v = z[c]
                    if c == "type":
                        remap = np.array([type_names.index(t) for t in types[k]] or [0], dtype=np.int32)
                        v = remap[v] if len(v) else v
                    cols[c].append(v)
                o = z["off"]
                offs.append(o[:-1] + shift)
                shift += int(o[-1])
                tids.append(z["tids"])
            base.append(base[-1] + len(cols["ids"][-1]))
        for c, v in cols.items():
            setattr(self, c, np.concatenate(v) if v else np.zeros(0))
        self.off = np.concatenate([*offs, np.array([shift], dtype=np.int64)])
        self.tids = np.concatenate(tids) if tids else np.zeros(0, dtype=np.uint64)
        self.base = np.array(base, dtype=np.int64)
        self.rows = int(base[-1])
        self.alive = np.ones(self.rows, dtype=bool)

    def idstr(self, x) -> str:
        return f"{ID_PREFIX[self.part]}{int(x):016x}"

    def minhashes(self, rows) -> object:
        """The MinHashes of ``rows`` (global indices, ascending), read shard by shard from disk."""
        import numpy as np

        out = []
        for k in range(self.n):
            a, b = self.base[k], self.base[k + 1]
            sel = rows[(rows >= a) & (rows < b)] - a
            if len(sel):
                out.append(np.load(self.work / f"{k}.{self.part}.mh.npy", mmap_mode="r")[sel])
        return np.concatenate(out) if out else None

    def elems(self, mask) -> object:
        """The triple ids (uint64) of the rows in ``mask``."""
        import numpy as np

        counts = np.diff(self.off)
        return self.tids[np.repeat(mask, counts)]

    def any_in(self, mask, values) -> object:
        """Per row: ``mask`` and one of its triple ids is in ``values`` (sorted unique uint64)."""
        import numpy as np

        hit = np.isin(self.tids, values, assume_unique=False)
        cs = np.concatenate([[0], np.cumsum(hit)])
        return mask & ((cs[self.off[1:]] - cs[self.off[:-1]]) > 0)


def _dedup(p: _Part, *, exact: bool, near: bool, threshold: float, num_perm: int) -> list[dict]:
    """:func:`kgllm.corpus.dedup.dedup` over the part's keys: the first of each group in id order is kept
    (``p.alive``); returns the removed records in id order."""
    import numpy as np

    order = np.argsort(p.ids, kind="stable")
    removed: list[tuple[int, dict]] = []
    if exact and p.rows:
        _, first, inv = np.unique(p.keys[order], return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        dup = first[inv] != np.arange(p.rows)
        for i in np.flatnonzero(dup):
            removed.append((int(i), {"id": p.idstr(p.ids[order[i]]), "duplicate_of": p.idstr(p.ids[order[first[inv[i]]]]),
                                     "kind": "exact"}))
        p.alive[order[dup]] = False
    if near and p.rows:
        b, r = lsh_params(threshold, num_perm)
        live = order[p.alive[order]]
        pos = np.flatnonzero(p.alive[order])
        hashes = p.minhashes(np.sort(live))
        at = {int(x): i for i, x in enumerate(np.sort(live))}
        tables: list[dict[bytes, list[int]]] = [{} for _ in range(b)]
        for i, row in zip(pos, live, strict=True):
            h = hashes[at[int(row)]]
            bands = [h[j * r:(j + 1) * r].tobytes() for j in range(b)]
            cands = set()
            for j in range(b):
                cands.update(tables[j].get(bands[j], ()))
            hits = []
            for c in cands:
                jac = int(np.count_nonzero(hashes[at[c]] == h)) / num_perm
                if jac >= threshold:
                    hits.append((-jac, p.idstr(p.ids[c]), jac))
            if hits:
                best = min(hits)
                removed.append((int(i), {"id": p.idstr(p.ids[row]), "duplicate_of": best[1], "kind": "near",
                                         "jaccard": round(best[2], 3)}))
                p.alive[row] = False
                continue
            for j in range(b):
                tables[j].setdefault(bands[j], []).append(int(row))
    removed.sort(key=lambda x: x[0])
    return [r for _, r in removed]


def _split(parts: dict[str, _Part], *, near_dup_threshold: float, num_perm: int) -> dict:
    """:func:`kgllm.corpus.splits.split_rows` over the keys (``p.alive`` ends as the rows written); the report."""
    import numpy as np

    def uniq(arrs):
        return np.unique(np.concatenate(arrs)) if arrs else np.zeros(0, dtype=np.uint64)

    held = {n: np.isin(p.split, [SPLITS.index(s) for s in HELD_OUT]) for n, p in parts.items()}
    train_own = uniq([p.elems(p.alive & (p.split == TRAIN) & p.own) for p in parts.values()])
    removed_held: Counter = Counter()
    for n, p in parts.items():
        rm = p.any_in(p.alive & held[n] & ~p.own, train_own)
        removed_held[n] += int(rm.sum())
        p.alive &= ~rm
    held_ids = uniq([p.elems(p.alive & held[n]) for n, p in parts.items()])
    hashes = [p.minhashes(np.flatnonzero(p.alive & held[n])) for n, p in parts.items()]
    hashes = [h for h in hashes if h is not None]
    index = BandIndex(np.concatenate(hashes) if hashes else np.zeros((0, num_perm), dtype=np.uint32),
                      near_dup_threshold, num_perm)
    removed_overlap: Counter = Counter()
    removed_near: Counter = Counter()
    for n, p in parts.items():
        train = p.alive & (p.split == TRAIN)
        ov = p.any_in(train, held_ids)
        if ov.any():
            removed_overlap[n] += int(ov.sum())
        rest = np.flatnonzero(train & ~ov)
        near = np.zeros(p.rows, dtype=bool)
        for a in range(0, len(rest), 20000):
            chunk = rest[a:a + 20000]
            near[chunk] = index.any_hit(p.minhashes(chunk))
        if near.any():
            removed_near[n] += int(near.sum())
        p.alive &= ~(ov | near)
    final_held = uniq([p.elems(p.alive & held[n]) for n, p in parts.items()])
    final_train = uniq([p.elems(p.alive & (p.split == TRAIN)) for p in parts.values()])
    entities = {s: len(uniq([p.ent[p.alive & (p.split == SPLITS.index(s))] for p in parts.values()]))
                for s in SPLITS}
    rows = {n: {s: int((p.alive & (p.split == SPLITS.index(s))).sum()) for s in SPLITS} for n, p in parts.items()}
    leaks = [f"{int(x):016x}" for x in np.intersect1d(final_held, final_train)]
    report = leakage_report_from(leaks=leaks, entities=entities, rows=rows, held_out_triple_ids=len(final_held),
                                 train_triple_ids=len(final_train))
    report["removed"] = {"triple_overlap": dict(sorted(removed_overlap.items())),
                         "near_duplicate": dict(sorted(removed_near.items())),
                         "held_out_cross_split": dict(sorted((k, v) for k, v in removed_held.items() if v))}
    return report


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from f


def _write_part(p: _Part, dest: Path, extras: dict[str, Path] | None = None) -> None:
    """The part's kept rows, split by split, in id order: a merge of the shards' files (each sorted by id)."""
    import numpy as np

    order = np.argsort(p.ids, kind="stable")
    shard = np.searchsorted(p.base, order, side="right") - 1
    names = {"": dest, **(extras or {})}
    readers = {key: [_lines(d / f"{k}.{p.part}{'.' + key if key else ''}.jsonl") for k in range(p.n)]
               for key, d in (("", p.work), *((key, p.work) for key in (extras or {})))}
    outs = {}
    for key, d in names.items():
        d.mkdir(exist_ok=True)
        for s in SPLITS:
            suffix = ".conll" if key == "conll" else ".jsonl"
            outs[key, s] = open(d / f"{s}{suffix}", "wb")  # noqa: SIM115  (closed below)
    try:
        for a in range(0, len(order), 65536):  # in chunks: no Python list of every row at once
            rows = order[a:a + 65536]
            for k, keep, sp in zip(shard[a:a + 65536].tolist(), p.alive[rows].tolist(), p.split[rows].tolist(),
                                   strict=True):
                s = SPLITS[sp]
                for key, rd in readers.items():
                    line = next(rd[k])
                    if keep:
                        outs[key, s].write(json.loads(line).encode("utf-8") if key == "conll" else line)
    finally:
        for f in outs.values():
            f.close()
    for rd in readers.values():
        for g in rd:
            if next(g, None) is not None:
                raise RuntimeError(f"corpus: shard file of {p.part} has more rows than its keys")


def write_corpus(kg: KG, config, dest: Path, engine=None, neural=None, *, shards: int | None = None,
                 empty: str = "no rows", resume: Path | None = None) -> dict:
    """Run the shards (in this process, or as Ray tasks when the engine says so), the global steps, and
    write the corpus files into ``dest``; :class:`EmptyResultError` (``empty``) when no row comes out.
    ``resume``: a directory that keeps finished shards across a stop (the caller names it after the inputs and
    config and removes it once the artifact is written); shards finished there are reused, not redone.
    Returns the counts, the leakage report, the dedup records and where the shards ran."""
    ctx_entities = Planner(kg, RelationLexicon(kg.label_of)).subjects()
    # Ray when asked for (mode ray) or when a cluster is given (auto with an address). Not in auto on one
    # machine, whatever the size: each Ray worker holds its own copy of the graph, while the in-process
    # path holds one (bounded memory by default; `--engine ray` for the workers' speed).
    ray = neural is None and engine is not None and (
        engine.config.mode == "ray" or (engine.config.mode == "auto" and not engine.config.embedded))
    if neural is not None:
        n = 1  # the model verbalizes documents in batches across entities: one shard keeps them as they were
    elif shards is not None:
        n = shards
    else:
        n = shard_count(len(ctx_entities), at_least=engine.task_slots() * 8 if ray else 1)  # balance
    if resume is not None:
        work = resume / f"{n}-shards"
        work.mkdir(parents=True, exist_ok=True)
        kept: list[dict] = load_finished(work, n)  # type: ignore[assignment]
    else:
        work = dest / ".shards"
        work.mkdir()
        kept = [None] * n  # type: ignore[list-item]
    todo = [k for k in range(n) if kept[k] is None]
    reused = n - len(todo)
    if reused:
        logger.info("corpus: %d of %d shards finished by a stopped run are reused (%s)", reused, n, work)
    if ray and todo:
        done = engine.map_tasks(_ray_shard, todo, shared=(kg, config, ctx_entities, n),
                                desc="corpus: entity shards", unit="shard")
        for k, res in done:
            kept[k] = save_shard(res, work)
    elif todo:
        ctx = ShardContext(kg, config, ctx_entities)
        with RateProgress(len(todo), "corpus: entity shards", "shard") as bar:
            for k in todo:
                kept[k] = save_shard(build_shard(ctx, k, n, neural), work)
                bar.update(1)
        del ctx
    logger.info("corpus: %d entities in %d shard%s (%s)", len(ctx_entities), n, "s" if n > 1 else "",
                "Ray tasks" if ray else "in this process")
    counts: Counter = Counter()
    roles: Counter = Counter()
    not_in_docs: Counter = Counter()
    for r in kept:
        counts.update(r["counts"])
        roles.update(r["roles"])
        not_in_docs.update(r["not_in_docs"])
    parts = {part: _Part(work, part, n, [r["types"][part] for r in kept]) for part in PARTS}
    if not any(p.rows for p in parts.values()):
        raise EmptyResultError(empty)
    removed = {}
    for part, p in parts.items():
        near = config.dedup.near and part == "pretrain"
        rem = _dedup(p, exact=config.dedup.exact, near=near, threshold=config.dedup.threshold,
                     num_perm=config.dedup.num_perm)
        counts[f"{part}_rows"] = p.rows
        counts[f"{part}_exact_duplicates"] = sum(1 for r in rem if r["kind"] == "exact")
        counts[f"{part}_near_duplicates"] = sum(1 for r in rem if r["kind"] == "near")
        removed[part] = rem
    report = _split(parts, near_dup_threshold=config.split.near_dup_threshold, num_perm=config.dedup.num_perm)
    n_triples = 0
    with open(dest / "triples.jsonl", "wb") as f:
        prev = None
        for line in heapq.merge(*(_lines(work / f"{k}.triples.jsonl") for k in range(n))):
            tid = line[8:24]
            if tid != prev:  # the same triple in two graphs is one line
                f.write(line)
                n_triples += 1
            prev = tid
    for part, p in parts.items():
        _write_part(p, dest / part, {"markup": dest / "markup", "conll": dest / "ner"} if part == "pretrain" else None)
    import numpy as np

    sft = parts["sft"]
    sft_types = Counter()
    for code, c in zip(*np.unique(sft.type[sft.alive], return_counts=True), strict=True):
        sft_types[sft.type_names[int(code)]] = int(c)
    split_counts = {f"{part}_{s}": int((p.alive & (p.split == SPLITS.index(s))).sum())
                    for part, p in parts.items() for s in SPLITS}
    if resume is None:
        shutil.rmtree(work)
    return {"counts": counts, "roles": roles, "not_in_docs": not_in_docs, "triples_jsonl": n_triples,
            "split_counts": split_counts, "report": report, "removed": removed,
            "sft_types": dict(sorted(sft_types.items())), "shards": n, "shards_reused": reused, "ray": ray}


# ----------------------------------------------------------------------------- Ray task

_CTX: dict[tuple, ShardContext] = {}


def _ray_shard(shared, k: int) -> dict:
    """A shard as a Ray task: ``shared`` is ``(kg, config, entities, n)``, deserialized once per worker."""
    kg, config, entities, n = shared
    key = (id(kg),)
    ctx = _CTX.get(key)
    if ctx is None:
        _CTX.clear()
        ctx = _CTX[key] = ShardContext(kg, config, entities)
    return build_shard(ctx, k, n)
