"""Recorded feedback files and the ``feedback.import`` stage.

Takes: a JSONL file, one answer and the feedback people gave on it per line::

    {"question": "...", "retriever": "hybrid", "answer": <the `kgllm ask --json` object>,
     "feedback": [{"kind": "rating", "rating": -1},
                  {"kind": "correction", "correction": {"text": "..."}},      # or {"term": "<IRI>"}
                  {"kind": "flag", "triple_id": "...", "reason": "..."}],
     "user_id": "..."}                                                          # optional

(optional too: ``model``, ``model_sha256``, ``index_sha256``; a feedback item may carry its own ``reason``
and ``user_id``), and optionally an index artifact whose content hash is recorded for lines without
``index_sha256``.
Makes: the answers and feedback in a feedback store (each answer with ``add_answer``, then its feedback
with ``add_feedback``), and a ``feedback.db`` artifact: ``feedback.db`` (SQLite) when no ``db`` URL is
given, and ``imported.jsonl`` (``{"line","answer_id","feedback_ids"}``) in both cases.

Every line is checked before anything is stored: a bad line is an :class:`~kgllm.errors.InputError`
naming ``FILE:LINE`` (and the feedback item), and nothing is imported. A file without answers is an
:class:`~kgllm.errors.EmptyResultError` unless ``allow_empty``. Importing the same file twice into
one database stores it twice.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..artifacts import ArtifactWriter, Manifest, artifact_kind, iter_jsonl, read_manifest, write_jsonl
from ..errors import EmptyResultError, InputError, UsageError
from .stage import FeedbackImportConfig
from .store import DB_FILE, FeedbackStore, check_answer, check_feedback, check_flag_target, redact, resolve_db

LINE_KEYS = ("question", "retriever", "answer", "feedback", "user_id", "model", "model_sha256", "index_sha256")
ITEM_KEYS = ("kind", "rating", "correction", "triple_id", "reason", "user_id")


def read_recorded(path: str | Path, *, index_sha256: str = "") -> list[dict]:
    """Every line of a recorded feedback file, checked: ``{"line", "answer": <add_answer keywords>,
    "feedback": [<add_feedback keywords>]}``. A bad line raises :class:`InputError` naming ``FILE:LINE``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: the recorded feedback file does not exist" if not path.exists() else
                         f"{path}: is not a file; give the recorded feedback file (JSONL)")
    out = []
    for n, obj in iter_jsonl(path, hint="; each line is one answer and its feedback (docs/feedback.md)"):
        try:
            out.append({"line": n, **_check_line(obj, index_sha256)})
        except InputError as e:
            raise InputError(f"{path}:{n}: {e}") from None
    return out


def _check_line(obj: dict, index_sha256: str) -> dict:
    unknown = sorted(set(obj) - set(LINE_KEYS))
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}; a line has {', '.join(LINE_KEYS)}")
    answer = obj.get("answer")
    if answer is None:
        raise InputError("answer is required (the `kgllm ask --json` object)")
    retriever = obj.get("retriever", answer.get("retriever") if isinstance(answer, dict) else None)
    question = obj.get("question", answer.get("question") if isinstance(answer, dict) else None)
    row = check_answer(question, answer, retriever=retriever, model=obj.get("model"),
                       model_sha256=obj.get("model_sha256"), index_sha256=obj.get("index_sha256") or index_sha256)
    items = obj.get("feedback")
    if not isinstance(items, list):
        raise InputError("feedback must be a list of {\"kind\": ...} objects")
    feedback = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InputError("must be an object with a kind")
            bad = sorted(set(item) - set(ITEM_KEYS))
            if bad:
                raise InputError(f"unknown key {bad[0]!r}; an item has {', '.join(ITEM_KEYS)}")
            kw = {k: item.get(k) for k in ITEM_KEYS if k != "kind"}
            kw["user_id"] = item.get("user_id", obj.get("user_id"))
            check_feedback(item.get("kind"), **kw)
            if item.get("kind") == "flag":
                check_flag_target(answer, item["triple_id"])
            feedback.append({"kind": item["kind"], **kw})
        except InputError as e:
            raise InputError(f"feedback[{i}]: {e}") from None
    return {"answer": {"question": row["question"], "answer": answer, "retriever": row["retriever"],
                       "model": row["model"], "model_sha256": row["model_sha256"],
                       "index_sha256": row["index_sha256"]},
            "feedback": feedback}


def import_records(store: FeedbackStore, records: list[dict]) -> tuple[dict, list[dict]]:
    """Store checked records (:func:`read_recorded`): counts and one ``{"line","answer_id","feedback_ids"}`` each."""
    counts = {"lines": len(records), "answers": 0, "feedback": 0, "ratings": 0, "corrections": 0, "flags": 0}
    plural = {"rating": "ratings", "correction": "corrections", "flag": "flags"}
    done = []
    for rec in records:
        a = rec["answer"]
        answer_id = store.add_answer(a["question"], a["answer"], retriever=a["retriever"], model=a["model"],
                                     model_sha256=a["model_sha256"], index_sha256=a["index_sha256"])
        ids = []
        for fb in rec["feedback"]:
            ids.append(store.add_feedback(answer_id, fb["kind"], **{k: v for k, v in fb.items() if k != "kind"}))
            counts[plural[fb["kind"]]] += 1
        counts["answers"] += 1
        counts["feedback"] += len(ids)
        done.append({"line": rec["line"], "answer_id": answer_id, "feedback_ids": ids})
    return counts, done


def target_url(db: str) -> str:
    """The database an import writes into: a URL or a SQLite file, never the database inside an artifact
    (kgllm does not change an artifact it wrote; make a new one with ``--out``)."""
    if "://" not in db and artifact_kind(db) is not None:
        raise UsageError(f"{db}: is a kgllm {artifact_kind(db)!r} artifact; an import never writes into an "
                         "artifact: give a database URL or file with --db, or a new artifact with --out")
    return resolve_db(db)


def index_hash(inputs: list[Path]) -> str:
    """The content hash of the optional index input ("" without one)."""
    if not inputs:
        return ""
    man = read_manifest(inputs[0])
    if not man.kind.startswith("index"):
        raise UsageError(f"{inputs[0]}: a {man.kind!r} artifact; feedback.import takes at most one input, the index "
                         "the answers came from (its content hash is recorded with each answer)")
    return man.content_sha256


def run_import(inputs: list[Path], out: Path, config: FeedbackImportConfig, *,
               pipeline_key: str | None = None) -> Manifest:
    records = read_recorded(config.file, index_sha256=index_hash(inputs))
    if not records and not config.allow_empty:
        raise EmptyResultError(f"{config.file}: no recorded answers; nothing to import (allow_empty: true "
                               "writes an empty database)")
    url = target_url(config.db) if config.db else None
    recorded = dataclasses.replace(config, db=redact(url) if url else None)
    with ArtifactWriter(out, "feedback.db", config=recorded, inputs=[config.file, *inputs],
                        pipeline_key=pipeline_key) as w:
        with FeedbackStore(url or f"sqlite:///{(w.path / DB_FILE).resolve()}") as store:
            counts, done = import_records(store, records)
            w.extra.update(db=DB_FILE if url is None else store.display_url, schema_version=store.schema_version())
            if url is not None:
                w.extra["db_url"] = store.display_url
        write_jsonl(w.path / "imported.jsonl", done)
        w.counts.update(counts)
    return w.manifest
