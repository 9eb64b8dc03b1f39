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

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..artifacts import Manifest, atomic_write_json, atomic_write_text, jsonl_line, write_jsonl
from ..errors import ArtifactError, EmptyResultError, InputError
from ..log import logger, progress
from ..rdf import (
    GRAPH_KIND,
    GraphWriter,
    count_triples,
    graph_shards,
    iter_ntriples_file,
    read_manifest,
    triple_id,
)
from ..registry import Stage
from .checks import CHECKS, SEVERITIES, CheckOptions, TermIndex, Violation, run_checks
from .feedback import REASON, corrections_dir, flagged_rows, is_export, load_flags
from .ontology import check_rdf_file, load_ontologies
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

    ctx = TermIndex(ont, config.checks)
    ctx.add_all(_iter_inputs(inputs), total=total)
    if len(ctx) != total:
        raise ArtifactError(f"{', '.join(map(str, inputs))}: manifests count {total} triples but the shards hold "
                            f"{len(ctx)}; the artifact is damaged: rebuild it")
    results = run_checks(ctx, config.severity)

    quarantine: dict[int, list] = defaultdict(list)
    warnings = []
    for vs in results.values():
        for v in vs:
            if v.severity == "error" and v.triple is not None:
                quarantine[v.triple].append(v)
            else:
                warnings.append(v)
    flagged, not_found = flagged_rows(ctx, flags)
    for n in sorted(flagged):
        quarantine[n].append(Violation("feedback", "error", REASON, n))

    shacl_lines: list[str] | None = [] if total <= config.shacl_max_triples else None
    with GraphWriter(out, config=config, inputs=[*inputs, *exports], pipeline_key=pipeline_key) as g:
        kept, quarantined, duplicates, n_flagged = _write_graph(g, ctx, inputs, quarantine, shacl_lines, flagged)
        write_jsonl(g.path / "warnings.jsonl", (
            {"check": v.check, "severity": v.severity, "message": v.message, "focus": v.focus,
             "triple": list(ctx.triple(v.triple)) if v.triple is not None else None} for v in warnings))
        assert kept + quarantined + duplicates == total, "validate lost triples"  # counts must add up

        # Too big for pyshacl: the lines were not kept, and the input size decides (reported as skipped).
        shacl = validate_shapes(shacl_lines or [], kept if shacl_lines is not None else total, config.shapes,
                                max_triples=config.shacl_max_triples, max_examples=config.max_examples,
                                shapes=shapes)
        counts = {"input_triples": total, "kept": kept, "quarantined": quarantined, "duplicate_triples": duplicates,
                  "errors": sum(len(v) for v in quarantine.values()), "warnings": len(warnings),
                  "flagged_by_feedback": n_flagged}
        feedback = _feedback_report(corrections, flags, flagged, not_found, n_flagged, ctx, config.max_examples)
        report = _report(inputs, config, ont, reasoning, results, counts, shacl, ctx, feedback)
        atomic_write_json(g.path / "report.json", report)
        atomic_write_text(g.path / "report.md", render_markdown(report))
        g.counts.update(counts)
        g.counts["problems"] = len(report["problems"])
        g.extra["validation"] = {"clean": report["clean"], "problems": report["problems"],
                                 "reasoning": reasoning.status}
        if corrections:
            g.extra["feedback"] = {k: feedback[k] for k in ("corrections", "flagged_triples",
                                                            "quarantined_triples", "not_in_graph")}
        # In the manifest's problems too: the CLI and `kgllm run` print them and exit 1.
        g.problems.extend(report["problems"])
    return g.manifest


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


