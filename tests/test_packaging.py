"""A built wheel works outside the checkout: it carries the SPARQL presets, ask templates, ontologies
and the DBpedia sample that the package reads at run time (setup.py copies them to kgllm/_bundled/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_wheel_carries_the_data_the_package_reads(tmp_path):
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".kgllm", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels)], check=True, capture_output=True, cwd=tmp_path)
    (whl,) = wheels.glob("kgllm-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for rel in ("queries/ask/one_hop.rq", "queries/dbpedia/class-facts.rq",
                "ontologies/dbpedia/dbo.owl.xz", "ontologies/shapes/dbpedia.ttl",
                "examples/data/dbpedia-sample/labels_en.ttl.xz"):
        assert f"kgllm/_bundled/{rel}" in names, rel
    # Installed into a plain directory and imported from elsewhere: paths resolve inside the install.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(site), str(whl)], check=True, capture_output=True)
    probe = (
        "import json, kgllm\n"
        "from kgllm.ask.sparql_templates import TEMPLATES_DIR\n"
        "from kgllm.pull import dbpedia\n"
        "print(json.dumps({'pkg': kgllm.__file__, 'templates': str(TEMPLATES_DIR),\n"
        "                  'presets': sorted(p.name for p in dbpedia.list_presets()),\n"
        "                  'sample': dbpedia.SAMPLE_DIR.is_dir(), 'ontology': dbpedia.ONTOLOGY.is_file()}))\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=env).stdout
    got = json.loads(out)
    assert got["pkg"].startswith(str(site)) and got["templates"].startswith(str(site))
    assert {"class-facts", "persons", "ontology"} <= set(got["presets"]) and got["sample"] and got["ontology"]
