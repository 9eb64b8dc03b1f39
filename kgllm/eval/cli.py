"""Every ``kgllm eval`` command: ``qa`` (answer quality of an index, an ``eval.qa`` artifact), ``questions``
(a question set from held-out facts), ``facts`` (factual evaluation of trained models) and ``webnlg``.

Takes: the ``kgllm`` argument parser (:func:`register`). Makes: the ``eval`` group, its help text
(:data:`GROUP_HELP`, defined here only) and its subcommands. ``eval qa`` loads the answerer
(kgllm.eval.qa -> kgllm.ask.answer: pyoxigraph, numpy, faiss) when it runs, never for ``kgllm --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from ..artifacts import atomic_write_json
from ..ask.cli import RETRIEVER_CHOICES, add_answerer_args, sparql_mode
from ..commands import check_output_file, print_artifact
from ..corpus.neural import NeuralVerbalizer
from ..errors import EmptyResultError, InputError, UsageError
from ..rdf import count_triples, iter_graph
from . import webnlg
from .facts import evaluate, format_table
from .question_sets import generate, held_out_entities, write_questions

GROUP_HELP = "evaluate models and answers: facts, qa, questions, webnlg"


def register(cmds) -> None:
    # In the order `kgllm eval --help` has always listed them.
    p = cmds.subcommand("eval", "webnlg", "BLEU and chrF++ of the template or a trained verbalizer on WebNLG XML",
                        _webnlg, group_help=GROUP_HELP)
    p.add_argument("--xml", type=Path, action="append", required=True,
                   help="WebNLG XML file or a directory of them (searched recursively); repeatable")
    p.add_argument("--out", type=Path, help="also write the JSON report (and predictions) here")
    p.add_argument("--train", type=Path, action="append",
                   help="WebNLG train XML file or directory (repeatable): with it, the leave-categories-out "
                        "protocol: templates learned on train minus each fold's categories, scored on --xml "
                        "entries of exactly those categories (with --model: the fallback templates are learned "
                        "on train minus the model's left-out categories)")
    p.add_argument("--folds", type=int, default=4, help="with --train: number of category folds (default 4)")
    p.add_argument("--model", action="append",
                   help="a trained verbalizer (kgllm train verbalizer) instead of the templates, scored on the "
                        "categories it was trained without (all with --all-categories); repeatable (one per "
                        "fold: the mean is printed too)")
    p.add_argument("--all-categories", action="store_true", help="with --model: score every category of --xml")
    p.add_argument("--limit", type=int, default=0,
                   help="with --model: score a fixed sample of N entries (0: all; decoding on CPU is slow)")
    p.add_argument("--batch-size", type=int, default=16, help="with --model: texts decoded at once (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=192, help="with --model: tokens per text at most")
    p.add_argument("--retry-beams", type=int, default=4,
                   help="with --model: beams of the retry of a text that fails the check (0: none; default 4)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="with --model: where to decode")

    p = cmds.subcommand(
        "eval", "qa", "QA accuracy (Hits@1, EM, QALD F1, citation precision, latency) per retriever", _qa,
        group_help=GROUP_HELP,
        description="Ask every question of a JSONL file ({\"question\", \"answers\": [IRI or literal...]}) with\n"
                    "the vector-only, graph-only and hybrid retrievers; write report.json, table.md and the\n"
                    "predictions to an eval.qa artifact. With --feedback-questions FILE (e.g. the recorded\n"
                    "feedback file), the questions that received feedback and the held-out ones are reported\n"
                    "as two groups.")
    add_answerer_args(p)
    p.add_argument("--questions", type=Path, required=True, help="question file (JSONL)")
    p.add_argument("--out", type=Path, required=True, help="output artifact directory")
    p.add_argument("--retriever", action="append", choices=RETRIEVER_CHOICES,
                   help="evaluate only this retriever (repeatable; default: all three)")
    p.add_argument("--limit", type=int, default=0, help="first N questions only (0: all)")
    p.add_argument("--feedback-questions", type=Path, metavar="FILE",
                   help="JSONL with a \"question\" per line (the recorded feedback file): report the questions "
                        "that received feedback and the held-out ones separately")

    p = cmds.subcommand(
        "eval", "questions", "generate a QA question set from held-out facts of graph artifacts", _questions,
        group_help=GROUP_HELP,
        description="One-hop, two-hop, WordNet definition/hypernym and unanswerable questions with several\n"
                    "phrasings, from graph artifacts; held-out entities from --corpus's test split or by hash.")
    p.add_argument("graphs", nargs="+", type=Path, help="graph artifact directories")
    p.add_argument("--out", type=Path, required=True, help="output JSONL file")
    p.add_argument("--corpus", type=Path, help="corpus artifact: ask about its test-split entities")
    p.add_argument("--holdout", type=float, default=0.5, help="share of entities held out without --corpus")
    p.add_argument("--per-type", type=int, default=60, help="at most N questions per type")
    p.add_argument("--phrasings", type=int, default=2, help="phrasings per fact")
    p.add_argument("--seed", type=int, default=0)

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
    p.add_argument("--shots", type=int, default=0,
                   help="worked examples (questions and answers of the corpus's train split) before each question: "
                        "a base model scored on what it knows, not on the form of its answers (default 0)")
    p.add_argument("--out", type=Path, help="also write the JSON report to this file")


def _qa(args: argparse.Namespace) -> int:
    from .qa import run_eval  # the answerer: pyoxigraph, numpy, faiss

    man = run_eval(args.index, args.questions, args.out, retrievers=args.retriever, model=args.model,
                   sparql=sparql_mode(args), limit=args.limit, feedback_questions=args.feedback_questions,
                   ranker=args.ranker, decoding=args.decoding)
    print((args.out / "table.md").read_text("utf-8"), file=sys.stderr)  # run_eval always writes it
    return print_artifact(args.out, man)


def _questions(args: argparse.Namespace) -> int:
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


def _facts(args: argparse.Namespace) -> int:
    if args.out:
        check_output_file(args.out)
    if args.shots < 0:
        raise UsageError(f"--shots must be 0 or more, got {args.shots}")
    report = evaluate(args.model, args.corpus, split=args.split, limit=args.limit,
                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, shots=args.shots)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(format_table(report), file=sys.stderr)
    return 0


def _webnlg(args: argparse.Namespace) -> int:
    if args.out:
        check_output_file(args.out)
    if args.model:
        return _webnlg_models(args)
    if args.train:
        if args.folds < 2:
            raise UsageError(f"--folds must be at least 2, got {args.folds}")
        for p in [*args.train, *args.xml]:
            if not p.exists():
                raise InputError(f"{p}: no such WebNLG file or directory")
        report = webnlg.leave_categories_out(args.train, args.xml, folds=args.folds)
        if args.out:
            atomic_write_json(args.out, report)
        for i, f in enumerate(report["folds"]):
            print(f"fold {i}: BLEU {f['bleu']:.4f} chrF++ {f['chrf++']:.4f} ({f['entries']} entries; "
                  f"held out: {', '.join(f['categories'])})")
        print(f"held-out categories, mean of {len(report['folds'])} folds: BLEU {report['mean_bleu']:.4f} "
              f"chrF++ {report['mean_chrf++']:.4f}")
        return 0
    report = webnlg.evaluate(args.xml)
    if args.out:
        atomic_write_json(args.out, report)
    print(webnlg.format_report(report))
    print(json.dumps({k: report[k] for k in ("bleu", "chrf++", "entries")}))
    return 0


def _webnlg_models(args: argparse.Namespace) -> int:
    reports = []
    for m in args.model:
        v = NeuralVerbalizer(m, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             retry_beams=args.retry_beams, device=args.device)
        r = webnlg.evaluate_model(args.xml, v, all_categories=args.all_categories, limit=args.limit, train=args.train)
        vb, fa = r["verbalizer"], r["faithfulness"]
        print(f"{m}: BLEU {r['bleu']:.4f} chrF++ {r['chrf++']:.4f} ({r['entries']} entries of "
              f"{', '.join(r['scored_categories'])}); model alone BLEU {r['model_only']['bleu']:.4f}; texts "
              f"{vb['texts']} = {vb['passed']} passed + {vb['retried']} retried + {vb['fallbacks']} templates; "
              f"omission rate {fa['omission_rate']:.4f}, hallucination rate {fa['hallucination_rate']:.4f}; "
              f"{vb['tokens_per_s']} tokens/s on {vb['device']}")
        reports.append(r)
    summary = webnlg.mean_over_models(reports)
    if len(reports) > 1:
        print(f"mean of {len(reports)} models: BLEU {summary['mean_bleu']:.4f} chrF++ {summary['mean_chrf++']:.4f}")
    if args.out:
        atomic_write_json(args.out, {**summary, "reports": reports})
    print(json.dumps(summary))
    return 0
