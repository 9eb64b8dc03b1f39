"""Commands of the ask stage: ``ask``, ``serve``, ``eval qa`` and ``eval questions`` (handlers import lazily)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

RETRIEVER_CHOICES = ("hybrid", "graph", "vector")


def register(cmds) -> None:
    from ..eval.cli import GROUP_HELP as EVAL_HELP

    p = cmds.command(
        "ask", "answer a question from the graph, citing the triples that support it", _ask,
        description="Answer a question over an index artifact (kgllm index). Without --model the answer is\n"
                    "extracted from the graph (exact graph terms); with --model a local model words it from the\n"
                    "cited facts. Prints the answer and numbered citations, or one JSON object with --json.\n"
                    "Says 'not in the graph' when no fact supports an answer.\n\n"
                    "  kgllm ask 'What is the hub airport of British Airways?' --index out/index --json")
    p.add_argument("question", nargs="+",
                   help="the question (at most 500 characters); several questions share one index load")
    _answerer_args(p)
    p.add_argument("--retriever", choices=RETRIEVER_CHOICES, default="hybrid",
                   help="hybrid (default), graph-only or vector-only retrieval")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per question (a list for several questions)")

    p = cmds.command(
        "serve", "HTTP API (POST /ask) and a web page to ask questions over an index", _serve,
        description="Serve POST /ask {\"question\": ..., \"retriever\": ...} -> the `kgllm ask --json` object,\n"
                    "GET / (a page showing the answer, cited triples and subgraph), GET /health.\n"
                    "Limits: question length, request body size and requests per minute per client.")
    _answerer_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port 1..65535 (default 8765; 0: any free port)")
    p.add_argument("--rate", type=int, default=60,
                   help="requests per minute per client address, at least 1 (default 60)")

    p = cmds.subcommand(
        "eval", "qa", "QA accuracy (Hits@1, EM, QALD F1, citation precision, latency) per retriever", _eval_qa,
        group_help=EVAL_HELP,
        description="Ask every question of a JSONL file ({\"question\", \"answers\": [IRI or literal...]}) with\n"
                    "the vector-only, graph-only and hybrid retrievers; write report.json, table.md and the\n"
                    "predictions to an eval.qa artifact.")
    _answerer_args(p)
    p.add_argument("--questions", type=Path, required=True, help="question file (JSONL)")
    p.add_argument("--out", type=Path, required=True, help="output artifact directory")
    p.add_argument("--retriever", action="append", choices=RETRIEVER_CHOICES,
                   help="evaluate only this retriever (repeatable; default: all three)")
    p.add_argument("--limit", type=int, default=0, help="first N questions only (0: all)")

    p = cmds.subcommand(
        "eval", "questions", "generate a QA question set from held-out facts of graph artifacts", _eval_questions,
        group_help=EVAL_HELP,
        description="One-hop, two-hop, WordNet definition/hypernym and unanswerable questions with several\n"
                    "phrasings, from graph artifacts; held-out entities from --corpus's test split or by hash.")
    p.add_argument("graphs", nargs="+", type=Path, help="graph artifact directories")
    p.add_argument("--out", type=Path, required=True, help="output JSONL file")
    p.add_argument("--corpus", type=Path, help="corpus artifact: ask about its test-split entities")
    p.add_argument("--holdout", type=float, default=0.5, help="share of entities held out without --corpus")
    p.add_argument("--per-type", type=int, default=60, help="at most N questions per type")
    p.add_argument("--phrasings", type=int, default=2, help="phrasings per fact")
    p.add_argument("--seed", type=int, default=0)


def _answerer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, required=True, help="index artifact directory (kgllm index)")
    p.add_argument("--model", help="local model (name or checkpoint directory) to word the answer; "
                                   "default: extractive answers without a model")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sparql-endpoint", help="run the SPARQL templates on this endpoint instead of an "
                                             "embedded store built from the index")
    g.add_argument("--no-sparql", action="store_true", help="answer from the index's adjacency only")


def _sparql(args) -> str:
    return "off" if args.no_sparql else (args.sparql_endpoint or "store")


def _answerer(args):
    from .answer import load_answerer

    return load_answerer(args.index, model=args.model, sparql=_sparql(args))


def _ask(args: argparse.Namespace) -> int:
    from .answer import format_text
    from .parse import check_question

    for q in args.question:  # bad input fails before the index loads
        check_question(q)
    answerer = _answerer(args)
    answerer.warmup([args.retriever])  # load the encoder first: each printed latency is then its question's own
    outs = [answerer.ask(q, args.retriever) for q in args.question]
    if args.json:
        print(json.dumps(outs[0] if len(outs) == 1 else outs, ensure_ascii=False, indent=2))
        return 0
    for i, (q, out) in enumerate(zip(args.question, outs, strict=True)):
        if len(outs) > 1:
            print(("\n" if i else "") + f"Q: {q}")
        print(format_text(out))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import check_serve_args, serve

    check_serve_args(args.port, args.rate)  # before the index loads
    serve(_answerer(args), host=args.host, port=args.port, rate_per_minute=args.rate)
    return 0


def _eval_qa(args: argparse.Namespace) -> int:
    from ..commands import print_artifact
    from ..eval.qa import run_eval

    man = run_eval(args.index, args.questions, args.out, retrievers=args.retriever, model=args.model,
                   sparql=_sparql(args), limit=args.limit)
    print((args.out / "table.md").read_text("utf-8"), file=sys.stderr)  # run_eval always writes it
    return print_artifact(args.out, man)


def _eval_questions(args: argparse.Namespace) -> int:
    from ..errors import EmptyResultError, UsageError
    from ..eval.cli import check_output_file
    from ..eval.questions import generate, held_out_entities, write_questions
    from ..rdf import count_triples, iter_graph

    check_output_file(args.out)
    if not 0 < args.holdout <= 1:
        raise UsageError(f"--holdout {args.holdout}: must be in (0, 1] (the share of entities to ask about)")
    for flag, value in (("--per-type", args.per_type), ("--phrasings", args.phrasings)):
        if value < 1:
            raise UsageError(f"{flag} {value}: must be at least 1")
    graphs = ", ".join(map(str, args.graphs))
    if count_triples(args.graphs) == 0:  # also a clear error for anything but graph artifacts
        raise EmptyResultError(f"{graphs}: the graph holds no triples; no questions to generate")
    held = held_out_entities(args.corpus) if args.corpus else None
    rows = generate(iter_graph(args.graphs), holdout=args.holdout, held_out=held, phrasings=args.phrasings,
                    max_per_type=args.per_type, seed=args.seed)
    if not rows:
        raise EmptyResultError(f"{graphs}: no questions could be generated (no labelled entity with an askable "
                               f"fact among the held-out ones); try a larger --holdout or another graph")
    write_questions(rows, args.out)
    counts = Counter(r["type"] for r in rows)
    print(f"questions: {args.out}  ({', '.join(f'{k}={v}' for k, v in sorted(counts.items()))}; "
          f"total={len(rows)})")
    return 0
