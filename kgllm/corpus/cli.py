"""Commands of the corpus stage.

Takes: the ``kgllm`` command's :class:`~kgllm.commands.Commands`. Makes: these subcommands:

- ``kgllm corpus GRAPH_DIR... [--ontology FILE...] --out DIR``: the ``corpus`` stage (:mod:`kgllm.corpus.stage`)
- ``kgllm verbalize --jsonl IN --out OUT [--model DIR]``: triple sets -> English text, by the templates
  (:mod:`kgllm.corpus.verbalize`) or a trained verbalizer, checked (:mod:`kgllm.corpus.neural`)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import engine
from ..commands import (
    add_config_args,
    add_engine_args,
    check_output_file,
    engine_config,
    print_artifact,
    stage_config,
)
from ..errors import InputError
from ..registry import run_stage
from .neural import NeuralVerbalizer, verbalize_jsonl_model
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
    add_engine_args(p)  # the per-entity shards as Ray tasks (docs/scale.md)

    p = cmds.command("verbalize", "triples (JSONL, IRIs or WebNLG-style) -> English text", _verbalize,
                     description='Each input line {"id": ..., "triples": [[s, p, o], ...]} gives one output line\n'
                                 '{"id": ..., "text": ...}. Terms are IRIs/N-Triples terms or WebNLG-style strings\n'
                                 '("Alan_Bean | birthPlace | Wheeler,_Texas" or ["Alan_Bean", "birthPlace", ...]).')
    p.add_argument("--jsonl", type=Path, required=True, help="input JSONL")
    p.add_argument("--out", type=Path, required=True, help="output JSONL")
    p.add_argument("--model", help="a trained verbalizer (`kgllm train verbalizer` output) or another causal LM: "
                   "each text is checked for omissions and hallucinations, retried, else made by the templates; "
                   "lines then also carry \"verbalizer\" (model, retry or templates), \"omissions\", "
                   "\"hallucinations\"")
    p.add_argument("--batch-size", type=int, default=16, help="with --model: texts decoded at once (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=192, help="with --model: tokens per text at most")
    p.add_argument("--retry-beams", type=int, default=4,
                   help="with --model: beams of the retry of a failing text (0: no retry; default 4)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="with --model: where to decode (auto: the GPU when there is one)")


def _corpus(args: argparse.Namespace) -> int:
    cfg = stage_config("corpus", args, {"ontology": args.ontology})
    with engine.configured(engine_config(args)):
        run_stage("corpus", args.graphs, args.out, cfg, force=args.force)
    return print_artifact(args.out)


def _verbalize(args: argparse.Namespace) -> int:
    if not args.jsonl.is_file():
        raise InputError(f"--jsonl {args.jsonl}: " + ("is a directory; give the JSONL file" if args.jsonl.is_dir()
                                                      else "input file does not exist"))
    check_output_file(args.out)
    if args.model:
        v = NeuralVerbalizer(args.model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             retry_beams=args.retry_beams, device=args.device)
        n = verbalize_jsonl_model(args.jsonl, args.out, v)
        print(f"verbalized {n['texts']} triple sets -> {args.out}: {n['passed']} by the model, {n['retried']} on "
              f"retry, {n['fallbacks']} by the templates; omissions caught {n['model_omissions']}, hallucinations "
              f"caught {n['model_hallucinations']}; {n['tokens_per_s']} tokens/s on {n['device']}")
        print(json.dumps(n))
        return 0
    n = verbalize_jsonl(args.jsonl, args.out)
    print(f"verbalized {n} triple sets -> {args.out}")
    return 0
