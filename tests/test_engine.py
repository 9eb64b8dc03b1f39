"""kgllm.engine: the index stage's embedding on Ray Data (real Ray, the real packaged encoder) gives the
index of the in-process path, file for file, on a two-node cluster started here with ``ray start`` and on
an embedded instance; a stage stopped by SIGINT or SIGTERM mid-embedding leaves no Ray process and no temp
directory, and the rerun that follows completes with the in-process path's index. The config's layers and
its errors are checked without Ray.

The graph: 13k real DBpedia page links with labels, minutes of embedding on two cores, so a stop lands
mid-embedding. The compared runs embed a capped part of it in small chunks (``vector.chunk_size``, the
texts per encoder call, which both paths share): 60 triple texts in chunks of 20 and 20 entity texts
make four Ray Data blocks, enough for two actors on two nodes.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DBPEDIA_SAMPLE, write_graph

from kgllm import engine
from kgllm.artifacts import read_manifest
from kgllm.engine import EngineConfig
from kgllm.errors import ConfigError, InputError, UsageError
from kgllm.index import load_index
from kgllm.pipeline import load_pipeline
from kgllm.registry import run_stage

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")
SMALL = {"vector": {"max_triples": 60, "max_entities": 20, "chunk_size": 20}}
SMALL_FLAGS = ["--set", "vector.max_triples=60", "--set", "vector.max_entities=20", "--set", "vector.chunk_size=20"]
STOP_S = 30          # the machine may be busy; stopping Ray (GCS, raylet, workers) must still be prompt


def _short_tmp() -> Path:
    """A private TMPDIR short enough for Ray's unix socket paths (kgllm.engine would fall back to /tmp)."""
    return Path(tempfile.mkdtemp(prefix="kg", dir="/tmp"))


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "KGLLM_PROGRESS": "0", **extra}


