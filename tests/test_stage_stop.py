"""Stopping the long stages mid-work: ``kgllm pull file``, ``kgllm corpus`` and ``kgllm index`` stopped by
SIGTERM (schedulers, ``timeout``) or SIGINT (Ctrl-C) exit promptly with 143 / 130, leave no process and no
temp file or directory behind (the finished work a stage resumes from excepted: :func:`debris`), write no
artifact, and a rerun afterwards completes and leaves nothing beside its output.

(``kgllm validate`` with a busy reasoner: tests/test_validate_stop.py; Ray-engine stages: tests/test_engine.py.)
The input: the bundled DBpedia sample copied with renamed resources (bench/bench_scale.py's graph), large
enough that each stage is still working when the signal comes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
STOP_S = 15        # stopping must be prompt (the machine may be busy)
TRIPLES = 150_000  # each stage takes several seconds on it
CORPUS_TRIPLES = 50_000  # the corpus stage is the slowest per triple: several seconds on a third of that


def _kgllm(*args: str) -> list[str]:
    return [sys.executable, "-m", "kgllm", *args]


def _env() -> dict:
    return {**os.environ, "KGLLM_PROGRESS": "0"}


def _descendants(pid: int) -> set[int]:
    """Processes whose parent chain reaches ``pid`` (from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p}
        out |= kids
        todo += list(kids)
    return out


def _running(pids: set[int]) -> list[int]:
    """Those of ``pids`` still running: a zombie has exited (its reaping is its new parent's, init's, job)."""
    left = []
    for k in pids:
        try:
            stat = Path(f"/proc/{k}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
            left.append(k)
    return left


def sigterm_in_task(cmd: list[str], markers: tuple[bytes, ...], out: Path, what: str) -> None:
    """Start ``cmd``; once one of its processes runs a Ray task (its command line holds one of ``markers``),
    SIGTERM it: it must exit 143 within :data:`STOP_S`, leaving no process it started, no ``out`` and no
    temp file beside it."""
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def in_task() -> bool:
        for k in _descendants(p.pid):
            try:
                line = Path(f"/proc/{k}/cmdline").read_bytes()
            except OSError:
                continue
            if any(m in line for m in markers):
                return True
        return False

    deadline = time.monotonic() + 120
    while not in_task():
        assert p.poll() is None, f"{what} ended before its tasks ran: {p.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {what} task started in 120 s"
        time.sleep(0.05)
    kids = _descendants(p.pid)
    p.send_signal(signal.SIGTERM)
    try:
        _stdout, stderr = p.communicate(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail(f"{what} still running {STOP_S}s after SIGTERM")
    assert p.returncode == 143, (p.returncode, stderr[-2000:])
    assert not _running(kids), f"processes left behind: {_running(kids)}"
    assert not out.exists()
    assert not debris(out), f"temp files left: {debris(out)}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    from bench_scale import make_dump

    d = tmp_path_factory.mktemp("stop-stages")
    make_dump(d / "dump.nt.gz", TRIPLES)
    make_dump(d / "small.nt.gz", CORPUS_TRIPLES)
    for dump, graph in (("dump", "graph"), ("small", "small-graph")):
        subprocess.run(_kgllm("pull", "file", str(d / f"{dump}.nt.gz"), "--out", str(d / graph)), check=True,
                       env=_env(), capture_output=True)
    return d


def _stop_mid_work(cmd: list[str], out: Path, sig: int) -> None:
    """Start ``cmd``, wait until it writes (its hidden temp directory appears), send ``sig``; check the
    promised clean stop."""
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(x.name.startswith(f".{out.name}.tmp-") for x in out.parent.iterdir()):
        assert p.poll() is None, f"{cmd[3:5]} ended before writing anything: {p.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"{cmd[3:5]} wrote nothing in 120 s"
        time.sleep(0.05)
    time.sleep(0.3)
    assert p.poll() is None, f"{cmd[3:5]} finished before the signal: make the input larger"
    kids = _descendants(p.pid)
    p.send_signal(sig)
    try:
        _stdout, stderr = p.communicate(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail(f"{cmd[3:5]} still running {STOP_S}s after {signal.Signals(sig).name}")
    assert p.returncode == 128 + sig, (p.returncode, stderr[-2000:])
    left = _running(kids)
    assert not left, f"processes left behind: {left}"
    assert not out.exists(), "a stopped stage wrote its artifact"
    assert not debris(out), f"temp files left behind: {debris(out)}"


def stop_once_kept(cmd: list[str], out: Path, kept: str, what: str) -> Path:
    """Start ``cmd``; once its resume directory beside ``out`` holds finished work (the glob ``kept``,
    relative to the directory ``out`` is in), SIGTERM it: it must exit 143 leaving no ``out`` and nothing but
    that directory beside it, which is returned."""
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(kept)):
        assert p.poll() is None, f"{what} ended before it kept any work: {p.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"{what} kept no work in 120 s"
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    _stdout, stderr = p.communicate(timeout=STOP_S)
    assert p.returncode == 143, (p.returncode, stderr[-2000:])
    assert not out.exists() and not debris(out)
    (d,) = out.parent.glob(kept.split("/")[0])
    return d


# The resume directories a stopped stage keeps beside its output (kgllm.artifacts.resume_dir): the corpus
# stage's finished shards, validate's finished checks and blocks, the parts (finished, or checkpointed half-way)
# a pull parsed, on Ray or of large input in this process; each marked by its owner file.
RESUME = {"shards": ("kgllm-corpus-resume", ".done.json"), "checks": ("kgllm-validate-resume", ".pickle"),
          "parts": ("kgllm-pull-resume", (".done.json", ".at.json"))}


def debris(out: Path) -> list[str]:
    """What a stopped stage left beside ``out`` other than a resume directory holding finished work (the
    rerun removes that one)."""
    left = []
    for x in out.parent.iterdir():
        if not x.name.startswith(f".{out.name}."):
            continue
        tag = x.name[len(out.name) + 2:].split("-", 1)[0]
        if tag in RESUME and x.is_dir():
            owner, done = RESUME[tag]
            kept = {f.name for f in x.rglob("*") if f.is_file()}
            assert owner in kept and any(f.endswith(done) for f in kept), \
                f"{x.name}: no finished work, yet kept: {sorted(kept)[:10]}"
            continue
        left.append(x.name)
    return left


@pytest.mark.parametrize("stage", ["pull", "corpus", "index"])
def test_a_stopped_stage_leaves_nothing_and_a_rerun_completes(work, stage, tmp_path):
    out = tmp_path / stage
    args = {"pull": ("pull", "file", str(work / "dump.nt.gz")),
            "corpus": ("corpus", str(work / "small-graph")),
            "index": ("index", str(work / "graph"), "--no-vectors")}[stage]
    cmd = _kgllm(*args, "--out", str(out))
    for sig in (signal.SIGTERM, signal.SIGINT):
        _stop_mid_work(cmd, out, sig)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "manifest.json").exists()
    assert not [x.name for x in out.parent.iterdir() if x.name.startswith(f".{out.name}.")]
