"""kgllm: turn knowledge graphs into grounded language models.

Public API (re-exports only; importing kgllm never imports torch, trl or faiss)::

    import kgllm
    kgllm.run_pipeline("examples/quickstart.yaml")
    for s, p, o in kgllm.iter_graph("runs/quickstart/dbpedia"):
        ...
"""

from .artifacts import ArtifactWriter, Manifest, read_manifest, verify_artifact
from .errors import ConfigError, InputError, KgllmError, MissingDependency, UsageError
from .pipeline import Pipeline, load_pipeline, run_pipeline
from .rdf import GraphWriter, iter_graph, load_store, triple_id
from .registry import get_stage, list_stages, run_stage

__version__ = "0.1.0"

__all__ = [
    "ArtifactWriter", "ConfigError", "GraphWriter", "InputError", "KgllmError", "Manifest", "MissingDependency",
    "Pipeline", "UsageError", "__version__", "get_stage", "iter_graph", "list_stages", "load_pipeline",
    "load_store", "read_manifest", "run_pipeline", "run_stage", "triple_id", "verify_artifact",
]
