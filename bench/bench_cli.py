"""CLI start-up: wall time of `kgllm --help` against a bare `python -c pass` in the same run.

Target: `kgllm --help` under 0.3 s (it must never import torch, trl or faiss).
Run: .venv/bin/python bench/bench_cli.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], n: int = 7) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    base = _time([sys.executable, "-c", "pass"])
    helpt = _time([sys.executable, "-m", "kgllm", "--help"])
    print(f"python -c pass: {base * 1000:.0f} ms (median of 7)")
    print(f"kgllm --help:   {helpt * 1000:.0f} ms (median of 7), {helpt / base:.1f}x bare interpreter start")
    print(f"target < 300 ms: {'OK' if helpt < 0.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