def _write_graph(g: GraphWriter, ctx: TermIndex, inputs: list[Path], quarantine: dict[int, list],
                 shacl_lines: list[str] | None, flagged: dict | None = None) -> tuple[int, int, int, int]:
    """Kept triples into ``g`` (one shard per input shard, same provenance), the rest into quarantine/.
    Returns kept, quarantined, duplicates and how many of the quarantined were flagged by feedback
    (``flagged``: row -> :class:`~kgllm.validate.feedback.Flag`).

    The triples come from the index (term table + id arrays, in input order), not from re-reading the
    shards: the per-shard triple counts of the input manifests give the shard boundaries.
    """
    import numpy as np

    kept = quarantined = duplicates = n_flagged = 0
    flagged = flagged or {}
    qdir = g.path / "quarantine"
    qdir.mkdir()
    # A triple that occurred before (in input order) is a duplicate: found on the interned term ids with
    # one stable sort instead of hashing every statement. lexsort is stable, so among equal triples the
    # first occurrence comes first and only the later ones are marked.
    n_all = len(ctx)
    order = np.lexsort((ctx.O, ctx.P, ctx.S))
    s_, p_, o_ = ctx.S[order], ctx.P[order], ctx.O[order]
    dup = np.zeros(n_all, dtype=bool)
    dup[order[1:]] = (s_[1:] == s_[:-1]) & (p_[1:] == p_[:-1]) & (o_[1:] == o_[:-1])
    del order, s_, p_, o_
    terms = ctx.terms
    n0 = 0
    bar = progress(desc="write", total=n_all, unit="triple")
    with open(qdir / "quarantine.jsonl", "w", encoding="utf-8") as qj, \
            open(qdir / "quarantine.nt", "w", encoding="utf-8") as qn:
        for d in inputs:
            for shard in graph_shards(d):
                n1 = n0 + shard["triples"]
                with g.shard(shard["provenance"], unique_lines=True) as add_line:
                    for lo in range(n0, n1, 100_000):  # chunks: bounded memory for the int lists
                        hi = min(lo + 100_000, n1)
                        rows = zip(range(lo, hi), ctx.S[lo:hi].tolist(), ctx.P[lo:hi].tolist(),
                                   ctx.O[lo:hi].tolist(), dup[lo:hi].tolist(), strict=True)
                        bar.update(hi - lo)
                        for n, si, pi, oi, is_dup in rows:
                            if is_dup:
                                duplicates += 1
                                continue
                            line = f"{terms[si]} {terms[pi]} {terms[oi]}"
                            vs = quarantine.get(n) if quarantine else None
                            if vs is None:
                                add_line(line)
                                kept += 1
                                if shacl_lines is not None:
                                    shacl_lines.append(line + " .\n")
                                continue
                            quarantined += 1
                            s, p, o = terms[si], terms[pi], terms[oi]
                            qn.write(line + " .\n")
                            rec = {"id": triple_id(s, p, o), "s": s, "p": p, "o": o,
                                   "checks": sorted({v.check for v in vs}), "reasons": [v.message for v in vs],
                                   "source": {"graph": str(d), "shard": shard["file"],
                                              "provenance": shard["provenance"]}}
                            f = flagged.get(n)
                            if f is not None:
                                n_flagged += 1
                                rec["feedback"] = {"reasons": f.reasons, "feedback_ids": f.feedback_ids,
                                                   "corrections": f.sources}
                            qj.write(jsonl_line(rec))
                n0 = n1
    bar.close()
    g.duplicates += duplicates  # the writer's own count (it did not see them: unique_lines)
    return kept, quarantined, duplicates, n_flagged


def _iter_inputs(inputs: list[Path]):
    """Every input triple in order; each shard must hold the count its manifest says (the writer relies on it)."""
    for d in inputs:
        for shard in graph_shards(d):
            n = 0
            for t in iter_ntriples_file(shard["path"]):
                n += 1
                yield t
            if n != shard["triples"]:
                raise ArtifactError(f"{shard['path']}: holds {n} triples but {Path(d) / 'manifest.json'} says "
                                    f"{shard['triples']}; the artifact is damaged: rebuild it")


def _feedback_report(corrections, flags, flagged, not_found, n_flagged, ctx, max_examples) -> dict:
    """What the feedback corrections did: flagged triples, how many were quarantined, which the graph lacks."""
    seen, examples = set(), []
    for n, f in sorted(flagged.items()):
        if f.triple_id in seen:
            continue
        seen.add(f.triple_id)
        if len(examples) < max_examples:
            examples.append({"id": f.triple_id, "triple": list(ctx.triple(n)), "reasons": f.reasons,
                             "feedback_ids": f.feedback_ids})
    return {"corrections": [str(c) for c in corrections], "flagged_triples": len(flags),
            "quarantined_triples": n_flagged, "not_in_graph": len(not_found),
            "not_in_graph_ids": [f.triple_id for f in not_found][:max_examples], "examples": examples}


def _report(inputs, config, ont, reasoning, results, counts, shacl, ctx, feedback=None) -> dict:
    checks = []
    for name in sorted(CHECKS):
        cls = CHECKS[name]
        sev = config.severity.get(name, cls.severity)
        vs = results.get(name, [])
        checks.append({
            "name": name, "severity": sev, "description": cls.description, "violations": len(vs),
            "quarantined_triples": len({v.triple for v in vs if v.severity == "error" and v.triple is not None}),
            "examples": [{"message": v.message, "focus": v.focus,
                          "triple": list(ctx.triple(v.triple)) if v.triple is not None else None}
                         for v in vs[: config.max_examples]],
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
        "reasoning": reasoning.to_dict(),
        "checks": checks,
        "shacl": shacl,
        "feedback": feedback,
    }
