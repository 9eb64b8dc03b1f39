"""The stage registry: every pipeline stage by name, with its config dataclass and its run function.

A stage is a function from input artifact directories (and a config) to one output artifact directory:

    def run(inputs: list[Path], out: Path, config: SomeConfig, *, pipeline_key: str | None = None) -> Manifest

Each stage package declares its stages in a light module (config dataclasses only, no heavy imports)
listed in ``_STAGE_MODULES``; the run function is named as ``"module:function"`` and imported only
when the stage runs. Packages that are not installed/built yet are simply absent.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfgmod
from .artifacts import REPLACE_OTHER_KINDS, check_destination, register_kind
from .errors import UsageError

_STAGE_MODULES = (
    "kgllm.pull.stage",
    "kgllm.validate.stage",
    "kgllm.corpus.stage",
    "kgllm.index.stage",
    "kgllm.train.stage",
    "kgllm.eval.stage",
    "kgllm.feedback.stage",
)


@dataclass(frozen=True)
class Stage:
    name: str                      # e.g. "pull.file", "validate", "corpus"
    config: type                   # the config dataclass
    run: str                       # "module:function", imported lazily
    kind: str                      # kind of the artifact it writes
    help: str = ""
    min_inputs: int = 0
    max_inputs: int | None = None  # None: any number
    required: tuple[str, ...] = ()  # config keys (dotted) that must be set to something non-empty

    def __post_init__(self) -> None:
        register_kind(self.kind)

    def check_wiring(self, n_inputs: int, config: Any) -> str | None:
        """What is wrong with running this stage on ``n_inputs`` input artifacts and ``config`` (too few or too
        many inputs, a required key unset), or None. ``run_stage`` and ``kgllm run``'s plan both ask here."""
        if n_inputs < self.min_inputs or (self.max_inputs is not None and n_inputs > self.max_inputs):
            want = ("no" if self.max_inputs == 0 else f"{self.min_inputs}" if self.max_inputs == self.min_inputs
                    else f"at least {self.min_inputs}" if self.max_inputs is None
                    else f"{self.min_inputs} to {self.max_inputs}")
            return f"takes {want} input artifact(s), got {n_inputs}"
        for key in self.required:
            value = config
            for part in key.split("."):
                value = getattr(value, part, None)
            if not value:
                return f"config key {key!r} is required"
        return None

    def function(self) -> Callable[..., Any]:
        mod, _, fn = self.run.partition(":")
        return getattr(importlib.import_module(mod), fn)

    def make_config(self, *layers: Mapping | None, source: str | None = None):
        return cfgmod.build(self.config, *layers, source=source or self.name)


_REGISTRY: dict[str, Stage] | None = None


def _registry() -> dict[str, Stage]:
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Stage] = {}
        for modname in _STAGE_MODULES:
            if importlib.util.find_spec(modname.rsplit(".", 1)[0]) is None:
                continue
            try:
                spec = importlib.util.find_spec(modname)
            except ModuleNotFoundError:
                spec = None
            if spec is None:
                continue
            for st in importlib.import_module(modname).STAGES:
                reg[st.name] = st
        _REGISTRY = reg
    return _REGISTRY


def list_stages() -> list[Stage]:
    return sorted(_registry().values(), key=lambda s: s.name)


def get_stage(name: str) -> Stage:
    reg = _registry()
    if name not in reg:
        raise UsageError(f"unknown stage {name!r}; available stages: {', '.join(sorted(reg)) or '(none)'}")
    return reg[name]


def run_stage(name: str, inputs: list[str | Path], out: str | Path, config: Any = None, *,
              pipeline_key: str | None = None, force: bool = False):
    """Run one stage by name. ``config`` is a config instance, a mapping of overrides, or None.

    ``out`` is checked before any work (:func:`kgllm.artifacts.check_destination`): kgllm replaces only
    its own artifacts of the same kind, or of any kind with ``force``.
    """
    st = get_stage(name)
    if config is None or isinstance(config, Mapping):
        config = st.make_config(config or {})
    elif not (dataclasses.is_dataclass(config) and isinstance(config, st.config)):
        raise UsageError(f"stage {name}: config must be a {st.config.__name__} or a mapping")
    ins = [Path(p) for p in inputs]
    problem = st.check_wiring(len(ins), config)
    if problem:
        raise UsageError(f"stage {name} {problem}")
    out = check_destination(out, st.kind, force=force)
    token = REPLACE_OTHER_KINDS.set(force)
    try:
        return st.function()(ins, out, config, pipeline_key=pipeline_key)
    finally:
        REPLACE_OTHER_KINDS.reset(token)
