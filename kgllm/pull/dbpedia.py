"""DBpedia presets: the ``queries/dbpedia/*.rq`` queries, harvested from an endpoint or offline.

Takes: a preset name (a file in ``queries/dbpedia/``, or a path to any ``.rq`` file written the same
way), parameter values (``class=dbo:Place``, ``lang=de``) and either an endpoint URL (e.g. the public
``https://dbpedia.org/sparql``, or a private Virtuoso) or nothing: then the same query text runs on an
embedded pyoxigraph store loaded from local dump files (by default the bundled DBpedia 2015-10 sample
``examples/data/dbpedia-sample`` and the DBpedia ontology ``ontologies/dbpedia/dbo.owl.xz``), so
everything works without a network.
Makes: a graph artifact through :func:`kgllm.pull.sparql.harvest` (same paging, retries, checkpoints,
COUNT check and provenance); the manifest also records the preset, its parameters and the data files.

Preset files document their parameters in header comments, one per line::

    # @param class iri dbo:Person  the class whose instances are harvested

(``# @param NAME TYPE DEFAULT  description``; TYPE is ``iri``, ``lang``, ``string`` or ``int``) and use
them as ``${class}`` in the query. Values are checked and escaped for their type before they are
inserted (IRIs as ``<...>``, languages and strings as quoted literals), so a parameter cannot inject
SPARQL; a ``lang`` value must be a language tag (``en``, ``de``, ``pt-BR`` or ``*``), so ``english`` is a
usage error, not an empty harvest. Zero triples is an :class:`~kgllm.errors.EmptyResultError` (exit 1)
unless ``allow_empty``.
"""

from __future__ import annotations

import lzma
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError, UsageError
from ..resources import bundled
from .sparql import HarvestConfig

PRESET_DIR = bundled("queries/dbpedia")
SAMPLE_DIR = bundled("examples/data/dbpedia-sample")
ONTOLOGY = bundled("ontologies/dbpedia/dbo.owl.xz")
PUBLIC_ENDPOINT = "https://dbpedia.org/sparql"
DBPEDIA_GRAPH = "http://dbpedia.org"

