"""Build hook: a wheel carries the repository folders the package reads at run time.

Everything else is in pyproject.toml. ``kgllm.resources.BUNDLED`` names the folders (SPARQL presets and
ask templates, the shipped ontologies and SHACL shapes, the bundled DBpedia sample); they are copied to
``kgllm/_bundled/`` in the build, so ``pip install kgllm`` works outside a checkout. Editable installs
read them in place.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Read from the source file, not imported: the package's dependencies need not be installed to build.
BUNDLED = runpy.run_path(str(HERE / "kgllm" / "resources.py"))["BUNDLED"]


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
