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

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import api
from ..errors import InputError, UsageError
from ..rdf import PREFIXES, detect_format, iri, literal, open_rdf, oxigraph_format
from ..resources import bundled
from .sparql import HarvestConfig, StoreEndpoint, harvest, parse_query

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
        return iri(v)
    if kind == "lang":
        if not _LANG.match(value):
            raise UsageError(f"{where}: {value!r} is not a language tag; use a 2- or 3-letter code like en "
                             "or de (or pt-BR; * for all languages)")
        return literal(value)
    if kind == "int":
        if not re.match(r"^-?\d+$", value.strip()):
            raise UsageError(f"{where}: {value!r} is not an integer")
        return str(int(value))
    # string: a quoted literal with every special character escaped
    return literal(value)


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
    """A pyoxigraph store loaded from dump files (any RDF format :func:`kgllm.rdf.detect_format` knows by
    extension: N-Triples, Turtle, RDF/XML, N-Quads...; plain or .xz/.gz/.bz2)."""
    import pyoxigraph

    check_data_files(files)
    store = pyoxigraph.Store()
    for f in map(Path, files):
        fmt, comp = detect_format(f, what="data file")
        try:
            with open_rdf(f, comp) as fh:
                if fmt == "nquads":
                    store.bulk_load(fh, format=oxigraph_format(fmt))
                else:
                    store.bulk_load(fh, format=oxigraph_format(fmt), to_graph=pyoxigraph.DefaultGraph())
        except SyntaxError as e:
            ext = (f.with_suffix("") if comp else f).suffix[1:].upper()
            raise InputError(f"{f}: not valid {ext}: {e}") from None
    return store


def pull_dbpedia(out: str | Path, config: DbpediaConfig | None = None, *, pipeline_key: str | None = None):
    """Harvest a DBpedia preset into the graph artifact ``out``; returns its Manifest."""
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


# ``kgllm.pull.dbpedia(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.pull_dbpedia)
