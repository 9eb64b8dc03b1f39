"""``kgllm validate GRAPH_DIR... --ontology FILE... [--shapes FILE...] [--corrections DIR...] --out DIR``.

Takes: the ``kgllm`` argument parser (:func:`register`). Makes: the ``validate`` command, which runs the
stage through the registry.

Exit codes: 0 consistent and clean, 1 problems found (the clean graph, quarantine and report are
still written; the problems are printed as ``kgllm: problem: ...`` and recorded in the manifest) or an
empty input graph (nothing written), 2 usage or input errors: a missing graph, ontology or shapes file,
an ontology without classes or properties, a corrections directory that is neither a feedback export nor
its ``corrections/`` graph (nothing written). Triples flagged by feedback (``--corrections``) are
quarantined like those of an error check, so any of them makes the exit code 1 too: the run did change
the data, and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import engine
from ..commands import add_config_args, add_engine_args, engine_config, print_artifact, stage_config
from ..errors import UsageError
from ..registry import run_stage
from .stage import HELP

EPILOG = """\
examples:
  kgllm validate runs/dbpedia --ontology ontologies/dbpedia/dbo.owl.xz \\
      --shapes ontologies/shapes/dbpedia.ttl --out runs/dbpedia-clean
  kgllm validate runs/wordnet --ontology ontologies/wordnet/wn.ttl --shapes ontologies/shapes/wordnet.ttl \\
      --reasoner none --set severity.missing_label=off --out runs/wordnet-clean
  kgllm validate runs/dbpedia --ontology ontologies/dbpedia/dbo.owl.xz --corrections runs/feedback-export \\
      --out runs/dbpedia-corrected     # quarantine what people flagged (exit 1 when anything was)
  kgllm validate runs/dbpedia-full --ontology ontologies/dbpedia/dbo.owl.xz --reasoner none \
      --ray-address head:6379 --out /shared/runs/dbpedia-clean   # the data checks on a Ray cluster
"""


def register(cmds) -> None:
    p = cmds.command("validate", HELP, _cmd_validate, description=HELP + "\n\n" + EPILOG)
    p.add_argument("graphs", nargs="+", type=Path, metavar="GRAPH_DIR", help="graph artifact(s) to validate")
    p.add_argument("--ontology", action="append", type=Path, metavar="FILE",
                   help="ontology file (.owl/.rdf/.ttl/.nt, .xz/.gz ok); repeatable")
    p.add_argument("--shapes", action="append", type=Path, metavar="FILE", help="SHACL shapes file; repeatable")
    p.add_argument("--corrections", action="append", type=Path, metavar="DIR",
                   help="feedback corrections: a `kgllm feedback export` directory or its corrections/ graph; "
                        "every triple flagged there is quarantined ('flagged by feedback'); repeatable")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output graph artifact directory")
    p.add_argument("--reasoner", choices=["hermit", "pellet", "none"], help="OWL reasoner (default hermit)")
    p.add_argument("--java-heap-mb", type=int, help="Java heap for the reasoner in MB (default 2000)")
    p.add_argument("--reasoning-timeout", type=float, metavar="S", help="reasoner time limit in s (default 300)")
    add_config_args(p, "validate")
    add_engine_args(p)  # the data checks as a map-reduce of Ray tasks (docs/scale.md)


def _cmd_validate(args: argparse.Namespace) -> int:
    flags = {"ontology": [str(p) for p in args.ontology] if args.ontology else None,
             "shapes": [str(p) for p in args.shapes] if args.shapes else None,
             "corrections": [str(p) for p in args.corrections] if args.corrections else None,
             "reasoner": args.reasoner, "java_heap_mb": args.java_heap_mb,
             "reasoning_timeout_s": args.reasoning_timeout}
    cfg = stage_config("validate", args, flags)
    if not cfg.ontology:
        raise UsageError("validate: give at least one --ontology FILE (or ontology: in --config)")
    with engine.configured(engine_config(args)):
        man = run_stage("validate", args.graphs, args.out, cfg, force=args.force)
    rc = print_artifact(args.out, man)  # each problem on stderr (the manifest's problems): exit 1
    print(f"report: {args.out / 'report.md'}")
    return rc if man.extra.get("validation", {}).get("clean") else 1
