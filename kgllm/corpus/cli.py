"""Commands of the corpus stage (handlers import lazily):

- ``kgllm corpus GRAPH_DIR... [--ontology FILE...] --out DIR``
- ``kgllm verbalize --jsonl IN --out OUT``
- ``kgllm eval webnlg --xml FILE``
- ``kgllm train tokenizer --corpus DIR --vocab-size N --out DIR``
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(cmds) -> None:
    from ..commands import add_config_args
    from ..eval.cli import GROUP_HELP as EVAL_HELP

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

    p = cmds.subcommand("eval", "webnlg", "BLEU and chrF++ of the template verbalizer on a WebNLG XML file",
                        _eval_webnlg, group_help=EVAL_HELP)
    p.add_argument("--xml", type=Path, action="append", required=True,
                   help="WebNLG XML file or a directory of them (searched recursively); repeatable")
    p.add_argument("--out", type=Path, help="also write the JSON report (and predictions) here")

    p = cmds.subcommand("train", "tokenizer", "train a byte-level BPE tokenizer on a corpus artifact", _tokenizer,
                        group_help="train models and tokenizers")
    p.add_argument("--corpus", type=Path, required=True, help="corpus artifact directory")
    p.add_argument("--vocab-size", type=int, default=8000, help="vocabulary size (default 8000)")
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="output tokenizer directory (transformers format)")


def _corpus(args: argparse.Namespace) -> int:
    from ..commands import print_artifact, stage_config
    from ..registry import run_stage

    cfg = stage_config("corpus", args, {"ontology": args.ontology})
    run_stage("corpus", args.graphs, args.out, cfg, force=args.force)
    return print_artifact(args.out)


def _verbalize(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..eval.cli import check_output_file
    from .webnlg import verbalize_jsonl

    if not args.jsonl.is_file():
        raise InputError(f"--jsonl {args.jsonl}: " + ("is a directory; give the JSONL file" if args.jsonl.is_dir()
                                                      else "input file does not exist"))
    check_output_file(args.out)
    n = verbalize_jsonl(args.jsonl, args.out)
    print(f"verbalized {n} triple sets -> {args.out}")
    return 0


def _eval_webnlg(args: argparse.Namespace) -> int:
    import json

    from ..artifacts import atomic_write_json
    from ..eval.cli import check_output_file
    from .webnlg import evaluate, format_report

    if args.out:
        check_output_file(args.out)
    report = evaluate(args.xml)
    if args.out:
        atomic_write_json(args.out, report)
    print(format_report(report))
    print(json.dumps({k: report[k] for k in ("bleu", "chrf++", "entries")}))
    return 0


def _tokenizer(args: argparse.Namespace) -> int:
    from ..commands import print_artifact
    from ..train.tokenizer import train_tokenizer

    train_tokenizer(args.corpus, args.out, vocab_size=args.vocab_size, min_frequency=args.min_frequency)
    return print_artifact(args.out)
