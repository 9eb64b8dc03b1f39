"""Training throughput of the train stages against a plain PyTorch loop of the same model, same run.

What it measures (CPU here; the same script on a GPU adds model FLOPs utilisation):
- pretrain: `train.pretrain` (transformers Trainer, packed blocks) vs a bare loop
  (forward, backward, clip, AdamW step) over the very same blocks and initial weights;
- sft: `train.sft` (trl SFTTrainer, completion-only loss) vs a bare loop over trl's own tokenized rows.
Figures: training tokens/s (non-padding tokens / training wall time) and the ratio framework/baseline
(target >= 0.8: the framework's overhead must stay small). Runs alternate baseline and framework and keep
each one's best, because the machine's cores are shared.

On a GPU: MFU = 6 * parameters * tokens/s / peak bf16 FLOP/s (dense, no attention term), for a ~100M
parameter Llama in bf16 (`--gpu-size 100m`); target >= 40%.

Run: .venv/bin/python bench/bench_train.py [--steps 30] [--hidden 256] [--layers 4] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KGLLM_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Dense bf16 peak FLOP/s per GPU, for MFU.
_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


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


def plain_loop(model_dir: Path, batches, lr: float, device: str, bf16: bool) -> dict:
    """The baseline: the textbook training loop, nothing else."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    tokens = 0
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for ids, att, labels in batches:
        ids, att, labels = ids.to(device), att.to(device), labels.to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(att.sum())
    sync()
    dt = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt, "final_loss": float(loss.detach())}


def framework(stage: str, corpus: Path, out: Path, cfg: dict) -> dict:
    from kgllm.stages import run_stage

    t0 = time.perf_counter()
    man = run_stage(stage, [corpus], out, cfg)
    wall = time.perf_counter() - t0
    m = json.loads((out / "metrics.json").read_text())
    return {"tokens": m["num_input_tokens_seen"], "seconds": m["train_runtime"],
            "tokens_per_s": m["num_input_tokens_seen"] / m["train_runtime"], "stage_wall_s": wall,
            "final_loss": [e["loss"] for e in m["log_history"] if "loss" in e][-1], "steps": man.counts["steps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--only", choices=["pretrain", "sft"], default=None)
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer

    from kgllm.train import data as tdata
    from kgllm.train import tiny

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    work = Path(tempfile.mkdtemp(prefix="kgllm-bench-train-"))
    corpus = tiny.write_tiny_corpus(work / "corpus", repeat=max(400, args.steps * args.batch * args.block // 40))
    tok_dir = tiny.train_tiny_tokenizer(corpus, work / "tok", vocab_size=400)
    model_dir = tiny.write_tiny_model(tok_dir, work / "model", hidden=args.hidden, layers=args.layers)
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    n_params = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(
        str(model_dir)).parameters())
    print(f"device: {device}{' (bf16)' if bf16 else ' (fp32)'}, threads: {torch.get_num_threads()}, "
          f"model: Llama hidden {args.hidden}, {args.layers} layers, {n_params / 1e6:.2f}M parameters; "
          f"{args.steps} steps of batch {args.batch}")
    common = {"model": str(model_dir), "max_steps": args.steps, "batch_size": args.batch, "save_steps": 10**6,
              "logging_steps": args.steps, "lr": 1e-3, "lr_scheduler": "constant", "max_eval_examples": 1,
              "seed": 0}
    results = {}

    if args.only in (None, "pretrain"):
        texts = [r["text"] for r in tdata.read_split(corpus, "pretrain", "train")]
        blocks, _ = tdata.pack_texts(texts, tok, args.block)
        blocks = blocks[: args.steps * args.batch]
        batches = [_pad_batch(blocks[i:i + args.batch], None, tok.pad_token_id)
                   for i in range(0, len(blocks), args.batch)][: args.steps]
        base, fw = [], []
        for r in range(args.reps):  # alternate which goes first: neither always gets the warm caches
            runs = [lambda: base.append(plain_loop(model_dir, batches, 1e-3, device, bf16)),
                    lambda r=r: fw.append(framework("train.pretrain", corpus, work / f"pt{r}",
                                                    {**common, "max_length": args.block}))]
            for run in runs if r % 2 == 0 else runs[::-1]:
                run()
        results["pretrain"] = (max(base, key=lambda x: x["tokens_per_s"]), max(fw, key=lambda x: x["tokens_per_s"]))

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
        base, fw = [], []
        for r in range(args.reps):
            runs = [lambda: base.append(plain_loop(model_dir, batches, 1e-3, device, bf16)),
                    lambda r=r: fw.append(framework("train.sft", corpus, work / f"sft{r}",
                                                    {**common, "max_train_examples": args.steps * args.batch}))]
            for run in runs if r % 2 == 0 else runs[::-1]:
                run()
        results["sft"] = (max(base, key=lambda x: x["tokens_per_s"]), max(fw, key=lambda x: x["tokens_per_s"]))

    for name, (b, f) in results.items():
        print(f"{name:<9} plain loop {b['tokens_per_s']:>9.0f} tok/s ({b['tokens']} tokens, {b['seconds']:.2f}s) | "
              f"kgllm {f['tokens_per_s']:>9.0f} tok/s ({f['tokens']} tokens, {f['seconds']:.2f}s train, "
              f"{f['stage_wall_s']:.1f}s whole stage) | ratio {f['tokens_per_s'] / b['tokens_per_s']:.2f} "
              f"(target >= 0.8)")
        if device == "cuda":
            name_gpu = torch.cuda.get_device_name(0)
            peak = next((v for k, v in _PEAK_BF16.items() if k in name_gpu), None)
            if peak:
                print(f"{'':<9} MFU kgllm {6 * n_params * f['tokens_per_s'] / peak:.1%}, "
                      f"plain {6 * n_params * b['tokens_per_s'] / peak:.1%} ({name_gpu})")
    shutil.rmtree(work, ignore_errors=True)
    print("(final losses: "
          + ", ".join(f"{k}: plain {v[0]['final_loss']:.3f} / kgllm {v[1]['final_loss']:.3f}" for k, v in results.items())
          + ")")
    if not math.isfinite(sum(v[1]["tokens_per_s"] for v in results.values())):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