def _kgllm(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """``kgllm ARGS`` in a session of its own; after it exits, no process of that session may be left (Ray's
    embedded instance, its workers and actors included)."""
    with subprocess.Popen([sys.executable, "-m", "kgllm", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as p:
        out, err = p.communicate(timeout=timeout)
        left = [i["cmd"][:80] for i in _procs().values() if i["sid"] == p.pid]
    assert not left, f"kgllm {args[0]} left processes behind: {left}"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _vectors(index_dir: Path) -> dict[str, np.ndarray]:
    idx = load_index(index_dir)
    return {k: vi.vectors_of([x for x in vi.keys if x is not None]) for k, vi in idx.vectors.items()}


@pytest.fixture(scope="module")
def links_graph(tmp_path_factory) -> Path:
    return write_graph(tmp_path_factory.mktemp("engine") / "links",
                       [DBPEDIA_SAMPLE / "page_links_en.ttl.xz", DBPEDIA_SAMPLE / "labels_en.ttl.xz"])


@pytest.fixture(scope="module")
def local_index(links_graph, tmp_path_factory) -> Path:
    """The reference: the default engine (auto, no address) on a small run stays in this process."""
    out = tmp_path_factory.mktemp("engine") / "local"
    with engine.configured(engine.resolve(env={})):
        run_stage("index", [links_graph], out, SMALL)
    assert read_manifest(out).extra["engine"] == {"ran": "local", "mode": "auto"}
    return out


def _same_index(a: Path, b: Path) -> None:
    ma, mb = read_manifest(a), read_manifest(b)
    assert mb.counts == ma.counts                       # triple ids, counts, caps: the same
    assert mb.content_sha256 == ma.content_sha256        # every file, the faiss indices and their keys included
    va, vb = _vectors(a), _vectors(b)
    assert va.keys() == vb.keys() == {"triple", "entity"}
    for k in va:
        assert vb[k].dtype == va[k].dtype == np.float32 and np.array_equal(va[k], vb[k])


# ----------------------------------------------------------------------------- config, no Ray


def test_config_layers_and_where_steps_run():
    env = {"RAY_ADDRESS": "10.0.0.5:6379"}
    assert engine.resolve(env={}) == EngineConfig()
    assert engine.resolve({"address": "head:6379", "ray_at": 10}, env={}).address == "head:6379"
    c = engine.resolve({"address": "head:6379", "num_cpus": 4}, env=env)       # the environment beats the YAML
    assert (c.address, c.num_cpus) == ("10.0.0.5:6379", 4)
    c = engine.resolve({"address": "head:6379"}, address="local", mode="ray", env=env)  # flags beat both
    assert (c.address, c.mode, c.embedded) == ("local", "ray", True)
    with pytest.raises(ConfigError, match="did you mean 'address'"):
        engine.resolve({"adress": "x"}, env={})
    with pytest.raises(ConfigError, match="embed_concurrency must be at least 1"):
        engine.resolve({"embed_concurrency": 0}, env={})

    small, big = 1_000, 200_000
    auto = engine.Engine(EngineConfig())
    assert not auto.wants_ray(small) and auto.wants_ray(big)            # small runs never start Ray
    assert engine.Engine(EngineConfig(address="head:6379")).wants_ray(small)
    assert engine.Engine(EngineConfig(mode="ray")).wants_ray(small)
    assert not engine.Engine(EngineConfig(mode="local", address="head:6379")).wants_ray(big)
    assert auto.report() == {"ran": "local", "mode": "auto"}


def test_pipeline_ray_key_and_flags(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("workdir: w\nray: {address: 'head:6379', embed_concurrency: 2}\n"
                 "steps:\n  - {id: g, stage: pull.file, config: {paths: [x.nt]}}\n")
    pipe = load_pipeline(p)
    assert pipe.engine() == engine.resolve({"address": "head:6379", "embed_concurrency": 2})
    assert pipe.engine(address="local", mode="local").mode == "local"
    p.write_text("workdir: w\nray: {mode: cluster}\nsteps:\n  - {id: g, stage: pull.file, config: {paths: [x.nt]}}\n")
    with pytest.raises(ConfigError, match="'cluster' is not one of"):
        load_pipeline(p)


def test_unreachable_or_malformed_address_is_one_clear_error(links_graph, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(InputError, match=rf"Ray cluster at '127.0.0.1:{port}' cannot be reached.*ray start --head"):
        with engine.open_engine(EngineConfig(address=f"127.0.0.1:{port}")) as eng:
            eng.map_chunks([["a"]], engine.BatchActor, actor_kwargs={}, chunk=1, desc="x")
    assert time.monotonic() - t0 < 10      # ray.init itself would retry for many minutes
    with pytest.raises(UsageError, match="give HOST:PORT"):
        with engine.open_engine(EngineConfig(address="head-without-port")) as eng:
            eng.map_chunks([["a"]], engine.BatchActor, actor_kwargs={}, chunk=1, desc="x")
    r = _kgllm("index", str(links_graph), "--out", str(tmp_path / "ix"), "--ray-address", f"127.0.0.1:{port}",
               *SMALL_FLAGS, env=_env())
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"kgllm: error: the Ray cluster at '127.0.0.1:{port}' cannot be reached" in r.stderr
    assert not (tmp_path / "ix").exists()


# ----------------------------------------------------------------------------- two nodes on this machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs() -> dict[int, dict]:
    """Live processes (zombies aside): parent, session, start time, name and command line."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if f[0] in ("Z", "X"):
            continue
        out[int(name)] = {"ppid": int(f[1]), "sid": int(f[3]), "start": f[19],
                          "comm": stat[stat.index("(") + 1:stat.rindex(")")], "cmd": cmd}
    return out


def _tree(pid: int) -> dict[int, dict]:
    """``pid``'s descendants and every process of its session (Ray's processes stay in it)."""
    procs = _procs()
    found = {p: i for p, i in procs.items() if i["sid"] == pid}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for p, info in procs.items():
            if info["ppid"] == parent and p not in found:
                found[p] = info
                todo.append(p)
    return found


def _alive(tracked: dict[int, dict]) -> dict[int, dict]:
    procs = _procs()
    return {p: i for p, i in tracked.items() if p in procs and procs[p]["start"] == i["start"]}


def _wait_gone(tracked: dict[int, dict], limit: float) -> dict[int, dict]:
    deadline = time.monotonic() + limit
    while (left := _alive(tracked)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _stop_session(proc: subprocess.Popen) -> None:
    """Stop what one ``ray start --block`` (a session leader) started: its process group, nothing else
    (SIGKILL: a test cluster has nothing to drain, and SIGTERM makes Ray drain for up to 30 s)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(i["sid"] == proc.pid for i in _procs().values()):
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node (1 CPU) and a second node (1 CPU, resource ``node2``) on 127.0.0.1, each from its own
    ``ray start --block`` in its own session, with token authentication and their own temp dirs and ports;
    stopped by their process groups (``ray stop`` would stop every Ray instance of this machine)."""
    tmp = _short_tmp()
    env = _env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats",
              "--include-log-monitor=false"]
    nodes: list[subprocess.Popen] = []
    logs = tmp_path_factory.mktemp("cluster")
    try:
        # The ports are probed free, then given to Ray: another process (or Ray itself, for a port it
        # picks at random) may take one in between, so a start that fails is retried on fresh ports.
        for attempt in range(3):
            try:
                port = _start_cluster(nodes, common, env, tmp / str(attempt), logs, attempt)
                break
            except pytest.fail.Exception:
                if attempt == 2:
                    raise
                for p in reversed(nodes):
                    _stop_session(p)
                nodes.clear()
        yield {"address": f"127.0.0.1:{port}", "env": env, "nodes": nodes}
    finally:
        for p in reversed(nodes):
            _stop_session(p)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def _start_cluster(nodes: list, common: list[str], env: dict, tmp: Path, logs: Path, attempt: int) -> int:
    """The head and the second node on fresh ports (appended to ``nodes`` as they start); the head's port."""
    port = _free_port()

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(logs / f"{name}{attempt}.log", "wb")  # noqa: SIM115  (the child writes it)
        p = subprocess.Popen([RAY, "start", *common, f"--temp-dir={tmp}/{name}",
                              f"--dashboard-agent-listen-port={_free_port()}",
                              f"--metrics-export-port={_free_port()}", *args],
                             env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        nodes.append(p)
        return p

    start("h", "--head", f"--port={port}", "--include-dashboard=false", f"--dashboard-port={_free_port()}")
    _wait_port(port, 90, nodes[0], logs / f"h{attempt}.log")
    start("w", f"--address=127.0.0.1:{port}", '--resources={"node2": 1}')
    for p, name in zip(nodes, "hw", strict=True):
        _wait_started(p, logs / f"{name}{attempt}.log", 90)
    return port


def _wait_port(port: int, limit: float, proc: subprocess.Popen, log: Path) -> None:
    """Until the head's GCS listens (a second node can join from then on)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"ray start --head exited ({proc.returncode}): {log.read_text()[-2000:]}")
            time.sleep(0.2)
    pytest.fail(f"the head node's GCS did not listen on {port} within {limit} s")


def _wait_started(proc: subprocess.Popen, log: Path, limit: float) -> None:
    """Until ``ray start`` says the node runs (a worker node: registered with the head)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"{' '.join(proc.args[:3])} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"{' '.join(proc.args[:3])} did not start within {limit} s: {log.read_text()[-2000:]}")


def test_two_node_cluster_builds_the_same_index_and_leaves_no_actor(cluster, links_graph, local_index, tmp_path):
    out = tmp_path / "cluster"
    t0 = time.monotonic()
    r = _kgllm("index", str(links_graph), "--out", str(out), "--ray-address", cluster["address"], *SMALL_FLAGS,
               env=cluster["env"])
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    _same_index(local_index, out)
    rep = read_manifest(out).extra["engine"]
    assert (rep["ran"], rep["address"]) == ("ray", cluster["address"])
    # One CPU per node and per actor: two actors, one on each node, shared the four chunks.
    [step] = rep["steps"]
    assert (step["chunks"], step["actors"], step["nodes"]) == (4, 2, 2), rep
    # The job's actors end with the driver; the nodes (and their idle workers) stay.
    sessions = {p.pid for p in cluster["nodes"]}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        actors = [i["cmd"] for i in _procs().values() if i["sid"] in sessions and "MapWorker" in i["cmd"]]
        if not actors:
            break
        time.sleep(0.3)
    assert not actors, actors
    assert all(p.poll() is None for p in cluster["nodes"])
    print(f"two-node index run: {took:.1f} s")


# ----------------------------------------------------------------------------- stopping cleanly


def _start_embedding(pipeline: Path, tmp: Path, err: Path, encoding: bool) -> tuple[subprocess.Popen, dict[int, dict]]:
    """``kgllm run PIPELINE`` (one index step, 12.5k texts in chunks of 16, on Ray) once its embedding step
    has begun: its actors starting (loading the model), or with ``encoding`` its first chunk back (the first
    progress line, with the rate and ETA). Returns the process and everything it started (descendants and
    its session: GCS, raylet, workers, actors)."""
    proc = subprocess.Popen([sys.executable, "-m", "kgllm", "run", str(pipeline)],
                            cwd=ROOT, env=_env(TMPDIR=str(tmp)), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    deadline, since = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"kgllm run exited ({proc.returncode}) before embedding: {err.read_text()[-2000:]}")
        if encoding:
            if re.search(r"embedding triple and entity texts: \d+ of 12571 texts, \d+ texts/s, about \d+ s left",
                         err.read_text()):
                return proc, _tree(proc.pid)
        elif any("MapWorker" in i["cmd"] for i in _tree(proc.pid).values()):
            since = since or time.monotonic()
            if time.monotonic() - since >= 1:
                return proc, _tree(proc.pid)
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no embedding {'progress' if encoding else 'actor'} within 180 s: {err.read_text()[-2000:]}")


def test_sigint_and_sigterm_stop_ray_and_clean_up_and_the_rerun_on_embedded_ray_matches(links_graph, local_index, tmp_path):
    tmp = _short_tmp()
    out = tmp_path / "work" / "ix"
    # The pipeline's `ray:` key: always on Ray, an embedded instance of one CPU (one actor).
    pipeline = tmp_path / "stop.yaml"
    pipeline.write_text(f"workdir: work\nray: {{mode: ray, num_cpus: 1}}\nsteps:\n"
                        f"  - {{id: ix, stage: index, inputs: [{links_graph}], config: {{vector: {{chunk_size: 16}}}}}}\n")
    try:
        # Ctrl-C while the actor loads the model; SIGTERM once chunks come back.
        for sig, rc, said in ((signal.SIGINT, 130, "kgllm: interrupted"), (signal.SIGTERM, 143, "kgllm: terminated")):
            err = tmp_path / f"{sig.name}.err"
            proc, started = _start_embedding(pipeline, tmp, err, encoding=sig == signal.SIGTERM)
            try:
                names = {i["comm"] for i in started.values()}
                assert {"raylet", "gcs_server"} <= names and any("MapWorker" in i["cmd"] for i in started.values())
                assert any(n.startswith("kgllm-ray-") for n in os.listdir(tmp))
                t0 = time.monotonic()
                # Ctrl-C in a terminal signals the whole foreground group (Ray's processes included); kill
                # and schedulers send SIGTERM to the command alone.
                os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
                try:
                    code = proc.wait(timeout=STOP_S)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"kgllm run still running {STOP_S} s after {sig.name}")
                took = time.monotonic() - t0
                text = err.read_text()
                assert code == rc and said in text, text[-3000:]
                left = _wait_gone(started, 1)   # at once: the stage waited for (or killed) every one
                assert not left, f"left running after {sig.name}: {[(i['comm'], i['cmd'][:80]) for i in left.values()]}"
                assert os.listdir(tmp) == []                                  # no temp dir, no file
                assert not out.exists()
                # Only the embedded chunks that came back stay, for a resumed run (kgllm.index.facade).
                kept = [x.name for x in out.parent.glob(".ix.*")]
                assert kept in ([], [".ix.chunks"]), kept
                if kept:
                    files = sorted(x.name for x in (out.parent / ".ix.chunks").iterdir())
                    assert "kgllm-index-chunks" in files and all(
                        f.endswith(".npy") and not f.startswith(".") for f in files if f != "kgllm-index-chunks")
                print(f"{sig.name}: exit {code} in {took:.2f} s, {len(started)} processes gone")
            finally:
                for p in _alive(started):
                    os.kill(p, signal.SIGKILL)
        # The rerun (the same stage and output on a capped part, to finish quickly) on an embedded instance.
        r = _kgllm("index", str(links_graph), "--out", str(out), "--engine", "ray", *SMALL_FLAGS,
                   env=_env(TMPDIR=str(tmp)))
        assert r.returncode == 0, r.stderr[-3000:]
        _same_index(local_index, out)
        assert not list(out.parent.glob(".ix.*"))  # the written index leaves no chunks behind
        rep = read_manifest(out).extra["engine"]
        assert (rep["ran"], rep["address"]) == ("ray", "embedded")
        # One actor pool for both kinds: 60 triple texts in 3 chunks of 20, and 20 entity texts in one.
        [step] = rep["steps"]
        assert step["step"] == "index: embedding triple and entity texts"
        assert (step["items"], step["chunks"], step["actors"], step["gpus_per_actor"], step["nodes"]) == (80, 4, 2, 0, 1)
        # Nothing left but torch's compile cache (torchinductor_USER), which torch keeps there by design.
        assert [n for n in os.listdir(tmp) if not n.startswith("torchinductor_")] == []
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
