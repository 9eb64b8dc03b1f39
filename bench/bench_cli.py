"""CLI start-up: wall time of `kgllm --help` against a bare `python -c pass` in the same run.

Target: `kgllm --help` under 0.3 s (it must never import torch, trl or faiss).
Run: .venv/bin/python bench/bench_cli.py

``--ask INDEX``: also a cold `kgllm ask QUESTION --index INDEX` (a new process: imports, loading the index, the
encoder and WordNet, one answer) against the same run's import of the libraries it needs
(``import sentence_transformers, faiss, pyoxigraph``): the difference is kgllm's own start-up work; and the
time to open WordNet for question parsing, which ``kgllm serve``'s workers pay at warm-up (``kgllm ask`` opens
it while the encoder loads in another thread).
"""

from __future__ import annotations

import argparse
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


# Opening WordNet for question parsing, and nltk's map of WordNet 3.0's sense keys onto the loaded WordNet
# (an identity map for WordNet 3.0, built from index.sense read twice) that kgllm's reader skips.
_WORDNET = """
import time
from kgllm.ask.question import wordnet
t = time.perf_counter(); wn = wordnet(); opened = time.perf_counter() - t
t = time.perf_counter(); wn.map_to_one("wordnet"); mapped = time.perf_counter() - t
print(f"opening WordNet for question parsing: {opened:.2f} s; nltk's identity map it skips: {mapped:.2f} s more")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ask", metavar="INDEX", help="also time a cold `kgllm ask` over this index")
    ap.add_argument("--question", default="Which company makes Audi A4?")
    ap.add_argument("--runs", type=int, default=3, help="runs of each cold command (the median is reported)")
    args = ap.parse_args()
    base = _time([sys.executable, "-c", "pass"])
    helpt = _time([sys.executable, "-m", "kgllm", "--help"])
    print(f"python -c pass: {base * 1000:.0f} ms (median of 7)")
    print(f"kgllm --help:   {helpt * 1000:.0f} ms (median of 7), {helpt / base:.1f}x bare interpreter start")
    print(f"target < 300 ms: {'OK' if helpt < 0.3 else 'MISSED'}")
    if args.ask:
        print(subprocess.run([sys.executable, "-c", _WORDNET], check=True, capture_output=True,
                             text=True).stdout.strip())
        libs = _time([sys.executable, "-c", "import sentence_transformers, faiss, pyoxigraph"], args.runs)
        ask = _time([sys.executable, "-m", "kgllm", "ask", args.question, "--index", args.ask], args.runs)
        print(f"import sentence_transformers, faiss, pyoxigraph: {libs:.2f} s (median of {args.runs})")
        print(f"kgllm ask (cold, one question): {ask:.2f} s (median of {args.runs}); {ask - libs:.2f} s beyond "
              "the libraries' import (index, encoder weights, WordNet, the answer)")


if __name__ == "__main__":
    main()
