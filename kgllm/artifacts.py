"""Artifact directories: atomic writes and self-describing manifests.

Takes: a destination directory, the stage's kind, its effective config and its inputs.
Makes: a directory whose ``manifest.json`` lists every file with its sha256, the inputs (with their
content hashes), the effective config, counts, package versions, the git commit and the wall time.

Atomicity: a stage writes into a hidden sibling ``.NAME.tmp-PID`` and the directory is renamed into
place only after ``manifest.json`` was written and fsynced. A process killed mid-write leaves at most a
``.tmp-`` directory, which no reader accepts (readers require ``manifest.json`` at the final path) and
which the next writer to the same destination removes.

Safety: kgllm replaces only what it wrote. The destination must be absent, an empty directory, or a
kgllm artifact (a directory whose ``manifest.json`` names a known kind) of the kind being written;
``force`` also allows an artifact of another kind. A file, a foreign directory or the working directory
is refused before any work starts (:func:`check_destination`) and checked again at the final rename.
Debris is only ``.NAME.tmp-PID`` / ``.NAME.old-PID`` of dead processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as _dt
import gzip
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import ArtifactError, InputError, UsageError
from .log import logger

MANIFEST = "manifest.json"
# Set by ``run_stage(..., force=True)`` (the CLI's --force): writers may then replace an artifact of
# another kind. Never a directory that is not an artifact.
REPLACE_OTHER_KINDS: contextvars.ContextVar[bool] = contextvars.ContextVar("kgllm_replace_other_kinds",
                                                                           default=False)
# The first dotted part of every kind kgllm writes ("model.sft" -> "model"); a Stage adds its own kind.
_KNOWN_KINDS = {"graph", "corpus", "index", "kge", "tokenizer", "model", "eval", "feedback"}


def register_kind(kind: str) -> None:
    """Make ``kind`` (its first dotted part) one that kgllm may replace at an output path. Every
    registered :class:`~kgllm.registry.Stage` registers the kind it writes."""
    _KNOWN_KINDS.add(kind.split(".", 1)[0])
SCHEMA_VERSION = 1
_HASH_CHUNK = 1 << 20

# Packages whose versions are recorded in every manifest (those installed).
_TRACKED_PACKAGES = (
    "kgllm", "rdflib", "pyoxigraph", "SPARQLWrapper", "nltk", "owlready2", "pyshacl", "torch",
    "transformers", "trl", "accelerate", "datasets", "tokenizers", "pykeen", "faiss-cpu",
    "sentence-transformers", "numpy",
)


# ----------------------------------------------------------------------------- hashing


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable value in canonical form (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def input_digest(path: str | os.PathLike) -> str:
    """Content hash of an input: an artifact directory's ``content_sha256`` or a plain file's sha256.

    A directory without a manifest is hashed over its files (relative path + content), sorted.
    """
    p = Path(path)
    if p.is_dir():
        m = p / MANIFEST
        if m.exists():
            return json.loads(m.read_text("utf-8"))["content_sha256"]
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0" + sha256_file(f).encode() + b"\n")
        return h.hexdigest()
    if p.is_file():
        return sha256_file(p)
    raise ArtifactError(f"{p}: input does not exist")


# ----------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    binary = "b" in mode
    f = open(tmp, mode, encoding=None if binary else encoding)  # noqa: SIM115
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n")


# ----------------------------------------------------------------------------- JSONL


# One encoder for every line (json.dumps with ``default`` builds a new one per call): the same text.
_JSONL_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_default)

# gzip level of every compressed file kgllm writes (graph shards, JSONL artifacts); mtime=0 and a fixed level
# keep them byte-identical across runs (deterministic hashes). Level 3: all of WordNet (388 MB of N-Triples)
# in 1.4 s and 27.0 MB, against 3.7 s and 25.8 MB at level 5 (bench/bench_gzip.py); a 1M-triple index's
# lexicon (166 MB of JSONL) in 0.58 s and 7.9 MB against 5.09 s and 6.8 MB at level 9, Python's default
# (``bench_gzip.py --jsonl``).
GZIP_LEVEL = 3


def jsonl_line(obj: Any) -> str:
    """One JSONL line (UTF-8 kept as is, newline included): the one format every JSONL file of kgllm uses."""
    return _JSONL_ENCODER.encode(obj) + "\n"


_JSONL_BATCH = 1 << 20   # characters of lines handed to the file (and gzip) at once


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    """Write ``rows`` as a JSONL file atomically (temp file + rename); returns the number of lines.
    A ``.gz`` path is gzip-compressed (level :data:`GZIP_LEVEL`, no name, mtime 0: the bytes are the same on every run; the same bytes
    however the lines are batched). Lines go to the file in batches: a call per line was most of the cost of a large file."""
    path = Path(path)
    n = 0
    with atomic_open(path, "wb") as raw:
        f = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) if path.suffix == ".gz" else raw
        batch: list[str] = []
        size = 0
        for row in rows:
            line = jsonl_line(row)
            batch.append(line)
            size += len(line)
            n += 1
            if size >= _JSONL_BATCH:
                f.write("".join(batch).encode("utf-8"))
                batch, size = [], 0
        if batch:
            f.write("".join(batch).encode("utf-8"))
        if f is not raw:
            f.close()
    return n


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
               type(None): "null"}


def iter_jsonl(path: str | os.PathLike, hint: str = "") -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSONL file, lines numbered from 1.

    A line that is not JSON, or is JSON but not an object, raises :class:`InputError` naming ``path:line``
    (``hint`` is appended to that message); an unreadable file raises :class:`InputError` naming the path.
    Whether a missing file is an error or no rows is the caller's rule: check before calling.
    """
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: invalid JSON ({e.msg}){hint}") from e
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{n}: expected a JSON object, found {_JSON_KINDS.get(type(obj), 'a value')}"
                                 f"{hint}")
            yield n, obj


