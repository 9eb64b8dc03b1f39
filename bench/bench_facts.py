"""Grounding from training: base vs SFT vs SFT+DPO on held-out facts, and the time the pipeline takes.

Runs examples/train_smollm2_pipeline.yaml (DBpedia sample + WordNet subset -> validate -> corpus -> SFT ->
DPO on SmolLM2-135M-Instruct) into a work directory, timing each step, then `kgllm eval facts` on the
corpus's test split (entities no model trained on) for the base model and both checkpoints. The base
model is the same-run baseline. Targets: the pipeline under 15 minutes on 2 CPU cores; SFT (and DPO)
better than the base on the held-out facts.

Run: .venv/bin/python bench/bench_facts.py [--workdir DIR] [--limit 200]
(about 12 minutes of training and 5-7 minutes of evaluation per model on 2 CPU cores; a work directory
that already holds up-to-date steps skips them, so --limit can be changed cheaply).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "examples" / "train_smollm2_pipeline.yaml"
BASE = "smollm2-135m-instruct"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, help="pipeline work directory (default: a new temp dir)")
    ap.add_argument("--limit", type=int, default=200, help="held-out rows per part (0: all)")
    ap.add_argument("--out", type=Path, help="also write the eval facts report (JSON) here")
    args = ap.parse_args()

    from kgllm.eval.facts import evaluate, format_table
    from kgllm.pipeline import load_pipeline

    pipe = load_pipeline(PIPELINE)
    pipe.spec.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-facts-"))).resolve()
    t = time.perf_counter()
    results = pipe.run()
    total = time.perf_counter() - t
    for r in results:
        print(f"  {r.id:<8} {r.status:<8} {r.seconds:8.1f} s")
    ran = [r for r in results if r.status == "ran"]
    print(f"pipeline: {total / 60:.1f} min ({len(ran)} of {len(results)} steps ran; target < 15 min on 2 CPU "
          f"cores when all run)")

    corpus = pipe.workdir / "corpus"
    t = time.perf_counter()
    report = evaluate([BASE, pipe.workdir / "sft", pipe.workdir / "dpo"], corpus, limit=args.limit)
    print(f"\neval facts on the test split ({time.perf_counter() - t:.0f} s):")
    print(format_table(report))
    base = report["results"][0]
    for r in report["results"][1:]:
        print(f"  {Path(r['model']).name}: F1 {r['qa']['f1']:.3f} vs base {base['qa']['f1']:.3f}; "
              f"preference accuracy {r['preference']['accuracy']:.3f} vs {base['preference']['accuracy']:.3f}; "
              f"perplexity {r['perplexity']['value']:.2f} vs {base['perplexity']['value']:.2f}")
        print("    F1 by question type:", {k: round(v["f1"], 3) for k, v in sorted(r["qa"]["by_type"].items())},
              "base:", {k: round(v["f1"], 3) for k, v in sorted(base["qa"]["by_type"].items())})
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
