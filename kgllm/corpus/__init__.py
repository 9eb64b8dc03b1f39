"""The corpus stage: graph artifacts -> annotated pretraining text, SFT and DPO data, splits, tokenizer.

See :mod:`kgllm.corpus.stage` for the artifact layout and docs/corpus.md for usage.
"""
