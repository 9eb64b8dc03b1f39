"""Commands of the corpus stage.

Takes: the ``kgllm`` command's :class:`~kgllm.commands.Commands`. Makes: these subcommands:

- ``kgllm corpus GRAPH_DIR... [--ontology FILE...] --out DIR``: the ``corpus`` stage (:mod:`kgllm.corpus.stage`)
- ``kgllm verbalize --jsonl IN --out OUT``: triple sets -> English text (:mod:`kgllm.corpus.verbalize`)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import add_config_args, check_output_file, print_artifact, stage_config
from ..errors import InputError
from ..registry import run_stage
from .verbalize import verbalize_jsonl


def register(cmds) -> None:
    p = cmds.command("corpus", "graph artifacts -> annotated pretrain text, SFT and DPO data, splits", _corpus,
                     description="Verbalize graph artifacts into annotated documents, SFT question/answer pairs and\n"
                                 "DPO preference pairs, deduplicated and split by entity with a leakage report.")
    p.add_argument("graphs", nargs="+", type=Path, metavar="GRAPH_DIR", help="graph artifact directories")
    p.add_argument("--ontology", action="append", type=Path, default=None, metavar="FILE",
                   help="ontology file (OWL/RDF, .xz ok) for predicate and class labels; repeatable")
    p.add_argument("--out", type=Path, required=True, help="output corpus artifact directory")
    add_config_args(p, "corpus")

    p = cmds.command("verbalize", "triples (JSONL, IRIs or WebNLG-style) -> English text", _verbalize,
                     description='Each input line {"id": ..., "triples": [[s, p, o], ...]} gives one output line\n'
                                 '{"id": ..., "text": ...}. Terms are IRIs/N-Triples terms or WebNLG-style strings\n'
                                 '("Alan_Bean | birthPlace | Wheeler,_Texas" or ["Alan_Bean", "birthPlace", ...]).')
    p.add_argument("--jsonl", type=Path, required=True, help="input JSONL")
    p.add_argument("--out", type=Path, required=True, help="output JSONL")


def _corpus(args: argparse.Namespace) -> int:
    cfg = stage_config("corpus", args, {"ontology": args.ontology})
    run_stage("corpus", args.graphs, args.out, cfg, force=args.force)
    return print_artifact(args.out)


def _verbalize(args: argparse.Namespace) -> int:
    if not args.jsonl.is_file():
        raise InputError(f"--jsonl {args.jsonl}: " + ("is a directory; give the JSONL file" if args.jsonl.is_dir()
                                                      else "input file does not exist"))
    check_output_file(args.out)
    n = verbalize_jsonl(args.jsonl, args.out)
    print(f"verbalized {n} triple sets -> {args.out}")
    return 0
