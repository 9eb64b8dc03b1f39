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
import difflib
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as cfgmod
from . import engine as enginemod
from .artifacts import MANIFEST, check_destination, input_digest, read_manifest, sha256_json
from .errors import ArtifactError, ConfigError, KgllmError, UsageError
from .log import logger
from .registry import Stage, get_stage, run_stage

_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


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
    # Where the steps' heavy work runs (kgllm.engine): ``ray: {address: HEAD:6379}`` runs it on a cluster.
    # Not part of any step's key: where a step ran does not change what it wrote.
    ray: enginemod.EngineConfig = field(default_factory=enginemod.EngineConfig)


@dataclass
class StepResult:
    id: str
    stage: str
    out: Path
    status: str  # "ran" | "skipped"
    seconds: float
    counts: dict
    problems: list[str] = field(default_factory=list)


@dataclass
class PlannedStep:
    """One step as ``run`` would execute it: resolved inputs, output directory and effective config."""

    step: Step
    stage: Stage
    inputs: list[Path]
    out: Path
    config: Any
    status: str  # "would run" | "up to date"


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

    def plan(self, force: Iterable[str] = (), only: Iterable[str] = ()) -> list[PlannedStep]:
        """Check the whole pipeline before anything runs and say what ``run`` would do.

        Checks every step's config, its inputs (earlier steps or existing paths: never itself or a later
        step), their number, the files its config names, the keys its stage requires, and that its output
        directory is one kgllm may replace. Raises :class:`ConfigError` naming the step and the problem.
        """
        force, only = set(force), set(only)
        ids = [s.id for s in self.spec.steps]
        for flag, names in (("--force", force - {"all"}), ("--only", only)):
            for name in sorted(names):
                if name not in ids:
                    close = difflib.get_close_matches(name, ids, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise UsageError(f"{flag} {name}: no such step{hint}; steps: {', '.join(ids)}")
        configs = self.configs()
        planned: list[PlannedStep] = []
        reruns: set[str] = set()
        for i, step in enumerate(self.spec.steps):
            st = get_stage(step.stage)
            cfg = configs[step.id]
            where = f"step {step.id} ({st.name})"
            inputs = [self._input_path(step, ref, i) for ref in step.inputs]
            problem = st.check_wiring(len(inputs), cfg)
            if problem:
                raise ConfigError(f"{where}: {problem}")
            for p in _config_paths(cfg):
                if not p.exists():
                    raise ConfigError(f"{where}: {p} (named in its config) does not exist")
            out = self.step_out(step)
            try:
                check_destination(out, st.kind)
            except UsageError as e:
                raise ConfigError(f"{where}: {e}") from e
            upstream = {ref for ref in step.inputs if ref in ids}
            for ref in sorted(upstream):
                if only and ref not in only and not (self.step_out(self.spec.steps[ids.index(ref)]) / MANIFEST).exists():
                    raise ConfigError(f"{where}: its input step {ref!r} has no artifact yet and is not among "
                                      f"--only; add --only {ref}")
            if "all" in force or step.id in force or upstream & reruns or \
                    not _up_to_date(out, pipeline_key(st, cfg, inputs)):
                status = "would run"
            else:
                status = "up to date"
            if status == "would run" and (not only or step.id in only):
                reruns.add(step.id)
            planned.append(PlannedStep(step, st, inputs, out, cfg, status))
        return [p for p in planned if not only or p.step.id in only]

    def engine(self, address: str | None = None, mode: str | None = None) -> enginemod.EngineConfig:
        """The engine config of the steps: the YAML's ``ray:`` < $RAY_ADDRESS < these flags."""
        return enginemod.resolve(self.spec.ray, address=address, mode=mode, source="ray")

    def run(self, force: Iterable[str] = (), only: Iterable[str] = (),
            on_step: Callable[[StepResult], None] | None = None,
            engine: enginemod.EngineConfig | None = None) -> list[StepResult]:
        """Run the pipeline (after :meth:`plan` checked all of it). ``on_step`` sees each result as it comes;
        ``engine`` says where heavy steps run (default: :meth:`engine`).

        A step that raises stops the pipeline; the error names the step. A step whose artifact records
        problems (validation errors, say) does not stop it: its result carries them.
        """
        with enginemod.configured(engine or self.engine()):
            return self._run(set(force), only, on_step)

    def _run(self, force: set[str], only: Iterable[str],
             on_step: Callable[[StepResult], None] | None) -> list[StepResult]:
        results = []
        for p in self.plan(force=force, only=only):
            st, step, out = p.stage, p.step, p.out
            key = pipeline_key(st, p.config, p.inputs)  # now: upstream steps may have just rewritten inputs
            t0 = time.perf_counter()
            if "all" not in force and step.id not in force and _up_to_date(out, key):
                man = read_manifest(out)
                logger.info("step %s (%s): up to date, skipped", step.id, st.name)
                r = StepResult(step.id, st.name, out, "skipped", 0.0, man.counts, list(man.problems))
            else:
                logger.info("step %s (%s): running", step.id, st.name)
                try:
                    man = run_stage(st.name, p.inputs, out, p.config, pipeline_key=key)
                except KgllmError as e:
                    if type(e).__init__ is KgllmError.__init__:  # same class, message names the step
                        raise type(e)(f"step {step.id} ({st.name}): {e}") from e
                    raise
                man = man if man is not None else read_manifest(out)
                r = StepResult(step.id, st.name, out, "ran", time.perf_counter() - t0, man.counts,
                               list(man.problems))
            results.append(r)
            if on_step is not None:
                on_step(r)
        return results

    def _input_path(self, step: Step, ref: str, index: int) -> Path:
        ids = [s.id for s in self.spec.steps]
        where = f"step {step.id} ({step.stage})"
        if ref == step.id:
            raise ConfigError(f"{where}: takes its own output as input (a cycle)")
        if ref in ids[:index]:
            return self.step_out(self.spec.steps[ids.index(ref)])
        if ref in ids:
            raise ConfigError(f"{where}: input step {ref!r} comes later in the pipeline (a cycle, or steps out "
                              "of order); list it before this step")
        p = _resolve(self.base_dir, Path(ref))
        if not p.exists():
            close = difflib.get_close_matches(ref, ids, n=1)
            hint = f" (did you mean step {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: input {ref!r} is neither an earlier step nor an existing path{hint}")
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
    for i, s in enumerate(data.get("steps") or []):
        if isinstance(s, Mapping) and "id" not in s:
            raise ConfigError(f"{path}: steps[{i}] ({s.get('stage', 'no stage')}): missing 'id' (a name for the "
                              "step; its artifact is written to WORKDIR/ID)")
    spec = cfgmod.from_dict(PipelineSpec, data, where=str(path))
    if not spec.steps:
        raise ConfigError(f"{path}: the pipeline has no steps; list them under 'steps:' (see examples/quickstart.yaml)")
    seen = set()
    for i, s in enumerate(spec.steps):
        if not _STEP_ID.fullmatch(s.id) or ".." in s.id:
            raise ConfigError(f"{path}: steps[{i}]: step id {s.id!r} must be a name (letters, digits, '_', '-', "
                              "'.'; no '/' or '..'), not a path: its artifact is written to WORKDIR/ID")
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
