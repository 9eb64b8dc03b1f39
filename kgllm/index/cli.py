"""``kgllm index GRAPH_DIR... [--corpus DIR] --out DIR [--update]`` and ``kgllm embed GRAPH_DIR --model RotatE --out DIR``.

Takes: the ``kgllm`` argument parser (:func:`register`). Makes: the ``index`` and ``embed`` commands, which
run their stages through the registry (the stage code loads only when a command runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import engine
from ..commands import add_config_args, add_engine_args, engine_config, print_artifact, stage_config
from ..registry import run_stage


def register(cmds) -> None:
    p = cmds.command("index", "build the retrieval index: entity lexicon/linker, faiss vectors, graph CSR",
                     _index, description=(
                         "Build the retrieval index of one or more graph artifacts: entity lexicon and linker,\n"
                         "faiss vector indices of triples and entity descriptions, CSR graph index.\n"
                         "Load it in Python with kgllm.index.load_index(OUT) (see docs/index.md).\n\n"
                         "--update: when OUT holds an index, apply only the difference to the graphs (triples\n"
                         "gone are deleted, new ones added, only new or changed texts embedded) and replace OUT\n"
                         "atomically; the result answers as a full rebuild would. Counts: update_added,\n"
                         "update_removed, update_kept, update_reembedded.\n\n"
                         "Embedding runs in this process, or on Ray (a Ray Data actor pool; GPUs when the\n"
                         "cluster has them) with --engine ray, --ray-address HOST:PORT, $RAY_ADDRESS, or\n"
                         "200,000+ texts to embed; the index is the same either way (docs/scale.md)."))
    add_config_args(p, "index")
    add_engine_args(p)
    p.add_argument("graphs", nargs="+", type=Path, metavar="GRAPH_DIR", help="graph artifact directories")
    p.add_argument("--corpus", type=Path, help="corpus artifact: embed its triples.jsonl texts")
    p.add_argument("--out", type=Path, required=True, help="output index artifact directory")
    p.add_argument("--no-vectors", action="store_true", help="skip the faiss vector indices")
    p.add_argument("--update", action="store_true", default=None,
                   help="update the index at --out to these graphs incrementally (built anew if none is there)")

    p = cmds.command("embed", "train knowledge graph embeddings (PyKEEN) with filtered MRR and Hits@k", _embed)
    add_config_args(p, "embed")
    p.add_argument("graph", type=Path, metavar="GRAPH_DIR", help="graph artifact directory")
    p.add_argument("--model", choices=["TransE", "RotatE", "ComplEx"], help="KGE model (default RotatE)")
    p.add_argument("--dim", type=int, help="embedding dimension")
    p.add_argument("--epochs", type=int, help="training epochs")
    p.add_argument("--out", type=Path, required=True, help="output KGE artifact directory")


def _index(args: argparse.Namespace) -> int:
    cfg = stage_config("index", args, {"vector.enabled": False if args.no_vectors else None, "update": args.update})
    inputs = list(args.graphs) + ([args.corpus] if args.corpus else [])
    with engine.configured(engine_config(args)):
        run_stage("index", inputs, args.out, cfg, force=args.force)
    return print_artifact(args.out)


def _embed(args: argparse.Namespace) -> int:
    cfg = stage_config("embed", args, {"model": args.model, "dim": args.dim, "epochs": args.epochs})
    run_stage("embed", [args.graph], args.out, cfg, force=args.force)
    return print_artifact(args.out)
