"""Benchmark of the question/query ranker (``kgllm train ranker``): ranking accuracy, zero-shot vs trained.

Ranking accuracy is the share of questions whose own query's text scores above all its hard negatives
(``kgllm.train.ranker.ranking_accuracy``), on sets the ranker was not trained on: LC-QuAD 1.0 test and QALD-9
train (read in place from ../shared/data; neither is copied into the project). Pairs are built exactly as the
training stage builds them. End-to-end answer quality with a ranker is bench/bench_qald.py --ranker DIR.

Usage::

    python bench/bench_ranker.py --ranker DIR          # a train.ranker artifact (or sentence-transformers dir)
    python bench/bench_ranker.py --train DIR           # first train on LC-QuAD train into DIR (about 8 min, 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KGLLM_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
LCQUAD_TRAIN = SHARED / "lcquad1" / "train-data.json.xz"
SETS = {"LC-QuAD 1.0 test": {"lcquad": SHARED / "lcquad1" / "test-data.json.xz"},
        "QALD-9 train": {"qald": SHARED / "qald9-train" / "qald-9-train-multilingual.json.xz"}}


def main() -> None:
    from kgllm.registry import run_stage
    from kgllm.train.ranker import build_pairs, ranking_accuracy_by_shape
    from kgllm.train.stage import RankerConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--ranker", type=Path, help="a trained ranker to compare with the zero-shot encoder")
    g.add_argument("--train", type=Path, help="train a ranker on LC-QuAD 1.0 train into this directory first")
    args = ap.parse_args()
    model = args.ranker
    if args.train:
        t = time.perf_counter()
        run_stage("train.ranker", [], args.train, {"lcquad": str(LCQUAD_TRAIN)})
        print(f"trained on {LCQUAD_TRAIN.name} in {time.perf_counter() - t:.0f}s")
        model = args.train
    print("| set | pairs | encoder | all | by shape |\n|---|---:|---|---:|---|")
    for name, keys in SETS.items():
        pairs = build_pairs(RankerConfig(**keys)).pairs
        for m, label in ((None, "zero-shot"), (model, "trained")):
            acc = ranking_accuracy_by_shape(m, pairs)
            shapes = json.dumps({k: round(v, 3) for k, v in sorted(acc.items()) if k != "all"})
            print(f"| {name} | {len(pairs)} | {label} | {acc['all']:.3f} | {shapes} |", flush=True)


if __name__ == "__main__":
    main()
