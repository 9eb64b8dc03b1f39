"""Training: base models offline (models), pretraining, SFT, DPO and reward models on a corpus artifact.

Launch commands (single process, DDP, FSDP, multi-node) are at the top of :mod:`kgllm.train.cli` and in
docs/train.md. Nothing here is imported by ``import kgllm``; torch/transformers/trl load inside functions.
"""
