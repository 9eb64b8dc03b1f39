"""Where the heavy steps of a stage run: in this process, or on Ray (Ray Data actor pools).

Takes: an :class:`EngineConfig` (defaults < a pipeline YAML's ``ray:`` mapping < the ``RAY_ADDRESS``
environment variable < the ``--engine`` / ``--ray-address`` flags; :func:`resolve`) and, per step, the
items to process with a callable class (a :class:`BatchActor`, :meth:`Engine.map_chunks`), or the
arguments of a stateless function and one object every call shares (:meth:`Engine.map_tasks`: one Ray
task per argument, e.g. the corpus stage's entity shards).
Makes: the step's result (in input order; ``map_tasks``: each with its index, as the tasks finish), and a
report of where it ran (:meth:`Engine.report`, which stages put in their manifest's ``extra.engine``).

Ray is an existing distributed engine; kgllm schedules nothing itself. A step that the engine sends to
Ray becomes a Ray Data dataset of fixed-size chunks (one block each) mapped by ``map_batches`` over a
fixed-size actor pool (``ActorPoolStrategy``; ``num_gpus`` per actor when the cluster has GPUs, one CPU
per actor otherwise). Each actor loads its model once and processes one chunk per call; the rows carry
their input index, so the driver puts every result back in its place whatever order the chunks finish in.
Since the chunks are those the in-process path uses too, both paths compute the same thing.

Modes: ``local`` runs in this process; ``ray`` runs on Ray: the cluster at ``address``, or an embedded
instance that :func:`ray.init` starts and :meth:`Engine.close` stops (no address, or ``local``);
``auto`` (the default) runs on Ray when an address is given or a step has at least ``ray_at`` items, so
small runs (tests, the demo) never pay Ray's start-up. Ray is started lazily, on the first step that
wants it, and stopped (or disconnected from) when the stage ends, whether it finishes, fails, or is
stopped by SIGINT or SIGTERM: the embedded instance's processes (GCS, raylet, workers, actors) are
killed and its temp directory removed; on a cluster, the job's actors end with the driver.

Running on a cluster (docs/scale.md): ``ray start --head`` on one machine, ``ray start --address HEAD:6379``
on the others (or KubeRay on Kubernetes), the same kgllm environment on every node, artifact
directories on storage every node and the driver see; then ``kgllm index ... --ray-address HEAD:6379``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import config as cfgmod
from .artifacts import owned_tmpdir, remove_stale_tmpdirs
from .config import check_ranges
from .errors import InputError, MissingDependency, UsageError
from .log import RateProgress, logger

ADDRESS_ENV = "RAY_ADDRESS"
EMBEDDED = ("", "local")           # addresses that mean "an embedded instance of our own"
ACTORS_WAIT_S = 900                # the longest an actor pool may take to start (nodes joining, models loading)
SHUTDOWN_WAIT_S = 5.0              # how long an embedded instance's workers get to exit before they are killed
KILL_WAIT_S = 5.0                  # and how long, once killed, for them to be gone


@dataclass
class EngineConfig:
    mode: Literal["auto", "local", "ray"] = "auto"
    # A Ray cluster: its GCS address HOST:PORT (``ray start --head`` prints it), ``ray://HOST:10001``
    # (Ray Client), or ``auto`` (the cluster ``ray start`` started on this machine). None or ``local``:
    # an embedded instance when Ray runs at all.
    address: str | None = None
    ray_at: int = 200_000              # auto: Ray for a step of at least this many items (texts to embed)
    num_cpus: int | None = None        # CPUs of an embedded instance (None: all of this machine's)
    embed_concurrency: int | None = None  # actors embedding at once (None: one per GPU, else one per CPU)
    num_gpus_per_actor: float | None = None  # None: 1 when the cluster has GPUs, else 0 (CPU actors)
    task_concurrency: int | None = None  # Ray tasks at once (corpus shards; None: one per CPU of the cluster)

    def __post_init__(self):
        check_ranges((
            ("ray_at", self.ray_at, self.ray_at >= 0, "0 or more"),
            ("num_cpus", self.num_cpus, self.num_cpus is None or self.num_cpus >= 1, "at least 1"),
            ("embed_concurrency", self.embed_concurrency,
             self.embed_concurrency is None or self.embed_concurrency >= 1, "at least 1"),
            ("task_concurrency", self.task_concurrency,
             self.task_concurrency is None or self.task_concurrency >= 1, "at least 1"),
            ("num_gpus_per_actor", self.num_gpus_per_actor,
             self.num_gpus_per_actor is None or self.num_gpus_per_actor >= 0, "0 or more"),
        ))

    @property
    def embedded(self) -> bool:
        return (self.address or "").strip() in EMBEDDED


def resolve(yaml: EngineConfig | Mapping | None = None, *, address: str | None = None, mode: str | None = None,
            env: Mapping[str, str] | None = None, source: str = "ray") -> EngineConfig:
    """The effective engine config: defaults < ``yaml`` (a pipeline's ``ray:`` mapping) < ``RAY_ADDRESS``
    < the flags ``address`` / ``mode`` (None: not given). The environment wins over the YAML because it
    is set per run (a Ray job's entrypoint gets it from the cluster), the YAML is shared."""
    env = os.environ if env is None else env
    layers: list[Mapping] = []
    if isinstance(yaml, EngineConfig):
        layers.append(dataclasses.asdict(yaml))
    elif yaml:
        layers.append(yaml)
    if env.get(ADDRESS_ENV, "").strip():
        layers.append({"address": env[ADDRESS_ENV].strip()})
    layers.append({k: v for k, v in (("address", address), ("mode", mode)) if v is not None})
    return cfgmod.build(EngineConfig, *layers, source=source)


_CONFIG: ContextVar[EngineConfig | None] = ContextVar("kgllm_engine_config", default=None)


@contextlib.contextmanager
def configured(config: EngineConfig) -> Iterator[EngineConfig]:
    """The engine config of the stages run inside the block (the CLI and ``kgllm run`` set it; in Python,
    ``with kgllm.engine.configured(EngineConfig(address="head:6379")): kgllm.index(...)``)."""
    token = _CONFIG.set(config)
    try:
        yield config
    finally:
        _CONFIG.reset(token)


def current() -> EngineConfig:
    """The config :func:`configured` set, else the defaults with ``RAY_ADDRESS`` applied."""
    return _CONFIG.get() or resolve()


def describe(config: EngineConfig) -> str:
    """One line saying where heavy steps will run (for ``kgllm run --dry-run`` and logs)."""
    where = "an embedded Ray instance" if config.embedded else f"the Ray cluster at {config.address}"
    if config.mode == "local":
        return "in this process (mode local)"
    if config.mode == "ray" or not config.embedded:
        return f"on {where}"
    return f"in this process; steps of {config.ray_at:,}+ items on {where}"


class BatchActor:
    """Base of the callable classes an :class:`Engine` runs in a Ray Data actor pool. A subclass loads what
    it needs in ``__init__`` (once per actor) and implements :meth:`process`: one chunk (``batch["item"]``,
    a numpy array) -> one output row per item (a 2-D numpy array). The base adds the rows' input index and
    the node each ran on (which the engine's report counts)."""

    def process(self, batch: dict) -> Any:
        raise NotImplementedError

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        import ray

        out = self.process(batch)
        node = ray.get_runtime_context().get_node_id()
        return {"index": batch["index"], "out": out, "node": np.full(len(batch["index"]), node)}


class Engine:
    """One stage run's engine (:func:`open_engine`): :meth:`wants_ray` says where a step of ``n`` items
    runs; :meth:`map_chunks` runs it on Ray (starting Ray on first use); :meth:`close` stops Ray."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self._ray = None
        self._owned = True              # False: a session the caller started (close leaves it running)
        self._embedded_tmp: Path | None = None
        self._children_before: set[tuple[int, str]] = set()   # this process's descendants before ray.init
        self._sigterm = None            # the SIGTERM handler ray.init replaced (restored by close)
        self._data_ctx: dict = {}
        self._data_quiet = False        # Ray Data imported and quietened (_ray_data)
        self._started_s = 0.0
        self._version: str | None = None
        self._steps: list[dict] = []
        self.signal_exception: BaseException | None = None  # what the SIGTERM handler raised (see _relay)

    # ------------------------------------------------------------------ where

    def wants_ray(self, n_items: int) -> bool:
        c = self.config
        if c.mode == "local":
            return False
        if c.mode == "ray" or self._ray is not None:
            return True
        return not c.embedded or n_items >= c.ray_at

    def report(self) -> dict:
        """Where the stage's heavy steps ran (the manifest's ``extra.engine``; no part of any content hash)."""
        if not self._steps:
            return {"ran": "local", "mode": self.config.mode}
        return {"ran": "ray", "mode": self.config.mode,
                "address": "embedded" if self.config.embedded else self.config.address,
                "ray_version": self._version,
                "start_s": round(self._started_s, 3), "steps": list(self._steps)}

    # ------------------------------------------------------------------ Ray session

    def _start(self):
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError as e:
            raise MissingDependency("ray[data]", "ray") from e
        c = self.config
        t0 = time.perf_counter()
        if ray.is_initialized():
            # The caller's own session (a notebook that called ray.init): used as it is, and left running.
            logger.info("engine: using the Ray session already initialized in this process")
            self._ray, self._owned, self._version = ray, False, ray.__version__
            return ray
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING)
        if c.embedded:
            self._children_before = _descendants()
            self._embedded_tmp = _make_tmpdir()
            kw.update(address="local", num_cpus=c.num_cpus, include_dashboard=False,
                      _temp_dir=str(self._embedded_tmp))
        else:
            _check_reachable(c.address)
            kw["address"] = c.address
        try:
            ray.init(**kw)
        except BaseException as e:
            self._restore_sigterm(previous, main)
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._remove_tmp()
            if isinstance(e, Exception) and not c.embedded:
                raise InputError(f"cannot connect to the Ray cluster at {c.address!r} ({type(e).__name__}: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else e}); check the "
                                 "address (`ray status` on the head node prints it), that this Ray "
                                 f"({ray.__version__}) and Python match the cluster's, and RAY_AUTH_TOKEN when "
                                 "the cluster uses token authentication; or drop --ray-address / "
                                 "RAY_ADDRESS / ray.address to run on an embedded instance") from e
            raise
        # ray.init installs a SIGTERM handler that calls sys.exit; the CLI's own (SIGTERM -> Terminated, the
        # same clean-up path as Ctrl-C) is put back. Without one, Ray's stays until close (a clean exit too).
        self._sigterm = previous
        if main and callable(previous):
            signal.signal(signal.SIGTERM, self._relay(previous))
        self._ray, self._version = ray, ray.__version__
        self._started_s = time.perf_counter() - t0
        res = ray.cluster_resources()
        logger.info("engine: Ray %s %s in %.1f s (%d nodes, %g CPUs, %g GPUs)", ray.__version__,
                    "started (embedded)" if c.embedded else f"connected to {c.address}", self._started_s,
                    len([n for n in ray.nodes() if n.get("Alive")]), res.get("CPU", 0), res.get("GPU", 0))
        return ray

    def _relay(self, handler):
        """``handler``, remembering what it raises: a signal that arrives while Ray's C++ code waits (in
        ``ray.get``) comes out of it as a plain KeyboardInterrupt, which :func:`open_engine` turns back into
        the handler's exception (the CLI's Terminated: exit 143, "kgllm: terminated")."""
        def relay(signum, frame):
            try:
                handler(signum, frame)
            except BaseException as e:
                self.signal_exception = e
                raise
        return relay

    def _ray_data(self):
        """Ray Data, imported (about a second) only by the steps that use it, and quietened
        (:meth:`_quiet_ray`) once."""
        ray = self._start()
        if not self._data_quiet:
            import ray.data  # noqa: F401  (its import configures its loggers, which _quiet_ray adjusts)

            self._quiet_ray()
            self._data_quiet = True
        return ray

    def _quiet_ray(self) -> None:
        """Ray Data's own progress bars and per-run log lines off (kgllm reports progress itself, following
        its KGLLM_PROGRESS / -q rules); its warnings stay. Restored by close."""
        from ray.data import DataContext

        ctx = DataContext.get_current()
        # wait_for_min_actors_s: work starts once the whole pool has loaded its model, so that the chunks
        # are shared by all actors (the first one up would otherwise take many), and a cluster that cannot
        # host the pool fails after ACTORS_WAIT_S instead of waiting for ever.
        for k, v in (("enable_progress_bars", False), ("enable_operator_progress_bars", False),
                     ("print_on_execution_start", False), ("enable_auto_log_stats", False),
                     ("wait_for_min_actors_s", ACTORS_WAIT_S)):
            if hasattr(ctx, k):
                self._data_ctx[k] = getattr(ctx, k)
                setattr(ctx, k, v)
        lg = logging.getLogger("ray.data")
        self._data_ctx["_log_level"] = lg.level
        if lg.getEffectiveLevel() < logging.WARNING and not logger.isEnabledFor(logging.DEBUG):
            lg.setLevel(logging.WARNING)
        for h in lg.handlers:  # a handler's filter sees the records of the child loggers too
            if not any(isinstance(f, _DropProgressNotice) for f in h.filters):
                h.addFilter(_DropProgressNotice())

    def close(self) -> None:
        """Stop the embedded instance (or disconnect from the cluster) and remove the temp directory. A
        second Ctrl-C or SIGTERM while this runs is ignored: stopping half-way would leave processes."""
        if self._ray is None and self._embedded_tmp is None:
            return
        main = threading.current_thread() is threading.main_thread()
        saved = {}
        if main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                saved[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            if self._ray is not None:
                t0 = time.perf_counter()
                # The embedded instance's processes (GCS, raylet, its workers and actors) are descendants of
                # this one. ray.shutdown() stops GCS and raylet; workers notice only later (an actor busy in
                # its model for seconds), so the stage waits for them, and kills what is left.
                ours = _descendants() - self._children_before if self.config.embedded and self._owned else set()
                try:
                    if self._owned:
                        if self.config.embedded:
                            _stop_monitor()
                        self._ray.shutdown()
                finally:
                    self._restore_data_ctx()
                    _reap(ours, SHUTDOWN_WAIT_S)
                logger.debug("engine: Ray stopped in %.1f s", time.perf_counter() - t0)
            self._remove_tmp()
        finally:
            self._ray = None
            for sig, h in saved.items():
                signal.signal(sig, h)
            self._restore_sigterm(self._sigterm, main)
            self._sigterm = None

    def _restore_data_ctx(self) -> None:
        self._data_quiet = False
        if not self._data_ctx:
            return
        from ray.data import DataContext

        ctx = DataContext.get_current()
        level = self._data_ctx.pop("_log_level", None)
        for k, v in self._data_ctx.items():
            setattr(ctx, k, v)
        if level is not None:
            logging.getLogger("ray.data").setLevel(level)
        self._data_ctx = {}

    @staticmethod
    def _restore_sigterm(previous, main: bool) -> None:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)

    def _remove_tmp(self) -> None:
        if self._embedded_tmp is not None:
            shutil.rmtree(self._embedded_tmp, ignore_errors=True)
            self._embedded_tmp = None

    # ------------------------------------------------------------------ work

    def map_chunks(self, parts: Sequence[Sequence[str]], actor: type[BatchActor], *,
                   actor_kwargs: Mapping[str, Any], chunk: int, desc: str, unit: str = "item",
                   on_block: Callable[[int, int, Any], None] | None = None) -> list:
        """``actor``'s output for each of ``parts`` (lists of items), as 2-D numpy arrays in input order. Each
        part is cut into chunks of ``chunk`` on its own (one Ray Data block each, mapped one per call by the
        actors of one fixed-size pool, so a model loads once per actor for all parts); progress (rate, ETA)
        is reported on the driver as chunks come back, and ``on_block(start, stop, output)`` is called for
        each (positions in the concatenated parts), e.g. to keep it for a resumed run."""
        import numpy as np
        import pyarrow as pa

        n = sum(len(p) for p in parts)
        if not n:
            raise ValueError("map_chunks: nothing to map")
        ray = self._ray_data()
        starts = np.cumsum([0] + [len(p) for p in parts])
        spans = {int(a + s): min(int(a + s) + chunk, int(b))   # block start -> stop, chunked part by part
                 for a, b in zip(starts[:-1], starts[1:], strict=True) for s in range(0, int(b - a), chunk)}
        items = [x for p in parts for x in p]
        blocks = [pa.table({"index": pa.array(np.arange(a, b, dtype=np.int64)),
                            "item": pa.array(items[a:b], type=pa.large_string())}) for a, b in spans.items()]
        gpus, size = self._pool(len(blocks))
        device = "cuda" if gpus else "cpu"
        logger.info("%s: %d %ss in %d chunks on Ray (%s, %d actor%s, %s)", desc, n, unit, len(blocks),
                    "embedded" if self.config.embedded else self.config.address, size, "s" if size > 1 else "",
                    f"{gpus:g} GPU each" if gpus else "1 CPU each")
        ds = ray.data.from_arrow(blocks).map_batches(
            actor, batch_size=None, batch_format="numpy", fn_constructor_kwargs={**actor_kwargs, "device": device},
            compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1, num_gpus=gpus or None)
        out = None
        nodes: dict[str, int] = {}
        t0 = time.perf_counter()
        with RateProgress(n, desc, unit) as bar:
            for b in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                idx = b["index"]
                a = int(idx[0]) if len(idx) else -1
                if a not in spans or len(idx) != spans[a] - a or int(idx[-1]) != spans[a] - 1:
                    # The encoder sorts a chunk by length into batches: other cuts would change the vectors'
                    # last bits (and the artifacts' hashes).
                    raise RuntimeError(f"{desc}: Ray Data returned rows {a}..{int(idx[-1]) if len(idx) else a} as "
                                       f"one batch, not one whole chunk; this Ray version cuts blocks differently")
                if out is None:
                    out = np.empty((n, b["out"].shape[1]), dtype=b["out"].dtype)
                out[idx] = b["out"]
                if on_block is not None:
                    on_block(a, spans[a], b["out"])
                node = str(b["node"][0])
                nodes[node] = nodes.get(node, 0) + len(idx)
                bar.update(len(idx))
        if bar.done != n:
            raise RuntimeError(f"{desc}: Ray returned {bar.done} of {n} rows")
        secs = time.perf_counter() - t0
        self._steps.append({"step": desc, "items": n, "chunks": len(blocks), "actors": size,
                            "gpus_per_actor": gpus, "nodes": len(nodes), "seconds": round(secs, 3)})
        logger.info("%s: %d %ss on %d node%s in %.1f s (%.0f %ss/s)", desc, n, unit, len(nodes),
                    "s" if len(nodes) > 1 else "", secs, n / secs if secs else 0, unit)
        return [out[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]

    def task_slots(self) -> int:
        """How many tasks :meth:`map_tasks` runs at once: ``task_concurrency``, else the cluster's CPUs
        (starting Ray)."""
        if self.config.task_concurrency:
            return self.config.task_concurrency
        ray = self._start()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map_tasks(self, fn: Callable[[Any, Any], Any], args: Sequence[Any], *, shared: Any = None, desc: str,
                  unit: str = "task") -> Iterator[tuple[int, Any]]:
        """``(i, fn(shared, args[i]))`` for each task, as the tasks finish (one Ray task each, one CPU each, at
        most :meth:`task_slots` running and one more queued, so that no CPU waits while this process handles a
        result, and results wait in the object store no longer than needed).
        ``shared`` goes to the object store once and is deserialized once per worker process; ``fn`` must
        be a module-level function (stateless: what it returns depends on its arguments only)."""
        ray = self._start()
        slots = self.task_slots()
        ref = ray.put(shared)
        remote = ray.remote(**_TASK)(_run_task)
        todo = list(enumerate(args))[::-1]
        running: dict[Any, int] = {}
        nodes: set[str] = set()
        busy = busy_cpu = 0.0
        t0 = time.perf_counter()
        logger.info("%s: %d %ss as Ray tasks (%s, %d at once)", desc, len(args), unit,
                    "embedded" if self.config.embedded else self.config.address, slots)
        try:
            with RateProgress(len(args), desc, unit) as bar:
                while todo or running:
                    while todo and len(running) < slots + 1:
                        i, a = todo.pop()
                        running[remote.remote(fn, [ref], a)] = i
                    ready, _ = ray.wait(list(running), num_returns=1)
                    for r in ready:
                        i = running.pop(r)
                        node, took, cpu, out = ray.get(r)
                        nodes.add(node)
                        busy += took
                        busy_cpu += cpu
                        bar.update(1)
                        yield i, out
        finally:
            # Stopped early (an error in a result, or the caller stopped taking them): the tasks still queued
            # or running are cancelled, and waited for, so that none writes after the caller has cleaned up.
            _cancel(ray, list(running))
        secs = time.perf_counter() - t0
        # task_seconds: the tasks' own wall time, summed (over ``seconds``: how many ran at once on average);
        # task_cpu_seconds: their CPU time (below task_seconds when the tasks waited for a busy machine's CPUs).
        self._steps.append({"step": desc, "items": len(args), "tasks": len(args), "concurrency": slots,
                            "nodes": len(nodes), "seconds": round(secs, 3), "task_seconds": round(busy, 3),
                            "task_cpu_seconds": round(busy_cpu, 3)})
        logger.info("%s: %d %ss on %d node%s in %.1f s", desc, len(args), unit, len(nodes),
                    "s" if len(nodes) > 1 else "", secs)

    def map_reduce(self, map_fn: Callable[[Any, Any], Sequence[Any]], blocks: Sequence[Any],
                   reduce_fn: Callable[[Any, int, Sequence[Any]], Any], parts: int, *, shared: Any = None,
                   desc: str, unit: str = "block", only: Iterable[int] | None = None
                   ) -> Iterator[tuple[int, Any]]:
        """A map-reduce as Ray tasks: ``map_fn(shared, block)`` returns ``parts`` pieces (piece k for reduce k);
        ``reduce_fn(shared, k, pieces)`` gets piece k of every block, in block order. Yields ``(k, result)``
        as the reduces finish; ``only``: just these reduces (the others' results were kept by a stopped run).
        The pieces go from the map tasks' workers to the reduce tasks' through Ray's object store (spilled to
        disk when it fills), never through this process. One CPU per task; Ray queues what the cluster cannot
        run at once. Both functions must be module-level and stateless."""
        ray = self._start()
        ref = ray.put(shared)
        mapper = ray.remote(**_TASK, num_returns=parts + 1)(_run_map)
        reducer = ray.remote(**_TASK)(_run_reduce)
        t0 = time.perf_counter()
        logger.info("%s: %d %ss mapped to %d parts as Ray tasks (%s)", desc, len(blocks), unit, parts,
                    "embedded" if self.config.embedded else self.config.address)
        outs = [mapper.remote(map_fn, [ref], b, parts) for b in blocks]
        ks = sorted(set(range(parts) if only is None else only))
        reduces = {reducer.remote(reduce_fn, [ref], k, *[o[k] for o in outs]): k for k in ks}
        nodes: set[str] = set()
        stats = {"map": [0.0, 0.0], "reduce": [0.0, 0.0]}

        def account(phase: str, node: str, took: float, cpu: float) -> None:
            nodes.add(node)
            stats[phase][0] += took
            stats[phase][1] += cpu

        waiting = {o[-1]: i for i, o in enumerate(outs)}
        try:
            with RateProgress(len(blocks) + len(ks), desc, "task") as bar:
                while waiting:   # the maps' own figures (and their errors, first)
                    ready, _ = ray.wait(list(waiting), num_returns=1)
                    for r in ready:
                        waiting.pop(r)
                        account("map", *ray.get(r))
                        bar.update(1)
                del outs
                while reduces:
                    ready, _ = ray.wait(list(reduces), num_returns=1)
                    for r in ready:
                        k = reduces.pop(r)
                        node, took, cpu, out = ray.get(r)
                        account("reduce", node, took, cpu)
                        logger.debug("%s: reduce %d took %.1f s (%.1f s CPU) on %s", desc, k, took, cpu, node)
                        bar.update(1)
                        yield k, out
        finally:
            _cancel(ray, list(reduces) + list(waiting))   # stopped early: as map_tasks
        secs = time.perf_counter() - t0
        self._steps.append({"step": desc, "items": len(blocks), "tasks": len(blocks) + len(ks), "parts": parts,
                            "nodes": len(nodes), "seconds": round(secs, 3),
                            **{f"{ph}_task_seconds": round(v[0], 3) for ph, v in stats.items()},
                            **{f"{ph}_task_cpu_seconds": round(v[1], 3) for ph, v in stats.items()}})
        logger.info("%s: %d %ss, %d parts, on %d node%s in %.1f s", desc, len(blocks), unit, parts, len(nodes),
                    "s" if len(nodes) > 1 else "", secs)

    def _pool(self, n_chunks: int) -> tuple[float, int]:
        """(GPUs per actor, actors): GPU actors when the cluster has GPUs, else one CPU each; as many as the
        cluster holds (or ``embed_concurrency``), never more than there are chunks."""
        res = self._ray.cluster_resources()
        c = self.config
        total_gpus, total_cpus = res.get("GPU", 0), res.get("CPU", 0)
        gpus = c.num_gpus_per_actor if c.num_gpus_per_actor is not None else (1.0 if total_gpus else 0.0)
        fits = int(total_gpus // gpus) if gpus else int(total_cpus)
        if gpus and not fits:
            raise InputError(f"engine: num_gpus_per_actor {gpus:g} but the Ray cluster has {total_gpus:g} GPUs; "
                             "set num_gpus_per_actor: 0 to embed on CPUs")
        size = c.embed_concurrency or max(1, fits)
        return gpus, max(1, min(size, n_chunks))


@contextlib.contextmanager
def open_engine(config: EngineConfig | None = None) -> Iterator[Engine]:
    """An :class:`Engine` for one stage run (``config``: :func:`current` when None); Ray, if the stage
    started it, is stopped on leaving the block, on errors, Ctrl-C and SIGTERM too."""
    eng = Engine(config or current())
    try:
        yield eng
    except KeyboardInterrupt as e:
        raised = eng.signal_exception
        if raised is not None and raised is not e:
            raise raised.with_traceback(e.__traceback__) from None
        raise
    finally:
        eng.close()


# A Ray task of map_tasks and map_reduce: one CPU, no retry (a task's error comes back at once), SPREAD over the
# cluster's nodes even when a task is short enough for one node to run them all.
_TASK = {"num_cpus": 1, "max_retries": 0, "scheduling_strategy": "SPREAD"}


# How long a stopped step waits for its cancelled tasks to end (each time: asked to stop, then killed).
CANCEL_WAIT_S = 10.0


def _cancel(ray, refs: list) -> None:
    """Cancel the tasks of ``refs`` (queued or running) and wait until they have ended: asked first (a
    KeyboardInterrupt in the task, so that it closes its files), killed if still running after
    :data:`CANCEL_WAIT_S`. On a cluster the caller does not own, they would otherwise run on after the step
    stopped, and write where the caller has already cleaned up. Errors of a session already gone are ignored."""
    if not refs:
        return
    for force in (False, True):
        for r in refs:
            with contextlib.suppress(Exception):
                ray.cancel(r, force=force)
        try:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S, fetch_local=False)
        except Exception:  # noqa: BLE001 - the session is gone (stopped by a signal): nothing runs any more
            return
        if not refs:
            return
    logger.warning("engine: %d cancelled Ray tasks had not ended after %.0f s", len(refs), 2 * CANCEL_WAIT_S)


def in_order(results: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """``(i, result)`` pairs that come in any order (:meth:`Engine.map_tasks`), yielded in the order of ``i``
    (0, 1, ...), each held only until those before it have come."""
    waiting: dict[int, Any] = {}
    nxt = 0
    for i, res in results:
        waiting[i] = res
        while nxt in waiting:
            yield nxt, waiting.pop(nxt)
            nxt += 1


_SHARED: dict[str, Any] = {}   # in a Ray worker: the shared argument of map_tasks and map_reduce, by object id


def _timed(call: Callable[[], Any]) -> tuple[str, float, float, Any]:
    """In a Ray worker: (node, seconds, CPU seconds, ``call()``)."""
    import ray

    t0, c0 = time.perf_counter(), time.process_time()
    out = call()
    return ray.get_runtime_context().get_node_id(), time.perf_counter() - t0, time.process_time() - c0, out


def _run_task(fn, box: list, arg) -> tuple[str, float, float, Any]:
    """A :meth:`Engine.map_tasks` task in a Ray worker: ``fn(shared, arg)``, ``shared`` deserialized once per
    worker process (the ref comes in a list, so Ray does not resolve it per task); returns (node, seconds,
    CPU seconds, result)."""
    return _timed(lambda: fn(_shared(box), arg))


def _shared(box: list) -> Any:
    import ray

    key = box[0].hex()
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = ray.get(box[0])
    return _SHARED[key]


def _run_map(fn, box: list, arg, parts: int) -> tuple:
    """A :meth:`Engine.map_reduce` map task: ``parts`` pieces, then (node, seconds, CPU seconds)."""
    node, took, cpu, pieces = _timed(lambda: list(fn(_shared(box), arg)))
    if len(pieces) != parts:
        raise ValueError(f"map_reduce: the map function returned {len(pieces)} pieces, not {parts}")
    return (*pieces, (node, took, cpu))


def _run_reduce(fn, box: list, k: int, *pieces) -> tuple[str, float, float, Any]:
    """A :meth:`Engine.map_reduce` reduce task: (node, seconds, CPU seconds, ``fn(shared, k, pieces)``)."""
    return _timed(lambda: fn(_shared(box), k, pieces))


class _DropProgressNotice(logging.Filter):
    """Ray Data's one-time 'progress bars disabled, to enable set ...' warning: kgllm turned them off."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "progress bars" not in str(record.msg).lower()


