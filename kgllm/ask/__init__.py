"""Ask: hybrid graph + vector retrieval-augmented answering with triple citations (see docs/ask.md).

Takes: an index artifact (``kgllm index``) and questions. Makes: answer objects (the answer, the answer terms,
the cited triples with provenance, the SPARQL query run and per-stage timings), on the command line
(``kgllm ask``) or over HTTP (``kgllm serve``); ``Answerer(load_index(dir)).ask(question)`` in Python
(kgllm.ask.answer). Importing this package imports nothing heavy.
"""

from __future__ import annotations

from .. import api

# kgllm.ask(...) runs the stage (kgllm.api.ask); the package's modules stay importable.
api.callable_package(__name__, api.ask)