_PARAM = re.compile(r"^#\s*@param\s+(\w+)\s+(iri|lang|string|int)\s+(\S+)(?:\s+(.*))?$")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_PREFIX_DECL = re.compile(r"PREFIX\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.I)
_LANG = re.compile(r"^(\*|[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)$")  # a 2-3 letter language, then subtags
_IRI_BAD = re.compile(r'[\x00-\x20<>"{}|^`\\]')


@dataclass
class DbpediaConfig:
    """Config of the ``pull.dbpedia`` stage."""

    endpoint: str = ""                 # "" = embedded store of `data`; e.g. https://dbpedia.org/sparql
    preset: str = "class-facts"        # a name in queries/dbpedia/ or a path to a .rq file
    params: dict[str, str] = field(default_factory=dict)
    data: list[Path] = field(default_factory=list)  # embedded store files; default: bundled sample + ontology
    harvest: HarvestConfig = field(default_factory=lambda: HarvestConfig(default_graph=[DBPEDIA_GRAPH]))
    allow_empty: bool = False          # accept zero triples (a warning) instead of failing (exit 1)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str
    help: str


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    text: str
    params: tuple[Param, ...]
    summary: str

    def render(self, values: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """The query text with every ``${name}`` replaced by its escaped value; also the values used."""
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UsageError(f"preset {self.name}: unknown parameter {unknown[0]!r}; parameters: "
                             f"{', '.join(known) or '(none)'}")
        prefixes = {m.group(1) or "": m.group(2) for m in _PREFIX_DECL.finditer(self.text)}
        used = {p.name: str(values.get(p.name, p.default)) for p in self.params}
        rendered = {n: escape(known[n].type, v, prefixes, f"preset {self.name}: parameter {n}")
                    for n, v in used.items()}

        def sub(m: re.Match) -> str:
            if m.group(1) not in rendered:
                raise InputError(f"{self.path}: ${{{m.group(1)}}} is used but not declared with # @param")
            return rendered[m.group(1)]

        return _PLACEHOLDER.sub(sub, self.text), used


def escape(kind: str, value: str, prefixes: dict[str, str], where: str) -> str:
    """A parameter value as a safe SPARQL term of its declared type."""
    from ..rdf import PREFIXES

    if kind == "iri":
        v = value.strip()
        if v.startswith("<") and v.endswith(">"):
            v = v[1:-1]
        elif ":" in v and not re.match(r"^[a-z][a-z0-9+.-]*://", v, re.I):
            pfx, local = v.split(":", 1)
            ns = prefixes.get(pfx) or PREFIXES.get(pfx)
            if ns is None:
                raise UsageError(f"{where}: unknown prefix {pfx!r} in {value!r}; give a full IRI")
            v = ns + local
        if not re.match(r"^[a-z][a-z0-9+.-]*:", v, re.I) or _IRI_BAD.search(v):
            raise UsageError(f"{where}: {value!r} is not a valid IRI (no spaces, quotes, <>, braces)")
        return f"<{v}>"
    if kind == "lang":
        if not _LANG.match(value):
            raise UsageError(f"{where}: {value!r} is not a language tag; use a 2- or 3-letter code like en "
                             "or de (or pt-BR; * for all languages)")
        return f'"{value}"'
    if kind == "int":
        if not re.match(r"^-?\d+$", value.strip()):
            raise UsageError(f"{where}: {value!r} is not an integer")
        return str(int(value))
    # string: a quoted literal with every special character escaped
    esc = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
           .replace("\t", "\\t"))
    return f'"{esc}"'


def list_presets() -> list[Preset]:
    return [load_preset(p) for p in sorted(PRESET_DIR.glob("*.rq"))]


def load_preset(name: str | Path) -> Preset:
    p = Path(name)
    if p.suffix != ".rq" or not p.exists():
        p = PRESET_DIR / f"{name}.rq"
    if not p.exists():
        names = ", ".join(x.stem for x in sorted(PRESET_DIR.glob("*.rq")))
        raise UsageError(f"unknown DBpedia preset {str(name)!r}; presets: {names} (or a path to a .rq file)")
    text = p.read_text("utf-8")
    params, summary = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        if "@param" in line:
            m = _PARAM.match(line.strip())
            if not m:
                raise InputError(f"{p}:{n}: malformed parameter line; write "
                                 "'# @param NAME iri|lang|string|int DEFAULT  description'")
            params.append(Param(m.group(1), m.group(2), m.group(3), (m.group(4) or "").strip()))
        elif not params:
            summary.append(line.lstrip("#").strip())
    return Preset(p.stem, p, text, tuple(params), " ".join(s for s in summary if s))


def default_data() -> list[Path]:
    return sorted(SAMPLE_DIR.glob("*.ttl*")) + [ONTOLOGY]


def check_data_files(files: list[Path]) -> None:
    """Every data file exists and is a file (checked before any is loaded)."""
    for f in map(Path, files):
        if f.is_dir():
            raise InputError(f"{f}: is a directory, not a data file; give the dump files in it")
        if not f.is_file():
            raise InputError(f"{f}: data file does not exist")


def embedded_store(files: list[Path]):
    """A pyoxigraph store loaded from dump files (N-Triples/Turtle/RDF-XML, plain/.xz/.gz/.bz2)."""
    import bz2
    import gzip

    import pyoxigraph

    check_data_files(files)
    store = pyoxigraph.Store()
    for f in files:
        f = Path(f)
        name = f.name
        opener = open
        for ext, op in ((".xz", lzma.open), (".gz", gzip.open), (".bz2", bz2.open)):
            if name.endswith(ext):
                name, opener = name[: -len(ext)], op
        suffix = name.rsplit(".", 1)[-1].lower()
        fmt = {"nt": pyoxigraph.RdfFormat.N_TRIPLES, "ttl": pyoxigraph.RdfFormat.TURTLE,
               "owl": pyoxigraph.RdfFormat.RDF_XML, "rdf": pyoxigraph.RdfFormat.RDF_XML,
               "xml": pyoxigraph.RdfFormat.RDF_XML, "nq": pyoxigraph.RdfFormat.N_QUADS}.get(suffix)
        if fmt is None:
            raise InputError(f"{f}: unknown RDF format .{suffix}; use .nt, .ttl, .owl/.rdf or .nq")
        try:
            with opener(f, "rb") as fh:
                if fmt == pyoxigraph.RdfFormat.N_QUADS:
                    store.bulk_load(fh, format=fmt)
                else:
                    store.bulk_load(fh, format=fmt, to_graph=pyoxigraph.DefaultGraph())
        except SyntaxError as e:
            raise InputError(f"{f}: not valid {suffix.upper()}: {e}") from None
    return store


def pull_dbpedia(out: str | Path, config: DbpediaConfig | None = None, *, pipeline_key: str | None = None):
    """Harvest a DBpedia preset into the graph artifact ``out``; returns its Manifest."""
    from .sparql import StoreEndpoint, harvest, parse_query

    config = config or DbpediaConfig()
    if not config.endpoint:
        check_data_files([Path(p) for p in config.data])
    preset = load_preset(config.preset)
    text, used = preset.render(config.params)
    q = parse_query(text, f"dbpedia/{preset.name}", validate=config.harvest.validate_query)
    if config.endpoint:
        endpoint, inputs = config.endpoint, []
        data = []
    else:
        data = [Path(p) for p in config.data] or default_data()
        label = "embedded:" + ",".join(sorted({p.parent.name for p in data}))
        endpoint, inputs = StoreEndpoint(embedded_store(data), label), list(data)
    extra = {"preset": preset.name, "preset_sha256": q.sha256, "params": used,
             "data": [str(p) for p in data]}
    return harvest(endpoint, q, out, config.harvest, pipeline_key=pipeline_key,
                   inputs=[preset.path, *inputs], extra=extra, manifest_config=asdict(config),
                   allow_empty=config.allow_empty)


def run(inputs: list[Path], out: Path, config: DbpediaConfig, *, pipeline_key: str | None = None):
    """The ``pull.dbpedia`` stage (no input artifacts)."""
    return pull_dbpedia(out, config, pipeline_key=pipeline_key)


# ----------------------------------------------------------------------------- CLI


def register_cli(cmds, group_help: str) -> None:
    from ..commands import add_config_args
    from ._pull_cli import add_allow_empty

    names = ", ".join(p.stem for p in sorted(PRESET_DIR.glob("*.rq")))
    p = cmds.subcommand(
        "pull", "dbpedia", "harvest a DBpedia preset query (offline on the bundled sample by default)",
        _cmd_dbpedia, group_help=group_help,
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
    _harvest_flags(p)
    add_allow_empty(p)
    add_config_args(p, "pull.dbpedia")


def _harvest_flags(p) -> None:
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


def harvest_flag_values(args) -> dict:
    return {"harvest.default_graph": args.default_graph, "harvest.page_size": args.page_size,
            "harvest.max_rows": args.max_rows, "harvest.rate": args.rate, "harvest.timeout": args.timeout,
            "harvest.retries": args.retries, "harvest.order": args.order,
            "harvest.count_check": False if args.no_count_check else None,
            "harvest.resume": True if args.resume else None}


def _cmd_dbpedia(args) -> int:
    from ..commands import print_artifact, stage_config
    from ..registry import run_stage

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
        from ..config import replace

        cfg = replace(cfg, params={**cfg.params, **params})
    man = run_stage("pull.dbpedia", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)
