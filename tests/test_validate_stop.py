"""Stopping `kgllm validate` while HermiT runs: SIGTERM, Ctrl-C (SIGINT) and SIGKILL of the parent leave no
reasoner worker, no Java and no temp directory behind; a rerun afterwards completes.

The busy reasoner: the pigeonhole principle (n+1 pigeons, n holes) as an OWL ontology, exponential for
HermiT's tableau (n = 10 already takes over a minute); every run here is stopped within seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_validate_checks import CLEAN, ONTOLOGY, turtle_triples

from kgllm.artifacts import OWNER_FILE, remove_stale_tmpdirs, tmp_owner
from kgllm.rdf import GraphWriter

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; pdeathsig is Linux-only"),
    pytest.mark.skipif(shutil.which("java") is None, reason="HermiT needs Java"),
]

ROOT = Path(__file__).resolve().parent.parent
WAIT_JAVA_S = 90      # the machine may be busy: start-up is allowed to be slow ...
STOP_S = 10           # ... but stopping must be prompt


def pigeonhole_ttl(n: int) -> str:
    """n+1 pigeons (P_i = X_i0 or ... or X_i(n-1)), n holes (X_ij disjoint from X_kj), one individual in
    every P_i: inconsistent, and exponentially hard to show."""
    lines = ["@prefix : <http://example.org/php#> .", "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
             "<http://example.org/php> a owl:Ontology ."]
    for i in range(n + 1):
        lines += [f":X{i}_{j} a owl:Class ." for j in range(n)]
        holes = " ".join(f":X{i}_{j}" for j in range(n))
        lines.append(f":P{i} a owl:Class ; owl:equivalentClass [ a owl:Class ; owl:unionOf ( {holes} ) ] .")
    for j in range(n):
        lines += [f":X{i}_{j} owl:disjointWith :X{k}_{j} ." for i in range(n + 1) for k in range(i + 1, n + 1)]
    lines.append(":a a owl:NamedIndividual , " + " , ".join(f":P{i}" for i in range(n + 1)) + " .")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stop")
    with GraphWriter(d / "graph", config={}) as g:
        g.add_all(turtle_triples(CLEAN), {"source": "test"})
    (d / "hard.ttl").write_text(pigeonhole_ttl(11))
    (d / "easy.ttl").write_text(ONTOLOGY)
    return d


# ----------------------------------------------------------------------------- processes, from /proc


def _procs() -> dict[int, dict]:
    """Every live (not zombie) process: ppid, pgid, start time, name."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()  # f[0] = state (field 3)
        if f[0] in ("Z", "X"):
            continue
        out[int(name)] = {"ppid": int(f[1]), "pgid": int(f[2]), "start": f[19], "comm": comm}
    return out


def _descendants(pid: int) -> dict[int, dict]:
    procs = _procs()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for p, info in procs.items():
            if info["ppid"] == parent and p not in found:
                found[p] = info
                todo.append(p)
    return found


def _still_running(tracked: dict[int, dict]) -> dict[int, dict]:
    """Those of ``tracked`` (pid: info) still alive (the same process: same start time), and any live process
    in one of their process groups."""
    procs = _procs()
    groups = {info["pgid"] for info in tracked.values()}
    return {p: info for p, info in procs.items()
            if (p in tracked and info["start"] == tracked[p]["start"]) or info["pgid"] in groups}


