"""A private, throw-away Virtuoso server for tests and benchmarks (Debian ``virtuoso-opensource``).

Takes: a working directory (a pytest ``tmp_path``), optionally ``max_rows`` (the ``[SPARQL]
ResultSetMaxRows`` cap; Virtuoso's and DBpedia's default 10,000 is kept unless you ask otherwise).
Makes: a running ``virtuoso-t`` on free 127.0.0.1 ports with its own ``virtuoso.ini`` and database in
that directory, a SPARQL endpoint at :attr:`Virtuoso.endpoint`, bulk loading of N-Triples files, and
a clean stop by PID (the database directory stays for post-mortems; pytest removes tmp dirs itself).

Usage (any test module or script can import it: ``from tests.virtuoso import Virtuoso``, or put
``tests/`` on ``sys.path`` and ``import virtuoso``)::

    with Virtuoso(tmp_path / "vt") as vt:            # starts, waits until /sparql answers
        vt.load(["a.nt", "b.ttl.xz"], graph="http://example.org/g")
        print(vt.endpoint)                            # http://127.0.0.1:PORT/sparql
        vt.sql("SELECT COUNT(*) FROM DB.DBA.RDF_QUAD")

:func:`virtuoso_or_fail` is the policy for fixtures: if the binary is missing or the server does not
start, the test is skipped on a developer machine but FAILS when the ``CI`` environment variable is
set, so CI never goes green without having exercised the real server.

Why these ini choices: ``DirsAllowed`` must name the directory ``ld_dir`` reads from (bulk load refuses
others); small ``NumberOfBuffers`` keeps the memory of a test server at ~100 MB; ``CheckpointInterval
= 0`` and ``+foreground`` keep Virtuoso from forking, so the PID we hold is the server's.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

VIRTUOSO_BIN = os.environ.get("KGLLM_VIRTUOSO_BIN", "virtuoso-t")
ISQL_BIN = os.environ.get("KGLLM_ISQL_BIN", "isql-vt")
DEFAULT_GRAPH = "http://kgllm.test/graph"

_INI = """\
[Database]
DatabaseFile       = {db}/virtuoso.db
ErrorLogFile       = {db}/virtuoso.log
LockFile           = {db}/virtuoso.lck
TransactionFile    = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel      = 7
FileExtend         = 200
MaxCheckpointRemap = 2000
Striping           = 0
TempStorage        = TempDatabase

[TempDatabase]
DatabaseFile       = {db}/virtuoso-temp.db
TransactionFile    = {db}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping           = 0

[Parameters]
ServerPort               = 127.0.0.1:{sql_port}
LiteMode                 = 0
DisableUnixSocket        = 1
DisableTcpSocket         = 0
MaxClientConnections     = 10
CheckpointInterval       = 0
O_DIRECT                 = 0
CaseMode                 = 2
MaxStaticCursorRows      = 5000
CheckpointAuditTrail     = 0
AllowOSCalls             = 0
SchedulerInterval        = 10
DirsAllowed              = ., {load_dir}
ThreadCleanupInterval    = 0
ThreadThreshold          = 10
ResourcesCleanupInterval = 0
FreeTextBatchSize        = 100000
SingleCPU                = 0
PrefixResultNames        = 0
RdfFreeTextRulesSize     = 100
IndexTreeMaps            = 64
MaxQueryMem              = 512M
VectorSize               = 1000
MaxVectorSize            = 1000000
AdjustVectorSize         = 0
ThreadsPerQuery          = 2
AsyncQueueMaxThreads     = 4
NumberOfBuffers          = {buffers}
MaxDirtyBuffers          = {dirty}

[HTTPServer]
ServerPort                  = 127.0.0.1:{http_port}
ServerRoot                  = {db}/vsp
MaxClientConnections        = 8
DavRoot                     = DAV
EnabledDavVSP               = 0
HTTPProxyEnabled            = 0
TempASPXDir                 = 0
ServerThreads               = 8
MaxKeepAlives               = 8
KeepAliveTimeout            = 10
MaxCachedProxyConnections   = 4
ProxyConnectionCacheTimeout = 15
HTTPThreadSize              = 280000
HttpPrintWarningsInOutput   = 0
Charset                     = UTF-8
EnabledGzipContent          = 0

