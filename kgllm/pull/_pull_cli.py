"""``kgllm pull wordnet`` and ``kgllm pull file``: argument parsing only (pulls import lazily).

Takes: parsed CLI flags. Makes: the effective stage config (defaults < ``--config`` < ``--set`` < flags)
and runs the pull through :func:`kgllm.registry.run_stage` (``--out`` is checked before any work), then
prints where the artifact is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import add_config_args, print_artifact, stage_config

GROUP_HELP = "pull triples from WordNet, SPARQL endpoints or RDF files into a graph artifact"


def _csv(values: list[str] | None) -> list[str] | None:
    """Repeatable flags that also take comma-separated lists: ``--pos n,v --pos a``."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def add_allow_empty(p: argparse.ArgumentParser) -> None:
    """``--allow-empty`` (config key ``allow_empty``) of every pull command."""
    p.add_argument("--allow-empty", action="store_true", default=None,
                   help="accept a pull that yields zero triples (a warning, exit 0) instead of failing (exit 1)")


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
    from ..registry import run_stage

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


_FORMAT_CHOICES = ("nt", "ntriples", "ttl", "turtle", "xml", "rdfxml", "nq", "nquads")


def _cmd_file(args: argparse.Namespace) -> int:
    from ..registry import run_stage

    cfg = stage_config("pull.file", args, {
        "paths": args.paths or None, "format": args.format, "skip_bad": args.skip_bad,
        "base_iri": args.base_iri, "allow_empty": args.allow_empty})
    man = run_stage("pull.file", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)
