"""OWL reasoning with owlready2 (HermiT, Pellet), always in a subprocess with a timeout.

Takes: an :class:`~kgllm.validate.ontology.Ontology` (the union of the ontology files), a reasoner name,
a Java heap size and a timeout.
Makes: a :class:`ReasoningResult`: consistent or not, the unsatisfiable classes, and for an
inconsistent ontology Pellet's explanations (the axioms involved), or a status saying why reasoning
did not finish (``timeout``, ``out_of_memory``, ``error``) with the reasoner's own message.

Why a subprocess: owlready2 calls Java synchronously and cannot be interrupted; a reasoner stuck on a
hard ontology must never hang the pipeline. The worker (``python -m kgllm.validate.reasoning``) runs in
its own process group, so a timeout kills Java too.

Stopping (never leave Java running or temp files behind):

- SIGTERM (as :class:`~kgllm.errors.Terminated`, raised by the CLI) or Ctrl-C in the parent: the worker's
  whole process group (the worker and Java) is killed and the temp directory removed before the exception
  goes on (a second signal during that clean-up waits until it is done);
- the parent killed outright (SIGKILL, no clean-up): on Linux the worker dies with it
  (``PR_SET_PDEATHSIG``) and Java dies with the worker (the same, set for each Java process the worker
  starts); elsewhere a watchdog thread in the worker kills its group when the parent is gone. The temp
  directory (``kgllm-reason-PID-*``, with an owner file) is removed by the next run once that pid is dead.

Why owlready2 0.49 (pinned): its bundled Pellet 2.3.1 runs on Java 17; from 0.50 on, the bundled Jena
jars are compiled for a newer Java (class file 69) and Pellet fails on Java 17. HermiT works with both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..artifacts import owned_tmpdir, remove_stale_tmpdirs
from ..log import logger
from ..rdf import OWL
from .ontology import Ontology, write_ntriples_for_owlready

REASONERS = ("hermit", "pellet", "none")
_NOTHING = OWL + "Nothing"


@dataclass
class ReasoningResult:
    reasoner: str
    status: str                      # consistent | inconsistent | timeout | out_of_memory | error | skipped
    consistent: bool | None = None
    unsatisfiable_classes: list[str] = field(default_factory=list)
    explanations: list[list[str]] = field(default_factory=list)   # each: the axioms of one justification
    # For each unsatisfiable class: {"axiom": "C subClassOf Nothing", "explanations": [[axiom...]...]}
    unsatisfiable_explanations: list[dict] = field(default_factory=list)
    explainer: str | None = None     # which reasoner produced the explanations
    seconds: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("consistent", "skipped") and not self.unsatisfiable_classes

    def to_dict(self) -> dict:
        return asdict(self)


def reason(ont: Ontology, reasoner: str = "hermit", *, java_heap_mb: int = 2000, timeout_s: float = 300,
           explain: bool = True) -> ReasoningResult:
    """Check consistency and classify; never raises for reasoner failures (they become a status)."""
    if reasoner == "none":
        return ReasoningResult("none", "skipped", message="reasoning disabled (reasoner: none)")
    if reasoner not in REASONERS:
        raise ValueError(f"unknown reasoner {reasoner!r}; use one of {', '.join(REASONERS)}")
    if not ont.triples:
        return ReasoningResult(reasoner, "skipped", message="no ontology given")
    t0 = time.perf_counter()
    remove_stale_tmpdirs(_TMP_PREFIX, what="a reasoning run")
    tmp = proc = None
    try:
        with _signals_deferred():  # a signal right here must not leave the directory behind
            tmp = str(owned_tmpdir(_TMP_PREFIX))
        nt = write_ntriples_for_owlready(ont, Path(tmp) / "ontology.nt")
        cmd = [sys.executable, "-m", "kgllm.validate.reasoning", str(nt), reasoner, str(java_heap_mb),
               "1" if explain else "0"]
        logger.info("reasoning with %s over %d ontology triples (timeout %ss, Java heap %s MB)",
                    reasoner, len(ont.triples), timeout_s, java_heap_mb)
        # start_new_session: the worker and its Java child form one process group that a timeout kills.
        # TMPDIR: owlready2's own temp files (the ontology handed to Java) land in tmp and go with it.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": tmp, _PARENT_ENV: str(os.getpid())}
        with _signals_deferred():  # no signal between the fork and `proc` being set (the worker unblocks them)
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    cwd=tmp, env=env)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ReasoningResult(reasoner, "timeout", seconds=round(time.perf_counter() - t0, 2),
                                   message=f"{reasoner} did not finish within {timeout_s} s; raise "
                                           f"reasoning_timeout_s or use reasoner: none for this ontology")
    finally:  # a timeout, Ctrl-C, SIGTERM or any error: never leave Java running or the directory behind
        _clean_up(proc, tmp)
    seconds = round(time.perf_counter() - t0, 2)
    text = out.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode != 0 or not text:
        status, message = summarize_java_failure(err.decode("utf-8", "replace"), java_heap_mb,
                                                 f"reasoner worker failed (exit {proc.returncode})")
        return ReasoningResult(reasoner, status, seconds=seconds, message=message)
    res = json.loads(text[-1])
    res["seconds"] = seconds
    return ReasoningResult(**res)


def summarize_java_failure(text: str, java_heap_mb: int, what: str) -> tuple[str, str]:
    """``(status, message)`` for a failed Java or worker run: the cause comes first (the first line naming
    an error or exception, however long the stack trace under it), a hint when the heap ran out, then the
    last lines of output. Status is ``out_of_memory`` or ``error``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    oom = any("OutOfMemoryError" in ln or ln.startswith("MemoryError") for ln in lines)
    causes = [ln for ln in lines if re.search(r"(Error|Exception)\b", ln)
              and not ln.startswith(("at ", "File ", "raise ", "Traceback"))]
    cause = next((ln for ln in causes if "OutOfMemoryError" in ln), None) if oom else None
    cause = cause or (causes[0] if causes else lines[-1] if lines else "no output")
    tail = "\n".join(ln for ln in lines[-12:] if ln != cause)[-1500:]
    head = f"{what}: {cause[:500]}"
    if oom:
        head += f" (out of memory with a {java_heap_mb} MB Java heap; raise java_heap_mb)"
    return ("out_of_memory" if oom else "error"), head + (f"\n{tail}" if tail else "")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_worker(proc: subprocess.Popen) -> None:
    """Kill the worker's process group unless the worker exited cleanly (also after a killed worker: its
    Java may outlive it) and reap the worker. Never hangs on a pipe some straggler still holds."""
    if proc.returncode != 0:
        _kill_group(proc)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        logger.warning("reasoner worker %d did not exit after SIGKILL", proc.pid)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _signals_deferred():
    """SIGINT and SIGTERM wait until the block is done: blocked at the OS level and, in the main thread
    (where Python runs its handlers), one already received but not yet handled is recorded instead of raised
    inside the block; it is handled (``Terminated``, ``KeyboardInterrupt``) right after the block."""
    can_mask = hasattr(signal, "pthread_sigmask")
    old_mask = None
    old: dict = {}
    pending: list = []
    try:
        if can_mask:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        if threading.current_thread() is threading.main_thread():
            for s in _STOP_SIGNALS:
                old[s] = signal.signal(s, lambda signum, frame: pending.append((signum, frame)))
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if can_mask:  # old_mask None: interrupted right after blocking (kgllm never blocks them otherwise)
            signal.pthread_sigmask(*((signal.SIG_SETMASK, old_mask) if old_mask is not None
                                     else (signal.SIG_UNBLOCK, _STOP_SIGNALS)))
    for signum, frame in pending[:1]:  # after the block: the handler in place before it (may raise)
        handler = old[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), signum)


