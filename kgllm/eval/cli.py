"""``kgllm eval facts``: factual evaluation of trained models (handlers import lazily).

Other packages add their own ``eval`` subcommands (``eval webnlg`` in kgllm.corpus.cli, ``eval qa`` and
``eval questions`` in kgllm.ask.cli); the group merges. Its help text, :data:`GROUP_HELP`, is defined
here only and lists every subcommand: whichever package registers first sets it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GROUP_HELP = "evaluate models and answers: facts, qa, questions, webnlg"


def check_output_file(path: Path, flag: str = "--out") -> Path:
    """A command's output file must not be an existing directory: :class:`UsageError` (exit 2) before
    any work, instead of an ``IsADirectoryError`` at the end."""
    from ..errors import UsageError

    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; {flag} names the file to write (a new file, or "
                         "one to replace)")
    return path


def register(cmds) -> None:
    p = cmds.subcommand(
        "eval", "facts", "closed-book accuracy, preference accuracy and perplexity on held-out facts", _facts,
        group_help=GROUP_HELP,
        description="Closed-book accuracy on the corpus's held-out SFT questions (exact match, answer contained,\n"
                    "token F1), DPO preference accuracy (log p(chosen) > log p(rejected)) and perplexity.\n"
                    "Give --model several times to compare, e.g. base vs SFT vs SFT+DPO. JSON on stdout.")
    p.add_argument("--model", action="append", required=True,
                   help="model name (kgllm models list) or checkpoint directory; repeatable")
    p.add_argument("--corpus", type=Path, required=True, help="corpus artifact directory")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--limit", type=int, default=0, help="use the first N rows of each part (0: all)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", type=Path, help="also write the JSON report to this file")


def _facts(args: argparse.Namespace) -> int:
    from ..artifacts import atomic_write_json
    from .facts import evaluate, format_table

    if args.out:
        check_output_file(args.out)
    report = evaluate(args.model, args.corpus, split=args.split, limit=args.limit,
                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(format_table(report), file=sys.stderr)
    return 0
