"""What every training stage shares: inputs, devices and precision, resumable runs, the checkpoint artifact.

Takes: a stage's config (:mod:`kgllm.train.stage`), its input artifacts and a ``build`` callback that
returns a ready transformers/trl ``Trainer``.
Makes: the model artifact at OUT (``model.safetensors``, ``config.json``, tokenizer files,
``training_config.json``, ``metrics.json``, ``manifest.json``). Intermediate, resumable checkpoints
(``checkpoint-N/``, Trainer's own format incl. optimizer state) live beside it in ``.OUT.checkpoints/``
so that ``resume: true`` (``--resume``) continues an interrupted or extended run from its last step.

Distributed: the Trainer picks up ``accelerate launch`` / ``torchrun`` by itself (DDP, or FSDP with an
accelerate config); every rank trains, every rank takes part in saving the weights, and only the main
process writes the artifact, while the others wait for it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import ArtifactWriter, Manifest, read_manifest
from ..errors import InputError
from ..log import logger, progress_enabled
from . import data as tdata
from .models import resolve_model
from .stage import TrainConfig


@dataclass
class RunInputs:
    corpus: Path
    model: Path | None      # checkpoint directory; None for pretraining from scratch
    inputs: list[Path]      # what the manifest records as inputs


def resolve_inputs(inputs: list[Path], cfg: TrainConfig, *, scratch_ok: bool = False) -> RunInputs:
    """The corpus (first input) and the starting model: a model artifact given as the second input wins
    over ``cfg.model`` (that is how a pipeline chains sft -> dpo)."""
    corpus = Path(inputs[0])
    tdata.check_corpus(corpus)
    recorded = [corpus]
    if len(inputs) > 1:
        model = Path(inputs[1])
        read_manifest(model, kind="model")
        recorded.append(model)
    elif scratch_ok and cfg.model in ("", "scratch"):
        model = None
    else:
        model = resolve_model(cfg.model)
        recorded.append(model)
    return RunInputs(corpus, model, recorded)


def work_dir(out: Path) -> Path:
    """Resumable Trainer checkpoints of OUT (hidden sibling, kept after success so a run can be extended)."""
    return out.parent / f".{out.name}.checkpoints"


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def use_bf16(cfg: TrainConfig) -> bool:
    import torch

    if cfg.precision == "fp32":
        return False
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cfg.precision == "bf16" and not gpu_bf16:
        raise InputError("precision: bf16 needs a GPU with bfloat16 support; use precision: fp32 (or auto) on CPU")
    return gpu_bf16


def trainer_kwargs(cfg: TrainConfig, out: Path, has_eval: bool) -> dict:
    """TrainingArguments fields shared by all stages.

    trl 1.x defaults to bf16 and gradient checkpointing; on CPU both are slow or unsupported, so the
    defaults here are fp32 + no checkpointing on CPU and bf16 mixed precision on a GPU.
    """
    gpu = on_gpu()
    eval_steps = cfg.eval_steps if cfg.eval_steps > 0 else None
    return dict(
        output_dir=str(work_dir(out)),
        seed=cfg.seed,
        data_seed=cfg.seed,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if (has_eval and eval_steps) else "no",
        eval_steps=eval_steps,
        use_cpu=not gpu,
        bf16=use_bf16(cfg),
        fp16=False,
        activation_checkpointing=cfg.activation_checkpointing,  # trl 1.x would default it to True
        torch_compile=cfg.compile,
        report_to="none",
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=True,
    )


def peft_config(cfg: TrainConfig, task_type: str = "CAUSAL_LM"):
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    targets = cfg.lora.target_modules
    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules="all-linear" if targets == ["all-linear"] else list(targets),
                      task_type=task_type)


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        # Padding positions are masked out of the loss; reusing EOS keeps the vocabulary unchanged.
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    # fp32 master weights everywhere: on a GPU the Trainer adds bf16 autocast (mixed precision).
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)


def run_training(stage: str, kind: str, cfg: TrainConfig, ins: RunInputs, out: Path, *,
                 build: Callable[[dict], Any], tokenizer, counts: dict, extra: dict,
                 pipeline_key: str | None, manifest_extra: dict | None = None) -> Manifest:
    """Train with the Trainer that ``build(trainer_kwargs)`` returns and write the model artifact.

    ``build`` receives the shared TrainingArguments fields (it adds its algorithm's own) and returns a
    Trainer with train/eval datasets set. ``extra`` goes to ``training_config.json``; ``manifest_extra``
    also to the manifest's ``extra``.
    """
    from accelerate import PartialState
    from transformers.trainer_utils import get_last_checkpoint

    state = PartialState()
    out = Path(out)
    wd = work_dir(out)
    resume_from = None
    if cfg.resume and wd.exists():
        resume_from = get_last_checkpoint(str(wd))
    if resume_from is None and state.is_main_process and wd.exists():
        shutil.rmtree(wd)  # a fresh run must not mix with checkpoints of an earlier config
    state.wait_for_everyone()
    if cfg.resume and resume_from is None:
        logger.info("%s: --resume given but no checkpoint in %s; starting from step 0", stage, wd)

    trainer = build(trainer_kwargs(cfg, out, has_eval=counts.get("eval_examples", 0) > 0))
    speed = ThroughputCallback()
    trainer.add_callback(speed)
    resumed_step = _checkpoint_step(resume_from)
    logger.info("%s: training %s (%s)%s", stage, type(trainer.model).__name__, _device_note(),
                f", resuming from step {resumed_step}" if resume_from else "")
    result = trainer.train(resume_from_checkpoint=resume_from)
    # (save_strategy "steps" also saves at the last step, so `resume: true` with a larger max_steps
    # extends a finished run.)
    metrics = {"train_loss": result.training_loss, "global_step": trainer.state.global_step,
               "resumed_from_step": resumed_step, "num_input_tokens_seen": trainer.state.num_input_tokens_seen,
               **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
               **speed.figures(trainer.model, cfg.max_length if kind == "model.pretrain" else None,
                               state.num_processes, trainer.args.bf16),
               **peak_memory()}
    if counts.get("eval_examples", 0) > 0:
        ev = trainer.evaluate()
        metrics.update({k: v for k, v in ev.items() if isinstance(v, (int, float))})
        if "eval_loss" in ev and kind in ("model.pretrain", "model.sft"):
            metrics["eval_perplexity"] = math.exp(min(ev["eval_loss"], 50.0))
    metrics["log_history"] = trainer.state.log_history

    final = wd / "final"
    model = trainer.model
    if cfg.lora.enabled:
        # Merge LoRA into the base weights so the artifact is a plain checkpoint (DDP; not under FSDP).
        if state.is_main_process:
            merged = trainer.accelerator.unwrap_model(model).merge_and_unload()
            merged.save_pretrained(str(final))
    else:
        trainer.save_model(str(final))  # every rank: FSDP gathers the full state dict here
    state.wait_for_everyone()
    if state.is_main_process:
        tcfg = {"stage": stage, "config": dataclasses.asdict(cfg),
                "trainer_args": _jsonable(trainer.args.to_dict()),
                "base_model": str(ins.model) if ins.model else None,
                **extra}
        with ArtifactWriter(out, kind, config=cfg, inputs=ins.inputs, pipeline_key=pipeline_key) as w:
            for f in sorted(final.iterdir()):
                if f.is_file() and f.name != "training_args.bin":  # a pickle; training_config.json has it
                    shutil.copy2(f, w.path / f.name)
            tokenizer.save_pretrained(str(w.path))
            _write_json(w.path / "training_config.json", tcfg)
            _write_json(w.path / "metrics.json", metrics)
            w.counts.update(counts)
            w.counts.update({"steps": trainer.state.global_step, "tokens": trainer.state.num_input_tokens_seen,
                             "parameters": sum(p.numel() for p in trainer.model.parameters()),
                             "resumed_from_step": resumed_step})
            w.extra["metrics"] = {k: v for k, v in metrics.items() if k != "log_history"}
            w.extra["checkpoints"] = str(wd)
            w.extra.update(manifest_extra or {})
        shutil.rmtree(final, ignore_errors=True)
        man = w.manifest
    state.wait_for_everyone()
    return man if state.is_main_process else read_manifest(out)


# Dense bf16 peak FLOP/s of one GPU (vendor datasheets, no sparsity), for MFU. More specific names first.
PEAK_BF16_FLOPS = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
                   ("GH200", 989e12), ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12),
                   ("A10G", 70e12), ("A10", 125e12)]


def peak_bf16_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_FLOPS if k in device_name), None)


def model_flops_per_token(model, seq_len: int | None) -> float | None:
    """Training FLOPs per token of a decoder-only LM, as in PaLM's MFU (Chowdhery et al. 2022, app. B):
    ``6 * N + 12 * L * d * T``, N the weights that take part in matrix products (the embedding lookup
    does not, the output head does, tied or not), L layers, d = heads * head size, T the sequence
    length (attention scores and their use; causal masking not discounted; left out when ``seq_len`` is
    None, as for unpacked rows of varying length). None for a model that is not a plain decoder (its
    config lacks the sizes)."""
    cfg = getattr(model, "config", None)
    layers = getattr(cfg, "num_hidden_layers", None)
    hidden = getattr(cfg, "hidden_size", None)
    if not layers or not hidden:
        return None
    heads = getattr(cfg, "num_attention_heads", None) or 1
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    emb = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else None
    n = sum(p.numel() for p in model.parameters() if p is not emb)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and head is not None and head.weight is emb:
        n += emb.numel()  # tied: the head's matrix product still runs
    return 6.0 * n + (12.0 * layers * heads * head_dim * seq_len if seq_len else 0.0)


class ThroughputCallback:
    """Steady-state training speed: tokens/s between the end of warm-up (the first ``warmup`` optimizer
    steps of this run, or a fifth of a short run: CUDA start-up, ``torch.compile``, allocator growth) and
    the end of training. The Trainer's own ``train_tokens_per_second`` includes all of that."""

    def __init__(self, warmup: int = 10):
        self.warmup = warmup
        self.mark_step = 0                                 # the step that ends warm-up (set at train begin)
        self.mark: tuple[float, int, int] | None = None   # (time, tokens seen, step) at the end of warm-up
        self.end: tuple[float, int, int] | None = None

    def __getattr__(self, name: str):
        if name.startswith("on_"):  # the Trainer calls every event on every callback
            return lambda *a, **kw: None
        raise AttributeError(name)

    @staticmethod
    def _now() -> float:
        import time

        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, **kw):
        todo = max(state.max_steps - state.global_step, 1)  # a resumed run starts past step 0
        self.mark_step = state.global_step + min(self.warmup, max(1, todo // 5))

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.mark_step < state.max_steps:
            self.mark = (self._now(), state.num_input_tokens_seen, state.global_step)

    def on_train_end(self, args, state, control, **kw):
        self.end = (self._now(), state.num_input_tokens_seen, state.global_step)

    def figures(self, model, seq_len: int | None, num_processes: int, bf16: bool) -> dict:
        """``tokens_per_s_steady`` (all processes together) and, where it applies, ``flops_per_token``
        and ``mfu`` (per GPU, against the dense bf16 peak; only for bf16 runs on a GPU we know)."""
        if self.mark is None or self.end is None or self.end[2] <= self.mark[2] or self.end[0] <= self.mark[0]:
            return {}
        tps = (self.end[1] - self.mark[1]) / (self.end[0] - self.mark[0])
        out = {"tokens_per_s_steady": tps, "steady_steps": self.end[2] - self.mark[2]}
        import torch

        base = getattr(model, "get_base_model", lambda: model)()  # peft: the wrapped model
        fpt = model_flops_per_token(base, seq_len)
        if fpt:
            out["flops_per_token"] = fpt
            out["model_tflops_per_s"] = fpt * tps / 1e12
            peak = peak_bf16_flops(torch.cuda.get_device_name(0)) if torch.cuda.is_available() and bf16 else None
            if peak:
                out["mfu"] = fpt * tps / (peak * max(num_processes, 1))
        return out


def peak_memory() -> dict:
    """Peak memory of this process so far: ``peak_rss_mb`` (resident, CPU side) and, on a GPU,
    ``peak_gpu_memory_mb`` (tensors allocated by torch)."""
    import resource
    import sys

    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    out = {"peak_rss_mb": round(rss / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)}
    if torch.cuda.is_available():
        out["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / (1 << 20), 1)
    return out


def _checkpoint_step(path: str | None) -> int:
    if not path:
        return 0
    try:
        return int(Path(path).name.rsplit("-", 1)[-1])
    except ValueError:
        return 0


def _device_note() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU, {torch.get_num_threads()} threads"


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