[Client]
SQL_PREFETCH_ROWS  = 100
SQL_PREFETCH_BYTES = 16000
SQL_QUERY_TIMEOUT  = 0
SQL_TXN_TIMEOUT    = 0

[SPARQL]
ResultSetMaxRows           = {max_rows}
MaxQueryCostEstimationTime = 400
MaxQueryExecutionTime      = 120
DefaultGraph               = {default_graph}
"""


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started us dies (even by SIGKILL), so a
    crashed test run never leaves a server behind (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VirtuosoError(RuntimeError):
    """Virtuoso is not installed, did not start, or a load/SQL command failed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Virtuoso:
    """One private Virtuoso server. ``max_rows=None`` lifts the row cap (ResultSetMaxRows huge)."""

    def __init__(self, workdir: str | os.PathLike, *, max_rows: int | None = 10_000, buffers: int = 8000,
                 default_graph: str = DEFAULT_GRAPH):
        self.dir = Path(workdir)
        self.db = self.dir / "db"
        self.load_dir = self.dir / "load"
        self.max_rows = max_rows
        self.buffers = buffers
        self.default_graph = default_graph
        self.sql_port = 0
        self.http_port = 0
        self.proc: subprocess.Popen | None = None
        self.ini = self.dir / "virtuoso.ini"

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/sparql"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def write_ini(self) -> Path:
        self.db.mkdir(parents=True, exist_ok=True)
        (self.db / "vsp").mkdir(exist_ok=True)
        self.load_dir.mkdir(parents=True, exist_ok=True)
        self.sql_port, self.http_port = free_port(), free_port()
        while self.http_port == self.sql_port:
            self.http_port = free_port()
        self.ini.write_text(_INI.format(
            db=self.db, load_dir=self.load_dir, sql_port=self.sql_port, http_port=self.http_port,
            buffers=self.buffers, dirty=self.buffers * 3 // 4,
            max_rows=self.max_rows if self.max_rows is not None else 2_000_000_000,
            default_graph=self.default_graph))
        return self.ini

    def start(self, timeout: float = 90.0) -> Virtuoso:
        if shutil.which(VIRTUOSO_BIN) is None or shutil.which(ISQL_BIN) is None:
            raise VirtuosoError(f"{VIRTUOSO_BIN}/{ISQL_BIN} not found: apt-get install virtuoso-opensource")
        for _attempt in range(3):  # a free port can be taken by someone else between probe and bind
            self.write_ini()
            log = open(self.dir / "virtuoso.stdout", "wb")  # noqa: SIM115
            self.proc = subprocess.Popen([VIRTUOSO_BIN, "+foreground", "+configfile", str(self.ini)],
                                         cwd=self.db, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=_die_with_parent)
            log.close()
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise VirtuosoError(f"Virtuoso did not start within {timeout:.0f}s; see {self.db / 'virtuoso.log'}:\n"
                            + self._log_tail())

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        q = urllib.parse.urlencode({"query": "ASK {}"})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint}?{q}", timeout=5) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        return False

    def _log_tail(self, n: int = 20) -> str:
        for f in (self.db / "virtuoso.log", self.dir / "virtuoso.stdout"):
            if f.exists():
                return "\n".join(f.read_text("utf-8", "replace").splitlines()[-n:])
        return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server by its PID: SIGTERM (Virtuoso checkpoints and exits), then SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Virtuoso:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ data

    def sql(self, statements: str, timeout: float = 600.0) -> str:
        """Run SQL through isql-vt as dba; raises VirtuosoError on any SQL error."""
        r = subprocess.run([ISQL_BIN, f"127.0.0.1:{self.sql_port}", "dba", "dba", "VERBOSE=OFF",
                            "BANNER=OFF", "PROMPT=OFF", "ECHO=OFF", "ERRORS=STDOUT", f"EXEC={statements}"],
                           capture_output=True, text=True, timeout=timeout)
        out = r.stdout + r.stderr
        if r.returncode != 0 or "*** Error" in out:
            raise VirtuosoError(f"isql failed ({r.returncode}) on {statements[:200]!r}:\n{out[-2000:]}")
        return out

    def load(self, files: Iterable[str | os.PathLike], graph: str | None = None) -> int:
        """Bulk-load N-Triples files (plain, .gz or .xz) into ``graph``; returns the graph's triple count."""
        graph = graph or self.default_graph
        self.load_graphs({graph: list(files)})
        return self.count(graph)

    def load_graphs(self, graphs: dict[str, list[str | os.PathLike]], checkpoint: bool = False) -> None:
        """Bulk-load several graphs in one isql session: ``{graph IRI: [N-Triples files]}``.

        Uses ld_dir + rdf_loader_run (the bulk loader). Compressed files are decompressed into the
        load directory first (Virtuoso 7.2's loader reads plain and gzip files only, and only from
        DirsAllowed). ``checkpoint`` makes the load survive a server restart (not needed for tests).
        """
        stmts = []
        batches = []
        for graph, files in graphs.items():
            batch = self.load_dir / f"batch-{time.monotonic_ns()}"
            batch.mkdir()
            batches.append(batch)
            for i, f in enumerate(map(Path, files)):
                dst = batch / f"{i:04d}-{f.name.split('.')[0]}.nt"
                opener = lzma.open if f.suffix == ".xz" else gzip.open if f.suffix == ".gz" else open
                with opener(f, "rb") as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            stmts.append(f"ld_dir('{batch}', '*.nt', '{graph.replace(chr(39), '')}');")
        stmts.append("rdf_loader_run();")
        if checkpoint:
            stmts.append("checkpoint;")
        stmts.append("SELECT 'LOADERR', ll_file, ll_error FROM DB.DBA.load_list WHERE ll_error IS NOT NULL;")
        out = self.sql(" ".join(stmts))
        bad = [line for line in out.splitlines() if line.startswith("LOADERR")
               and any(str(b) in line for b in batches)]
        if bad:
            raise VirtuosoError("bulk load reported errors:\n" + "\n".join(bad))

    def count(self, graph: str | None = None) -> int:
        """Number of triples in ``graph`` (all graphs when None), through the SPARQL endpoint."""
        import json

        where = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
        q = urllib.parse.urlencode({"query": f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}",
                                    "format": "application/sparql-results+json"})
        with urllib.request.urlopen(f"{self.endpoint}?{q}", timeout=120) as r:
            return int(json.load(r)["results"]["bindings"][0]["n"]["value"])


