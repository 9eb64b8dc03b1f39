"""The validate stage: its config (:class:`ValidateConfig`), its registration (:data:`STAGES`) and its run
function: ontologies + graph artifacts (+ feedback corrections) -> clean graph + quarantine + report.

Takes: graph artifacts (kind ``graph``) and a :class:`ValidateConfig`; feedback corrections (what people
flagged as wrong) from ``corrections`` in the config or from feedback exports among the inputs (kind
``corpus.feedback``: an input of that kind is read for its ``corrections/``, never validated).
Makes: a graph artifact at ``out`` (written with :class:`~kgllm.rdf.GraphWriter`, one output shard per
input shard with the same provenance) holding the triples no ``error`` check flagged, plus::

    quarantine/quarantine.jsonl   {"id","s","p","o","checks":[...],"reasons":[...],"source":{graph,shard,provenance}}
                                  (+ "feedback": {"reasons","feedback_ids","corrections"} for a flagged triple)
    quarantine/quarantine.nt      the same triples as N-Triples
    warnings.jsonl                {"check","severity","message","focus","triple":[s,p,o]|null}
    report.json, report.md        counts, ontology/reasoning/check/SHACL results, problems

Counts add up: ``input_triples = kept + quarantined + duplicate_triples`` (the same triple in two
input artifacts, or twice in the quarantine; 0 for a single input). ``manifest.extra.validation.clean``
is False when problems were found; they are also the manifest's ``problems`` (the CLI then exits 1).
Feedback: every triple flagged in the corrections is quarantined (check ``feedback``, reason
:data:`~kgllm.validate.feedback.REASON`) and counted in ``flagged_by_feedback`` (part of ``quarantined``);
that is a problem too (exit 1), like any quarantine by an error check. The inputs are never modified.
Checked before any work: every graph, ontology and shapes file exists and parses; an ontology file without
triples, or ontologies without any class or property, is an input error (exit 2); an input graph of zero
triples is :class:`~kgllm.errors.EmptyResultError` (exit 1).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..artifacts import (
    Manifest,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    input_digest,
    jsonl_line,
    package_versions,
    resume_dir,
)
from ..engine import in_order, open_engine
from ..errors import ArtifactError, EmptyResultError, InputError
from ..log import logger, progress
from ..rdf import GRAPH_KIND, GraphWriter, count_triples, read_manifest, triple_id
from ..registry import Stage
from . import parts
from .checks import CHECKS, SEVERITIES, CheckOptions, severity_of
from .feedback import REASON, corrections_dir, is_export, load_flags
from .ontology import check_rdf_file, load_ontologies
from .parts import BLOCK_TRIPLES
from .parts import run as run_data_checks
from .reasoning import reason
from .report import render_markdown
from .shapes import load_shapes, validate_shapes

HELP = "check graphs against ontologies (OWL reasoning, data checks, SHACL); quarantine bad triples"


@dataclass
class ValidateConfig:
    # Ontology files (RDF/XML, Turtle, N-Triples; .xz/.gz ok). Their union is reasoned over and indexed.
    ontology: list[Path] = field(default_factory=list)
    # SHACL shapes files (see ontologies/shapes/).
    shapes: list[Path] = field(default_factory=list)
    # hermit: consistency + unsatisfiable classes (Pellet explains an inconsistency when explain is on);
    # pellet: Pellet only; none: skip OWL reasoning (the data checks still run).
    reasoner: Literal["hermit", "pellet", "none"] = "hermit"
    explain: bool = True
    java_heap_mb: int = 2000
    reasoning_timeout_s: float = 300.0
    # Per-check severity overrides: {check_name: error|warning|off}. error quarantines the triples.
    severity: dict[str, str] = field(default_factory=dict)
    checks: CheckOptions = field(default_factory=CheckOptions)
    shacl_max_triples: int = 500_000
    # Examples per check in report.json/report.md (every violation is in warnings.jsonl / quarantine/).
    max_examples: int = 20
    # Unsatisfiable classes count as a problem (exit code 1), like an inconsistent ontology.
    fail_on_unsatisfiable: bool = True
    # Feedback corrections: the corrections/ graph artifact of `kgllm feedback export`, or the export
    # itself. Every triple flagged there is quarantined ("flagged by feedback"); the inputs stay as they are.
    corrections: list[Path] = field(default_factory=list)
    # The data checks read the graph in blocks of this many triples (the map of the map-reduce; each block
    # is one gzip member of the clean graph's shard, so this size is part of the output's bytes).
    block_triples: int = BLOCK_TRIPLES

    def __post_init__(self):
        for k, v in self.severity.items():
            if k not in CHECKS:
                raise ValueError(f"severity: unknown check {k!r}; checks: {', '.join(sorted(CHECKS))}")
            if v not in SEVERITIES:
                raise ValueError(f"severity.{k}: {v!r} is not one of {', '.join(SEVERITIES)}")
        if self.java_heap_mb < 64:
            raise ValueError("java_heap_mb must be at least 64")
        if self.reasoning_timeout_s <= 0:
            raise ValueError("reasoning_timeout_s must be positive")
        for key, value in (("shacl_max_triples", self.shacl_max_triples), ("max_examples", self.max_examples)):
            if value < 0:
                raise ValueError(f"{key} must be 0 or more, got {value}")
        if self.block_triples < 1:
            raise ValueError(f"block_triples must be at least 1, got {self.block_triples}")


STAGES = [
    Stage("validate", ValidateConfig, "kgllm.validate.stage:run", "graph", help=HELP, min_inputs=1),
]


def run(inputs: list[Path], out: Path, config: ValidateConfig, *, pipeline_key: str | None = None) -> Manifest:
    # Every input (graphs, corrections, ontologies, shapes) is checked and read before any reasoning or data check.
    exports = [d for d in inputs if is_export(d)]  # feedback exports: their corrections, not graphs to validate
    inputs = [d for d in inputs if d not in exports]
    if not inputs:
        raise InputError("validate: give at least one graph artifact to validate (feedback exports only bring "
                         "corrections)")
    for d in inputs:
        read_manifest(d, GRAPH_KIND)  # a clear error for anything but a graph artifact
        if Path(d).resolve() == Path(out).resolve():
            raise ArtifactError(f"{out}: the output must not be one of the inputs (validate writes a new graph)")
    corrections = [corrections_dir(c) for c in [*config.corrections, *exports]]
    flags = load_flags(corrections)
    for p in config.ontology:
        check_rdf_file(p, "ontology file")
    for p in config.shapes:
        check_rdf_file(p, "shapes file")
    ont = load_ontologies(config.ontology)
    _check_ontology(ont)
    shapes = load_shapes(config.shapes) if config.shapes else None
    total = count_triples(inputs)
    if total == 0:
        raise EmptyResultError(f"{', '.join(map(str, inputs))}: the graph holds no triples; nothing to validate "
                               "(check the pull that wrote it)")

    reasoning = reason(ont, config.reasoner, java_heap_mb=config.java_heap_mb,
                       timeout_s=config.reasoning_timeout_s, explain=config.explain)
    logger.info("reasoning: %s", reasoning.status)

    # What decides the checks' results and the written blocks: a stopped run's finished work is kept under
    # this key beside the output (kgllm.artifacts.resume_dir) and a rerun with the same key resumes from it.
    key = {"config": asdict(config), "inputs": [input_digest(p) for p in [*inputs, *corrections, *config.ontology]],
           "code": [package_versions().get("kgllm"), git_commit()]}
    resume = None
    try:
        with open_engine() as eng, \
                GraphWriter(out, config=config, inputs=[*inputs, *exports], pipeline_key=pipeline_key) as g:
            resume = resume_dir(Path(out), key, "checks", RESUME_OWNER)   # (once the writer has checked it)
            _validate(g, eng, inputs, config, ont, flags, shapes, reasoning, corrections, total, resume)
    except BaseException:
        # Finished work stays for the rerun after a stop or a crash; an empty resume directory does not.
        if resume is not None and not any(f.suffix == ".pickle" for f in resume.rglob("*")):
            shutil.rmtree(resume, ignore_errors=True)
        raise
    if resume is not None:   # written: the kept work is of no more use
        shutil.rmtree(resume, ignore_errors=True)
    return g.manifest


RESUME_OWNER = "kgllm-validate-resume"


def _validate(g: GraphWriter, eng, inputs, config: ValidateConfig, ont, flags, shapes, reasoning, corrections,
              total: int, resume: Path | None) -> None:
    """The data checks, the clean graph, the quarantine and the report, into ``g``."""
    # Each partition's violations, check by check: beside the kept work when resuming, else in the
    # artifact's temp directory (removed below).
    spill = resume if resume is not None else g.path.absolute() / ".checks"
    spill.mkdir(exist_ok=True)
    checks, shards, blocks = run_data_checks(
        inputs, parts.CheckConfig(ont, config.checks, config.severity, 1, flags, str(spill)), eng,
        block_triples=config.block_triples, resume=resume)
    if checks.rows != total:
        raise ArtifactError(f"{', '.join(map(str, inputs))}: manifests count {total} triples but the shards "
                            f"hold {checks.rows}; the artifact is damaged: rebuild it")
    quarantine: dict[int, list[tuple[str, str]]] = defaultdict(list)   # row -> (check, reason)
    n_warnings = 0
    with open(g.path / "warnings.jsonl", "wb") as wf:
        for name, found in checks.results.items():
            if found.severity != "error":
                found.write(wf)
                n_warnings += len(found)
                continue
            for row, line, message in zip(found.rows.tolist(), found.lines(), found.messages, strict=True):
                if row >= 0:
                    quarantine[row].append((name, message))
                else:   # an error with no triple to quarantine: reported, like a warning
                    wf.write(line.encode("utf-8"))
                    n_warnings += 1
    for n in sorted(checks.flagged):
        quarantine[n].append(("feedback", REASON))

    shacl_text: list[str] | None = [] if total <= config.shacl_max_triples else None
    kept, quarantined, duplicates, n_flagged, written = _write_graph(g, eng, checks, shards, blocks,
                                                                     quarantine, shacl_text, resume)
    if checks.resumed or written:
        g.extra["resumed"] = {"partitions": checks.resumed, "blocks": written}
    assert kept + quarantined + duplicates == total, "validate lost triples"  # counts must add up
    g.extra["engine"] = eng.report()
    report_examples = {name: found.head(config.max_examples) for name, found in checks.results.items()}
    if resume is None:   # (the resume directory goes once the artifact is written)
        shutil.rmtree(spill)

    # Too big for pyshacl: the lines were not kept, and the input size decides (reported as skipped).
    shacl = validate_shapes(shacl_text or [], kept if shacl_text is not None else total, config.shapes,
                            max_triples=config.shacl_max_triples, max_examples=config.max_examples,
                            shapes=shapes)
    counts = {"input_triples": total, "kept": kept, "quarantined": quarantined, "duplicate_triples": duplicates,
              "errors": sum(len(v) for v in quarantine.values()), "warnings": n_warnings,
              "flagged_by_feedback": n_flagged}
    feedback = _feedback_report(corrections, flags, checks, n_flagged, config.max_examples)
    report = _report(inputs, config, ont, reasoning, checks.results, report_examples, counts, shacl,
                     feedback)
    atomic_write_json(g.path / "report.json", report)
    atomic_write_text(g.path / "report.md", render_markdown(report))
    g.counts.update(counts)
    g.counts["problems"] = len(report["problems"])
    # Timings in the manifest, not in report.json: the same input gives the same report and content hash.
    g.extra["validation"] = {"seconds": {"reasoning": reasoning.to_dict().get("seconds"),
                                         "shacl": shacl.get("seconds")},
                             "clean": report["clean"], "problems": report["problems"],
                             "reasoning": reasoning.status}
    if corrections:
        g.extra["feedback"] = {k: feedback[k] for k in ("corrections", "flagged_triples",
                                                        "quarantined_triples", "not_in_graph")}
    # In the manifest's problems too: the CLI and `kgllm run` print them and exit 1.
    g.problems.extend(report["problems"])


def _check_ontology(ont) -> None:
    """An ontology file without triples, or ontologies without any class or property, cannot validate
    anything: an input error naming the file(s), not a "clean" report."""
    for f in ont.files:
        if not f["triples"]:
            raise InputError(f"{f['path']}: the ontology file holds no triples (no axioms); give the OWL/RDF "
                             "file of the ontology to validate against")
    if not (ont.classes or ont.properties or ont.domains or ont.ranges or ont.disjoint
            or any(len(sup) > 1 for sup in ont.superclasses.values())):
        raise InputError(f"{', '.join(f['path'] for f in ont.files)}: the ontology has no classes or properties "
                         "(no owl:Class, rdfs:Class or property declarations, no rdfs:subClassOf, domain or range "
                         "axioms); give the OWL/RDF file of the ontology to validate against")


def _write_graph(g: GraphWriter, eng, checks: parts.DataChecks, shards: list[parts.InputShard],
                 blocks: list[parts.Block], quarantine: dict[int, list[tuple[str, str]]],
                 shacl_text: list[str] | None, resume: Path | None = None) -> tuple[int, int, int, int, int]:
    """Kept triples into ``g`` (one shard per input shard, same provenance; one gzip member per block of
    ``block_triples`` rows, made in parallel on Ray when the checks ran there), the rest into quarantine/.
    Returns kept, quarantined, duplicates, how many of the quarantined were flagged by feedback, and how many
    reads' members a stopped run had kept in ``resume`` (each read's members are kept there when made).
    ``shacl_text``: when given, gets the kept statements."""
    dups = checks.duplicates
    tasks = parts.write_tasks(blocks, dups | set(quarantine), shacl_text is not None)
    kept_before = {i for i, t in enumerate(tasks)
                   if resume is not None and (resume / parts.write_name(t.block)).exists()}
    todo = [i for i in range(len(tasks)) if i not in kept_before]
    if parts.uses_ray(eng):
        made = eng.map_tasks(parts.write_block, [tasks[i] for i in todo], desc="validate: writing the clean graph",
                             unit="block")
    else:
        made = ((j, parts.write_block(None, tasks[i]))
                for j, i in enumerate(progress(todo, desc="write", unit="block")))

    def results():
        yield from ((i, None) for i in sorted(kept_before))   # read from the resume directory when written
        for j, members in made:
            i = todo[j]
            if resume is not None:
                parts.keep(resume, parts.write_name(tasks[i].block), members)
            yield i, members

    kept = 0
    # The blocks finish in any order; each input shard's are written, in order, into one output shard.
    for k, done in itertools.groupby(in_order(results()), key=lambda ir: blocks[ir[0]].shard):
        with g.members(shards[k].provenance) as add:
            for i, members in done:
                if members is None:
                    members = parts.load_kept(resume, parts.write_name(tasks[i].block))
                    if members is None:
                        raise ArtifactError(f"{resume}: a kept block vanished while validate ran; run it again")
                for data, n, text in members:
                    add(data, n)
                    kept += n
                    if shacl_text is not None and text:
                        shacl_text.append(text)

    quarantined = n_flagged = 0
    qdir = g.path / "quarantine"
    qdir.mkdir()
    with open(qdir / "quarantine.jsonl", "w", encoding="utf-8") as qj, \
            open(qdir / "quarantine.nt", "w", encoding="utf-8") as qn:
        for n in sorted(quarantine):
            if n in dups:
                continue   # a duplicate is counted as one, whatever its first occurrence's verdict
            quarantined += 1
            s, p, o = checks.terms[n]
            sh = parts.shard_of(shards, n)
            qn.write(f"{s} {p} {o} .\n")
            vs = quarantine[n]
            rec = {"id": triple_id(s, p, o), "s": s, "p": p, "o": o,
                   "checks": sorted({c for c, _m in vs}), "reasons": [m for _c, m in vs],
                   "source": {"graph": sh.graph, "shard": sh.file, "provenance": sh.provenance}}
            f = checks.flagged.get(n)
            if f is not None:
                n_flagged += 1
                rec["feedback"] = {"reasons": f.reasons, "feedback_ids": f.feedback_ids, "corrections": f.sources}
            qj.write(jsonl_line(rec))
    g.duplicates += len(dups)  # the writer's own count (it did not see them)
    return kept, quarantined, len(dups), n_flagged, len(kept_before)


def _feedback_report(corrections, flags, checks: parts.DataChecks, n_flagged, max_examples) -> dict:
    """What the feedback corrections did: flagged triples, how many were quarantined, which the graph lacks."""
    seen, examples = set(), []
    for n, f in sorted(checks.flagged.items()):
        if f.triple_id in seen:
            continue
        seen.add(f.triple_id)
        if len(examples) < max_examples:
            examples.append({"id": f.triple_id, "triple": list(checks.terms[n]), "reasons": f.reasons,
                             "feedback_ids": f.feedback_ids})
    return {"corrections": [str(c) for c in corrections], "flagged_triples": len(flags),
            "quarantined_triples": n_flagged, "not_in_graph": len(checks.missing),
            "not_in_graph_ids": [f.triple_id for f in checks.missing][:max_examples], "examples": examples}


def _report(inputs, config, ont, reasoning, results: dict[str, parts.Merged], examples: dict[str, list[str]],
            counts, shacl, feedback=None) -> dict:
    import numpy as np

    checks = []
    for name in sorted(CHECKS):
        cls = CHECKS[name]
        sev = severity_of(name, config.severity)
        found = results.get(name)
        shown = []
        for line in examples.get(name, []):
            v = json.loads(line)
            shown.append({"message": v["message"], "focus": v["focus"], "triple": v["triple"]})
        checks.append({
            "name": name, "severity": sev, "description": cls.description,
            "violations": len(found) if found else 0,
            "quarantined_triples": len(np.unique(found.rows[found.rows >= 0])) if found and sev == "error" else 0,
            "examples": shown,
        })
    problems = []
    if reasoning.status == "inconsistent":
        problems.append("the ontology is inconsistent" + (" (see the explanation)" if reasoning.explanations else ""))
    elif reasoning.status in ("timeout", "out_of_memory", "error"):
        problems.append(f"OWL reasoning did not finish ({reasoning.status}): {reasoning.message[:300]}")
    if reasoning.unsatisfiable_classes and config.fail_on_unsatisfiable:
        problems.append(f"{len(reasoning.unsatisfiable_classes)} unsatisfiable classes")
    for ch in checks:
        if ch["severity"] == "error" and ch["violations"]:
            problems.append(f"{ch['name']}: {ch['violations']} violations ({ch['quarantined_triples']} triples "
                            f"quarantined)")
    if shacl.get("results", {}).get("Violation"):
        problems.append(f"SHACL: {shacl['focus_nodes']['violating']} focus nodes violate the shapes")
    if feedback and feedback["quarantined_triples"]:
        problems.append(f"feedback: {feedback['quarantined_triples']} triples {REASON} quarantined "
                        f"(corrections: {', '.join(feedback['corrections'])})")
    return {
        "clean": not problems,
        "problems": problems,
        "counts": counts,
        "inputs": [{"path": str(d), "triples": count_triples([d])} for d in inputs],
        "ontologies": {"files": ont.files, "unresolved_imports": ont.unresolved_imports,
                       "subclass_cycles": ont.subclass_cycles, "classes": len(ont.classes),
                       "properties": len(ont.properties), "namespaces": ont.namespaces},
        "reasoning": {k: v for k, v in reasoning.to_dict().items() if k != "seconds"},
        "checks": checks,
        "shacl": {k: v for k, v in shacl.items() if k != "seconds"},
        "feedback": feedback,
    }
