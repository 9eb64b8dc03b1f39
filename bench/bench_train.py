"""Training throughput of the train stages against a plain PyTorch loop of the same model, same run.

What it measures:
- pretrain: `train.pretrain` (transformers Trainer, packed blocks) vs a bare loop
  (forward, backward, clip, AdamW step) over the very same blocks and initial weights;
- sft: `train.sft` (trl SFTTrainer, completion-only loss) vs a bare loop over trl's own tokenized rows.
Figures: steady-state training tokens/s (after the warm-up steps: CUDA start-up, torch.compile) and the
ratio framework/baseline (target >= 0.8: the framework's overhead must stay small). Runs alternate
baseline and framework and keep each one's best, because the machine's cores are shared.

On a GPU (`--gpu`): a ~100M-parameter Llama (hidden 768, 12 layers, 12 heads, SmolLM2's 49k tokenizer,
blocks of 1024 tokens) pretrained in bf16 on the quickstart corpus, eager and with torch.compile; MFU
= FLOPs per token (6N + 12 L d T, as in PaLM) x tokens/s / the GPU's dense bf16 peak; target >= 40%.

Run: .venv/bin/python bench/bench_train.py [--steps 30] [--hidden 256] [--layers 4] [--reps 2]
     .venv/bin/python bench/bench_train.py --gpu [--corpus runs/quickstart/corpus] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KGLLM_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 10  # optimizer steps left out of the timing (as kgllm's own tokens_per_s_steady does)


def _pad_batch(rows: list[list[int]], row_labels: list[list[int]] | None, pad: int):
    import torch

    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad, dtype=torch.long)
    att = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        t = torch.tensor(r)
        ids[i, :len(r)] = t
        att[i, :len(r)] = 1
        labels[i, :len(r)] = t if row_labels is None else torch.tensor(row_labels[i])
    return ids, att, labels


def plain_loop(model_dir: Path, batches, steps: int, lr: float, device: str, bf16: bool,
               compile_model: bool = False) -> dict:
    """The baseline: the textbook training loop (fused AdamW on a GPU), nothing else; ``steps`` steps
    cycling over ``batches``, timed after the first WARMUP."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    model.train()
    fwd = torch.compile(model) if compile_model else model
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=device == "cuda")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    skip = min(WARMUP, max(1, steps // 5))
    tokens, t0, loss_sum = 0, None, 0.0
    for step in range(steps):
        ids, att, labels = batches[step % len(batches)]
        full = bool(att.all())
        n = int(att.sum())  # non-padding input tokens, as the Trainer counts them
        ids, att, labels = ids.to(device), att.to(device), labels.to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = fwd(input_ids=ids, attention_mask=None if full else att, labels=labels).loss
        loss.backward()
        loss_sum = loss_sum + loss.detach()  # stays on the device: no sync per step
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step + 1 == skip:
            sync()
            t0 = time.perf_counter()
        elif t0 is not None:
            tokens += n
    sync()
    dt = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt, "mean_loss": float(loss_sum) / steps}


def framework(stage: str, corpus: Path, out: Path, cfg: dict) -> dict:
    """One run of a kgllm train stage; speed from its own metrics (``tokens_per_s_steady``)."""
    from kgllm.registry import run_stage

    t0 = time.perf_counter()
    man = run_stage(stage, [corpus], out, cfg)
    wall = time.perf_counter() - t0
    m = json.loads((out / "metrics.json").read_text())
    return {"tokens": m["num_input_tokens_seen"], "seconds": m["train_runtime"],
            "tokens_per_s": m["tokens_per_s_steady"], "stage_wall_s": wall, "mfu": m.get("mfu"),
            "mean_loss": m["train_loss"], "steps": man.counts["steps"]}


def _alternate(reps: int, baseline, kgllm) -> tuple[dict, dict]:
    """``reps`` runs of each, alternating which goes first (neither always gets the warm caches); the
    best of each. ``kgllm`` is called with the run's index."""
    base, fw = [], []
    for r in range(reps):
        if r % 2 == 0:
            base.append(baseline())
        fw.append(kgllm(r))
        if r % 2 == 1:
            base.append(baseline())
    return max(base, key=lambda x: x["tokens_per_s"]), max(fw, key=lambda x: x["tokens_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", action="store_true", help="the ~100M bf16 MFU benchmark (sizes below change)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per run (30; --gpu: 150)")
    ap.add_argument("--hidden", type=int, default=None, help="256; --gpu: 768")
    ap.add_argument("--layers", type=int, default=None, help="4; --gpu: 12")
    ap.add_argument("--heads", type=int, default=None, help="4; --gpu: 12")
    ap.add_argument("--batch", type=int, default=None, help="8; --gpu: 32")
    ap.add_argument("--block", type=int, default=None, help="tokens per packed block (128; --gpu: 1024)")
    ap.add_argument("--reps", type=int, default=None, help="runs of each, best kept (2; --gpu: 1)")
    ap.add_argument("--compile", choices=["off", "on", "both"], default=None, help="torch.compile (off; --gpu: both)")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus artifact (default: the tiny generated one)")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="tokenizer dir (default: tiny BPE; --gpu: the prepared smollm2-135m-instruct's)")
    ap.add_argument("--only", choices=["pretrain", "sft"], default=None)
    args = ap.parse_args()
    gpu_defaults = dict(steps=150, hidden=768, layers=12, heads=12, batch=32, block=1024, reps=1, compile="both")
    cpu_defaults = dict(steps=30, hidden=256, layers=4, heads=4, batch=8, block=128, reps=2, compile="off")
    for k, v in (gpu_defaults if args.gpu else cpu_defaults).items():
        if getattr(args, k) is None:
            setattr(args, k, v)

    import torch
    from transformers import AutoTokenizer

    from kgllm.train import data as tdata
    sys.path.insert(0, str(ROOT / "tests"))  # the tiny corpus and model the tests use
    import tiny

    from kgllm.train.common import model_flops_per_token, peak_bf16_flops
    from kgllm.train.pretrain import scratch_model
    from kgllm.train.stage import ScratchModelConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.gpu and device != "cuda":
        raise SystemExit("--gpu needs a CUDA GPU")
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    work = Path(tempfile.mkdtemp(prefix="kgllm-bench-train-"))
    corpus = args.corpus or tiny.write_tiny_corpus(
        work / "corpus", repeat=max(400, args.steps * args.batch * args.block // 40))
    if args.tokenizer:
        tok_dir = args.tokenizer
    elif args.gpu:
        from kgllm.train.models import resolve_model

        tok_dir = resolve_model("smollm2-135m-instruct")
    else:
        tok_dir = tiny.train_tiny_tokenizer(corpus, work / "tok", vocab_size=400)
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = scratch_model(ScratchModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads),
                          tok, args.block, seed=0)
    model_dir = work / "model"
    model.save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))
    n_params = sum(p.numel() for p in model.parameters())
    fpt = model_flops_per_token(model, args.block)
    del model
    gpu_name = torch.cuda.get_device_name(0) if device == "cuda" else ""
    peak = peak_bf16_flops(gpu_name) if bf16 else None
    print(f"device: {gpu_name or 'cpu'}{' (bf16)' if bf16 else ' (fp32)'}, threads: {torch.get_num_threads()}; "
          f"model: Llama hidden {args.hidden}, {args.layers} layers, {args.heads} heads, vocab {len(tok)}, "
          f"{n_params / 1e6:.1f}M parameters, {fpt / 1e6:.0f} MFLOPs per token at {args.block} tokens; "
          f"{args.steps} steps of {args.batch} x {args.block}; corpus {corpus}")
    common = {"model": str(model_dir), "max_steps": args.steps, "batch_size": args.batch, "save_steps": 10**6,
              "logging_steps": args.steps, "lr": 1e-3 if not args.gpu else 6e-4, "lr_scheduler": "constant",
              "max_eval_examples": 1, "seed": 0}
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    results = {}

    if args.only in (None, "pretrain"):
        texts = [r["text"] for r in tdata.read_split(corpus, "pretrain", "train")]
        blocks, _ = tdata.pack_texts(texts, tok, args.block)
        blocks = blocks[: args.steps * args.batch]
        batches = [_pad_batch(blocks[i:i + args.batch], None, tok.pad_token_id)
                   for i in range(0, len(blocks), args.batch)]
        if len(batches) > 1 and batches[-1][0].shape[0] < args.batch:
            batches = batches[:-1]  # the Trainer's epochs also end on a short batch; keep the loop's full
        for comp in compiles:
            results["pretrain" + (" compiled" if comp else "")] = _alternate(
                args.reps,
                lambda comp=comp: plain_loop(model_dir, batches, args.steps, common["lr"], device, bf16, comp),
                lambda r, comp=comp: framework("train.pretrain", corpus, work / f"pt{r}{comp}",
                                               {**common, "max_length": args.block, "compile": comp}))

    if args.only in (None, "sft"):
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        rows = tdata.sft_rows(tdata.read_split(corpus, "sft", "train", args.steps * args.batch), chat=False)
        # trl's own preprocessing, so both loops see identical token ids and loss masks.
        t = SFTTrainer(model=str(model_dir), processing_class=tok, train_dataset=Dataset.from_list(rows),
                       args=SFTConfig(output_dir=str(work / "sft-prep"), use_cpu=device == "cpu", bf16=False,
                                      activation_checkpointing=False, report_to="none", max_length=512))
        ds = t.train_dataset
        ids = list(ds["input_ids"])
        labs = list(ds["labels"])  # trl folds the completion mask into labels (-100 on the prompt)
        batches = [_pad_batch(ids[i:i + args.batch], labs[i:i + args.batch], tok.pad_token_id)
                   for i in range(0, len(ids), args.batch)][: args.steps]
        del t
        results["sft"] = _alternate(
            args.reps, lambda: plain_loop(model_dir, batches, len(batches), common["lr"], device, bf16),
            lambda r: framework("train.sft", corpus, work / f"sft{r}",
                                {**common, "max_steps": len(batches), "max_train_examples": args.steps * args.batch}))

    for name, (b, f) in results.items():
        print(f"{name:<18} plain loop {b['tokens_per_s']:>9.0f} tok/s | kgllm {f['tokens_per_s']:>9.0f} tok/s "
              f"({f['tokens']} tokens in {f['seconds']:.1f}s of training, {f['stage_wall_s']:.1f}s whole stage) "
              f"| ratio {f['tokens_per_s'] / b['tokens_per_s']:.2f} (target >= 0.8)")
        if peak and name.startswith("pretrain"):
            print(f"{'':<18} MFU kgllm {fpt * f['tokens_per_s'] / peak:.1%} (stage's own figure: "
                  f"{f['mfu'] if f['mfu'] is None else format(f['mfu'], '.1%')}), plain loop "
                  f"{fpt * b['tokens_per_s'] / peak:.1%}; {fpt * f['tokens_per_s'] / 1e12:.0f} of "
                  f"{peak / 1e12:.0f} TFLOP/s (target >= 40%)")
    shutil.rmtree(work, ignore_errors=True)
    print("(mean training loss over the run, batches in another order: "
          + ", ".join(f"{k}: plain {v[0]['mean_loss']:.3f} / kgllm {v[1]['mean_loss']:.3f}" for k, v in results.items())
          + ")")
    if not math.isfinite(sum(v[1]["tokens_per_s"] for v in results.values())):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
