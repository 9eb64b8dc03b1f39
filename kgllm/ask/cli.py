"""Commands of the ask stage: ``kgllm ask`` and ``kgllm serve`` (``kgllm eval qa`` is in kgllm.eval.cli).

Takes: the ``kgllm`` argument parser (:func:`register`). Makes: the two commands, and the flags every
command that loads an answerer shares (:func:`add_answerer_args`, :func:`sparql_mode`). The answerer
(kgllm.ask.answer: pyoxigraph, then the index with numpy, faiss and the encoder) and the server
(kgllm.ask.serve: FastAPI, uvicorn, the feedback store's SQLAlchemy) are imported when a command runs, never
for ``kgllm --help``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import UsageError
from .generate import DECODINGS
from .question import check_question

RETRIEVER_CHOICES = ("hybrid", "graph", "vector")


def register(cmds) -> None:
    p = cmds.command(
        "ask", "answer a question from the graph, citing the triples that support it", _ask,
        description="Answer a question over an index artifact (kgllm index). Without --model the answer is\n"
                    "extracted from the graph (exact graph terms); with --model a local model words it from the\n"
                    "cited facts. Prints the answer and numbered citations, or one JSON object with --json.\n"
                    "Says 'not in the graph' when no fact supports an answer.\n\n"
                    "  kgllm ask 'What is the hub airport of British Airways?' --index out/index --json")
    p.add_argument("question", nargs="+",
                   help="the question (at most 500 characters); several questions share one index load")
    add_answerer_args(p)
    p.add_argument("--retriever", choices=RETRIEVER_CHOICES, default="hybrid",
                   help="hybrid (default), graph-only or vector-only retrieval")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per question (a list for several questions)")
    p.add_argument("--max-answers", type=int, default=None, metavar="N",
                   help="list at most N answers of a set, each with its citations (default 200; the full "
                        "count is always given)")

    p = cmds.command(
        "serve", "HTTP API (POST /ask, POST /feedback) and a web page to ask questions over an index", _serve,
        description="Serve POST /ask {\"question\": ..., \"retriever\": ...} -> the `kgllm ask --json` object plus\n"
                    "answer_id, POST /feedback (rate an answer, give the right answer, flag a cited triple),\n"
                    "GET / (a page showing the answer, cited triples and subgraph, with feedback controls),\n"
                    "GET /health, GET /metrics (Prometheus), GET /docs (OpenAPI). FastAPI on uvicorn.\n"
                    "Every answer and all feedback are stored in a database: SQLite in --serve-dir by default,\n"
                    "or --feedback-db URL (postgresql+psycopg://...).\n"
                    "Limits: question length, request body size and requests per minute per client.\n\n"
                    "  kgllm serve --index runs/demo/index --port 8765 --workers 2")
    add_answerer_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port 1..65535 (default 8765; 0: any free port)")
    p.add_argument("--rate", type=int, default=60,
                   help="requests per minute per client address and endpoint, at least 1 (default 60)")
    p.add_argument("--max-body", type=int, default=8192,
                   help="largest request body in bytes, at least 1024 (default 8192); larger ones get 413")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes, each with the index memory-mapped (default 1)")
    p.add_argument("--serve-dir", type=Path, default=Path("kgllm-serve"),
                   help="the server's directory: holds the default SQLite feedback database feedback.db "
                        "(default ./kgllm-serve; created if missing)")
    p.add_argument("--feedback-db", metavar="URL",
                   help="SQLAlchemy URL of the feedback database (sqlite:///PATH or "
                        "postgresql+psycopg://USER@HOST:PORT/DB); default: sqlite in --serve-dir")
    p.add_argument("--api-key", help="require `Authorization: Bearer KEY` for POST /feedback and GET "
                                     "/feedback/counts (default: the KGLLM_API_KEY environment variable; "
                                     "none: open). Prefer the variable: flags show in the process list")
    p.add_argument("--full-paths", action="store_true",
                   help="show each citation's provenance with the server's absolute file paths "
                        "(default: file names only)")


def add_answerer_args(p: argparse.ArgumentParser) -> None:
    """``--index``, ``--model`` and ``--sparql-endpoint``/``--no-sparql``: what an answerer is built from."""
    p.add_argument("--index", type=Path, required=True, help="index artifact directory (kgllm index)")
    p.add_argument("--model", help="local model (name or checkpoint directory) to word the answer; "
                                   "default: extractive answers without a model")
    p.add_argument("--decoding", choices=list(DECODINGS), default="auto",
                   help="with --model: constrained (the model can write only the shown facts' labels with their "
                        "numbers, so each name is a fact's and each [n] exists), free (its own text) or auto "
                        "(default: constrained for a model trained on `kgllm train raft-data` examples, else free)")
    p.add_argument("--ranker", type=Path, help="question/query ranker trained by `kgllm train ranker` "
                                               "(default: the index's packaged encoder, zero-shot)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sparql-endpoint", help="run the SPARQL templates on this endpoint instead of an "
                                             "embedded store built from the index")
    g.add_argument("--no-sparql", action="store_true", help="answer from the index's adjacency only")


def sparql_mode(args: argparse.Namespace) -> str:
    """The answerer's ``sparql`` setting from :func:`add_answerer_args`'s flags: off, an endpoint or store."""
    return "off" if args.no_sparql else (args.sparql_endpoint or "store")


def _answerer(args):
    from .answer import load_answerer

    return load_answerer(args.index, model=args.model, sparql=sparql_mode(args), ranker=args.ranker,
                         decoding=args.decoding, max_answers=args.max_answers)


def _ask(args: argparse.Namespace) -> int:
    from .answer import format_text

    for q in args.question:  # bad input fails before the index loads
        check_question(q)
    if args.max_answers is not None and args.max_answers < 1:
        raise UsageError(f"--max-answers {args.max_answers}: give 1 or more")
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
    from .serve import API_KEY_ENV, ServeConfig, check_serve_args, serve

    check_serve_args(args.port, args.rate, args.workers, args.max_body)  # before the index loads
    serve(ServeConfig(index=str(args.index), model=args.model, decoding=args.decoding, ranker=str(args.ranker) if args.ranker else None, sparql=sparql_mode(args), host=args.host,
                      port=args.port, rate_per_minute=args.rate, max_body=args.max_body,
                      serve_dir=str(args.serve_dir), feedback_db=args.feedback_db,
                      api_key=args.api_key or os.environ.get(API_KEY_ENV) or None, workers=args.workers,
                      full_paths=args.full_paths))
    return 0
