"""The validate stage: check graph artifacts against ontologies and shapes.

Takes: graph artifacts, ontology files (RDF/XML, Turtle, N-Triples; optionally xz/gzip), SHACL shapes.
Makes: a clean graph artifact with ``quarantine/`` (offending triples and why) and ``report.json`` /
``report.md`` inside it. Modules: :mod:`.ontology` (parse ontologies, index the TBox),
:mod:`.reasoning` (OWL reasoners in a subprocess), :mod:`.checks` (scalable data checks),
:mod:`.shapes` (pyshacl), :mod:`.report`, :mod:`.stage` (the stage run function).
"""
