"""The feedback store: answers and what people said about them, in a real database.

Takes: a database URL (``sqlite:///PATH``, the default in a serve directory, or
``postgresql+psycopg://USER@HOST:PORT/DB``; a bare ``postgresql://`` means psycopg 3), answers (the
``kgllm ask --json`` object with the retriever, model and index hashes behind it) and feedback on them.
Makes: two tables through SQLAlchemy 2 Core, created and upgraded by the Alembic migrations shipped in
``kgllm/feedback/migrations/`` (run to head whenever a store opens; a database already at head is left
as it is):

``kgllm_answers``   id (uuid4 hex), question, answer (JSON), retriever, model, model_sha256, index_sha256, created
``kgllm_feedback``  id (1, 2, ...), answer_id -> kgllm_answers.id, kind (rating | correction | flag), rating
                    (+1 | -1), correction (JSON ``{"term"[, "label"]}`` or ``{"text"}``), triple_id, reason,
                    user_id, created

Durability: every ``add_*`` call is one transaction, committed before it returns. SQLite runs in WAL mode
with ``synchronous=FULL`` (a commit is on disk when the call returns: a killed process, or machine, loses
nothing acknowledged), foreign keys on and a busy timeout; writers take the write lock when their
transaction begins (``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing, and a writer
still refused after the busy timeout retries until that timeout has passed. PostgreSQL commits with its
defaults (``synchronous_commit=on``).

Validation happens before any database work (:func:`check_answer`, :func:`check_feedback`, also used by
the recorded-file import): a bad value is an :class:`~kgllm.errors.InputError` whose message says which
field and why; an unknown answer id is :class:`UnknownAnswer`; a database that cannot be reached or keeps
refusing is :class:`StoreUnavailable`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..artifacts import MANIFEST, read_manifest
from ..errors import InputError, KgllmError, UsageError, require
from ..log import logger
from ..rdf import literal, parse_literal

KINDS = ("rating", "correction", "flag")
MAX_QUESTION_CHARS = 2000
MAX_ANSWER_BYTES = 1_000_000      # the answer object as compact UTF-8 JSON
MAX_TEXT_CHARS = 2000             # a correction's text, term or label; a flag's reason
MAX_USER_ID_CHARS = 200
MAX_NAME_CHARS = 1000             # retriever, model (a name or a checkpoint path)
BUSY_TIMEOUT_S = 30.0
DB_FILE = "feedback.db"           # the SQLite file of a serve directory and of a feedback.db artifact
VERSION_TABLE = "kgllm_feedback_version"  # Alembic's version table (not "alembic_version": a shared database
#                                          may hold another application's migrations)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x6B676C6C6D666221  # pg_advisory_xact_lock key: one migrating process at a time

# ----------------------------------------------------------------------------- schema (Core tables)

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s", "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"})

answers = sa.Table(
    "kgllm_answers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.JSON(none_as_null=True), nullable=False),
    sa.Column("retriever", sa.String(50), nullable=False),
    sa.Column("model", sa.String(MAX_NAME_CHARS)),
    sa.Column("model_sha256", sa.String(64)),
    sa.Column("index_sha256", sa.String(64), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)

feedback = sa.Table(
    "kgllm_feedback", metadata,
    # SQLite: INTEGER PRIMARY KEY is the rowid (ids never reused while rows exist); PostgreSQL: BIGINT identity.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("answer_id", sa.String(32), sa.ForeignKey("kgllm_answers.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rating", sa.SmallInteger),
    sa.Column("correction", sa.JSON(none_as_null=True)),
    sa.Column("triple_id", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("user_id", sa.String(MAX_USER_ID_CHARS)),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(sa.column("kind").in_(KINDS), name="kind"),
    sa.CheckConstraint(sa.or_(sa.column("rating").is_(None), sa.column("rating").in_((-1, 1))), name="rating"),
)


class UnknownAnswer(InputError):
    """No answer with this id in the store (HTTP 404)."""


class StoreUnavailable(KgllmError):
    """The database cannot be reached, or kept refusing a write for the whole busy timeout (HTTP 503).
    Not an :class:`InputError` (nothing was wrong with the values), but exit 2 on the command line, as for
    any input that cannot be used."""

    exit_code = 2


# ----------------------------------------------------------------------------- validation


def check_answer(question: Any, answer: Any, *, retriever: Any, model: Any = None, model_sha256: Any = None,
                 index_sha256: Any = "") -> dict:
    """The row :meth:`FeedbackStore.add_answer` stores (without id and time), or :class:`InputError`."""
    if not isinstance(answer, Mapping):
        raise InputError(f"answer must be a JSON object (the `kgllm ask --json` object), not {_what(answer)}")
    try:
        size = len(_dumps(answer).encode("utf-8"))
    except (TypeError, ValueError) as e:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise InputError(f"answer is not storable JSON: {e}") from None
    if size > MAX_ANSWER_BYTES:
        raise InputError(f"answer is {size} bytes of JSON; at most {MAX_ANSWER_BYTES} (1 MB)")
    return {
        "question": _text("question", question, MAX_QUESTION_CHARS),
        "answer": dict(answer),
        "retriever": _text("retriever", retriever, 50),
        "model": _text("model", model, MAX_NAME_CHARS, required=False),
        "model_sha256": _sha256("model_sha256", model_sha256, required=False),
        # "" when unknown (a recorded feedback file imported without its index); the server always knows it.
        "index_sha256": _sha256("index_sha256", "" if index_sha256 is None else index_sha256, required=True,
                                empty_ok=True),
    }


def check_feedback(kind: Any, *, rating: Any = None, correction: Any = None, triple_id: Any = None,
                   reason: Any = None, user_id: Any = None) -> dict:
    """The row :meth:`FeedbackStore.add_feedback` stores (without answer id and time), or :class:`InputError`.

    Whether a flagged ``triple_id`` is one the answer cites needs the answer: :func:`check_flag_target`."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}"[:300])
    for name, value, owner in (("rating", rating, "rating"), ("correction", correction, "correction"),
                               ("triple_id", triple_id, "flag")):
        if value is not None and kind != owner:
            raise InputError(f"{name} is given only with kind {owner!r}, not with kind {kind!r}")
    row = {"kind": kind, "rating": None, "correction": None, "triple_id": None,
           "reason": _text("reason", reason, MAX_TEXT_CHARS, required=kind == "flag"),
           "user_id": _text("user_id", user_id, MAX_USER_ID_CHARS, required=False)}
    if kind == "rating":
        if type(rating) is not int or rating not in (1, -1):
            raise InputError(f"rating must be +1 (right) or -1 (wrong); got {_short(rating)}")
        row["rating"] = rating
    elif kind == "correction":
        row["correction"] = _correction(correction)
    else:
        if not isinstance(triple_id, str) or not re.fullmatch(r"[0-9a-f]{16}", triple_id):
            raise InputError(f"triple_id must be a triple id (16 lowercase hex digits, as the answer's citations "
                             f"give them); got {_short(triple_id)}")
        row["triple_id"] = triple_id
    return row


