"""``kgllm run PIPELINE.yaml``: chain stages, skipping those whose inputs and config are unchanged.

Takes: a pipeline YAML::

    workdir: runs/quickstart          # each step writes WORKDIR/<id>
    steps:
      - id: dbpedia
        stage: pull.file
        config: {paths: [data/labels_en.ttl.xz]}
      - id: clean
        stage: validate
        inputs: [dbpedia]             # ids of earlier steps, or paths of existing artifacts
        config: {ontology: [../ontologies/dbpedia/dbo.owl.xz]}

Relative paths (``workdir``, path-typed config fields, input paths) are resolved against the YAML
file's directory, so a pipeline runs the same from any working directory.

Makes: one artifact per step. A step is skipped when its existing artifact's ``pipeline_key`` (a hash
of stage name, effective config, input artifact content hashes and the content of files named in the
config) equals the key of this run; ``force``
names steps to rerun anyway (``all`` for every step).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as cfgmod
from .artifacts import MANIFEST, input_digest, read_manifest, sha256_json
from .errors import ArtifactError, ConfigError, UsageError
from .log import logger
from .stages import Stage, get_stage


@dataclass
class Step:
    id: str
    stage: str
    inputs: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)


@dataclass
class PipelineSpec:
    workdir: Path = Path("runs/default")
    steps: list[Step] = field(default_factory=list)
    description: str = ""


@dataclass
class StepResult:
    id: str
    stage: str
    out: Path
    status: str  # "ran" | "skipped"
    seconds: float
    counts: dict


@dataclass
class Pipeline:
    spec: PipelineSpec
    base_dir: Path

    @property
    def workdir(self) -> Path:
        return _resolve(self.base_dir, self.spec.workdir)

    def step_out(self, step: Step) -> Path:
        return self.workdir / step.id

    def configs(self) -> dict[str, Any]:
        """The effective config of every step (validated; relative paths resolved)."""
        return {s.id: _resolve_paths(get_stage(s.stage).make_config(s.config, source=f"steps.{s.id}.config"),
                                     self.base_dir) for s in self.spec.steps}

    def run(self, force: Iterable[str] = (), only: Iterable[str] = ()) -> list[StepResult]:
        force = set(force)
        only = set(only)
        ids = {s.id for s in self.spec.steps}
        for name in (force - {"all"}) | only:
            if name not in ids:
                raise UsageError(f"no step {name!r} in the pipeline; steps: {', '.join(s.id for s in self.spec.steps)}")
        configs = self.configs()  # validate every step before running any
        results = []
        for step in self.spec.steps:
            if only and step.id not in only:
                continue
            st = get_stage(step.stage)
            inputs = [self._input_path(step, i) for i in step.inputs]
            out = self.step_out(step)
            key = pipeline_key(st, configs[step.id], inputs)
            t0 = time.perf_counter()
            if "all" not in force and step.id not in force and _up_to_date(out, key):
                man = read_manifest(out)
                logger.info("step %s (%s): up to date, skipped", step.id, st.name)
                results.append(StepResult(step.id, st.name, out, "skipped", 0.0, man.counts))
                continue
            logger.info("step %s (%s): running", step.id, st.name)
            from .stages import run_stage

            man = run_stage(st.name, inputs, out, configs[step.id], pipeline_key=key)
            counts = man.counts if man is not None else read_manifest(out).counts
            results.append(StepResult(step.id, st.name, out, "ran", time.perf_counter() - t0, counts))
        return results

    def _input_path(self, step: Step, ref: str) -> Path:
        earlier = {s.id: s for s in self.spec.steps[: self.spec.steps.index(step)]}
        if ref in earlier:
            return self.step_out(earlier[ref])
        if ref in {s.id for s in self.spec.steps}:
            raise ConfigError(f"steps.{step.id}.inputs: step {ref!r} comes later in the pipeline")
        p = _resolve(self.base_dir, Path(ref))
        if not p.exists():
            raise ConfigError(f"steps.{step.id}.inputs: {ref!r} is neither an earlier step nor an existing path")
        return p


def pipeline_key(stage: Stage, config: Any, inputs: list[Path]) -> str:
    digests = []
    for p in inputs:
        try:
            digests.append(input_digest(p))
        except ArtifactError:
            digests.append(f"missing:{p}")
    # Files named in the config (dumps, ontologies, query files) count as inputs too: editing one reruns the step.
    files = {str(p): input_digest(p) for p in _config_paths(config) if p.exists()}
    return sha256_json({"stage": stage.name, "config": dataclasses.asdict(config), "inputs": digests,
                        "files": files})


def _config_paths(cfg: Any) -> list[Path]:
    out: list[Path] = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, Path):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, Path))
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            out.extend(_config_paths(v))
    return out


def _up_to_date(out: Path, key: str) -> bool:
    if not (out / MANIFEST).exists():
        return False
    try:
        return read_manifest(out).pipeline_key == key
    except ArtifactError:
        return False


def load_pipeline(path: str | Path, overrides: Mapping | None = None) -> Pipeline:
    path = Path(path)
    data = cfgmod.load_yaml(path)
    if overrides:
        data = cfgmod.merge(data, overrides)
    spec = cfgmod.from_dict(PipelineSpec, data, where=str(path))
    seen = set()
    for i, s in enumerate(spec.steps):
        if s.id in seen:
            raise ConfigError(f"{path}: steps[{i}]: duplicate step id {s.id!r}")
        seen.add(s.id)
        get_stage(s.stage)  # unknown stage -> clear error now
    return Pipeline(spec, path.resolve().parent)


def run_pipeline(path: str | Path, force: Iterable[str] = (), only: Iterable[str] = ()) -> list[StepResult]:
    return load_pipeline(path).run(force=force, only=only)


def _resolve(base: Path, p: Path) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def _resolve_paths(cfg: Any, base: Path) -> Any:
    """Return a copy of ``cfg`` with Path-typed fields made absolute against ``base``."""
    changes = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, Path):
            changes[f.name] = _resolve(base, v)
        elif isinstance(v, list) and v and all(isinstance(x, Path) for x in v):
            changes[f.name] = [_resolve(base, x) for x in v]
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            changes[f.name] = _resolve_paths(v, base)
    return dataclasses.replace(cfg, **changes) if changes else cfg