def _wait_gone(tracked: dict[int, dict], limit: float) -> dict[int, dict]:
    deadline = time.monotonic() + limit
    while (left := _still_running(tracked)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _kill_all(tracked: dict[int, dict]) -> None:
    for p in _still_running(tracked):  # a failed test must not leave Java spinning
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# ----------------------------------------------------------------------------- running kgllm validate


def _validate(files: Path, tmp: Path, ontology: str, out: str) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp), "KGLLM_PROGRESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "kgllm", "validate", str(files / "graph"), "--ontology", str(files / ontology),
         "--reasoner", "hermit", "--reasoning-timeout", "600", "--out", str(tmp.parent / out)],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _start_busy(files: Path, tmp: Path) -> tuple[subprocess.Popen, dict[int, dict]]:
    """``kgllm validate`` on the hard ontology, once HermiT's Java runs; returns it and its descendants."""
    proc = _validate(files, tmp, "hard.ttl", "out")
    deadline = time.monotonic() + WAIT_JAVA_S
    while time.monotonic() < deadline:
        kids = _descendants(proc.pid)
        if any(k["comm"] == "java" for k in kids.values()):
            time.sleep(0.5)  # Java busy reasoning
            return proc, _descendants(proc.pid)
        if proc.poll() is not None:
            pytest.fail(f"kgllm validate exited ({proc.returncode}) before Java started: "
                        f"{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    _kill_all(_descendants(proc.pid))
    pytest.fail(f"HermiT's Java did not start within {WAIT_JAVA_S} s")


def _reason_dirs(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("kgllm-reason-"))


@pytest.fixture
def private_tmp(tmp_path) -> Path:
    t = tmp_path / "tmp"
    t.mkdir()
    return t


@pytest.mark.parametrize("sig, rc, said", [(signal.SIGTERM, 143, "kgllm: terminated"),
                                           (signal.SIGINT, 130, "kgllm: interrupted")])
def test_sigterm_and_ctrl_c_stop_the_reasoner_and_clean_up(files, private_tmp, sig, rc, said):
    proc, kids = _start_busy(files, private_tmp)
    try:
        assert {k["comm"] for k in kids.values()} >= {"java"}
        assert _reason_dirs(private_tmp), "the reasoning temp directory exists while HermiT runs"
        t0 = time.monotonic()
        os.kill(proc.pid, sig)
        try:
            code = proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"kgllm validate still running {STOP_S} s after {sig.name}")
        took = time.monotonic() - t0
        err = proc.stderr.read().decode()
        assert code == rc and said in err, err[-2000:]
        # Killed before the parent exits: nothing of the worker's group is left, nor any file in TMPDIR
        # (owlready2's own temp files included).
        assert not _wait_gone(kids, 2.0), f"left running after {sig.name}"
        assert os.listdir(private_tmp) == []
        assert not (private_tmp.parent / "out").exists()
        print(f"{sig.name}: exit {code} in {took:.2f} s")
    finally:
        _kill_all(kids)


def test_killed_parent_takes_worker_and_java_down_and_a_rerun_cleans_up(files, private_tmp):
    proc, kids = _start_busy(files, private_tmp)
    try:
        left_dirs = _reason_dirs(private_tmp)
        assert len(left_dirs) == 1 and left_dirs[0].startswith(f"kgllm-reason-{proc.pid}-")
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs in the parent
        proc.wait(timeout=STOP_S)
        left = _wait_gone(kids, STOP_S)
        assert not left, f"the worker or Java outlived the killed parent: {left}"
        print(f"SIGKILL: worker and Java gone in {time.monotonic() - t0:.2f} s")
        assert _reason_dirs(private_tmp) == left_dirs  # nobody could remove it ...
    finally:
        _kill_all(kids)
    # ... until the next run, which removes it (its owner is dead) and completes.
    stray = private_tmp / "kgllm-reason-notours"
    stray.mkdir()
    rerun = _validate(files, private_tmp, "easy.ttl", "out2")
    try:
        _, err = rerun.communicate(timeout=180)
    finally:
        rerun.kill()
    assert rerun.returncode == 0, err.decode()[-2000:]
    report = json.loads((private_tmp.parent / "out2" / "report.json").read_text())
    assert report["reasoning"]["status"] == "consistent"
    assert _reason_dirs(private_tmp) == [stray.name]  # the stale one removed; what is not kgllm's is kept


@pytest.mark.parametrize("prefix", ["kgllm-reason-", "kgllm-ray-"])   # the reasoner's and embedded Ray's
def test_stale_temp_dirs_are_removed_only_when_certainly_ours(tmp_path, prefix):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = tmp_owner()

    def make(name: str, owner_doc: dict | None) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "x").write_text("x")
        if owner_doc is not None:
            (d / OWNER_FILE).write_text(json.dumps(owner_doc))
        return d

    stale = make(f"{prefix}{dead.pid}-abc123", {**owner, "pid": dead.pid})
    keep = [
        make(f"{prefix}{os.getppid()}-abc", {**owner, "pid": os.getppid()}),            # owner alive
        make(f"{prefix}{dead.pid}-noowner", None),                                      # no owner file
        make(f"{prefix}{dead.pid}-otherhost", {**owner, "pid": dead.pid, "host": "elsewhere"}),
        make(f"{prefix}{dead.pid}-otherns", {**owner, "pid": dead.pid, "pidns": "pid:[1]"}),
        make(f"{prefix}{dead.pid + 1}-mismatch", {**owner, "pid": dead.pid}),           # pid differs
        make(f"{prefix}abcdef", {**owner, "pid": dead.pid}),                             # no pid in name
        make(f"other-{dead.pid}-abc", {**owner, "pid": dead.pid}),
    ]
    (tmp_path / f"{prefix}{dead.pid}-file").write_text("not a directory")
    assert remove_stale_tmpdirs(prefix, str(tmp_path)) == [str(stale)]
    assert not stale.exists()
    assert all(d.exists() for d in keep) and (tmp_path / f"{prefix}{dead.pid}-file").exists()
