"""Evaluation: answer quality of an index (qa.py, the ``eval.qa`` stage), question sets from held-out facts
(question_sets.py), factual knowledge of trained models (facts.py) and verbalizer quality (webnlg.py).

Takes: index, graph, corpus and model artifacts. Makes: reports and ``eval.qa`` artifacts. Commands in cli.py,
the stage registration in stage.py.
"""

from __future__ import annotations

import importlib


def __getattr__(name: str):
    # qa are modules made callable when imported (kgllm.api): load them on first use, so that
    # `import kgllm` stays light and `kgllm.eval.qa(...)` works without importing them first.
    if name in ("qa",):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