def virtuoso_or_fail(workdir: str | os.PathLike, **kw) -> Virtuoso:
    """Start a Virtuoso for a fixture: skip when unavailable locally, FAIL in CI (``CI`` set)."""
    import pytest

    try:
        return Virtuoso(workdir, **kw).start()
    except (VirtuosoError, OSError) as e:
        if os.environ.get("CI"):
            pytest.fail(f"Virtuoso is required in CI but could not start: {e}", pytrace=False)
        pytest.skip(f"Virtuoso unavailable: {e}")


# ----------------------------------------------------------------------------- sharing one server

# Test modules may import this file as ``virtuoso`` or ``tests.virtuoso``: make both names the same
# module so the shared-server cache below is one cache.
sys.modules.setdefault("virtuoso", sys.modules[__name__])
sys.modules.setdefault("tests.virtuoso", sys.modules[__name__])
_SHARED: dict[str, list] = {}


@contextlib.contextmanager
def shared(key: str, make_dir: Callable[[], Path], setup: Callable[[Virtuoso], None] | None = None,
           **kw) -> Iterator[Virtuoso]:
    """One server per ``key`` for all the session-scoped fixtures (in any module) that ask for it.

    The first user starts it (in ``make_dir()``) and runs ``setup`` (loading data); it is stopped by
    PID when the last user is done::

        @pytest.fixture(scope="session")
        def dbpedia_virtuoso(tmp_path_factory):
            with shared("dbpedia", lambda: tmp_path_factory.mktemp("vt"), setup=load_it) as vt:
                yield vt
    """
    if key not in _SHARED:
        vt = virtuoso_or_fail(make_dir(), **kw)
        try:
            if setup is not None:
                setup(vt)
        except BaseException:
            vt.stop()
            raise
        _SHARED[key] = [vt, 0]
    entry = _SHARED[key]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            entry[0].stop()
            del _SHARED[key]
