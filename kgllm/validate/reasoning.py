"""OWL reasoning with owlready2 (HermiT, Pellet), always in a subprocess with a timeout.

Takes: an :class:`~kgllm.validate.ontology.Ontology` (the union of the ontology files), a reasoner name,
a Java heap size and a timeout.
Makes: a :class:`ReasoningResult`: consistent or not, the unsatisfiable classes, and for an
inconsistent ontology Pellet's explanations (the axioms involved), or a status saying why reasoning
did not finish (``timeout``, ``out_of_memory``, ``error``) with the reasoner's own message.

Why a subprocess: owlready2 calls Java synchronously and cannot be interrupted; a reasoner stuck on a
hard ontology must never hang the pipeline. The worker (``python -m kgllm.validate.reasoning``) runs in
its own process group, so a timeout kills Java too.

Why owlready2 0.49 (pinned): its bundled Pellet 2.3.1 runs on Java 17; from 0.50 on, the bundled Jena
jars are compiled for a newer Java (class file 69) and Pellet fails on Java 17. HermiT works with both.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    with tempfile.TemporaryDirectory(prefix="kgllm-reason-") as tmp:
        nt = write_ntriples_for_owlready(ont, Path(tmp) / "ontology.nt")
        cmd = [sys.executable, "-m", "kgllm.validate.reasoning", str(nt), reasoner, str(java_heap_mb),
               "1" if explain else "0"]
        logger.info("reasoning with %s over %d ontology triples (timeout %ss, Java heap %s MB)",
                    reasoner, len(ont.triples), timeout_s, java_heap_mb)
        # start_new_session: the worker and its Java child form one process group that a timeout kills.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                cwd=tmp, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except BaseException as e:  # a timeout, or Ctrl-C: never leave Java running in its own session
            _kill_group(proc)
            proc.communicate()
            if not isinstance(e, subprocess.TimeoutExpired):
                raise
            return ReasoningResult(reasoner, "timeout", seconds=round(time.perf_counter() - t0, 2),
                                   message=f"{reasoner} did not finish within {timeout_s} s; raise "
                                           f"reasoning_timeout_s or use reasoner: none for this ontology")
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
    except ProcessLookupError:
        pass


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
    proc = subprocess.run(cmd, capture_output=True, text=True)
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


if __name__ == "__main__":
    _nt, _reasoner, _heap, _explain = sys.argv[1:5]
    print(json.dumps(_worker(_nt, _reasoner, int(_heap), _explain == "1")))
