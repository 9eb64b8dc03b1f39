"""The pull stages: ``pull.wordnet``, ``pull.file``, ``pull.sparql`` and ``pull.dbpedia``.

Takes: a stage config (no input artifacts: WordNet, the files, the endpoint and query, or the preset are
named in it). Makes: a graph artifact (see :mod:`kgllm.rdf`). This module registers the stages in
``STAGES`` with their config dataclasses (those of the source modules, and :class:`SparqlConfig`) and
holds their run functions; the pulls themselves are in :mod:`.wordnet`, :mod:`.files`, :mod:`.sparql` and
:mod:`.dbpedia`, which import their heavy parsers (nltk, pyoxigraph, SPARQLWrapper, rdflib) only when
they run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..artifacts import Manifest
from ..errors import UsageError
from ..registry import Stage
from .dbpedia import DbpediaConfig, pull_dbpedia
from .files import FilePullConfig, pull_files
from .sparql import HarvestConfig, harvest
from .wordnet import WordNetPullConfig, pull_wordnet


@dataclass
class SparqlConfig:
    """Config of the ``pull.sparql`` stage."""

    endpoint: str = ""
    query: Path | None = None
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    allow_empty: bool = False        # accept zero triples (a warning) instead of failing (exit 1)


def run_wordnet(inputs: list[Path], out: Path, config: WordNetPullConfig, *,
                pipeline_key: str | None = None) -> Manifest:
    """Stage ``pull.wordnet`` (takes no input artifacts)."""
    return pull_wordnet(out, config, pipeline_key=pipeline_key)


def run_file(inputs: list[Path], out: Path, config: FilePullConfig, *, pipeline_key: str | None = None) -> Manifest:
    """Stage ``pull.file`` (takes no input artifacts: the files are in ``config.paths``)."""
    return pull_files(config.paths, out, config, pipeline_key=pipeline_key)


def run_sparql(inputs: list[Path], out: Path, config: SparqlConfig, *, pipeline_key: str | None = None) -> Manifest:
    """Stage ``pull.sparql`` (no input artifacts; the query file counts as an input)."""
    if not config.endpoint:
        raise UsageError("pull.sparql: set endpoint (an http(s) SPARQL endpoint URL)")
    if config.query is None:
        raise UsageError("pull.sparql: set query (a .rq file with a CONSTRUCT or SELECT ?s ?p ?o query)")
    return harvest(config.endpoint, Path(config.query), out, config.harvest, pipeline_key=pipeline_key,
                   inputs=[Path(config.query)] if Path(config.query).exists() else [],
                   manifest_config=asdict(config), allow_empty=config.allow_empty)


def run_dbpedia(inputs: list[Path], out: Path, config: DbpediaConfig, *, pipeline_key: str | None = None) -> Manifest:
    """Stage ``pull.dbpedia`` (no input artifacts)."""
    return pull_dbpedia(out, config, pipeline_key=pipeline_key)


STAGES: list[Stage] = [
    Stage("pull.wordnet", WordNetPullConfig, "kgllm.pull.stage:run_wordnet", "graph",
          help="WordNet 3.0 through nltk (all of it, or --root/--pos/--relation subsets)", max_inputs=0),
    Stage("pull.file", FilePullConfig, "kgllm.pull.stage:run_file", "graph",
          help="local RDF files (N-Triples, Turtle, RDF/XML, N-Quads; .gz/.bz2/.xz)", max_inputs=0,
          required=("paths",)),
    Stage("pull.sparql", SparqlConfig, "kgllm.pull.stage:run_sparql", "graph",
          help="harvest a CONSTRUCT/SELECT ?s ?p ?o query from a SPARQL endpoint (paged, resumable)", max_inputs=0,
          required=("endpoint", "query")),
    Stage("pull.dbpedia", DbpediaConfig, "kgllm.pull.stage:run_dbpedia", "graph",
          help="harvest a DBpedia preset (queries/dbpedia) from an endpoint or the bundled sample", max_inputs=0),
]
