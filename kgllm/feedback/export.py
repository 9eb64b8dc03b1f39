"""The ``feedback.export`` stage: the feedback store -> preference pairs, KTO rows and flagged triples.

Takes: a feedback database (``db``: a URL, or a ``feedback.db`` artifact given as input) and optionally
graph artifacts, against which corrections that name a graph term are verified.
Makes: a ``corpus.feedback`` artifact (see docs/feedback.md)::

    dpo/train.jsonl, dpo/validation.jsonl   {"id","prompt","chosen","rejected", ...}   trl's preference format
    kto/train.jsonl, kto/validation.jsonl   {"id","prompt","completion","label", ...}  trl's KTO format
    corrections/                            a graph artifact (kind graph) of the flagged triples, and
    corrections/flags.jsonl                 {"triple_id","s","p","o","reasons","feedback_ids","answer_ids"}

Rules, each piece of feedback counted once in the manifest:

- a **correction** makes one preference pair: prompt = the question, rejected = the corrected answer's text,
  chosen = the correction's text, or the graph label of the term it names. A term is looked up in the
  given graphs: found (``corrections_verified``), absent (``corrections_rejected``, skipped), or no graph
  given (``corrections_unverifiable``, kept). The same pair again is merged into the first;
- a **rating** makes one KTO row per (question, answer text): label true when the ratings sum above 0,
  false below; a tie is skipped ("conflicting ratings"), the minority is skipped ("outvoted rating"), the
  other agreeing ratings are merged;
- a **flag** puts the cited triple (from the answer's citations, its id checked) into ``corrections/``;
  more flags of the same triple are merged into it.

``ratings + corrections + flags = kto_rows + dpo_pairs + flagged_triples + merged + skipped``. Splits go
by a stable hash of the normalised question (and ``seed``), so no question is in two splits. No feedback at
all is an :class:`~kgllm.errors.EmptyResultError` (exit 1, nothing written).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .. import api
from ..artifacts import ArtifactWriter, Manifest, read_manifest, write_jsonl
from ..errors import EmptyResultError, UsageError
from ..index.lexicon import LABEL_PREDICATES, local_name
from ..log import logger
from ..rdf import GraphWriter, is_literal, iter_graph, parse_literal, triple_id
from .stage import FeedbackExportConfig
from .store import FeedbackStore, redact, resolve_db

KIND = "corpus.feedback"
DB_KIND = "feedback.db"
CORRECTIONS = "corrections"
FLAGS_FILE = "flags.jsonl"
SPLITS = ("train", "validation")


def run_export(inputs: list[Path], out: Path, config: FeedbackExportConfig, *,
               pipeline_key: str | None = None) -> Manifest:
    graphs, db_inputs = _classify(inputs)
    if config.db and db_inputs:
        raise UsageError(f"feedback.export: give the database as db or as a feedback.db input ({db_inputs[0]}), "
                         "not both")
    if len(db_inputs) > 1:
        raise UsageError(f"feedback.export takes at most one feedback.db artifact, got {len(db_inputs)}")
    if not config.db and not db_inputs:
        raise UsageError("feedback.export: no database; set db (sqlite:///PATH or postgresql+psycopg://...) or "
                         "give a feedback.db artifact (kgllm feedback import) as input")
    url = resolve_db(config.db) if config.db else resolve_db(db_inputs[0])
    recorded = dataclasses.replace(config, db=redact(url) if config.db else None)
    with FeedbackStore(url, create=False) as store:
        before = store.counts()
        n_feedback = before["ratings"] + before["corrections"] + before["flags"]
        if n_feedback == 0:
            raise EmptyResultError(f"feedback database {store.display_url}: no feedback to export "
                                   f"({before['answers']} answers, none rated, corrected or flagged)")
        rows = [_compact(r) for r in store.iter_feedback()]
        extra = {"db": store.display_url, "schema_version": store.schema_version(), "store_counts": before}
    ex = _Export(rows, config)
    ex.verify_terms(graphs)
    ex.build()
    with ArtifactWriter(out, KIND, config=recorded, inputs=[*db_inputs, *graphs], pipeline_key=pipeline_key) as w:
        for part, by_split in (("dpo", ex.dpo), ("kto", ex.kto)):
            (w.path / part).mkdir()
            for split in SPLITS:
                write_jsonl(w.path / part / f"{split}.jsonl", sorted(by_split[split], key=lambda r: r["id"]))
        _write_corrections(w.path / CORRECTIONS, ex.flagged, url=extra["db"])
        w.counts.update(ex.counts())
        w.extra.update(extra, graphs=[str(g) for g in graphs],
                       split={"by": "question", "validation": config.validation, "seed": config.seed})
        if not (ex.dpo_pairs or ex.kto_rows or ex.flagged):
            w.problems.append(f"nothing exported: all {len(rows)} pieces of feedback were skipped "
                              f"({_reasons(ex.skipped)})")
    return w.manifest


def _classify(inputs: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    graphs, dbs = [], []
    for p in inputs:
        kind = read_manifest(p).kind
        if kind == "graph" or kind.startswith("graph."):
            graphs.append(Path(p))
        elif kind == DB_KIND:
            dbs.append(Path(p))
        else:
            raise UsageError(f"{p}: a {kind!r} artifact; feedback.export takes graph artifacts (to verify "
                             "corrections) and a feedback.db artifact (kgllm feedback import)")
    return graphs, dbs


def _compact(row: dict) -> dict:
    """What the export needs of one feedback row (the answer object itself is dropped)."""
    ans = row["answer"] if isinstance(row["answer"], dict) else {}
    text = ans.get("answer")
    out = {k: row[k] for k in ("id", "answer_id", "kind", "rating", "correction", "triple_id", "reason", "question")}
    out["text"] = text if isinstance(text, str) and text.strip() else None
    if row["kind"] == "flag":
        cited = [c for c in ans.get("citations") or [] if isinstance(c, dict) and c.get("id") == row["triple_id"]]
        out["cited"] = cited[0] if cited else None
    return out


def normalize_question(text: str) -> str:
    """The key splits and merging go by: case-folded, whitespace collapsed, final punctuation dropped."""
    return re.sub(r"\s+", " ", text).strip().rstrip("?.! ").casefold()


def split_of(question: str, validation: float, seed: int = 0) -> str:
    """``train`` or ``validation`` for a question, stable across runs and machines."""
    h = hashlib.blake2b(f"{seed}\0{normalize_question(question)}".encode(), digest_size=8).digest()
    return "validation" if int.from_bytes(h, "big") / 2 ** 64 < validation else "train"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def term_text(term: str, label: str | None = None) -> str:
    """What a corrected term says as an answer: its label, else a literal's lexical form or an IRI's local name."""
    if label:
        return label
    return parse_literal(term)[0] if is_literal(term) else local_name(term)


class _Export:
    def __init__(self, rows: list[dict], config: FeedbackExportConfig):
        self.rows = rows
        self.cfg = config
        self.dpo: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self.kto: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self.flagged: dict[str, dict] = {}
        self.skipped: Counter = Counter()
        self.merged: Counter = Counter()
        self.verification: Counter = Counter()
        self.found: dict[str, str | None] | None = None  # term -> graph label (None: in the graph, no label)
        self.dpo_pairs = self.kto_rows = 0

    def verify_terms(self, graphs: list[Path]) -> None:
        """One pass over the graphs: which corrected terms occur there, and their best label."""
        if not graphs:
            return
        wanted = {r["correction"]["term"] for r in self.rows if r["kind"] == "correction" and "term" in r["correction"]}
        found: dict[str, str | None] = {}
        best: dict[str, tuple[int, str]] = {}
        if wanted:
            for s, p, o in iter_graph(graphs):
                for t in (s, p, o):
                    if t in wanted:
                        found.setdefault(t, None)
                if s in wanted and p in LABEL_PREDICATES and is_literal(o):
                    lex, lang, _dt = parse_literal(o)
                    rank = LABEL_PREDICATES[p] * 2 + (0 if lang in (None, "en") or lang.startswith("en-") else 1)
                    if s not in best or rank < best[s][0]:
                        best[s] = (rank, lex)
        self.found = {t: (best[t][1] if t in best else None) for t in found}
        logger.info("feedback export: %d of %d corrected terms found in %d graph(s)", len(found), len(wanted),
                    len(graphs))

    def build(self) -> None:
        self._corrections()
        self._ratings()
        self._flags()

    def _split(self, question: str) -> str:
        return split_of(question, self.cfg.validation, self.cfg.seed)

    def _corrections(self) -> None:
        seen: dict[tuple, dict] = {}
        for r in self.rows:
            if r["kind"] != "correction":
                continue
            corr, term = r["correction"], r["correction"].get("term")
            if term is not None:
                if self.found is None:
                    status, label = "unverifiable", corr.get("label")
                elif term in self.found:
                    status, label = "verified", self.found[term] or corr.get("label")
                else:
                    self.verification["rejected"] += 1
                    self.skipped["corrected term not in the graphs"] += 1
                    continue
                chosen = term_text(term, label)
            else:
                status, chosen = "text", corr["text"].strip()
            self.verification[status] += 1
            if r["text"] is None:
                self.skipped["answer has no text"] += 1
                continue
            if _norm(chosen) == _norm(r["text"]):
                self.skipped["correction equals the answer"] += 1
                continue
            key = (normalize_question(r["question"]), _norm(chosen), _norm(r["text"]))
            if key in seen:
                seen[key]["feedback_ids"].append(r["id"])
                self.merged["corrections"] += 1
                continue
            row = {"id": f"feedback-{r['id']:010d}", "prompt": r["question"].strip(), "chosen": chosen,
                   "rejected": r["text"], "answer_id": r["answer_id"], "feedback_ids": [r["id"]],
                   "term": term, "verification": status}
            seen[key] = row
            self.dpo[self._split(r["question"])].append(row)
            self.dpo_pairs += 1

    def _ratings(self) -> None:
        groups: dict[tuple, list[dict]] = {}
        for r in self.rows:
            if r["kind"] != "rating":
                continue
            if r["text"] is None:
                self.skipped["answer has no text"] += 1
                continue
            groups.setdefault((normalize_question(r["question"]), r["text"]), []).append(r)
        for rows in groups.values():
            up = [r for r in rows if r["rating"] > 0]
            down = [r for r in rows if r["rating"] < 0]
            if len(up) == len(down):
                self.skipped["conflicting ratings"] += len(rows)
                continue
            major, minor = (up, down) if len(up) > len(down) else (down, up)
            first = major[0]
            self.kto[self._split(first["question"])].append({
                "id": f"feedback-{first['id']:010d}", "prompt": first["question"].strip(), "completion": first["text"],
                "label": major is up, "answer_id": first["answer_id"], "feedback_ids": [r["id"] for r in major],
                "up": len(up), "down": len(down)})
            self.kto_rows += 1
            self.merged["ratings"] += len(major) - 1
            if minor:
                self.skipped["outvoted rating"] += len(minor)

    def _flags(self) -> None:
        for r in self.rows:
            if r["kind"] != "flag":
                continue
            c = r.get("cited")
            terms = [c.get(k) for k in ("s", "p", "o")] if c else []
            if not c or not all(isinstance(t, str) and t for t in terms):
                self.skipped["flagged triple missing from the answer's citations"] += 1
                continue
            if triple_id(*terms) != r["triple_id"]:
                self.skipped["cited triple does not match its id"] += 1
                continue
            f = self.flagged.get(r["triple_id"])
            if f is None:
                self.flagged[r["triple_id"]] = {"triple_id": r["triple_id"], "s": terms[0], "p": terms[1],
                                                "o": terms[2], "reasons": [r["reason"]], "feedback_ids": [r["id"]],
                                                "answer_ids": [r["answer_id"]]}
                continue
            f["reasons"].append(r["reason"])
            f["feedback_ids"].append(r["id"])
            if r["answer_id"] not in f["answer_ids"]:
                f["answer_ids"].append(r["answer_id"])
            self.merged["flags"] += 1

    def counts(self) -> dict:
        kinds = Counter(r["kind"] for r in self.rows)
        c = {
            "answers": len({r["answer_id"] for r in self.rows}),
            "feedback": len(self.rows),
            "ratings": kinds["rating"], "corrections": kinds["correction"], "flags": kinds["flag"],
            "dpo_pairs": self.dpo_pairs, "kto_rows": self.kto_rows, "flagged_triples": len(self.flagged),
            "merged": sum(self.merged.values()), "skipped": sum(self.skipped.values()),
            "merged_by_kind": {k: self.merged[k] for k in ("ratings", "corrections", "flags")},
            "skipped_reasons": dict(sorted(self.skipped.items())),
            "corrections_verified": self.verification["verified"],
            "corrections_unverifiable": self.verification["unverifiable"],
            "corrections_rejected": self.verification["rejected"],
            "corrections_text": self.verification["text"],
        }
        for part, rows in (("dpo", self.dpo), ("kto", self.kto)):
            for split in SPLITS:
                c[f"{part}_{split}"] = len(rows[split])
        assert c["feedback"] == c["dpo_pairs"] + c["kto_rows"] + c["flagged_triples"] + c["merged"] + c["skipped"], c
        return c


def _write_corrections(out: Path, flagged: dict[str, dict], *, url: str) -> None:
    """The flagged triples as a graph artifact (nested in the export) with ``flags.jsonl`` beside its shards."""
    rows = [flagged[t] for t in sorted(flagged)]
    with GraphWriter(out, config={"source": "feedback", "db": url}) as g:
        if rows:
            with g.shard({"source": "feedback", "db": url, "reason": "flagged by feedback"}) as add:
                for f in rows:
                    add(f["s"], f["p"], f["o"])
        write_jsonl(g.path / FLAGS_FILE, rows)
        g.counts["flags"] = sum(len(f["feedback_ids"]) for f in rows)


def _reasons(skipped: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "none"


# ``kgllm.feedback.export(...)`` runs the stage: this module is also its function.
api.callable_package(__name__, api.feedback_export)
