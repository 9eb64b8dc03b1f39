"""Harvest a SPARQL endpoint (Virtuoso, DBpedia, any SPARQL 1.1 server) into a graph artifact.

Takes: an endpoint (an HTTP URL, or an embedded pyoxigraph store), a CONSTRUCT query (or a
``SELECT ?s ?p ?o`` query) and a :class:`HarvestConfig`.
Makes: a graph artifact, one gzip N-Triples shard per page with its provenance (see :mod:`.harvest`).

Modules:
  * :mod:`.query`: query analysis and rewriting (:func:`parse_query`, :func:`load_query`, :class:`Query`:
    page and COUNT query texts);
  * :mod:`.endpoint`: :class:`HttpEndpoint` (SPARQLWrapper) and :class:`StoreEndpoint` (pyoxigraph)
    behind one interface, response bodies parsed, faults classified for retrying;
  * :mod:`.harvest`: :func:`harvest`: paging, truncation, retries and pacing, checkpoints, the COUNT
    check, the graph artifact;
  * :mod:`.config`: :class:`HarvestConfig`, read by the endpoints and the harvester.
"""

from __future__ import annotations

from ... import api
from .config import USER_AGENT, HarvestConfig
from .endpoint import HttpEndpoint, Response, StoreEndpoint
from .harvest import CHECKPOINT, CHECKPOINT_VERSION, harvest, work_dir
from .query import Query, load_query, parse_query, template_triples

__all__ = ["CHECKPOINT", "CHECKPOINT_VERSION", "USER_AGENT", "HarvestConfig", "HttpEndpoint", "Query", "Response",
           "StoreEndpoint", "harvest", "load_query", "parse_query", "template_triples", "work_dir"]


# ``kgllm.pull.sparql(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.pull_sparql)
