"""The pull stage: triples from WordNet (nltk), SPARQL endpoints (DBpedia, Virtuoso...) and RDF files.

Takes: a source named in a stage config (WordNet 3.0, local RDF files, an endpoint and a query, a DBpedia
preset). Makes: a graph artifact (see :mod:`kgllm.rdf`).

  * :mod:`.wordnet`: WordNet 3.0 -> RDF (``pull.wordnet``); :mod:`.wordnet_data` sets up nltk's WordNet
    from Debian's ``wordnet-base``;
  * :mod:`.files`: local RDF files (``pull.file``);
  * :mod:`.sparql`: the SPARQL harvester (``pull.sparql``); :mod:`.dbpedia`: its DBpedia presets
    (``pull.dbpedia``);
  * :mod:`.cli`: ``kgllm pull {wordnet,file,sparql,dbpedia}``; :mod:`.stage`: the stages.
"""

from __future__ import annotations

import importlib

from .. import api


def __getattr__(name: str):
    # wordnet, sparql and dbpedia are modules made callable when imported (kgllm.api): load them on first use, so that
    # `import kgllm` stays light and `kgllm.pull.wordnet(...)` works without importing them first.
    if name in ("wordnet", "sparql", "dbpedia"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


file = api.pull_file  # kgllm.pull.file(paths, out=...): no module of that name
