"""The validate stage: check graph artifacts against ontologies and shapes.

Takes: graph artifacts, ontology files (RDF/XML, Turtle, N-Triples; optionally xz/gzip), SHACL shapes.
Makes: a clean graph artifact with ``quarantine/`` (offending triples and why) and ``report.json`` /
``report.md`` inside it. Modules: :mod:`.ontology` (parse ontologies, index the TBox),
:mod:`.reasoning` (OWL reasoners in a subprocess), :mod:`.checks` (scalable data checks),
:mod:`.shapes` (pyshacl), :mod:`.report`, :mod:`.stage` (the config, the stage registration and its run
function), :mod:`.cli` (the ``kgllm validate`` command).
"""

from __future__ import annotations

from .. import api

# kgllm.validate(...) runs the stage (kgllm.api.validate); the package's modules stay importable.
api.callable_package(__name__, api.validate)
