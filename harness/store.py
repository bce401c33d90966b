"""The results store: every run's identity, status, environment and metrics, in one SQL database.

SQLite (WAL mode) is the default; any SQLAlchemy URL works, PostgreSQL for many machines.

Status life cycle: ``running`` -> ``succeeded`` | ``failed`` | ``interrupted``; a ``succeeded`` row
becomes ``superseded`` when a forced rerun of the same identity succeeds. History is never deleted,
and a partial unique index on ``(identity, status) WHERE status IN ('running', 'succeeded')`` makes
the database itself guarantee at most one running and at most one current result per identity: the
leaderboard's "latest succeeded run per identity" is simply ``status = 'succeeded'``. A forced rerun
that fails leaves the previous result in place.

Concurrency: ``start`` reads and claims an identity in one transaction. On SQLite every transaction
is ``BEGIN IMMEDIATE`` (the writer lock is taken up front, with a busy timeout), so competing
starters are serialised. On PostgreSQL the existing rows are read ``FOR UPDATE``, and two claims of
a fresh identity collide on the unique index; the loser gets ``RunInProgress``.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd
from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Column, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, Select, String, Table, Text, UniqueConstraint, create_engine, event, func, insert,
                        inspect, select, update)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError, SQLAlchemyError

from harness.curves import CurvePoint

log = logging.getLogger(__name__)

STATUSES = ("running", "succeeded", "failed", "interrupted", "superseded")
# Statuses of which an identity may have at most one row at a time (enforced by a partial unique index).
EXCLUSIVE_STATUSES = ("running", "succeeded")
SQLITE_BUSY_TIMEOUT_MS = 60_000
# the integrity check on open stops after this long (a huge store is then opened unchecked, with a warning)
INTEGRITY_CHECK_S = 10.0

metadata = MetaData()

runs_table = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("identity", String(128), nullable=False, index=True),
    # the identity without the seed: runs sharing it are seeds of one setting, averaged in leaderboards
    Column("variant", String(128), nullable=False),
    Column("protocol", String(128), nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("method", String(512), nullable=False),  # display label
    Column("components", JSON, nullable=False),  # {role: {"name": ..., "version": ...}}
    Column("profile", String(64), nullable=False),
    Column("dataset_fingerprint", String(128), nullable=False),
    Column("config", JSON, nullable=False),  # the resolved config
    Column("seed", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("wall_time_s", Float),
    Column("environment", JSON, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    # when the owner process started (clock ticks since boot, Linux): a reused pid is not mistaken for the owner
    Column("process_start", BigInteger),
    Column("run_dir", Text),
    CheckConstraint("status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")", name="ck_runs_status"),
)
_where_exclusive = runs_table.c.status.in_(EXCLUSIVE_STATUSES)
Index("uq_runs_identity_exclusive", runs_table.c.identity, runs_table.c.status, unique=True,
      sqlite_where=_where_exclusive, postgresql_where=_where_exclusive)

metrics_table = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("split", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("value", Float),  # NULL stands for NaN, which SQLite cannot store; read back as NaN
    Column("higher_is_better", Boolean),
    Column("class_name", String(255)),  # None: the overall (mean over classes) figure
    UniqueConstraint("run_id", "split", "name", "class_name", name="uq_metrics_key"),
)
# SQL unique constraints treat NULLs as distinct, so the overall figures need their own index.
_where_overall = metrics_table.c.class_name.is_(None)
Index("uq_metrics_overall", metrics_table.c.run_id, metrics_table.c.split, metrics_table.c.name, unique=True,
      sqlite_where=_where_overall, postgresql_where=_where_overall)

# Training curves (harness.curves): a point per validation and per loss sample of each training a run did.
# A table of its own, so stores made before it only gain it (create_all adds missing tables).
curves_table = Table(
    "curves", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("stage", String(255), nullable=False),  # the curve's folder in the run folder; "" for the run folder
    Column("step", Integer, nullable=False),
    Column("seconds", Float),
    Column("loss", Float),
    Column("lr", Float),
    Column("metric", String(128)),  # NULL at points that only sample the training loss
    Column("value", Float),
    UniqueConstraint("run_id", "stage", "step", name="uq_curves_point"),
)


class StoreError(RuntimeError):
    """The store cannot be opened, or a write would break its invariants."""


class RunInProgress(StoreError):
    """Another live process is running the same identity."""


class StoreDamaged(StoreError):
    """The database file is damaged: nothing is read from or written to it until it is recovered."""


@dataclass(frozen=True)
class RunRecord:
    """What a run is, recorded when it starts."""

    identity: str
    variant: str
    protocol: str
    dataset: str
    method: str
    components: Mapping[str, Mapping[str, str]]
    profile: str
    dataset_fingerprint: str
    config: Mapping[str, Any]
    seed: int
    environment: Mapping[str, Any]
    run_dir: str | os.PathLike[str] | None


@dataclass(frozen=True)
class Metric:
    """One figure of a finished run; ``class_name`` None is the overall (mean over classes) figure."""

    split: str
    name: str
    value: float
    higher_is_better: bool | None = None
    class_name: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _storable(value: float | None) -> float | None:
    """NaN as NULL (SQLite cannot store NaN); None stays NULL."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from field 3 (state) on; None where unknown (no such process, no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # after the parenthesised command name


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``); None where
    unknown."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def owner_gone(pid: int, started: int | None) -> bool:
    """Whether the process that claimed a run (on this host) has provably ended: its pid is free or a zombie
    (killed, not yet reaped), or now belongs to a process that started at another time (pids wrap)."""
    if not _pid_alive(pid):
        return True
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return fields[0] == "Z" or (started is not None and int(fields[19]) != started)


