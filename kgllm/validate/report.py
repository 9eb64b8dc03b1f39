"""The validation report: ``report.json`` (for programs) and ``report.md`` (for people).

Takes: the report dict assembled by :mod:`kgllm.validate.stage`.
Makes: the Markdown rendering; the JSON is the dict itself (format documented in docs/validate.md).
"""

from __future__ import annotations

from ..rdf import shorten


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(rep: dict) -> str:
    c = rep["counts"]
    out = ["# Validation report", ""]
    out.append(f"**Result: {'clean' if rep['clean'] else 'problems found'}**")
    out.append("")
    for p in rep["problems"]:
        out.append(f"- {p}")
    out += ["", "## Counts", "", "| | triples |", "|---|---:|"]
    for k in ("input_triples", "kept", "quarantined", "duplicate_triples"):
        out.append(f"| {k} | {c[k]:,} |")
    fb = rep.get("feedback") if (rep.get("feedback") or {}).get("corrections") else None  # only with --corrections
    if fb:
        out.append(f"| of the quarantined: flagged by feedback | {c.get('flagged_by_feedback', 0):,} |")
    out.append("")
    out.append(f"Check: kept + quarantined + duplicate_triples = {c['kept'] + c['quarantined'] + c['duplicate_triples']:,} "
               f"= input_triples ({c['input_triples']:,}).")
    if fb:
        out += ["", "## Feedback corrections", ""]
        out += [f"- corrections: `{p}`" for p in fb["corrections"]]
        out.append(f"- flagged triples: {fb['flagged_triples']:,}; quarantined (flagged by feedback): "
                   f"{fb['quarantined_triples']:,}; not in the validated graphs: {fb['not_in_graph']:,}")
        if fb["examples"]:
            out += ["", "| triple | subject | predicate | object | people's reasons |", "|---|---|---|---|---|"]
            for e in fb["examples"]:
                s, p, o = (_md_escape(shorten(t))[:80] for t in e["triple"])
                why = "; ".join(_md_escape(r)[:120] for r in e["reasons"]) or "-"
                out.append(f"| {e['id']} | {s} | {p} | {o} | {why} |")
    out += ["", "## Ontologies", ""]
    for f in rep["ontologies"]["files"]:
        out.append(f"- `{f['path']}` ({f['format']}, {f['triples']:,} triples)")
    for imp in rep["ontologies"]["unresolved_imports"]:
        out.append(f"- unresolved import (offline, ignored): `{imp['import']}` in `{imp['file']}`; pass that "
                   f"ontology with --ontology to include it")
    for cyc in rep["ontologies"]["subclass_cycles"]:
        out.append(f"- rdfs:subClassOf cycle in the ontology: {', '.join(map(shorten, cyc))}")
    r = rep["reasoning"]
    out += ["", "## OWL reasoning", "", f"- reasoner: {r['reasoner']}, status: **{r['status']}**"]
    if r.get("message"):
        out.append(f"- {_md_escape(r['message'][:500])}")
    if r["unsatisfiable_classes"]:
        out.append(f"- unsatisfiable classes ({len(r['unsatisfiable_classes'])}):")
        out += [f"  - `{u}`" for u in r["unsatisfiable_classes"]]
    for block in r.get("unsatisfiable_explanations", []):
        out.append(f"- why `{block['axiom']}` ({r.get('explainer')}):")
        for expl in block["explanations"][:3]:
            out.append("  - " + "; ".join(f"`{a}`" for a in expl))
    for i, expl in enumerate(r["explanations"], 1):
        out.append(f"- explanation {i} ({r.get('explainer')}): the axioms")
        out += [f"  - `{a}`" for a in expl]
    out += ["", "## Data checks", "", "| check | severity | violations | examples |", "|---|---|---:|---|"]
    for ch in rep["checks"]:
        ex = "; ".join(_md_escape(e["message"])[:120] for e in ch["examples"][:3])
        out.append(f"| {ch['name']} | {ch['severity']} | {ch['violations']:,} | {ex} |")
    s = rep["shacl"]
    out += ["", "## SHACL", "", f"- status: **{s['status']}**"]
    if s.get("message"):
        out.append(f"- {s['message']}")
    if "focus_nodes" in s:
        fn = s["focus_nodes"]
        out.append(f"- focus nodes: {fn['total']:,} (conforming {fn['conforming']:,}, violating {fn['violating']:,})")
        out += ["", "| shape | focus nodes | conforming | violating |", "|---|---:|---:|---:|"]
        for shape, v in s["by_shape"].items():
            out.append(f"| {shape} | {v['focus_nodes']:,} | {v['conforming']:,} | {v['violating']:,} |")
        if s["examples"]:
            out += ["", "Examples:", ""]
            out += [f"- {e['focus']} {e['path'] or ''}: {_md_escape(e['message'])[:160]}" for e in s["examples"][:10]]
    out += ["", "## Files", "", "- `quarantine/quarantine.jsonl`, `quarantine/quarantine.nt`: quarantined triples "
            "and why (with the people's reasons for those flagged by feedback)", "- `warnings.jsonl`: every warning", "- `triples/`: the clean graph", ""]
    return "\n".join(out)
