"""Training: base models offline (models), pretraining, SFT, DPO, KTO and reward models on a corpus artifact,
the ask ranker and the WebNLG verbalizer.

Launch commands (single process, DDP, FSDP, multi-node) are at the top of :mod:`kgllm.train.cli` and in
docs/train.md. Nothing here is imported by ``import kgllm``; torch/transformers/trl load inside functions.
"""

from __future__ import annotations

import importlib


def __getattr__(name: str):
    # pretrain, sft, dpo, kto, reward, ranker, verbalizer, raft and injection are modules made callable when
    # imported (kgllm.api): load them on first use, so that `import kgllm` stays light and `kgllm.train.sft(...)` works without
    # importing them first.
    if name in ("pretrain", "sft", "dpo", "kto", "reward", "ranker", "verbalizer", "raft", "injection"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
