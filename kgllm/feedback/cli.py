"""``kgllm feedback {import,export,counts}``: recorded feedback into a database, the database into training
data and graph corrections, and what a database holds.

Takes: the ``kgllm`` argument parser (:func:`register`). Makes: the ``feedback`` group and its commands.
The store (SQLAlchemy, Alembic) is imported when a command runs, never for ``kgllm --help``.

``--db`` takes a URL (``sqlite:///PATH``, ``postgresql+psycopg://USER@HOST:PORT/DB``), a SQLite file, a serve
directory holding ``feedback.db``, or a ``feedback.db`` artifact.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..artifacts import artifact_kind
from ..commands import add_config_args, print_artifact, stage_config
from ..errors import EmptyResultError, UsageError
from ..registry import run_stage

GROUP_HELP = "feedback on answers: import a recorded file, export training data and corrections, counts"
_DB_HELP = ("database: a URL (sqlite:///PATH, postgresql+psycopg://USER@HOST:PORT/DB), a SQLite file, a serve "
            "directory or a feedback.db artifact")


def register(cmds) -> None:
    p = cmds.subcommand(
        "feedback", "import", "store a recorded feedback file (answers with their feedback) in a database", _import,
        group_help=GROUP_HELP,
        description="Store each line's answer, then its ratings, corrections and flags, in a feedback database.\n"
                    "Every line is checked first: a bad one is an error naming FILE:LINE and nothing is stored.\n"
                    "With --out, write a feedback.db artifact (holding a SQLite database unless --db is given).\n\n"
                    "  kgllm feedback import examples/data/feedback/recorded.jsonl --out runs/feedback-db\n"
                    "  kgllm feedback import recorded.jsonl --db postgresql+psycopg://kgllm@127.0.0.1/kgllm")
    p.add_argument("file", type=Path, help="recorded feedback file (JSONL; see docs/feedback.md)")
    p.add_argument("--db", help=_DB_HELP + "; without it, --out holds a new SQLite database")
    p.add_argument("--out", type=Path, help="write a feedback.db artifact here")
    p.add_argument("--index", type=Path, help="the index artifact the answers came from: its content hash is "
                                              "recorded for lines without index_sha256")
    p.add_argument("--allow-empty", action="store_true", default=None,
                   help="a file without answers writes an empty database (exit 0) instead of exit 1")
    add_config_args(p, "feedback.import")

    p = cmds.subcommand(
        "feedback", "export", "feedback -> DPO pairs, KTO rows and a graph of flagged triples", _export,
        group_help=GROUP_HELP,
        description="Write a corpus.feedback artifact: dpo/{train,validation}.jsonl (prompt, chosen = the\n"
                    "correction, rejected = the answer people corrected), kto/{train,validation}.jsonl (prompt,\n"
                    "completion, label from the ratings) and corrections/ (a graph artifact of the flagged\n"
                    "triples, with flags.jsonl). Corrections naming a graph term are kept only when --graph\n"
                    "holds the term. Exit 1 when the database holds no feedback.\n\n"
                    "  kgllm feedback export --db kgllm-serve --graph runs/clean --out runs/feedback-export")
    p.add_argument("--db", help=_DB_HELP)
    p.add_argument("--out", type=Path, required=True, help="output artifact directory")
    p.add_argument("--graph", type=Path, action="append", default=[], metavar="GRAPH_DIR",
                   help="graph artifact to verify term corrections against; repeatable")
    p.add_argument("--validation", type=float, help="share of questions in the validation split (default 0.1)")
    p.add_argument("--seed", type=int, help="salt of the question hash that splits (default 0)")
    add_config_args(p, "feedback.export")

    p = cmds.subcommand("feedback", "counts", "how many answers, ratings, corrections and flags a database holds",
                        _counts, group_help=GROUP_HELP)
    p.add_argument("--db", required=True, help=_DB_HELP)


def _is_db_artifact(value: str | None) -> bool:
    return value is not None and "://" not in value and artifact_kind(value) == "feedback.db"


def _import(args: argparse.Namespace) -> int:
    from .recorded import import_records, index_hash, read_recorded, target_url
    from .store import FeedbackStore

    if args.out is None and args.db is None:
        raise UsageError("feedback import: give --db URL (import into that database) or --out DIR (a feedback.db "
                         "artifact holding a new SQLite database)")
    cfg = stage_config("feedback.import", args, {"file": str(args.file), "db": args.db,
                                                 "allow_empty": args.allow_empty})
    inputs = [args.index] if args.index else []
    if args.out is not None:
        man = run_stage("feedback.import", inputs, args.out, cfg, force=args.force)
        return print_artifact(args.out, man)
    url = target_url(cfg.db)
    records = read_recorded(cfg.file, index_sha256=index_hash(inputs))
    if not records and not cfg.allow_empty:
        raise EmptyResultError(f"{cfg.file}: no recorded answers; nothing to import (--allow-empty: exit 0)")
    with FeedbackStore(url) as store:
        counts, _ = import_records(store, records)
        print(f"imported into {store.display_url}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def _export(args: argparse.Namespace) -> int:
    inputs = [*args.graph]
    db = args.db
    if _is_db_artifact(db):  # an artifact is an input: its content hash goes into the manifest
        inputs.insert(0, Path(db))
        db = None
    cfg = stage_config("feedback.export", args, {"db": db, "validation": args.validation, "seed": args.seed})
    man = run_stage("feedback.export", inputs, args.out, cfg, force=args.force)
    return print_artifact(args.out, man)


def _counts(args: argparse.Namespace) -> int:
    from .store import FeedbackStore, resolve_db

    with FeedbackStore(resolve_db(args.db), create=False) as store:  # counting never creates a database
        print(json.dumps(store.counts()))
    return 0
