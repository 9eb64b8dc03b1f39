"""``kgllm train {tokenizer,pretrain,sft,dpo,kto,reward,ranker,verbalizer,raft-data,injection-data}`` and ``kgllm models {prepare,list}`` (torch loads lazily).

Single process (CPU, or one GPU)::

    kgllm train sft --config examples/train_sft.yaml --corpus runs/demo/corpus --out runs/demo/sft

Several GPUs on one node (DDP; the same flags)::

    torchrun --standalone --nproc_per_node=4 -m kgllm train sft --config ... --corpus ... --out ...
    accelerate launch --num_processes 4 -m kgllm train sft ...

FSDP (shards parameters, gradients and optimizer state across GPUs)::

    accelerate launch --config_file examples/accelerate/fsdp.yaml -m kgllm train pretrain ...

Several nodes (run on each node; node 0's address as the rendezvous endpoint)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$RANK --rdzv_backend=c10d \\
        --rdzv_endpoint=$MASTER_ADDR:29500 -m kgllm train pretrain ...
    accelerate launch --config_file examples/accelerate/multinode.yaml --machine_rank $RANK \\
        --main_process_ip $MASTER_ADDR -m kgllm train pretrain ...

OUT must be on a file system every node sees (the main process writes the artifact).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import add_config_args, print_artifact, stage_config
from ..registry import run_stage
from .models import list_models, prepare
from .tokenizer import train_tokenizer

GROUP_HELP = "train models and tokenizers"
_STAGES = {
    "pretrain": "causal LM pretraining, from scratch (model: scratch + tokenizer) or continued",
    "sft": "supervised fine-tuning on the corpus's question/answer pairs (trl SFTTrainer)",
    "dpo": "direct preference optimisation on preference pairs: KG-verified, or people's corrections from a "
           "feedback export (trl DPOTrainer)",
    "kto": "KTO on unpaired good/bad answers: people's ratings in a feedback export (trl KTOTrainer)",
    "reward": "a reward model on the corpus's preference pairs (trl RewardTrainer)",
}


def register(cmds) -> None:
    p = cmds.subcommand("train", "tokenizer", "train a byte-level BPE tokenizer on a corpus artifact", _tokenizer,
                        group_help=GROUP_HELP)
    p.add_argument("--corpus", type=Path, required=True, help="corpus artifact directory")
    p.add_argument("--vocab-size", type=int, default=8000, help="vocabulary size (default 8000)")
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="output tokenizer directory (transformers format)")

    for name, help_ in _STAGES.items():
        p = cmds.subcommand("train", name, help_, _train_handler(name), group_help=GROUP_HELP,
                            description=f"{help_}.\n\n{__doc__.split(chr(10), 2)[2]}")
        add_config_args(p, f"train.{name}")
        p.add_argument("--corpus", type=Path, required=True,
                       help="corpus artifact directory (kgllm corpus" + (", or a feedback export)" if name in (
                           "dpo", "kto") else ")"))
        p.add_argument("--out", type=Path, required=True, help="output model artifact directory")
        p.add_argument("--model", help="starting model: a name from `kgllm models list` or a checkpoint dir"
                       + (" ('scratch' for a new model)" if name == "pretrain" else ""))
        p.add_argument("--resume", action="store_true", default=None,
                       help="continue from the last checkpoint of an earlier run to the same --out")
        p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (config: max_steps)")
        if name == "pretrain":
            p.add_argument("--tokenizer", type=Path, help="tokenizer directory for model: scratch")

    p = cmds.subcommand("train", "ranker", _RANKER_HELP, _ranker, group_help=GROUP_HELP,
                        description=f"{_RANKER_HELP}.\n\n" + _RANKER_USAGE)
    add_config_args(p, "train.ranker")
    p.add_argument("--lcquad", type=Path, help="LC-QuAD 1.0 JSON file (train-data.json[.xz]), read in place")
    p.add_argument("--qald", type=Path, help="QALD JSON file (qald-9-train-multilingual.json[.xz])")
    p.add_argument("--questions", type=Path, action="append",
                   help="your own JSONL file of {\"question\", \"query\"} lines (repeatable)")
    p.add_argument("--ontology", type=Path, help="RDF file or graph artifact with rdfs:label @en of predicates "
                   "and classes (default: labels from IRI local names)")
    p.add_argument("--base", help="encoder to start from: a sentence-transformers directory or a train.ranker "
                   "artifact (default: the packaged MiniLM)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-pairs", type=int, help="train on a seeded sample of N pairs (config: max_pairs)")
    p.add_argument("--out", type=Path, required=True, help="output train.ranker artifact directory")

    p = cmds.subcommand("train", "verbalizer", _VERBALIZER_HELP, _verbalizer, group_help=GROUP_HELP,
                        description=f"{_VERBALIZER_HELP}.\n\n" + _VERBALIZER_USAGE)
    add_config_args(p, "train.verbalizer")
    p.add_argument("--webnlg", type=Path, action="append",
                   help="WebNLG train XML file or directory (repeatable), read in place (config: webnlg)")
    p.add_argument("--dev", type=Path, action="append",
                   help="WebNLG dev XML file or directory for the eval loss (repeatable; config: dev)")
    p.add_argument("--exclude-categories", metavar="A,B,...",
                   help="WebNLG categories left out of training, comma-separated (config: exclude_categories)")
    p.add_argument("--model", help="starting model: a name from `kgllm models list` or a checkpoint dir "
                   "(default smollm2-135m-instruct)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the last checkpoint of an earlier run to the same --out")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (config: max_steps)")
    p.add_argument("--out", type=Path, required=True, help="output model artifact directory")

    p = cmds.subcommand("train", "raft-data", _RAFT_HELP, _raft_data, group_help=GROUP_HELP,
                        description=f"{_RAFT_HELP}.\n\n" + _RAFT_USAGE)
    add_config_args(p, "train.raft_data")
    p.add_argument("--index", type=Path, required=True, action="append",
                   help="index artifact directory (kgllm index); repeatable: the examples of several graphs, "
                        "sampled together")
    p.add_argument("--exclude-questions", type=Path, action="append", metavar="FILE",
                   help="question file evaluated later (JSONL): its entities and triples stay out of the "
                        "examples (repeatable; config: exclude_questions)")
    p.add_argument("--questions", type=Path, action="append", metavar="FILE",
                   help="questions in people's own words over the graph (JSONL: question, answers, query: a "
                        "SELECT over one basic graph pattern, as QALD-9 train's questions.jsonl): each answered "
                        "one is an example too (repeatable; config: questions)")
    p.add_argument("--max-examples", type=int, help="a seeded sample of N examples (config: max_examples)")
    p.add_argument("--out", type=Path, required=True, help="output corpus.raft artifact directory")

    p = cmds.subcommand("train", "injection-data", _INJECTION_HELP, _injection_data, group_help=GROUP_HELP,
                        description=f"{_INJECTION_HELP}.\n\n" + _INJECTION_USAGE)
    add_config_args(p, "train.injection_data")
    p.add_argument("--corpus", type=Path, required=True, help="corpus artifact directory (kgllm corpus)")
    p.add_argument("--facts", type=int, help="held-out seen facts asked at test (config: facts, default 300)")
    p.add_argument("--paraphrases", type=int, help="documents per seen fact (config: paraphrases, default 4)")
    p.add_argument("--seed", type=int, help="config: seed")
    p.add_argument("--out", type=Path, required=True, help="output corpus.injection artifact directory")

    p = cmds.subcommand("models", "prepare", "convert a known base model to a transformers checkpoint, once",
                        _prepare, group_help="offline base models (kgllm models prepare NAME | list)")
    p.add_argument("name", help="model name (see `kgllm models list`), or 'list'")
    p.add_argument("--force", action="store_true", help="convert again even if already prepared")
    cmds.subcommand("models", "list", "list known base models and whether they are prepared", _list)


def _train_handler(name: str):
    def handler(args: argparse.Namespace) -> int:
        flags = {"model": args.model, "resume": args.resume, "max_steps": args.max_steps}
        if name == "pretrain":
            flags["tokenizer"] = str(args.tokenizer) if args.tokenizer else None
        cfg = stage_config(f"train.{name}", args, flags)
        man = run_stage(f"train.{name}", [args.corpus], args.out, cfg, force=args.force)
        if man is not None:
            return print_artifact(args.out, man)

    return handler


_RANKER_HELP = "fine-tune the question/query ranker of `kgllm ask` on question/SPARQL pairs"
_RANKER_USAGE = """\
kgllm train ranker --lcquad train-data.json.xz --qald qald-9-train-multilingual.json.xz --out runs/ranker
kgllm train ranker --questions mine.jsonl --set folds=5 --set fold=0 --out runs/ranker
kgllm ask runs/index "Which films star Jesse Eisenberg?" --ranker runs/ranker/model"""


def _ranker(args: argparse.Namespace) -> int:
    flags = {"lcquad": str(args.lcquad) if args.lcquad else None, "qald": str(args.qald) if args.qald else None,
             "questions": [str(q) for q in args.questions] if args.questions else None,
             "ontology": str(args.ontology) if args.ontology else None, "base": args.base,
             "epochs": args.epochs, "max_pairs": args.max_pairs}
    cfg = stage_config("train.ranker", args, flags)
    man = run_stage("train.ranker", [], args.out, cfg, force=args.force)
    if man is not None:
        return print_artifact(args.out, man)


_VERBALIZER_HELP = "train a triples-to-text verbalizer on WebNLG (SFT; leave categories out for evaluation)"
_VERBALIZER_USAGE = """\
kgllm train verbalizer --webnlg ../shared/data/webnlg/train --dev ../shared/data/webnlg/dev --out runs/verbalizer
kgllm train verbalizer --webnlg ../shared/data/webnlg/train --exclude-categories Airport,Building --out runs/v0
kgllm eval webnlg --xml ../shared/data/webnlg/dev --model runs/v0      # scores the left-out categories
kgllm verbalize --jsonl triples.jsonl --model runs/verbalizer --out text.jsonl"""


def _verbalizer(args: argparse.Namespace) -> int:
    excluded = None
    if args.exclude_categories is not None:
        excluded = [c.strip() for c in args.exclude_categories.split(",") if c.strip()]
    flags = {"webnlg": [str(x) for x in args.webnlg] if args.webnlg else None,
             "dev": [str(x) for x in args.dev] if args.dev else None, "exclude_categories": excluded,
             "model": args.model, "resume": args.resume, "max_steps": args.max_steps}
    cfg = stage_config("train.verbalizer", args, flags)
    man = run_stage("train.verbalizer", [], args.out, cfg, force=args.force)
    if man is not None:
        return print_artifact(args.out, man)


_RAFT_HELP = ("grounded-answer training examples from an index (RAFT: question, retrieved facts with distractors, "
              "answer citing [n] or 'not in the graph'), for `train sft`")
_RAFT_USAGE = """\
kgllm train raft-data --index runs/index --exclude-questions examples/data/questions/handwritten.jsonl --out runs/raft
kgllm train sft --corpus runs/raft --out runs/raft-sft --set lr=1e-4
kgllm ask "Which company makes Audi A4?" --index runs/index --model runs/raft-sft"""


def _raft_data(args: argparse.Namespace) -> int:
    flags = {"exclude_questions": [str(x) for x in args.exclude_questions] if args.exclude_questions else None,
             "questions": [str(x) for x in args.questions] if args.questions else None,
             "max_examples": args.max_examples}
    cfg = stage_config("train.raft_data", args, flags)
    man = run_stage("train.raft_data", args.index, args.out, cfg, force=args.force)
    if man is not None:
        return print_artifact(args.out, man)


_INJECTION_HELP = ("closed-book knowledge injection data: paraphrased documents of seen facts to pretrain on, "
                   "question families A (train) and B (test), an unseen-entity control")
_INJECTION_USAGE = """\
kgllm train injection-data --corpus runs/x/corpus --facts 300 --paraphrases 4 --out runs/x/inject
kgllm train pretrain --corpus runs/x/inject --model smollm2-135m-instruct --out runs/x/inject-lm \\
    --set epochs=2 --set lr=2e-4 --set max_length=128
kgllm train sft --corpus runs/x/inject --model runs/x/inject-lm --out runs/x/inject-sft --set lr=1e-4
kgllm eval facts --corpus runs/x/inject --model smollm2-135m-instruct --model runs/x/inject-sft"""


def _injection_data(args: argparse.Namespace) -> int:
    flags = {"facts": args.facts, "paraphrases": args.paraphrases, "seed": args.seed}
    cfg = stage_config("train.injection_data", args, flags)
    man = run_stage("train.injection_data", [args.corpus], args.out, cfg, force=args.force)
    if man is not None:
        return print_artifact(args.out, man)


def _prepare(args: argparse.Namespace) -> int:
    if args.name == "list":
        return _list(args)
    out = prepare(args.name, force=args.force)
    return print_artifact(out)


def _list(args: argparse.Namespace) -> int:
    for m in list_models():
        state = "prepared" if m["prepared"] else "not prepared"
        print(f"{m['name']:<24} {state:<13} {m['path']}\n{'':<24} {m['description']}")
    return 0


def _tokenizer(args: argparse.Namespace) -> int:
    train_tokenizer(args.corpus, args.out, vocab_size=args.vocab_size, min_frequency=args.min_frequency)
    return print_artifact(args.out)
