"""``kgllm pull {wordnet,file,sparql,dbpedia}``: the pull subcommands (argument parsing only).

Takes: parsed CLI flags. Makes: the effective stage config (defaults < ``--config`` < ``--set`` < flags)
and runs the pull through :func:`kgllm.registry.run_stage` (``--out`` is checked before any work), then
prints where the artifact is. The pulls import their heavy parsers only when they run, so registering
these commands keeps ``kgllm --help`` light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import engine
from ..commands import add_config_args, add_engine_args, engine_config, print_artifact, stage_config
from ..config import replace
from ..errors import UsageError
from ..registry import run_stage
from .dbpedia import PRESET_DIR, PUBLIC_ENDPOINT, list_presets

GROUP_HELP = "pull triples from WordNet, SPARQL endpoints or RDF files into a graph artifact"


def register(cmds) -> None:
    register_wordnet(cmds)
    register_file(cmds)
    register_sparql(cmds)
    register_dbpedia(cmds)


def _csv(values: list[str] | None) -> list[str] | None:
    """Repeatable flags that also take comma-separated lists: ``--pos n,v --pos a``."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def add_allow_empty(p: argparse.ArgumentParser) -> None:
    """``--allow-empty`` (config key ``allow_empty``) of every pull command."""
    p.add_argument("--allow-empty", action="store_true", default=None,
                   help="accept a pull that yields zero triples (a warning, exit 0) instead of failing (exit 1)")


def add_harvest_flags(p: argparse.ArgumentParser) -> None:
    """The ``harvest.*`` flags of ``pull sparql`` and ``pull dbpedia``."""
    p.add_argument("--default-graph", action="append", metavar="IRI",
                   help="default-graph-uri for the endpoint (repeatable)")
    p.add_argument("--page-size", type=int, help="solutions per page (clamped below the endpoint's row cap)")
    p.add_argument("--max-rows", type=int, help="the endpoint's row cap when it does not announce one")
    p.add_argument("--rate", type=float, help="at most this many requests per second")
    p.add_argument("--timeout", type=float, help="seconds per request")
    p.add_argument("--retries", type=int, help="retries per request")
    p.add_argument("--order", choices=["auto", "ordered", "natural"],
                   help="page order: natural (no sort, proven by the COUNT check), ordered (ORDER BY, "
                        "sorted by the endpoint for every page), auto (natural, ordered if the check fails)")
    p.add_argument("--no-count-check", action="store_true", help="skip the final COUNT check")
    p.add_argument("--resume", action="store_true", help="continue an interrupted harvest from its checkpoint")


def harvest_flag_values(args: argparse.Namespace) -> dict:
    """The ``harvest.*`` config keys the flags of :func:`add_harvest_flags` set (None: not given)."""
    return {"harvest.default_graph": args.default_graph, "harvest.page_size": args.page_size,
            "harvest.max_rows": args.max_rows, "harvest.rate": args.rate, "harvest.timeout": args.timeout,
            "harvest.retries": args.retries, "harvest.order": args.order,
            "harvest.count_check": False if args.no_count_check else None,
            "harvest.resume": True if args.resume else None}


def register_wordnet(cmds) -> None:
    p = cmds.subcommand(
        "pull", "wordnet", "pull WordNet 3.0 (all of it by default) through nltk", _cmd_wordnet,
        group_help=GROUP_HELP,
        description="Pull WordNet 3.0 into a graph artifact (GWA wn: schema + OntoLex-Lemon).\n\n"
                    "WordNet comes from nltk's data path, else Debian's wordnet-base (never downloaded).\n"
                    "Examples:\n  kgllm pull wordnet --out runs/wordnet\n"
                    "  kgllm pull wordnet --root animal.n.01 --relation hypernym --relation hyponym --out runs/animals")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    p.add_argument("--root", action="append", metavar="SYNSET",
                   help="keep only this synset's hyponym closure (nltk name, e.g. dog.n.01); repeatable")
    p.add_argument("--pos", action="append", metavar="POS",
                   help="parts of speech to keep: n, v, a (includes satellites), r, s; comma list or repeatable")
    p.add_argument("--relation", action="append", metavar="NAME",
                   help="WN-LMF relation to keep (hypernym, antonym, ...); repeatable; default all")
    p.add_argument("--no-examples", action="store_true", help="leave out usage examples (wn:example)")
    add_allow_empty(p)
    add_config_args(p, "pull.wordnet")


def _cmd_wordnet(args: argparse.Namespace) -> int:
    cfg = stage_config("pull.wordnet", args, {
        "roots": _csv(args.root), "pos": _csv(args.pos), "relations": _csv(args.relation),
        "include_examples": False if args.no_examples else None, "allow_empty": args.allow_empty})
    man = run_stage("pull.wordnet", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)