def _clean_up(proc: subprocess.Popen | None, tmp: str | None) -> None:
    """Stop the worker and remove ``tmp``, to the end even when SIGINT/SIGTERM come in meanwhile: such a
    signal is raised once the clean-up is done (one handled just before the block started reruns it)."""
    interrupted, done = None, False
    while not done:
        try:
            with _signals_deferred():
                if proc is not None:
                    _stop_worker(proc)
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                done = True
        except KeyboardInterrupt as e:  # Terminated too; raised only after the block, or before it started
            interrupted = interrupted or e
    if interrupted is not None:
        raise interrupted


# Temp directories: kgllm-reason-PID-RANDOM with an owner file (kgllm.artifacts.owned_tmpdir): one left by a
# killed run is removed by the next run once its pid is dead.
_TMP_PREFIX = "kgllm-reason-"
_PARENT_ENV = "KGLLM_REASON_PARENT"


def parse_pellet_explanation(text: str) -> list[list[str]]:
    """The justifications in ``pellet explain`` output (the first ``Axiom:`` block): numbered blocks of
    axioms; a multi-line axiom (``DisjointClasses(A`` / ``B)``, indented deeper) is joined into one line."""
    blocks = parse_pellet_explain_blocks(text)
    return blocks[0]["explanations"] if blocks else []


def parse_pellet_explain_blocks(text: str) -> list[dict]:
    """Every ``Axiom: ...`` block of ``pellet explain`` output as ``{"axiom", "explanations"}``."""
    out = []
    for chunk in text.split("Axiom:")[1:]:
        axiom, _, rest = chunk.partition("\n")
        expls: list[list[str]] = []
        col = None
        body = rest.split("Explanation(s):", 1)
        for line in (body[1] if len(body) > 1 else "").splitlines():
            m = re.match(r"^(\s*\d+\)\s+)(.*\S)\s*$", line)
            if m:
                col = len(m.group(1))
                expls.append([m.group(2)])
            elif line.strip() and expls:
                indent = len(line) - len(line.lstrip())
                if col is not None and indent > col:
                    expls[-1][-1] += " " + line.strip()   # continuation of a multi-line axiom
                elif indent > 0:
                    expls[-1].append(line.strip())
                else:
                    break
        out.append({"axiom": axiom.strip(), "explanations": expls})
    return out


