"""Run function of the ``eval.qa`` pipeline stage (see kgllm.eval.stages and kgllm.eval.qa)."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import Manifest
from ..errors import ConfigError


def run_eval_qa(inputs: list[Path], out: Path, config, *, pipeline_key: str | None = None) -> Manifest:
    from ..eval.qa import run_eval

    if config.questions is None:
        raise ConfigError("eval.qa: set `questions:` to a question file (JSONL), e.g. "
                          "examples/data/questions/dbpedia_wordnet.jsonl")
    return run_eval(inputs[0], config.questions, out, retrievers=config.retrievers, model=config.model,
                    sparql=config.sparql, limit=config.limit, config=config, pipeline_key=pipeline_key)