def register_file(cmds) -> None:
    p = cmds.subcommand(
        "pull", "file", "pull local RDF files (N-Triples, Turtle, RDF/XML, N-Quads; .gz/.bz2/.xz)", _cmd_file,
        group_help=GROUP_HELP,
        description="Pull local RDF files into a graph artifact, one shard per file.\n\n"
                    "Formats by extension (.nt .ttl .rdf .owl .xml .nq, optionally + .gz/.bz2/.xz) or --format.\n"
                    "Malformed input stops with the file and line (exit code 2); with --skip-bad,\n"
                    "bad N-Triples/N-Quads lines are quarantined inside the artifact and counted.\n"
                    "With --engine ray (or a Ray address) N-Triples/N-Quads files are parsed by Ray tasks,\n"
                    "large uncompressed ones in byte ranges; the artifact is the same (docs/pull-wordnet-files.md).\n"
                    "Example:\n  kgllm pull file data/labels_en.nt.gz data/dbo.owl --out runs/files")
    p.add_argument("paths", nargs="*", metavar="PATH", help="RDF files to read")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    p.add_argument("--format", choices=sorted(_FORMAT_CHOICES),
                   help="format of every PATH (default: from each file's extension)")
    p.add_argument("--skip-bad", action="store_true", default=None,
                   help="quarantine malformed lines (N-Triples/N-Quads) instead of stopping")
    p.add_argument("--base-iri", metavar="IRI", help="base IRI for relative IRIs (Turtle, RDF/XML)")
    add_allow_empty(p)
    add_config_args(p, "pull.file")
    add_engine_args(p)  # N-Triples/N-Quads parsed by Ray tasks, in byte ranges (docs/pull-wordnet-files.md)


_FORMAT_CHOICES = ("nt", "ntriples", "ttl", "turtle", "xml", "rdfxml", "nq", "nquads")


def _cmd_file(args: argparse.Namespace) -> int:
    cfg = stage_config("pull.file", args, {
        "paths": args.paths or None, "format": args.format, "skip_bad": args.skip_bad,
        "base_iri": args.base_iri, "allow_empty": args.allow_empty})
    with engine.configured(engine_config(args)):
        man = run_stage("pull.file", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)


def register_sparql(cmds) -> None:
    p = cmds.subcommand(
        "pull", "sparql", "harvest a CONSTRUCT (or SELECT ?s ?p ?o) query from any SPARQL endpoint",
        _cmd_sparql, group_help=GROUP_HELP,
        description="Harvest a SPARQL query page by page into a graph artifact: pages under the endpoint's\n"
                    "row cap, truncation detection, retries with backoff and Retry-After, checkpoints\n"
                    "(--resume) and a final COUNT check that proves the pages fitted together.\n\nExamples:\n"
                    "  kgllm pull sparql --endpoint http://localhost:8890/sparql --query q.rq --out runs/q\n"
                    "  kgllm pull sparql --endpoint https://dbpedia.org/sparql --query airlines.rq "
                    "--default-graph http://dbpedia.org --rate 1 --out runs/airlines")
    p.add_argument("--endpoint", help="SPARQL endpoint URL")
    p.add_argument("--query", type=Path, help="a .rq file")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    add_harvest_flags(p)
    add_allow_empty(p)
    add_config_args(p, "pull.sparql")


def _cmd_sparql(args) -> int:
    cfg = stage_config("pull.sparql", args, {
        "endpoint": args.endpoint, "query": str(args.query) if args.query else None,
        "allow_empty": args.allow_empty, **harvest_flag_values(args)})
    man = run_stage("pull.sparql", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)


def register_dbpedia(cmds) -> None:
    names = ", ".join(p.stem for p in sorted(PRESET_DIR.glob("*.rq")))
    p = cmds.subcommand(
        "pull", "dbpedia", "harvest a DBpedia preset query (offline on the bundled sample by default)",
        _cmd_dbpedia, group_help=GROUP_HELP,
        description="Harvest a DBpedia preset (queries/dbpedia/*.rq) into a graph artifact.\n\n"
                    "Without --endpoint the preset runs on an embedded store of the bundled DBpedia sample.\n"
                    f"Presets: {names}\nExamples:\n"
                    "  kgllm pull dbpedia --preset class-facts --param class=dbo:Company --out runs/companies\n"
                    f"  kgllm pull dbpedia --endpoint {PUBLIC_ENDPOINT} --preset labels --param lang=de "
                    "--param class=dbo:City --rate 2 --out runs/city-labels\n"
                    "  kgllm pull dbpedia --list-presets")
    # --out is required, except with --list-presets: one of the two, as the usage line shows.
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="artifact directory to write")
    what.add_argument("--list-presets", action="store_true", help="list the presets and their parameters")
    p.add_argument("--endpoint", help=f"SPARQL endpoint URL (e.g. {PUBLIC_ENDPOINT}); default: embedded store")
    p.add_argument("--preset", help="preset name or path to a .rq file (default class-facts)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="preset parameter, e.g. class=dbo:Place or lang=de; repeatable")
    p.add_argument("--data", action="append", type=Path, metavar="FILE",
                   help="dump file for the embedded store (repeatable; default: the bundled sample)")
    add_harvest_flags(p)
    add_allow_empty(p)
    add_config_args(p, "pull.dbpedia")


def _cmd_dbpedia(args) -> int:
    if args.list_presets:
        for pr in list_presets():
            print(f"{pr.name}: {pr.summary}")
            for prm in pr.params:
                print(f"    {prm.name} ({prm.type}, default {prm.default}): {prm.help}")
        return 0
    params = {}
    for item in args.param:
        if "=" not in item:
            raise UsageError(f"--param {item!r} must look like NAME=VALUE (e.g. class=dbo:Place)")
        k, v = item.split("=", 1)
        params[k.strip()] = v
    cfg = stage_config("pull.dbpedia", args, {
        "endpoint": args.endpoint, "preset": args.preset, "data": [str(d) for d in args.data] if args.data else None,
        "allow_empty": args.allow_empty, **harvest_flag_values(args)})
    if params:
        cfg = replace(cfg, params={**cfg.params, **params})
    man = run_stage("pull.dbpedia", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)