def cited_triple_ids(answer: Any) -> list[str]:
    """The triple ids an answer object cites (``citations[].id``), in order."""
    cites = answer.get("citations") if isinstance(answer, Mapping) else None
    return [c["id"] for c in cites or [] if isinstance(c, Mapping) and isinstance(c.get("id"), str)] \
        if isinstance(cites, list) else []


def check_flag_target(answer: Any, triple_id: str) -> None:
    """A flag must name one of the triples the answer cites: :class:`InputError` otherwise."""
    cited = cited_triple_ids(answer)
    if triple_id not in cited:
        shown = ", ".join(cited[:10]) + (", ..." if len(cited) > 10 else "") if cited else "none"
        raise InputError(f"triple_id {triple_id} is not one of the triples this answer cites ({shown})")


_IRI = r"<[^<>\"{}|^`\\\x00-\x20]+>"
_TERM = re.compile(rf"{_IRI}|\"(?:[^\"\\\n\r]|\\[tbnrf\"'\\]|\\u[0-9A-Fa-f]{{4}}|\\U[0-9A-Fa-f]{{8}})*\""
                   rf"(?:@[A-Za-z]+(?:-[A-Za-z0-9]+)*|\^\^{_IRI})?")


def _correction(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise InputError(f'correction must be an object, {{"term": "<IRI>" or "\\"literal\\""}} or '
                         f'{{"text": "..."}}; got {_what(value)}')
    keys = set(value)
    if keys in ({"text"},):
        return {"text": _text("correction text", value["text"], MAX_TEXT_CHARS)}
    if keys in ({"term"}, {"term", "label"}):
        term = _text("correction term", value["term"], MAX_TEXT_CHARS).strip()
        if not _TERM.fullmatch(term):
            raise InputError(f"correction term must be one N-Triples term, an IRI <...> or a literal \"...\" "
                             f"(with @lang or ^^<datatype>); got {_short(term)}")
        if term.startswith('"'):  # canonical form, as graph artifacts write it ("x"^^xsd:string is "x")
            lex, lang, dt = parse_literal(term)
            term = literal(lex, lang=lang.lower() if lang else None, datatype=dt)
        out = {"term": term}
        if "label" in value:
            out["label"] = _text("correction label", value["label"], MAX_TEXT_CHARS)
        return out
    raise InputError(f"correction must have the key 'text', or 'term' (and optionally 'label'); got keys "
                     f"{sorted(map(str, keys))}"[:300])


def _text(name: str, value: Any, limit: int, *, required: bool = True) -> str | None:
    if value is None or (not required and isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {_what(value)}")
    if not value.strip():
        raise InputError(f"{name} is empty")
    if len(value) > limit:
        raise InputError(f"{name} is {len(value)} characters long; at most {limit}")
    if "\x00" in value:
        raise InputError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{name} is not valid Unicode text (a lone surrogate)") from None
    return value


def _sha256(name: str, value: Any, *, required: bool, empty_ok: bool = False) -> str | None:
    if value is None and not required:
        return None
    if empty_ok and value == "":
        return ""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise InputError(f"{name} must be a sha256 (64 hex digits); got {_short(value)}")
    return value.lower()


def _what(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _iso(value: _dt.datetime) -> str:
    """ISO-8601 UTC (SQLite gives back naive datetimes, which are UTC here)."""
    value = value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)
    return value.isoformat(timespec="microseconds")


# ----------------------------------------------------------------------------- URLs


def parse_url(url: str | sa.URL) -> sa.URL:
    """A checked SQLAlchemy URL: SQLite (a file, never in memory) or PostgreSQL (psycopg 3)."""
    try:
        u = sa.make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        raise UsageError(f"{url!r} is not a database URL; give sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST:PORT/DATABASE") from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    backend = u.get_backend_name()
    if backend == "sqlite":
        if not u.database or u.database == ":memory:" or u.database.startswith("file::memory:"):
            raise UsageError(f"{redact(u)}: an in-memory SQLite database keeps nothing; give a file, "
                             "sqlite:///PATH/feedback.db")
    elif backend == "postgresql":
        if u.get_driver_name() == "psycopg":
            require("psycopg", "postgres")
    else:
        raise UsageError(f"{redact(u)}: the feedback store runs on SQLite (sqlite:///PATH) or PostgreSQL "
                         f"(postgresql+psycopg://...), not {backend}")
    return u


def redact(url: str | sa.URL) -> str:
    """The URL as messages and manifests show it: the password hidden."""
    try:
        return (sa.make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"


def resolve_db(value: str | os.PathLike) -> str:
    """A database URL from what a user names: a URL, a SQLite file, a serve directory holding
    ``feedback.db``, or a ``feedback.db`` artifact (its SQLite file, or the URL its manifest records)."""
    text = os.fspath(value)
    if "://" in text:
        return text
    p = Path(text)
    if p.is_dir():
        if (p / MANIFEST).exists():
            man = read_manifest(p, kind="feedback.db")
            if (p / DB_FILE).is_file():
                return f"sqlite:///{(p / DB_FILE).resolve()}"
            url = man.extra.get("db_url") or ""
            if not url or "***" in url:
                raise UsageError(f"{p}: this feedback.db artifact records its database as {url or '(nothing)'}; "
                                 "give the full URL with --db")
            return url
        if (p / DB_FILE).is_file():
            return f"sqlite:///{(p / DB_FILE).resolve()}"
        raise UsageError(f"{p}: a directory without {DB_FILE} and not a feedback.db artifact; give a database URL "
                         "(sqlite:///PATH or postgresql+psycopg://...)")
    return f"sqlite:///{p.resolve()}"


# ----------------------------------------------------------------------------- the store


class FeedbackStore:
    """Answers and feedback in a real database through SQLAlchemy 2 (Core) with Alembic migrations
    (run to head when the store opens; the migration scripts ship in the package).

    Thread-safe (one engine with a connection pool); open one store per process (after a fork, the child
    starts with a fresh pool). Use it as a context manager or call :meth:`close`. ``create=False``: a
    SQLite file that does not exist is an :class:`InputError` instead of a new, empty database."""

    def __init__(self, url: str, *, busy_timeout: float = BUSY_TIMEOUT_S, create: bool = True):
        self.url = parse_url(url)
        self.backend = self.url.get_backend_name()
        self.display_url = redact(self.url)
        self.busy_timeout = float(busy_timeout)
        kw: dict[str, Any] = {"json_serializer": _dumps, "pool_size": 5, "max_overflow": 20,
                              "pool_timeout": self.busy_timeout}
        if self.backend == "sqlite":
            path = Path(self.url.database)
            if not create and not path.is_file():
                raise InputError(f"{self.display_url}: no such database file")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(f"{self.display_url}: cannot create {path.parent} ({e.strerror or e})") from e
            kw["connect_args"] = {"timeout": self.busy_timeout, "check_same_thread": False}
        else:
            kw["pool_pre_ping"] = True  # a restarted PostgreSQL: reconnect instead of failing the next write
            kw["connect_args"] = {"connect_timeout": max(1, int(min(self.busy_timeout, 10))),
                                  "application_name": "kgllm-feedback"}
        self._engine = sa.create_engine(self.url, **kw)
        if self.backend == "sqlite":
            _sqlite_setup(self._engine, self.busy_timeout)
        self._writer = self._engine.execution_options(kgllm_write=True)
        ref = weakref.ref(self._engine)
        # A forked child (uvicorn workers) must not share the parent's connections.
        os.register_at_fork(after_in_child=lambda: (e := ref()) is not None and e.dispose(close=False))
        try:
            self._run(self._migrate, write=True)
        except BaseException:
            self._engine.dispose()
            raise

    @staticmethod
    def default_url(directory: str | os.PathLike) -> str:
        """``sqlite:///DIRECTORY/feedback.db`` (absolute)."""
        return f"sqlite:///{(Path(directory) / DB_FILE).resolve()}"

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackStore({self.display_url!r})"

    # ------------------------------------------------------------------ writes

    def add_answer(self, question: str, answer: dict, *, retriever: str, model: str | None,
                   model_sha256: str | None, index_sha256: str) -> str:
        """Store an answer (the whole object, as JSON); returns its id (uuid4 hex)."""
        row = check_answer(question, answer, retriever=retriever, model=model, model_sha256=model_sha256,
                           index_sha256=index_sha256)
        row["id"] = uuid.uuid4().hex
        row["created"] = _now()
        self._run(lambda conn: conn.execute(answers.insert().values(**row)), write=True)
        return row["id"]

    def add_feedback(self, answer_id: str, kind: str, *, rating: int | None = None, correction: dict | None = None,
                     triple_id: str | None = None, reason: str | None = None, user_id: str | None = None) -> int:
        """Store one piece of feedback on a stored answer; returns its id. One transaction, committed on return.

        ``kind`` "rating" takes ``rating`` +1 / -1; "correction" takes ``correction`` ``{"term": N-Triples
        term[, "label": str]}`` or ``{"text": str}``; "flag" takes ``triple_id`` (one the answer cites) and
        ``reason``. ``reason`` (optional for the other kinds) and ``user_id`` are free text."""
        row = check_feedback(kind, rating=rating, correction=correction, triple_id=triple_id, reason=reason,
                             user_id=user_id)
        if not isinstance(answer_id, str):
            raise InputError(f"answer_id must be a string (the id /ask returned), not {_what(answer_id)}")

        def write(conn: sa.Connection) -> int:
            if kind == "flag":
                stored = conn.execute(sa.select(answers.c.answer).where(answers.c.id == answer_id)).first()
                if stored is None:
                    raise UnknownAnswer(_unknown(answer_id))
                check_flag_target(stored[0], triple_id)
            elif conn.execute(sa.select(answers.c.id).where(answers.c.id == answer_id)).first() is None:
                raise UnknownAnswer(_unknown(answer_id))
            res = conn.execute(feedback.insert().values(answer_id=answer_id, created=_now(), **row))
            return int(res.inserted_primary_key[0])

        if len(answer_id) > 64:  # no such id can exist: no database round trip
            raise UnknownAnswer(_unknown(answer_id))
        return self._run(write, write=True)

    # ------------------------------------------------------------------ reads

    def answer(self, answer_id: str) -> dict | None:
        """``{"id","question","answer","retriever","model","model_sha256","index_sha256","created"}`` or None."""
        if not isinstance(answer_id, str) or len(answer_id) > 64:
            return None
        row = self._run(lambda c: c.execute(sa.select(answers).where(answers.c.id == answer_id)).mappings().first())
        if row is None:
            return None
        return {**{k: row[k] for k in ("id", "question", "answer", "retriever", "model", "model_sha256",
                                       "index_sha256")}, "created": _iso(row["created"])}

    def iter_feedback(self) -> Iterator[dict]:
        """Every feedback row joined with its answer, ordered by id (streamed):
        ``{"id","answer_id","kind","rating","correction","triple_id","reason","user_id","created",
        "question","answer","retriever","model","model_sha256","index_sha256"}``."""
        q = (sa.select(feedback, answers.c.question, answers.c.answer, answers.c.retriever, answers.c.model,
                       answers.c.model_sha256, answers.c.index_sha256)
             .join(answers, feedback.c.answer_id == answers.c.id).order_by(feedback.c.id))
        try:
            with self._engine.connect() as conn:
                for row in conn.execution_options(yield_per=500).execute(q).mappings():
                    out = dict(row)
                    out["created"] = _iso(out["created"])
                    yield out
        except sa.exc.DBAPIError as e:
            raise self._unavailable(e) from e

    def counts(self) -> dict:
        """``{"answers": n, "ratings": n, "corrections": n, "flags": n}``."""
        def read(conn: sa.Connection) -> dict:
            n = conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one()
            by_kind = dict(conn.execute(sa.select(feedback.c.kind, sa.func.count()).group_by(feedback.c.kind)).all())
            return {"answers": int(n), "ratings": int(by_kind.get("rating", 0)),
                    "corrections": int(by_kind.get("correction", 0)), "flags": int(by_kind.get("flag", 0))}

        return self._run(read)

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at."""
        from alembic.runtime.migration import MigrationContext

        def read(conn: sa.Connection) -> str | None:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()

        return self._run(read)

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints its WAL into the database file)."""
        self._engine.dispose()

    # ------------------------------------------------------------------ internals

    def _migrate(self, conn: sa.Connection) -> None:
        """Alembic ``upgrade head`` inside this (write) transaction: on SQLite the write lock, on
        PostgreSQL an advisory lock, lets one process migrate while the others wait and then find the
        database at head (a no-op)."""
        from alembic import command
        from alembic.config import Config

        if self.backend == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    def _run(self, fn: Callable[[sa.Connection], Any], *, write: bool = False) -> Any:
        """``fn(connection)`` in one transaction, committed on return. SQLite: retried while the database
        is locked, until the busy timeout has passed (a refused BEGIN or COMMIT leaves nothing written)."""
        engine = self._writer if write else self._engine
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                with engine.begin() as conn:
                    return fn(conn)
            except sa.exc.OperationalError as e:
                if self.backend == "sqlite" and _locked(e) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise self._unavailable(e) from e
            except sa.exc.IntegrityError as e:  # checked before writing; only a concurrent schema change gets here
                raise InputError(f"feedback database {self.display_url} refused the row: {_first_line(e)}") from e
            except (sa.exc.DBAPIError, sa.exc.TimeoutError) as e:  # TimeoutError: no pooled connection in time
                raise self._unavailable(e) from e

    def _unavailable(self, e: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"feedback database {self.display_url}: {_first_line(e)}")


def _sqlite_setup(engine: sa.Engine, busy_timeout: float) -> None:
    """WAL, synchronous=FULL, foreign keys and the busy timeout on every connection; transactions begun by
    SQLAlchemy (pysqlite's own implicit BEGIN turned off), write transactions with BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("feedback database %s: SQLite refused WAL mode (journal_mode=%s)", engine.url, mode)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("kgllm_write") else "BEGIN")


def _locked(e: sa.exc.OperationalError) -> bool:
    msg = str(e.orig).lower()
    return "locked" in msg or "busy" in msg


def _first_line(e: Exception) -> str:
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]


def _unknown(answer_id: str) -> str:
    return f"unknown answer id {_short(answer_id)}: no answer with this id in the feedback database"
