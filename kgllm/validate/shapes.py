"""SHACL validation with pyshacl, summarised per shape as conforming / violating focus nodes.

Takes: the (clean) data triples as N-Triples lines and SHACL shapes files (Turtle etc., xz/gzip ok).
Makes: a dict for the report: ``status`` (conforms | violations | skipped), per-shape counts of targeted,
conforming and violating focus nodes, result counts by severity and up to ``max_examples`` results.

pyshacl works on an in-memory rdflib graph, so it is slow on millions of triples: above ``max_triples``
SHACL is skipped and the report says so (the data checks still cover every triple). No inference is run:
``sh:targetClass`` matches asserted types (DBpedia's ``instance_types_transitive`` and the WordNet
pull assert the full type closure).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from ..rdf import RDF, RDFS, SH, shorten
from .ontology import parse_rdf_file


def load_shapes(paths: Iterable[str | Path]):
    import rdflib

    g = rdflib.Graph()
    for p in paths:
        lines = "".join(f"{s} {pr} {o} .\n" for s, pr, o in parse_rdf_file(p, "shapes file"))
        g.parse(data=lines, format="nt")
    return g


def validate_shapes(nt_lines: Iterable[str], n_triples: int, shape_files: list[Path], *,
                    max_triples: int = 500_000, max_examples: int = 20, shapes=None) -> dict:
    """``shapes``: the graph :func:`load_shapes` made of ``shape_files`` (loaded here when None)."""
    if not shape_files:
        return {"status": "skipped", "message": "no shapes given (--shapes)", "shapes": []}
    if shapes is None:
        shapes = load_shapes(shape_files)
    files = [str(p) for p in shape_files]
    if n_triples > max_triples:
        return {"status": "skipped", "shapes": files,
                "message": f"{n_triples} triples > shacl_max_triples={max_triples}; pyshacl is in-memory "
                           f"and slow at this size (raise the limit to run it anyway)"}
    import pyshacl
    import rdflib

    t0 = time.perf_counter()
    data = rdflib.Graph()
    try:
        data.parse(data="".join(nt_lines), format="nt")
    except Exception as e:  # rdflib is stricter than the canonical writer on a few escapes
        raise InputError(f"SHACL: rdflib cannot parse the data graph: {e}") from e
    conforms, results_graph, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none",
                                                  abort_on_first=False, allow_warnings=True)
    targets = _targets(shapes, data)
    by_shape_bad: dict[str, set] = defaultdict(set)
    by_severity: dict[str, int] = defaultdict(int)
    examples = []
    results = sorted(results_graph.subjects(rdflib.RDF.type, rdflib.URIRef(SH + "ValidationResult")),
                     key=lambda r: (str(results_graph.value(r, rdflib.URIRef(SH + "focusNode"))),
                                    str(results_graph.value(r, rdflib.URIRef(SH + "resultMessage")))))
    for r in results:
        def val(p, r=r):
            return results_graph.value(r, rdflib.URIRef(SH + p))

        focus = val("focusNode")
        sev = str(val("resultSeverity")).rsplit("#", 1)[-1]
        by_severity[sev] += 1
        shape = _shape_of(shapes, val("sourceShape"))
        by_shape_bad[shape].add(focus)
        if len(examples) < max_examples:
            examples.append({"focus": focus.n3(), "shape": shape, "severity": sev,
                             "path": shorten(val("resultPath").n3()) if val("resultPath") is not None else None,
                             "value": val("value").n3() if val("value") is not None else None,
                             "message": str(val("resultMessage") or "")})
    per_shape = {}
    all_targets, all_bad = set(), set()
    for shape in sorted(set(targets) | set(by_shape_bad)):
        tg = targets.get(shape, set())
        bad = by_shape_bad.get(shape, set())
        all_targets |= tg | bad
        all_bad |= bad
        per_shape[shape] = {"focus_nodes": len(tg | bad), "conforming": len(tg - bad), "violating": len(bad)}
    violations = by_severity.get("Violation", 0)
    return {
        "status": "conforms" if conforms else ("violations" if violations else "warnings"),
        "shapes": files,
        "focus_nodes": {"total": len(all_targets), "conforming": len(all_targets - all_bad),
                        "violating": len(all_bad)},
        "results": dict(sorted(by_severity.items())),
        "by_shape": per_shape,
        "examples": examples,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _shape_of(shapes, shape) -> str:
    """Name a result's source shape; a property shape is named by the node shape that holds it."""
    import rdflib

    parent = shapes.value(predicate=rdflib.URIRef(SH + "property"), object=shape)
    node = parent if parent is not None else shape
    return shorten(node.n3()) if isinstance(node, rdflib.URIRef) else str(node)


def _targets(shapes, data) -> dict[str, set]:
    """Focus nodes of each node shape (targetClass with rdfs:subClassOf in the data, targetNode,
    targetSubjectsOf, targetObjectsOf)."""
    import rdflib

    u = lambda x: rdflib.URIRef(SH + x)  # noqa: E731
    rdf_type, subclass = rdflib.URIRef(RDF + "type"), rdflib.URIRef(RDFS + "subClassOf")
    out: dict[str, set] = {}
    for shape in set(shapes.subjects(u("targetClass"), None)) | set(shapes.subjects(u("targetNode"), None)) | \
            set(shapes.subjects(u("targetSubjectsOf"), None)) | set(shapes.subjects(u("targetObjectsOf"), None)):
        nodes = set()
        for c in shapes.objects(shape, u("targetClass")):
            for sub in data.transitive_subjects(subclass, c):
                nodes.update(data.subjects(rdf_type, sub))
        nodes.update(shapes.objects(shape, u("targetNode")))
        for p in shapes.objects(shape, u("targetSubjectsOf")):
            nodes.update(data.subjects(p, None))
        for p in shapes.objects(shape, u("targetObjectsOf")):
            nodes.update(data.objects(None, p))
        out[_shape_of(shapes, shape)] = nodes
    return out
