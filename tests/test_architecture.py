"""The layout's rules, checked on the source: no import cycles among kgllm modules (counting imports inside
functions too), kgllm modules imported at module level (an import inside a function is for heavy
dependencies only: a third-party package in HEAVY, or a kgllm module that imports one at its top), stage
packages named as the CLI names them, and a light ``kgllm --help``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kgllm"
STAGE_PACKAGES = ("pull", "validate", "corpus", "index", "train", "ask", "eval", "feedback")
# Slow to import (or optional): imported inside the functions that need them, so `kgllm --help` and the
# light stages stay fast. A kgllm module that imports one of these at its top is heavy too.
HEAVY = {"torch", "transformers", "trl", "accelerate", "peft", "datasets", "tokenizers", "faiss", "pykeen",
         "sentence_transformers", "safetensors", "scipy", "gguf", "rdflib", "owlready2", "pyshacl",
         "datasketch", "sacrebleu", "fastapi", "uvicorn", "starlette", "ray", "sqlalchemy", "alembic",
         "SPARQLWrapper", "nltk", "selenium", "pyoxigraph", "psycopg", "prometheus_client", "pydantic"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, bool, int]]:
    """``(imported module, inside a function?, line)`` for every import in the file: kgllm modules by
    name, third-party packages by their top-level name."""
    is_pkg = path.name == "__init__.py"
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                for alias in child.names:  # `from pkg import module` imports that module
                    sub = f"{mod}.{alias.name}"
                    targets.append(sub if sub in modules else mod)
            elif isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            for t in targets:
                if t.startswith("kgllm") and t in modules and t != name:
                    out.append((t, inside, child.lineno))
                elif t and not t.startswith("kgllm"):
                    out.append((t.split(".")[0], inside, child.lineno))
            visit(child, inside)

    visit(ast.parse(path.read_text("utf-8")), False)
    return out


def _graph() -> tuple[nx.DiGraph, list[str]]:
    """The import graph of kgllm modules, and the kgllm imports inside functions that are not of a heavy
    module (one that imports a HEAVY package at its top, itself or through kgllm modules)."""
    modules = _modules()
    g = nx.DiGraph()
    top = nx.DiGraph()  # module-level imports only, third-party packages included
    found = {name: _imports(name, path, modules) for name, path in modules.items()}
    for name, imports in found.items():
        g.add_node(name)
        for target, inside, _line in imports:
            if not target.startswith("kgllm"):
                if not inside:
                    top.add_edge(name, target)
                continue
            # A package's __init__ is imported with any of its modules: that edge is no dependency.
            if name.startswith(target + "."):
                continue
            g.add_edge(name, target)
            if not inside:
                top.add_edge(name, target)
    heavy = {m for m in modules if m in top and any(d in HEAVY for d in nx.descendants(top, m))}
    inner = [f"{modules[name].relative_to(ROOT)}:{line}: imports {target} inside a function"
             for name, imports in found.items() for target, inside, line in imports
             if inside and target.startswith("kgllm") and target not in heavy and not name.startswith(target + ".")]
    return g, sorted(set(inner))


def test_no_import_cycles_among_kgllm_modules():
    g, _ = _graph()
    cycles = sorted(" -> ".join(c + [c[0]]) for c in nx.simple_cycles(g))
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:20])


def test_kgllm_modules_are_imported_at_module_level():
    _, inner = _graph()
    assert not inner, "kgllm imports inside functions (move them to the top of the module):\n" + "\n".join(inner)


def test_stage_packages_mirror_the_cli():
    for pkg in STAGE_PACKAGES:
        assert (PACKAGE / pkg / "cli.py").is_file(), f"kgllm/{pkg}/ has no cli.py"
        assert not (PACKAGE / pkg / "stages.py").exists(), f"kgllm/{pkg}/stages.py: registration lives in stage.py"
    for pkg in ("pull", "validate", "corpus", "index", "train", "eval", "feedback"):
        assert (PACKAGE / pkg / "stage.py").is_file(), f"kgllm/{pkg}/ has no stage.py registering its stages"


def test_help_imports_no_heavy_packages_and_every_stage_registers():
    code = ("import sys, time\nt = time.perf_counter()\nfrom kgllm.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'faiss', 'pykeen', 'rdflib', 'owlready2', "
            "'pyshacl', 'sentence_transformers', 'datasets', 'ray', 'fastapi', 'uvicorn', 'sqlalchemy', 'alembic', "
            "'psycopg', 'pydantic') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout[-500:]
    from kgllm.registry import list_stages

    names = {s.name for s in list_stages()}
    assert {"pull.file", "pull.wordnet", "pull.sparql", "pull.dbpedia", "validate", "corpus", "index", "embed",
            "train.sft", "train.dpo", "train.pretrain", "train.reward", "eval.qa"} <= names