# ----------------------------------------------------------------------------- manifests


@dataclasses.dataclass
class Manifest:
    kind: str
    schema_version: int = SCHEMA_VERSION
    created: str = ""
    inputs: list[dict] = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)
    config_sha256: str = ""
    counts: dict = dataclasses.field(default_factory=dict)
    files: list[dict] = dataclasses.field(default_factory=list)
    content_sha256: str = ""
    versions: dict = dataclasses.field(default_factory=dict)
    git_commit: str | None = None
    wall_time_s: float = 0.0
    pipeline_key: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    # What the stage found wrong although it wrote its artifact (everything quarantined, validation
    # errors...): the CLI prints these and exits 1, ``kgllm run`` repeats them in its summary.
    problems: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Mapping) -> Manifest:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Artifact:
    """An artifact directory and its manifest: what every stage function of the Python API returns, and
    what every one takes as an input (an ``os.PathLike``, so a plain path works too)."""

    path: Path
    manifest: Manifest

    @classmethod
    def open(cls, path: str | os.PathLike, kind: str | None = None) -> Artifact:
        """The artifact at ``path`` (its manifest read and, with ``kind``, checked)."""
        return cls(Path(path), read_manifest(path, kind))

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def counts(self) -> dict:
        return self.manifest.counts

    @property
    def problems(self) -> list[str]:
        return self.manifest.problems

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items() if not isinstance(v, (dict, list)))
        return f"Artifact({self.kind!r}, {str(self.path)!r}, {counts})"


def package_versions() -> dict[str, str]:
    out = {}
    for name in _TRACKED_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def read_manifest(path: str | os.PathLike, kind: str | None = None) -> Manifest:
    """Read an artifact's manifest; error if it is missing, unreadable or of another kind."""
    d = Path(path)
    m = d / MANIFEST
    if not d.exists():
        raise ArtifactError(f"{d}: artifact directory does not exist")
    if not m.exists():
        raise ArtifactError(f"{d}: not a kgllm artifact (no {MANIFEST}); was the stage that writes it interrupted?")
    try:
        man = Manifest.from_dict(json.loads(m.read_text("utf-8")))
    except (json.JSONDecodeError, TypeError) as e:
        raise ArtifactError(f"{m}: unreadable manifest: {e}") from e
    if kind is not None and man.kind != kind and not man.kind.startswith(kind + "."):
        raise ArtifactError(f"{d}: expected a {kind!r} artifact, found {man.kind!r}")
    return man


def verify_artifact(path: str | os.PathLike) -> Manifest:
    """Re-hash every file listed in the manifest; raise on any mismatch or missing file."""
    d = Path(path)
    man = read_manifest(d)
    for f in man.files:
        p = d / f["path"]
        if not p.exists():
            raise ArtifactError(f"{d}: file {f['path']} listed in the manifest is missing")
        if sha256_file(p) != f["sha256"]:
            raise ArtifactError(f"{d}: file {f['path']} does not match its sha256 in the manifest")
    return man


