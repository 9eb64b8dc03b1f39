"""Ask: hybrid graph + vector retrieval-augmented answering with triple citations (see docs/ask.md).

``Answerer(load_index(dir)).ask(question)`` returns the answer, the answer terms, the cited triples with
provenance, the SPARQL query run and per-stage timings. Importing this package imports nothing heavy.
"""

from __future__ import annotations