# ----------------------------------------------------------------------------- embedded instance temp dirs

# kgllm-ray-PID-RANDOM with an owner file (kgllm.artifacts.owned_tmpdir): one left by a killed run (SIGKILL: no
# clean-up ran) is removed by the next run when it is certainly kgllm's (same host, owner pid gone). Unix socket
# paths inside it are limited to 107 bytes, so it goes under /tmp when TMPDIR is long.
_TMP_PREFIX = "kgllm-ray-"
# What Ray puts below the directory, at the longest: session_DATE_TIME_USEC_PID/sockets/plasma_store.
_SOCKET_TAIL = len("/kgllm-ray-4194304-abcdefgh/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")


def _make_tmpdir() -> Path:
    base = tempfile.gettempdir()
    if len(base) + _SOCKET_TAIL > 107:
        base = "/tmp"
    remove_stale_tmpdirs(_TMP_PREFIX, base, "an embedded Ray instance")
    return owned_tmpdir(_TMP_PREFIX, base)


# ----------------------------------------------------------------------------- processes (Linux /proc)


def _descendants() -> set[tuple[int, str]]:
    """``(pid, start time)`` of every live descendant of this process (empty where there is no /proc)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return set()
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if f[0] not in ("Z", "X"):
            parents.setdefault(int(f[1]), []).append((int(name), f[19]))
    out, todo = set(), [os.getpid()]
    while todo:
        for child in parents.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child[0])
    return out


def _stop_monitor() -> None:
    """SIGKILL the embedded instance's autoscaler monitor before ``ray.shutdown()``: it does not act on SIGTERM,
    so the shutdown waits its full grace second for it (of 1.3 s in all, measured) after every stage run. It
    holds no state of ours: it only reports this fixed, local instance's resources to its GCS."""
    try:
        from ray._private import worker

        infos = worker._global_node.all_processes.get("monitor", []) if worker._global_node else []
    except Exception:   # a Ray without these internals: the shutdown waits for it as before
        return
    for info in infos:
        if info.process.poll() is None:
            with contextlib.suppress(OSError):
                info.process.kill()
                info.process.wait(timeout=5)