class ArtifactWriter:
    """Write one artifact directory atomically.

    >>> with ArtifactWriter(out, "graph", config=cfg, inputs=[src]) as w:
    ...     (w.path / "data.txt").write_text("...")
    ...     w.counts["triples"] = 3

    ``w.path`` is the temp directory to write into. On clean exit every file is hashed, the manifest is
    written last, and the directory is moved to ``out`` (replacing an older kgllm artifact there, never
    anything else: see :func:`check_destination`). On error the temp directory is removed and ``out``
    is left as it was. ``w.problems`` lists what the stage found wrong (see :class:`Manifest`).
    """

    def __init__(self, out: str | os.PathLike, kind: str, *, config: Any = None,
                 inputs: list[str | os.PathLike] | None = None, pipeline_key: str | None = None,
                 force: bool | None = None):
        force = REPLACE_OTHER_KINDS.get() if force is None else force
        self.out = check_destination(out, kind, force=force)
        self.force = force
        self.kind = kind
        self.config = _config_dict(config)
        self.inputs = [Path(p) for p in (inputs or [])]
        self.pipeline_key = pipeline_key
        self.counts: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.problems: list[str] = []
        self.path = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}"
        self.manifest: Manifest | None = None
        self._t0 = 0.0

    def __enter__(self) -> ArtifactWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.out)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            self.manifest = self._finish()
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def _finish(self) -> Manifest:
        files = []
        for f in sorted(x for x in self.path.rglob("*") if x.is_file()):
            rel = f.relative_to(self.path).as_posix()
            if rel == MANIFEST:
                continue
            files.append({"path": rel, "sha256": sha256_file(f), "bytes": f.stat().st_size})
        content = hashlib.sha256(canonical_json([[f["path"], f["sha256"]] for f in files]).encode()).hexdigest()
        man = Manifest(
            kind=self.kind,
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            inputs=[{"path": str(p), "sha256": input_digest(p), **_input_kind(p)} for p in self.inputs],
            config=self.config,
            config_sha256=sha256_json(self.config),
            counts=self.counts,
            files=files,
            content_sha256=content,
            versions=package_versions(),
            git_commit=git_commit(),
            wall_time_s=round(time.perf_counter() - self._t0, 3),
            pipeline_key=self.pipeline_key,
            extra=self.extra,
            problems=list(self.problems),
        )
        with open(self.path / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(man.to_dict(), f, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        check_destination(self.out, self.kind, force=self.force)  # again: something may have appeared since
        _replace_dir(self.path, self.out)
        return man


def _input_kind(p: Path) -> dict:
    if p.is_dir() and (p / MANIFEST).exists():
        return {"kind": json.loads((p / MANIFEST).read_text("utf-8")).get("kind")}
    return {}


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return json.loads(canonical_json(dataclasses.asdict(config)))
    if isinstance(config, Mapping):
        return json.loads(canonical_json(dict(config)))
    raise TypeError(f"config must be a dataclass or a mapping, not {type(config).__name__}")


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` (checked by :func:`check_destination`) is moved aside
    first and removed after."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def artifact_kind(path: str | os.PathLike) -> str | None:
    """The kind of the kgllm artifact at ``path``, or None when it is not one (no readable manifest
    naming a known kind)."""
    m = Path(path) / MANIFEST
    try:
        data = json.loads(m.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind.split(".", 1)[0] not in _KNOWN_KINDS or "content_sha256" not in data:
        return None
    return kind


def check_destination(out: str | os.PathLike, kind: str, *, force: bool = False) -> Path:
    """Refuse (:class:`UsageError`, exit 2) any destination kgllm may not replace; return it as a Path.

    Allowed: nothing there, an empty directory, or a kgllm artifact of ``kind`` (same first dotted part;
    any kind with ``force``). Refused: an empty path, the working directory or one of its parents, a
    file, and every directory that is not a kgllm artifact, whatever ``force`` says.
    """
    if out is None or str(out).strip() == "":
        raise UsageError("the output path is empty; name a new directory for the artifact (e.g. --out runs/graph)")
    p = Path(out)
    try:
        resolved = p.resolve()
        cwd = Path.cwd().resolve()
    except OSError as e:
        raise UsageError(f"{p}: cannot resolve the output path ({e.strerror or e})") from e
    if resolved == cwd or resolved in cwd.parents:
        raise UsageError(f"{p}: the output would replace the working directory (or a parent of it); "
                         "name a new directory for the artifact")
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise UsageError(f"{p}: is a file, not an artifact directory; kgllm will not replace it. "
                         "Choose another --out (a new directory, or a kgllm artifact to replace)")
    if not p.exists():
        return p
    try:
        entries = sorted(x.name for x in p.iterdir())
    except OSError as e:
        raise UsageError(f"{p}: cannot read the output directory ({e.strerror or e})") from e
    if not entries:
        return p
    found = artifact_kind(p)
    if found is None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UsageError(f"{p}: is a directory that is not a kgllm artifact ({len(entries)} {'entry' if len(entries) == 1 else 'entries'}: {shown}); "
                         "kgllm replaces only its own artifacts. Choose a new --out, or move that directory "
                         "away yourself")
    if found.split(".", 1)[0] != kind.split(".", 1)[0] and not force:
        raise UsageError(f"{p}: holds a kgllm {found!r} artifact, not {kind!r}; pass --force to replace it, "
                         "or choose another --out")
    return p


_DEBRIS = re.compile(r"\.(tmp|old)-(\d+)")


def remove_stale_temps(out: str | os.PathLike) -> list[Path]:
    """Remove kgllm's own debris beside ``out``: ``.NAME.tmp-PID`` and ``.NAME.old-PID`` left by
    processes that no longer run. Nothing else is touched."""
    out = Path(out)
    removed: list[Path] = []
    if not out.parent.exists():
        return removed
    prefix = f".{out.name}"
    for p in out.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        m = _DEBRIS.fullmatch(p.name[len(prefix):])
        if m is None:
            continue
        pid = int(m.group(2))
        if pid != os.getpid() and pid_alive(pid):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


# Temp directories a killed run leaves (SIGKILL: no clean-up runs), recognised as kgllm's by their name
# (PREFIX-PID-RANDOM) and owner file and removed by the next run.
OWNER_FILE = "kgllm-owner.json"


def tmp_owner() -> dict:
    """This process as the owner of a temp directory: its pid, host and pid namespace."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = None
    return {"pid": os.getpid(), "host": socket.gethostname(), "pidns": pidns}


def owned_tmpdir(prefix: str, base: str | None = None) -> Path:
    """A new temp directory ``PREFIX-PID-RANDOM`` (under ``base``, else the system's) with an owner file, so
    that :func:`remove_stale_tmpdirs` can tell it from anything else once this process is gone."""
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    (d / OWNER_FILE).write_text(json.dumps(tmp_owner()))
    return d


def remove_stale_tmpdirs(prefix: str, base: str | None = None, what: str = "a kgllm run") -> list[str]:
    """Remove the temp directories of ``prefix`` that killed runs left: only a directory named
    ``PREFIX-PID-*``, owned by this user, whose owner file names the same pid on this host and pid
    namespace, and whose pid is no longer running. Anything else is left alone. Returns what it removed."""
    removed: list[str] = []
    base = base or tempfile.gettempdir()
    name = re.compile(rf"^{re.escape(prefix)}(\d+)-[A-Za-z0-9_]+$")
    me = tmp_owner()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for e in entries:
        m = name.match(e.name)
        if not m:
            continue
        try:
            pid = int(m.group(1))
            if not e.is_dir(follow_symlinks=False) or e.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            owner = json.loads((Path(e.path) / OWNER_FILE).read_text())
            if not isinstance(owner, dict) or owner.get("pid") != pid or pid == me["pid"] \
                    or owner.get("host") != me["host"] or owner.get("pidns") != me["pidns"] or pid_alive(pid):
                continue
        except (OSError, ValueError):
            continue
        shutil.rmtree(e.path, ignore_errors=True)
        logger.info("removed %s, left by %s (pid %d) that was killed", e.path, what, pid)
        removed.append(e.path)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resume_dir(out: Path, key: dict, tag: str, owner_file: str) -> Path | None:
    """``.NAME.TAG-KEY`` beside ``out``: where a stage keeps the work it finished, so that a run stopped by a
    signal or a crash resumes from it (same inputs, config and kgllm version: ``key``). It is marked as
    kgllm's by ``owner_file`` (the process id of the run using it). Another key's directory of this stage
    beside ``out`` (an earlier config or input) is removed when its owner no longer runs; None when a live
    run uses this one (the caller then works without resuming)."""
    out = Path(out)
    d = out.parent / f".{out.name}.{tag}-{sha256_json(key)[:16]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    for p in out.parent.glob(f".{out.name}.{tag}-*"):
        owner = resume_owner(p, owner_file)
        if p != d and owner is not None and (owner == os.getpid() or not pid_alive(owner)):
            shutil.rmtree(p, ignore_errors=True)  # kgllm's own (its owner file), of no use now
    owner = resume_owner(d, owner_file)
    if owner is not None and owner != os.getpid() and pid_alive(owner):
        logger.warning("%s is in use by process %d; this run does not keep its work there to resume from",
                       d, owner)
        return None
    d.mkdir(exist_ok=True)
    (d / owner_file).write_text(f"{os.getpid()}\n")
    return d


def resume_owner(d: Path, owner_file: str) -> int | None:
    """The process id in a resume directory's owner file; None when it has none (not kgllm's)."""
    try:
        return int((d / owner_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
