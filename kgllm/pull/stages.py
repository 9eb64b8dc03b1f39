"""Pipeline stages of the pull step (config dataclasses only; run functions import lazily)."""

from __future__ import annotations

from ..registry import Stage

STAGES: list[Stage] = []

# Each source module below adds its Stage(s) to STAGES. Keep imports light (config dataclasses only).

# WordNet 3.0 (nltk) and local RDF files.
from .files import FilePullConfig  # noqa: E402
from .wordnet import WordNetPullConfig  # noqa: E402

STAGES += [
    Stage("pull.wordnet", WordNetPullConfig, "kgllm.pull.wordnet:run", "graph",
          help="WordNet 3.0 through nltk (all of it, or --root/--pos/--relation subsets)", max_inputs=0),
    Stage("pull.file", FilePullConfig, "kgllm.pull.files:run", "graph",
          help="local RDF files (N-Triples, Turtle, RDF/XML, N-Quads; .gz/.bz2/.xz)", max_inputs=0,
          required=("paths",)),
]

# SPARQL endpoints (Virtuoso, DBpedia, any SPARQL 1.1 server) and the DBpedia presets.
from .dbpedia import DbpediaConfig  # noqa: E402
from .sparql import SparqlConfig  # noqa: E402

STAGES += [
    Stage("pull.sparql", SparqlConfig, "kgllm.pull.sparql:run", "graph",
          help="harvest a CONSTRUCT/SELECT ?s ?p ?o query from a SPARQL endpoint (paged, resumable)", max_inputs=0,
          required=("endpoint", "query")),
    Stage("pull.dbpedia", DbpediaConfig, "kgllm.pull.dbpedia:run", "graph",
          help="harvest a DBpedia preset (queries/dbpedia) from an endpoint or the bundled sample", max_inputs=0),
]
