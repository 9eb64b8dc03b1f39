"""Build hook: a wheel carries the repository folders the package reads at run time.

Everything else is in pyproject.toml. ``kgllm.resources.BUNDLED`` names the folders (SPARQL presets and
ask templates, the shipped ontologies and SHACL shapes, the bundled DBpedia sample); they are copied to
``kgllm/_bundled/`` in the build, so ``pip install kgllm`` works outside a checkout. Editable installs
read them in place.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("queries", "ontologies", "examples/data/dbpedia-sample")


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for rel in BUNDLED:
            src, dst = HERE / rel, Path(self.build_lib) / "kgllm" / "_bundled" / rel
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst)


setup(cmdclass={"build_py": BuildWithData})