def _reap(procs: set[tuple[int, str]], wait: float) -> None:
    """Wait up to ``wait`` seconds for ``procs`` to exit, then SIGKILL those left (the same processes: same
    start time, so a reused pid is never hit)."""
    def alive() -> list[int]:
        left = []
        for pid, start in procs:
            try:
                stat = Path("/proc", str(pid), "stat").read_text()
            except OSError:
                continue
            f = stat[stat.rindex(")") + 2:].split()
            if f[0] not in ("Z", "X") and f[19] == start:
                left.append(pid)
        return left

    deadline = time.monotonic() + wait
    while (left := alive()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if left:
        logger.debug("engine: killed %d Ray processes that outlived ray.shutdown()", len(left))
        # SIGKILL is delivered asynchronously (a worker with a large heap takes a while to unmap it): the
        # stage returns, and its command exits, only once they are gone.
        deadline = time.monotonic() + KILL_WAIT_S
        while (still := alive()) and time.monotonic() < deadline:
            time.sleep(0.02)
        if still:
            logger.warning("engine: %d Ray processes still running %.0f s after SIGKILL: %s", len(still),
                           KILL_WAIT_S, ", ".join(map(str, still)))


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens there (``ray.init`` would retry for many minutes)."""
    if address.strip() == "auto":
        return
    m = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d+)", address.strip())
    if not m:
        raise UsageError(f"Ray address {address!r} (--ray-address, RAY_ADDRESS or ray.address): give HOST:PORT "
                         "(the head node's GCS address, e.g. "
                         "10.0.0.5:6379), ray://HOST:10001, 'auto' (the cluster `ray start` started here), or "
                         "'local' for an embedded instance")
    host, port = m.group(1), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise InputError(f"the Ray cluster at {address!r} cannot be reached ({e.strerror or e}); start one with "
                         f"`ray start --head --port {port}` on {host}, check the address (`ray status` on "
                         "the head node), or drop --ray-address / RAY_ADDRESS / ray.address to run on an "
                         "embedded instance") from e


__all__ = ["BatchActor", "Engine", "EngineConfig", "configured", "current", "describe", "open_engine", "resolve"]
