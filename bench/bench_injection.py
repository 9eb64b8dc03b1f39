"""Knowledge injection, closed book: does training on the graph make a model know the graph?

Builds a ``corpus.injection`` set (kgllm.train.injection) from the bundled DBpedia sample + WordNet corpus
(the data steps of examples/train_smollm2_pipeline.yaml, or ``--corpus DIR``), then runs
base -> continued pretraining on the paraphrased documents -> SFT on family-A questions -> DPO on
KG-verified false statements, on SmolLM2-135M-Instruct, and after each step asks ``kgllm eval facts``
(family-B questions) about the *seen* facts (documents trained, question never trained) and the
*control* facts (entities no training text names). Prints a markdown table (answer F1, the F1 of
``eval facts``, answer contained, KG-supported rate, preference accuracy) and the run time of each step.
Targets (issue 16): seen-fact F1 >= 0.6 and KG-supported >= 0.5 after training on >= 300 facts, control
near the base model. ``--base-shots K`` adds a row: the base model with K worked examples (family-A questions
of the QA-train facts, never a test or control fact) before each question, the base's knowledge once the
answer's form is shown rather than trained.

``--sweep-epochs 1,2,4`` / ``--sweep-paraphrases 1,2,4`` (with ``--sweep-mode variety,repeat``) add
pretrain -> SFT runs for each setting and evaluate them after SFT (question answering only).

Run (2 CPU cores, loaded machine: --threads 2; the steps are cached in the work dir, a rerun skips
finished steps and evaluations)::

    nice -n 10 .venv/bin/python bench/bench_injection.py --workdir runs/bench-injection --threads 2

GPU: the same command; the trainers and the generator use CUDA when torch sees one (bf16).
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
EXAMPLES = ROOT / "examples"
PIPELINE = EXAMPLES / "train_smollm2_pipeline.yaml"
BASE = "smollm2-135m-instruct"
DATA_STEPS = ("dbpedia", "wordnet", "clean", "corpus")


def data_steps() -> list[dict]:
    """The data steps of examples/train_smollm2_pipeline.yaml, with their paths made absolute."""
    import yaml

    spec = yaml.safe_load(PIPELINE.read_text("utf-8"))
    steps = [s for s in spec["steps"] if s["id"] in DATA_STEPS]
    for s in steps:
        cfg = s.get("config") or {}
        for key in ("paths", "ontology"):
            if key in cfg:
                cfg[key] = [str((EXAMPLES / p).resolve()) for p in cfg[key]]
    return steps


def train_steps(args, corpus_ref: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """Pipeline steps of the main chain and the sweep, and the (label, step id) pairs to evaluate."""
    steps, evals = [], [("base", "")]

    def chain(tag: str, k: int, mode: str, epochs: float, dpo: bool) -> list[str]:
        inj = f"inject-k{k}-{mode}"
        if not any(s["id"] == inj for s in steps):
            steps.append({"id": inj, "stage": "train.injection_data", "inputs": [corpus_ref],
                          "config": {"facts": args.facts, "qa_train": args.qa_train, "paraphrases": k,
                                     "paraphrase_mode": mode, "control": args.control, "seed": args.seed}})
        pre, sft = f"pretrain-{tag}", f"sft-{tag}"
        steps.append({"id": pre, "stage": "train.pretrain", "inputs": [inj],
                      "config": {"model": BASE, "epochs": epochs, "lr": args.pretrain_lr, "max_length": 128,
                                 "batch_size": 8, "warmup_steps": 5, "max_eval_examples": 0, "save_steps": 10000,
                                 "logging_steps": 10, "seed": args.seed}})
        steps.append({"id": sft, "stage": "train.sft", "inputs": [inj, pre],
                      "config": {"epochs": args.sft_epochs, "lr": args.sft_lr, "max_length": 128, "batch_size": 8,
                                 "warmup_steps": 2, "max_eval_examples": 0, "save_steps": 10000,
                                 "logging_steps": 10, "seed": args.seed}})
        ids = [pre, sft]
        if dpo:
            steps.append({"id": f"dpo-{tag}", "stage": "train.dpo", "inputs": [inj, sft],
                          "config": {"max_train_examples": args.dpo_examples, "lr": args.dpo_lr, "beta": 0.1,
                                     "batch_size": 8, "max_length": 128, "max_eval_examples": 0,
                                     "save_steps": 10000, "logging_steps": 4, "seed": args.seed}})
            ids.append(f"dpo-{tag}")
        return ids

    main = chain("main", args.paraphrases, "variety", args.epochs, dpo=not args.no_dpo)
    evals += [(name, i) for name, i in zip(("continued pretraining", "+ SFT", "+ DPO"), main, strict=False)]
    for mode in args.sweep_mode:
        for k in args.sweep_paraphrases:
            for e in args.sweep_epochs:
                tag = f"k{k}-{mode}-e{e:g}"
                if (k, mode, e) == (args.paraphrases, "variety", args.epochs):
                    continue
                evals.append((f"sweep K={k} {mode} epochs={e:g} (+ SFT)", chain(tag, k, mode, e, dpo=False)[1]))
    return steps, evals


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def evaluate_cached(work: Path, label: str, model, corpus: Path, parts: tuple[str, ...], batch_size: int,
                    shots: int = 0) -> dict:
    """``eval facts`` of one model, cached in ``work/eval/`` by the model's and the corpus's content hashes."""
    from kgllm.artifacts import read_manifest
    from kgllm.eval.facts import evaluate_model

    key = {"model": str(model), "parts": list(parts), "corpus": read_manifest(corpus).content_sha256,
           "model_sha": read_manifest(model).content_sha256 if Path(str(model)).is_dir() else None,
           **({"shots": shots} if shots else {})}
    path = work / "eval" / (label.replace(" ", "_").replace("/", "_").replace("+", "plus") + ".json")
    if path.exists():
        old = json.loads(path.read_text("utf-8"))
        if old.get("key") == key:
            return old
    t = time.perf_counter()
    r = evaluate_model(model, corpus, parts=parts, max_new_tokens=32, batch_size=batch_size, examples=5, shots=shots)
    r["key"], r["seconds"] = key, time.perf_counter() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r, indent=1), "utf-8")
    return r


def row(label: str, r: dict, seconds: float | None) -> str:
    def g(group: str, key: str, part: str = "qa") -> str:
        v = ((r[part].get("by_group") or {}).get(group) or {})
        v = v.get(key)
        return f"{v:.3f}" if isinstance(v, (int, float)) else "-"

    n = (r["qa"].get("by_group") or {}).get("seen", {}).get("n", 0)
    nc = (r["qa"].get("by_group") or {}).get("control", {}).get("n", 0)
    t = f"{seconds / 60:.1f}" if seconds else "-"
    return (f"| {label} | {n}/{nc} | {g('seen', 'answer_f1')} | {g('seen', 'f1')} | {g('seen', 'contains')} | "
            f"{g('seen', 'kg_supported')} | {g('seen', 'accuracy', 'preference')} | {g('control', 'answer_f1')} | "
            f"{g('control', 'f1')} | {g('control', 'contains')} | {g('control', 'kg_supported')} | {t} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, help="work directory (default: a new temp dir); reruns skip done steps")
    ap.add_argument("--corpus", type=Path, help="an existing corpus artifact (default: build the bundled one)")
    ap.add_argument("--facts", type=int, default=300, help="seen facts asked at test (QA-test)")
    ap.add_argument("--qa-train", type=int, default=150, help="seen facts whose family-A questions train SFT")
    ap.add_argument("--control", type=int, default=150)
    ap.add_argument("--paraphrases", type=int, default=4)
    ap.add_argument("--epochs", type=float, default=3.0, help="continued-pretraining epochs")
    ap.add_argument("--pretrain-lr", type=float, default=1e-4)
    ap.add_argument("--sft-epochs", type=float, default=1.0)
    ap.add_argument("--sft-lr", type=float, default=5e-5)
    ap.add_argument("--dpo-examples", type=int, default=96)
    ap.add_argument("--dpo-lr", type=float, default=5e-6)
    ap.add_argument("--no-dpo", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep-epochs", type=_floats, default=[], metavar="E1,E2")
    ap.add_argument("--sweep-paraphrases", type=lambda s: [int(x) for x in s.split(",")], default=[], metavar="K1,K2")
    ap.add_argument("--sweep-mode", type=lambda s: s.split(","), default=["variety"], metavar="variety,repeat")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--batch-size", type=int, default=16, help="generation batch size")
    ap.add_argument("--no-preference", action="store_true", help="skip the preference accuracy (saves CPU time)")
    ap.add_argument("--base-shots", type=int, default=0, metavar="K",
                    help="also score the base model with K worked examples before each question (eval facts "
                         "--shots): the control's reference once the answer's form is shown, not trained")
    ap.add_argument("--only-data", action="store_true", help="build the data and stop")
    args = ap.parse_args()
    if args.sweep_epochs and not args.sweep_paraphrases:
        args.sweep_paraphrases = [args.paraphrases]
    if args.sweep_paraphrases and not args.sweep_epochs:
        args.sweep_epochs = [args.epochs]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import yaml

    from kgllm.pipeline import load_pipeline

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-injection-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    steps = [] if args.corpus else data_steps()
    corpus_ref = str(args.corpus.resolve()) if args.corpus else "corpus"
    tsteps, evals = train_steps(args, corpus_ref)
    steps += [s for s in tsteps if not args.only_data or s["stage"] == "train.injection_data"]
    spec_path = work / "pipeline.yaml"
    spec_path.write_text(yaml.safe_dump({"workdir": str(work), "steps": steps}, sort_keys=False), "utf-8")
    pipe = load_pipeline(spec_path)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def on_step(r) -> None:
        seconds[r.id] = r.seconds
        print(f"  {r.id:<32} {r.status:<8} {r.seconds / 60:6.1f} min", flush=True)

    pipe.run(on_step=on_step)
    print(f"pipeline: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    inject = work / f"inject-k{args.paraphrases}-variety"
    man = json.loads((inject / "manifest.json").read_text("utf-8"))
    print("injection data:", {k: v for k, v in man["counts"].items() if not isinstance(v, dict)})
    if args.only_data:
        return 0

    print("\n| model | n seen/control | seen answer F1 | seen F1 | seen contains | seen KG-supported | "
          "seen pref acc | control answer F1 | control F1 | control contains | control KG-supported | "
          "train min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    shot_label = f"base, {args.base_shots}-shot"
    if args.base_shots:
        evals.insert(1, (shot_label, ""))
    for label, step in evals:
        model = work / step if step else BASE
        corpus = Path(pipe.spec.steps[[s.id for s in pipe.spec.steps].index(step)].inputs[0]) if step else inject
        if step:
            corpus = work / corpus if not corpus.is_absolute() else corpus
        parts = ("qa",) if label.startswith("sweep") or args.no_preference else ("qa", "preference")
        r = evaluate_cached(work, label, model, corpus if step and label.startswith("sweep") else inject, parts,
                            args.batch_size, args.base_shots if label == shot_label else 0)
        results[label] = r
        print(row(label, r, seconds.get(step)), flush=True)
        print(f"    eval {r.get('seconds', 0) / 60:.1f} min; examples: "
              + "; ".join(f"{e['prompt']} -> {e['prediction']}" for e in r["qa"]["examples"][:2]), flush=True)
    print(f"\ntotal: {(time.perf_counter() - t0) / 60:.1f} min")
    (work / "report.json").write_text(json.dumps({"seconds": seconds, "results": results}, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
