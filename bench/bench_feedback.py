"""Benchmark of feedback writes: ``POST /feedback`` throughput under concurrent clients against a real server.

Starts ``kgllm serve`` as a real process on 127.0.0.1 (an index of the bundled DBpedia sample subset + a
WordNet subset, the one tests/test_serve.py uses; SQLite feedback database in a fresh serve directory, or a
private PostgreSQL with ``--postgres``, started through tests/postgres.py), records a few answers through
``POST /ask``, then measures with ``--clients`` client processes (16 by default), each on its own keep-alive
connection:

1. the baseline: ``GET /health`` (no database work) requests/s, p50/p99 latency;
2. ``POST /feedback`` (ratings, corrections and flags in turn: one committed transaction each) requests/s,
   p50/p99 latency, and the ratio to the baseline measured in the same run.

Each phase stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first. At the end,
every acknowledged feedback id is checked to be in the database. Loopback only; nothing is downloaded.

Usage::

    python bench/bench_feedback.py [--postgres] [--clients 16] [--requests 3000] [--seconds 30]
                                   [--workers 1] [--index DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KGLLM_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
QUESTIONS = ("In which city is the manufacturer of the Saab 9000 located?", "What is the hub airport of Lufthansa?",
             "Where is KLM headquartered?", "What is the hub airport of British Airways?")
KEY = "bench-key"


def build_index(tmp: Path) -> Path:
    from conftest import dbpedia_files, write_graph
    from test_ask_answer import build_rag_index

    t = time.perf_counter()
    index = build_rag_index(tmp, write_graph(tmp / "dbpedia-core", dbpedia_files()))
    print(f"index built in {time.perf_counter() - t:.1f}s", flush=True)
    return index


def start_server(index: Path, serve_dir: Path, db: str | None, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    argv = [sys.executable, "-m", "kgllm", "serve", "--index", str(index), "--no-sparql", "--port", "0",
            "--serve-dir", str(serve_dir), "--rate", "100000000", "--workers", str(workers)]
    if db:
        argv += ["--feedback-db", db]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, cwd=ROOT,
                            env={**os.environ, "KGLLM_API_KEY": KEY}, start_new_session=True)
    line: list[str] = []
    t = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(300)
    if not line or not line[0].startswith("kgllm serve: http://"):
        stop_server(proc)
        raise SystemExit(f"kgllm serve did not start:\n{log.read_text()[-3000:]}")
    url = line[0].split()[2]
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    deadline = time.monotonic() + 300
    while True:  # workers accept once they have loaded the index and the encoder
        try:
            if request(host, int(port), "GET", "/health")[0] == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise SystemExit(f"kgllm serve did not answer /health:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def request(host: str, port: int, method: str, path: str, body=None, conn=None) -> tuple[int, dict]:
    c = conn or http.client.HTTPConnection(host, port, timeout=60)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {KEY}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    out = json.loads(r.read() or b"null")
    if conn is None:
        c.close()
    return r.status, out


def _client(args: tuple) -> tuple[list[float], list[int], int]:
    """One client process: its share of requests on one keep-alive connection, until the deadline.
    Returns (latencies in s, acknowledged feedback ids, failures)."""
    host, port, phase, n, deadline, answers, seed = args
    conn = http.client.HTTPConnection(host, port, timeout=60)
    lat, ids, failed = [], [], 0
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        if phase == "health":
            code, _ = request(host, port, "GET", "/health", conn=conn)
            ok = code == 200
        else:
            a = answers[(seed + i) % len(answers)]
            kind = ("rating", "correction", "flag")[(seed + i) % 3]
            body = {"answer_id": a["id"], "kind": kind}
            if kind == "rating":
                body["rating"] = 1 if i % 2 else -1
            elif kind == "correction":
                body["correction"] = {"text": f"answer {seed}-{i}"}
            else:
                body |= {"triple_id": a["triple"], "reason": f"bench {seed}-{i}"}
            code, out = request(host, port, "POST", "/feedback", body, conn=conn)
            ok = code == 201
            if ok:
                ids.append(out["id"])
        lat.append(time.perf_counter() - t0)
        failed += not ok
    conn.close()
    return lat, ids, failed


def run_phase(pool, host: str, port: int, phase: str, clients: int, total: int, seconds: float,
              answers: list[dict]) -> dict:
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    t0 = time.perf_counter()
    deadline = time.monotonic() + seconds
    res = pool.map(_client, [(host, port, phase, per[i], deadline, answers, i) for i in range(clients)])
    wall = time.perf_counter() - t0
    lat = sorted(x for r in res for x in r[0])
    return {"phase": phase, "requests": len(lat), "failed": sum(r[2] for r in res), "wall_s": wall,
            "rps": len(lat) / wall, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, "ids": [i for r in res for i in r[1]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", action="store_true", help="a private PostgreSQL instead of SQLite")
    ap.add_argument("--clients", type=int, default=16, help="concurrent client processes (default 16)")
    ap.add_argument("--requests", type=int, default=3000, help="requests per phase, at most (default 3000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per phase, at most (default 30)")
    ap.add_argument("--workers", type=int, default=1, help="kgllm serve --workers (default 1)")
    ap.add_argument("--index", type=Path, help="an index artifact (default: built from the bundled sample)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    work.chmod(0o711)  # the postgres user must reach its data directory inside
    pg = proc = None
    try:
        index = args.index or build_index(work)
        db = None
        if args.postgres:
            from postgres import Postgres

            pg = Postgres(work / "pg").start()
            db = pg.url
        proc, url = start_server(index, work / "serve", db, args.workers, work / "serve.log")
        host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
        port = int(port)
        answers = []
        for q in QUESTIONS:
            code, out = request(host, port, "POST", "/ask", {"question": q})
            if code == 200 and out["citations"]:
                answers.append({"id": out["answer_id"], "triple": out["citations"][0]["id"]})
        assert answers, "no supported answer to give feedback on"
        backend = "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=FULL)"
        print(f"kgllm serve --workers {args.workers} on {url}, feedback in {backend}; {args.clients} client "
              f"processes, keep-alive; at most {args.requests} requests or {args.seconds:g}s per phase; "
              f"{os.cpu_count()} CPUs shared by server and clients", flush=True)
        with mp.get_context("fork").Pool(args.clients) as pool:
            run_phase(pool, host, port, "health", args.clients, min(200, args.requests), 10, answers)  # warm-up
            base = run_phase(pool, host, port, "health", args.clients, args.requests, args.seconds, answers)
            fb = run_phase(pool, host, port, "feedback", args.clients, args.requests, args.seconds, answers)
        code, counts = request(host, port, "GET", "/feedback/counts")
        stop_server(proc)
        proc = None
        from kgllm.feedback.store import FeedbackStore

        with FeedbackStore(db or FeedbackStore.default_url(work / "serve")) as store:
            stored = {r["id"] for r in store.iter_feedback()}
        lost = len(set(fb["ids"]) - stored)
        print("\n| phase | requests | failed | requests/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
        for r in (base, fb):
            print(f"| {'GET /health (baseline)' if r['phase'] == 'health' else 'POST /feedback'} | {r['requests']} | "
                  f"{r['failed']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
        print(f"\nfeedback writes: {fb['rps']:.0f} requests/s = {fb['rps'] / base['rps']:.2f}x the /health baseline "
              f"({base['rps']:.0f} requests/s) in the same run; p50 {fb['p50_ms']:.1f} ms, p99 {fb['p99_ms']:.1f} ms")
        print(f"store counts {counts}; acknowledged {len(fb['ids'])}, missing from the database: {lost}")
        return 1 if lost or fb["failed"] else 0
    finally:
        if proc is not None:
            stop_server(proc)
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