# ----------------------------------------------------------------------------- worker (subprocess)


def _pellet_explain(nt_path: str, heap_mb: int, *what: str) -> dict:
    """Pellet's justifications: of the inconsistency (default), or ``--all-unsat``: of each unsatisfiable
    class. HermiT gives none; owlready2 reaches ``pellet explain`` only after a second full ``realize``
    run, so the bundled Pellet jar is called directly (one Java run)."""
    import owlready2
    from owlready2 import reasoning as orr

    cmd = [owlready2.JAVA_EXE, f"-Xmx{heap_mb}M", "-cp", orr._PELLET_CLASSPATH, "pellet.Pellet", "explain",
           *what, "--ignore-imports", str(Path(nt_path).resolve())]
    proc = subprocess.run(cmd, capture_output=True, text=True, **_java_kwargs())
    if what:
        blocks = parse_pellet_explain_blocks(proc.stdout)
        if blocks:
            return {"unsatisfiable_explanations": blocks, "explainer": "pellet"}
    else:
        explanations = parse_pellet_explanation(proc.stdout)
        if explanations:
            return {"explanations": explanations, "explainer": "pellet"}
    status, msg = summarize_java_failure(proc.stderr or proc.stdout, heap_mb, "pellet explain failed")
    return {"message": f"Pellet could not explain {'the unsatisfiable classes' if what else 'the inconsistency'} "
                       f"({status}): {msg[:500]}"}


def _worker(nt_path: str, reasoner: str, heap_mb: int, explain: bool) -> dict:
    import owlready2
    from owlready2.base import OwlReadyInconsistentOntologyError, OwlReadyJavaError

    # sync_reasoner_* read the heap size from owlready2.reasoning at call time.
    owlready2.reasoning.JAVA_MEMORY = heap_mb
    # ... and pass _subprocess_kargs to each Java run: Java dies with the worker.
    if isinstance(getattr(owlready2.reasoning, "_subprocess_kargs", None), dict):
        owlready2.reasoning._subprocess_kargs.update(_java_kwargs())
    world = owlready2.World()
    onto = world.get_ontology(Path(nt_path).resolve().as_uri()).load()
    res = {"reasoner": reasoner, "status": "consistent", "consistent": True}
    try:
        with onto:
            if reasoner == "hermit":
                owlready2.sync_reasoner_hermit(world, debug=0, ignore_unsupported_datatypes=True)
            else:
                owlready2.sync_reasoner_pellet(world, debug=0)
    except OwlReadyInconsistentOntologyError:
        res.update(status="inconsistent", consistent=False)
    except OwlReadyJavaError as e:
        status, msg = summarize_java_failure(str(e), heap_mb, f"{reasoner} failed")
        return {"reasoner": reasoner, "status": status, "consistent": None, "message": msg}
    if res["consistent"]:
        res["unsatisfiable_classes"] = sorted(c.iri for c in world.inconsistent_classes() if c.iri != _NOTHING)
        if explain and res["unsatisfiable_classes"]:
            res.update(_pellet_explain(nt_path, heap_mb, "--all-unsat"))
        return res
    if explain:
        res.update(_pellet_explain(nt_path, heap_mb))
    return res


def _prctl_pdeathsig():
    """``prctl(PR_SET_PDEATHSIG, sig)`` as a function of ``sig`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda sig: prctl(pr_set_pdeathsig, int(sig), 0, 0, 0) == 0


_PDEATHSIG = None


def _java_kwargs() -> dict:
    """Popen arguments for the worker's Java runs: on Linux, SIGKILL when the worker dies."""
    if _PDEATHSIG is None:
        return {}
    set_pdeathsig = _PDEATHSIG
    return {"preexec_fn": lambda: set_pdeathsig(signal.SIGKILL)}


def _kill_own_group() -> None:
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the worker and Java (start_new_session made this group)
    finally:
        os._exit(1)


def _die_with_parent() -> None:
    """Make the worker (and with it Java) exit when the kgllm process that started it dies, even by SIGKILL."""
    global _PDEATHSIG
    if hasattr(signal, "pthread_sigmask"):  # the parent blocked them around the fork
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    expected = int(os.environ.get(_PARENT_ENV, "0") or 0)
    _PDEATHSIG = _prctl_pdeathsig()
    if _PDEATHSIG is not None and _PDEATHSIG(signal.SIGKILL):
        if expected and os.getppid() != expected:  # the parent died before prctl took effect
            os._exit(1)
        return
    _PDEATHSIG = None
    if not expected:
        return

    def watchdog():  # no prctl: poll for the parent, kill the group (Java too) when it is gone
        while os.getppid() == expected:
            time.sleep(0.5)
        _kill_own_group()

    threading.Thread(target=watchdog, name="kgllm-reason-watchdog", daemon=True).start()


if __name__ == "__main__":
    _die_with_parent()
    _nt, _reasoner, _heap, _explain = sys.argv[1:5]
    print(json.dumps(_worker(_nt, _reasoner, int(_heap), _explain == "1")))
