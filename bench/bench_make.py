"""Wall time of `make demo` or `make test` on a fresh clone: what a new user, and CI, goes through.

Clones this checkout's HEAD into a temp directory (with ../shared beside it when this checkout has one,
as CI does), runs the target there and prints its wall time and result. Set-up is included: the virtual
environment, the project and the offline resources are built from nothing; Debian packages already
installed are kept (the targets install missing ones). Target: `make demo` under 10 minutes on 2 CPU cores.

Run: .venv/bin/python bench/bench_make.py [demo|test] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", nargs="?", default="demo", choices=("demo", "test"))
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-make-{args.target}-"))
    clone = tmp / "main"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shared = ROOT.parent / "shared"
    if shared.exists():
        (tmp / "shared").symlink_to(shared)
    log = tmp / f"make-{args.target}.log"
    t = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(["make", args.target], cwd=clone, stdout=f, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t
    tail = log.read_text(errors="replace").splitlines()[-3:]
    print(f"make {args.target} on a fresh clone: {wall / 60:.1f} min ({wall:.0f} s), exit code {rc}")
    print("  last lines: " + " | ".join(line.strip()[:160] for line in tail))
    if args.keep:
        print(f"  clone kept: {clone} (log {log})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