def _sqlite_setup(engine: Any, read_only: bool = False) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for every transaction (a plain BEGIN when ``read_only``).

    pysqlite's own transaction handling is switched off (isolation_level None) so that SQLAlchemy's
    ``begin`` event decides how a transaction starts; IMMEDIATE takes the write lock before the first
    read, so a read-then-claim such as ``start`` cannot interleave with another process's.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _create_tables(engine: Engine, sqlite: bool) -> None:
    """The tables, if missing, and the columns added since a store was made. Processes creating one new SQLite
    file at once (e.g. bench workers) can find it locked while another switches it to WAL, which the busy
    timeout does not cover: they retry until it."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except OperationalError as exc:
            if not (sqlite and "database is locked" in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _add_missing_columns(engine: Engine) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each nullable column a store made by an older harness lacks."""
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=engine.dialect)
                try:
                    with engine.begin() as connection:
                        connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                except (OperationalError, DatabaseError) as exc:  # another process added it meanwhile
                    if "duplicate column" not in str(exc).lower() and "already exists" not in str(exc).lower():
                        raise


_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB: the only errors that say the file itself is damaged


def _integrity_problems(engine: Engine, seconds: float | None = INTEGRITY_CHECK_S) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` (every page and record well formed), stopped after ``seconds`` (None: never):
    its problems, none when the file is sound or the check ran out of time (logged). A locked database is waited
    for like ``_create_tables`` does; an error that is not damage (permissions, a missing folder) is raised."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _quick_check(engine, seconds)
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            error = getattr(exc, "orig", exc)
            if getattr(error, "sqlite_errorcode", None) in _DAMAGE_CODES:
                return [str(error)]
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _quick_check(engine: Engine, seconds: float | None) -> list[str]:
    connection = engine.raw_connection()
    try:
        if seconds is not None:
            deadline = time.monotonic() + seconds
            connection.driver_connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = connection.cursor().execute("PRAGMA quick_check").fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            log.warning("integrity check of the results store stopped after %.0f s; opened unchecked", seconds)
            return []
        finally:
            connection.driver_connection.set_progress_handler(None, 0)
    finally:
        connection.close()
    return [] if [row[0] for row in rows] == ["ok"] else [row[0] for row in rows]


def read_only_url(url: URL, file: Path) -> URL:
    """An SQLite URL that opens ``file`` read-only (a URI, escaped, so any path works)."""
    return url.set(database=file.resolve().as_uri(), query={"mode": "ro", "uri": "true"})


def recovery_hint(url: str) -> str:
    return (f"copy out what is readable with `harness store recover --store {url} --to <new url>`, then use the new "
            f"store (the damaged file is left as it is)")


def _of_runs(query: Select[Any], protocol: str | None, status: str | None) -> Select[Any]:
    """``query`` (joined with the runs) limited to the runs of ``protocol`` with ``status`` (None: any)."""
    if protocol is not None:
        query = query.where(runs_table.c.protocol == protocol)
    if status is not None:
        query = query.where(runs_table.c.status == status)
    return query


class Store:
    """Runs, their metrics and training curves; every write is one transaction.

    ``read_only`` opens an existing store without creating, migrating or writing anything (an archived file
    included); a missing one is an error naming it. An SQLite store is checked for damage whenever it is opened
    (:func:`_integrity_problems`): a damaged one raises :class:`StoreDamaged` with the way to recover it, so no run
    trains on a store that could lose its result and no leaderboard silently drops rows; ``check_seconds`` bounds
    that check (None: no bound)."""

    def __init__(self, url: str, read_only: bool = False, check_seconds: float | None = INTEGRITY_CHECK_S) -> None:
        self.url, self.read_only = url, read_only
        self.host = socket.gethostname()
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"cannot open results store {url!r}: not an SQLAlchemy URL ({exc})") from exc
        shown = parsed.render_as_string(hide_password=True)
        sqlite = parsed.get_backend_name() == "sqlite"
        file = Path(parsed.database) if sqlite and parsed.database not in (None, "", ":memory:") else None
        try:
            if file is not None and read_only:
                if not file.is_file():
                    raise StoreError(f"no results store at {file} (from {shown}): nothing to read; is the URL right?")
                parsed = read_only_url(parsed, file)
            elif file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
            self._engine = create_engine(parsed)
            if sqlite:
                _sqlite_setup(self._engine, read_only)
                problems = _integrity_problems(self._engine, check_seconds)
                if problems:
                    found = " ".join("; ".join(problems[:3]).split())  # one line
                    raise StoreDamaged(f"results store {shown} is damaged ({found}); "
                                       f"{recovery_hint(url)}")
            if not read_only:
                _create_tables(self._engine, sqlite)
            self._run_columns = [runs_table.c[column["name"]] for column in inspect(self._engine).get_columns("runs")
                                 if column["name"] in runs_table.c]
        except (SQLAlchemyError, ImportError, OSError) as exc:
            detail = getattr(exc, "orig", None) or exc  # the driver's message, without SQLAlchemy's footer
            raise StoreError(f"cannot open results store {shown}: {detail}") from exc

    def close(self) -> None:
        self._engine.dispose()

    # -- writing ------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"results store {self.url} was opened read-only; it cannot record runs")

    def start(self, record: RunRecord, force: bool = False) -> int | None:
        """Claim ``record.identity`` and return the new run id, or None when it already succeeded.

        A running row whose owner is provably gone (same host, :func:`owner_gone`) is marked interrupted first;
        one whose owner is alive, or on another host where liveness cannot be checked, raises RunInProgress.
        """
        self._writable()
        runs = runs_table
        try:
            with self._engine.begin() as connection:
                existing = connection.execute(
                    select(runs.c.id, runs.c.status, runs.c.host, runs.c.pid, runs.c.process_start)
                    .where(runs.c.identity == record.identity, runs.c.status.in_(EXCLUSIVE_STATUSES))
                    .order_by(runs.c.id).with_for_update()
                ).all()
                if not force and any(row.status == "succeeded" for row in existing):
                    return None
                for row in existing:
                    if row.status != "running":
                        continue
                    if row.host != self.host or not owner_gone(row.pid, row.process_start):
                        raise RunInProgress(f"run {row.id} with identity {record.identity} is already running "
                                            f"(pid {row.pid} on {row.host})")
                    self._mark_interrupted_stale(connection, row.id, row.pid, row.host)
                return connection.execute(insert(runs).values(
                    identity=record.identity, variant=record.variant, protocol=record.protocol, dataset=record.dataset,
                    method=record.method, components=dict(record.components), profile=record.profile,
                    dataset_fingerprint=record.dataset_fingerprint, config=dict(record.config),
                    seed=record.seed, environment=dict(record.environment),
                    run_dir=None if record.run_dir is None else os.fspath(record.run_dir),
                    status="running", started_at=_now(), host=self.host, pid=os.getpid(),
                    process_start=process_start(os.getpid()),
                )).inserted_primary_key[0]
        except IntegrityError as exc:  # PostgreSQL: a concurrent claim of a fresh identity won
            raise RunInProgress(f"identity {record.identity} was claimed by another process at the same time") from exc

    def succeed(self, run_id: int, metrics: list[Metric], wall_time_s: float,
                curves: Mapping[str, Sequence[CurvePoint]] | None = None) -> None:
        """Record the metrics and training curves (stage -> points) and mark the run succeeded, superseding an
        earlier result of its identity."""
        self._writable()
        try:
            with self._engine.begin() as connection:
                identity = self._running_identity(connection, run_id)
                connection.execute(update(runs_table)
                                   .where(runs_table.c.identity == identity, runs_table.c.status == "succeeded")
                                   .values(status="superseded"))
                connection.execute(update(runs_table).where(runs_table.c.id == run_id).values(
                    status="succeeded", finished_at=_now(), wall_time_s=wall_time_s, error=None))
                if metrics:
                    connection.execute(insert(metrics_table), [
                        {"run_id": run_id, "split": m.split, "name": m.name, "value": _storable(m.value),
                         "higher_is_better": m.higher_is_better, "class_name": m.class_name}
                        for m in metrics])
                points = [{"run_id": run_id, "stage": stage, "step": p.step, "seconds": p.seconds,
                           "loss": _storable(p.loss), "lr": p.lr, "metric": p.metric, "value": _storable(p.value)}
                          for stage, stage_points in sorted((curves or {}).items()) for p in stage_points]
                if points:
                    connection.execute(insert(curves_table), points)
        except IntegrityError as exc:
            raise StoreError(f"run {run_id}: nothing recorded, its metrics or curves were rejected (is a "
                             f"(split, name, class_name) or (stage, step) key repeated?): {exc.orig}") from exc

    def fail(self, run_id: int, error: str, interrupted: bool = False) -> None:
        """Record why a run ended without a result; ``interrupted`` for Ctrl-C and the like."""
        self._writable()
        with self._engine.begin() as connection:
            self._running_identity(connection, run_id)
            connection.execute(update(runs_table).where(runs_table.c.id == run_id).values(
                status="interrupted" if interrupted else "failed", error=error, finished_at=_now()))

    def mark_stale(self) -> int:
        """Mark this host's running rows whose process is gone as interrupted; return how many."""
        self._writable()
        with self._engine.begin() as connection:
            rows = connection.execute(select(runs_table.c.id, runs_table.c.pid, runs_table.c.process_start).where(
                runs_table.c.status == "running", runs_table.c.host == self.host)).all()
            stale = [row for row in rows if owner_gone(row.pid, row.process_start)]
            for row in stale:
                self._mark_interrupted_stale(connection, row.id, row.pid, self.host)
        return len(stale)

    @staticmethod
    def _mark_interrupted_stale(connection: Connection, run_id: int, pid: int, host: str) -> None:
        connection.execute(update(runs_table).where(runs_table.c.id == run_id).values(
            status="interrupted", error=f"stale: process {pid} on {host} is gone", finished_at=_now()))

    @staticmethod
    def _running_identity(connection: Connection, run_id: int) -> str:
        """The identity of a run that is still running; finishing any other run is a bug in the caller."""
        row = connection.execute(select(runs_table.c.identity, runs_table.c.status)
                                 .where(runs_table.c.id == run_id)).one_or_none()
        if row is None:
            raise StoreError(f"no run with id {run_id}")
        if row.status != "running":
            raise StoreError(f"run {run_id} is {row.status}, not running; it cannot be finished again")
        return row.identity

    # -- reading ------------------------------------------------------------------------------------

    def runs(self, status: str | None = None) -> pd.DataFrame:
        """All runs (or those with ``status``), oldest first."""
        query = select(*self._run_columns).order_by(runs_table.c.id)
        if status is not None:
            query = query.where(runs_table.c.status == status)
        return self._read(query)

    def metrics(self, protocol: str | None = None, status: str | None = "succeeded") -> pd.DataFrame:
        """Metrics joined with their run's description; by default only current (succeeded) results."""
        r, m = runs_table, metrics_table
        query = (select(m.c.run_id, r.c.identity, r.c.variant, r.c.protocol, r.c.dataset, r.c.method, r.c.profile, r.c.seed,
                        r.c.status, r.c.environment, m.c.split, m.c.name, m.c.value, m.c.higher_is_better,
                        m.c.class_name)
                 .join(r, r.c.id == m.c.run_id)
                 .order_by(m.c.run_id, m.c.split, m.c.name, m.c.class_name))
        frame = self._read(_of_runs(query, protocol, status))
        frame["value"] = frame["value"].astype(float)  # NULL (NaN) included
        return frame

    def curves(self, protocol: str | None = None, status: str | None = "succeeded") -> pd.DataFrame:
        """Training curve points joined with their run's description, like :meth:`metrics`; NULL loss and value
        (loss-only points, NaN) read as NaN."""
        r, c = runs_table, curves_table
        query = (select(c.c.run_id, r.c.identity, r.c.variant, r.c.protocol, r.c.dataset, r.c.method, r.c.profile,
                        r.c.seed, r.c.status, c.c.stage, c.c.step, c.c.seconds, c.c.loss, c.c.lr, c.c.metric,
                        c.c.value)
                 .join(r, r.c.id == c.c.run_id)
                 .order_by(c.c.run_id, c.c.stage, c.c.step))
        frame = self._read(_of_runs(query, protocol, status))
        for column in ("seconds", "loss", "lr", "value"):
            frame[column] = frame[column].astype(float)
        return frame

    def _read(self, query: Select[Any]) -> pd.DataFrame:
        with self._engine.begin() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict, with its metrics as a list of dicts under ``"metrics"``."""
        with self._engine.begin() as connection:
            row = connection.execute(select(*self._run_columns).where(runs_table.c.id == run_id)).mappings().one_or_none()
            if row is None:
                raise KeyError(f"no run with id {run_id}")
            metrics = connection.execute(
                select(metrics_table.c.split, metrics_table.c.name, metrics_table.c.value,
                       metrics_table.c.higher_is_better, metrics_table.c.class_name)
                .where(metrics_table.c.run_id == run_id)
                .order_by(metrics_table.c.split, metrics_table.c.name, metrics_table.c.class_name)
            ).mappings().all()
        return {**row, "metrics": [{**metric, "value": math.nan if metric["value"] is None else metric["value"]}
                                   for metric in metrics]}

    def succeeded(self, identity: str) -> bool:
        """Whether ``identity`` has a current result (what ``start`` would skip without force)."""
        with self._engine.begin() as connection:
            return connection.execute(select(runs_table.c.id).where(
                runs_table.c.identity == identity, runs_table.c.status == "succeeded")).first() is not None


def check(url: str) -> str:
    """A one-line account of the store at ``url`` (opened read-only; an SQLite file's ``quick_check`` runs to the
    end, however long); raises StoreError (:class:`StoreDamaged` with the recovery path) when it cannot be read or
    is damaged."""
    store = Store(url, read_only=True, check_seconds=None)
    try:
        runs = store.runs()
    finally:
        store.close()
    counts = runs["status"].value_counts() if not runs.empty else pd.Series(dtype=int)
    return f"{url}: ok, {len(runs)} runs (" + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES) + ")"


def recover(source_url: str, target_url: str) -> dict[str, tuple[int, int]]:
    """Copy every readable row of a (damaged) store into a new, empty one, keeping ids; metrics and curve points
    whose run was lost are left out. The source is only read. Returns {table: (rows copied, rows left out)}
    (rows inside damaged pages cannot be counted and are not in the second figure)."""
    parsed = make_url(source_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            raise StoreError(f"no results store at {parsed.database}: nothing to recover")
        parsed = read_only_url(parsed, Path(parsed.database))
    target = Store(target_url)
    if not target.runs().empty:
        raise StoreError(f"{target_url} already holds runs; recover into a new store")
    source = create_engine(parsed)
    copied: dict[str, tuple[int, int]] = {}
    runs: set[int] = set()
    try:
        with source.connect() as reading, target._engine.begin() as writing:
            for table in (runs_table, metrics_table, curves_table):
                present = {column["name"] for column in inspect(source).get_columns(table.name)}
                columns = [column for column in table.columns if column.name in present]
                kept, dropped = 0, 0
                for rows in _readable_rows(reading, table, columns):
                    if table is not runs_table:
                        orphans = [row for row in rows if row["run_id"] not in runs]
                        dropped += len(orphans)
                        rows = [row for row in rows if row["run_id"] in runs]
                    else:
                        runs.update(row["id"] for row in rows)
                    if rows:
                        writing.execute(insert(table), [dict(row) for row in rows])
                    kept += len(rows)
                copied[table.name] = (kept, dropped)
    except DatabaseError as exc:  # e.g. a damaged schema page: nothing can be read
        raise StoreError(f"cannot read {source_url}: {exc.orig}") from exc
    finally:
        source.dispose()
        target.close()
    return copied


def _readable_rows(connection: Connection, table: Table, columns: Sequence[Column[Any]],
                   batch: int = 1024) -> Iterator[list[Mapping[str, Any]]]:
    """The rows of ``table`` in id order, in batches, stepping over those that cannot be read: a failed read is
    retried with half as many rows, a failed single row is stepped over an id at a time (up to the largest id,
    when that can be read), and the batch grows back after each success."""
    try:
        top = connection.execute(select(func.max(table.c.id))).scalar()
    except (DatabaseError, ValueError):
        top = None
    last, size, failures = 0, batch, 0
    while top is None or last < top:
        try:
            rows = connection.execute(select(*columns).where(table.c.id > last).order_by(table.c.id)
                                      .limit(size)).mappings().all()
        except (DatabaseError, ValueError):
            connection.rollback()
            if size > 1:
                size //= 2
                continue
            last, failures = last + 1, failures + 1
            if top is None and failures > 100_000:
                return
            continue
        if not rows:
            return
        yield list(rows)
        last, size, failures = rows[-1]["id"], min(2 * size, batch), 0
