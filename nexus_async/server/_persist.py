"""``state_file``: the server's state kept in SQLite, so a development server survives
a restart.

Projects, datasets (with their items), webhooks, jobs and their logs are written to
the file every half second and when the server stops, one transaction each time, so
the file always holds one consistent moment (after a ``kill -9``, the last one). The
work is split so that nothing blocking runs on the event loop: ``Saver.collect`` copies
what changed into plain rows on the loop (cheap), and ``Saver.write`` runs in a worker
thread. A job that was still running when the server stopped is ``Failed`` after the
restart, with a reason that says so.

A file that is not SQLite, or SQLite that is not such a state file (another program's,
or another format version), is refused with ``StateFileError`` before the server
starts; a missing or empty file starts a fresh state.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ._clock import now_ms
from ._logstore import Row
from ._state import Dataset, Job, Project, Store, Webhook

__all__ = ["RESTART_REASON", "Saver", "StateFileError", "end_interrupted", "open_state"]

FORMAT = "nexus-async local server state"
VERSION = 1
RESTART_REASON = "The server stopped while the job was running"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE projects (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE datasets (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE webhooks (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE job_items (id TEXT PRIMARY KEY, items TEXT NOT NULL);
CREATE TABLE logs (
    job_id TEXT NOT NULL, time INTEGER NOT NULL, seq INTEGER NOT NULL, level TEXT NOT NULL,
    kind TEXT NOT NULL, item TEXT NOT NULL, status TEXT NOT NULL, time_ms REAL NOT NULL,
    reason TEXT NOT NULL, PRIMARY KEY (job_id, seq)
);
"""


class StateFileError(ValueError):
    """The state file cannot be used (not SQLite, not a state file, unreadable)."""


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def open_state(path: Path) -> sqlite3.Connection:
    """Open (or create) the state file; check that it is one.

    Raises:
        StateFileError: the file is not SQLite or not a state file of this format.
    """
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        connection = _connect(path)
        if fresh:
            path.chmod(0o600)  # it holds project keys and webhook secrets
            with connection:
                connection.executescript(_SCHEMA)
                connection.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("format", FORMAT), ("version", str(VERSION))],
                )
            return connection
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise StateFileError(
            f"state file {path} is not a state file of this server: {exc}"
        ) from None
    if meta.get("format") != FORMAT:
        connection.close()
        raise StateFileError(f"state file {path} is not a state file of this server")
    if meta.get("version") != str(VERSION):
        connection.close()
        raise StateFileError(
            f"state file {path} has format version {meta.get('version')!r};"
            f" this server reads version {VERSION}"
        )
    return connection


def _plain(obj: Any, *skip: str) -> str:
    return json.dumps({k: v for k, v in vars(obj).items() if k not in skip})


def _rebuild(cls: type[Any], body: str, **extra: Any) -> Any:
    obj = object.__new__(cls)
    obj.__dict__.update(json.loads(body), **extra)
    return obj


class Saver:
    """Writes a ``Store`` to its state file: what changed since the last write."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._datasets: dict[str, tuple[Any, ...]] = {}  # id -> what was written last
        self._log_seqs: dict[str, int] = {}  # job id -> highest seq written
        self._log_counts: dict[str, int] = {}  # job id -> entries when last collected
        self._items_written: set[str] = set()

    def load(self, store: Store) -> str | None:
        """Replace what ``store`` holds with the file's state (in a worker thread:
        nothing else touches the store yet); a fresh file leaves it alone. Returns
        the first project's id, or None for a fresh file.

        Raises:
            StateFileError: the file's contents cannot be read back.
        """
        try:
            return self._load(store)
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"state file cannot be read back: {exc}") from None

    def _load(self, store: Store) -> str | None:
        db = self._db
        primary = dict(db.execute("SELECT key, value FROM meta").fetchall()).get("primary")
        if primary is None:
            return None  # a fresh file: the store keeps its fresh state
        store.projects.clear()
        store.uploads.clear()
        store.jobs_by_id.clear()
        for (body,) in db.execute("SELECT body FROM projects ORDER BY rowid"):
            data = json.loads(body)
            project = Project(data["id"], data["secret_key"], data["deployment_id"])
            project.deployments = data["deployments"]
            store.projects[project.id] = project
        for (body,) in db.execute("SELECT body FROM datasets"):
            dataset: Dataset = _rebuild(Dataset, body)
            store.add_dataset(store.projects[dataset.project_id], dataset)
            self._datasets[dataset.id] = _dataset_key(dataset)
        for (body,) in db.execute("SELECT body FROM webhooks"):
            webhook: Webhook = _rebuild(Webhook, body)
            store.projects[webhook.project_id].webhooks.add(webhook)
        items = dict(db.execute("SELECT id, items FROM job_items").fetchall())
        for (body,) in db.execute("SELECT body FROM jobs"):
            data = json.loads(body)
            job: Job = _rebuild(
                Job, body, items=json.loads(items[data["id"]]), logs=store.new_logs()
            )
            rows = db.execute(
                "SELECT time, seq, level, kind, item, status, time_ms, reason FROM logs"
                " WHERE job_id = ?",
                (job.id,),
            ).fetchall()
            entries: list[tuple[int, int, str, Row]] = [
                (time, seq, level, (kind, item, status, time_ms, reason))
                for time, seq, level, kind, item, status, time_ms, reason in rows
            ]
            job.logs.restore(entries)
            self._log_seqs[job.id] = max((e[1] for e in entries), default=0)
            self._log_counts[job.id] = len(entries)
            self._items_written.add(job.id)
            store.add_job(store.projects[job.project_id], job)
        return str(primary)

    def collect(self, store: Store, primary: str) -> dict[str, Any]:
        """Rows for what changed since the last write (on the event loop: plain copies)."""
        datasets = {}
        for project in store.projects.values():
            for dataset in project.datasets.values():
                key = _dataset_key(dataset)
                if self._datasets.get(dataset.id) != key:
                    datasets[dataset.id] = (key, _plain(dataset))
        jobs = list(store.jobs_by_id.values())
        logs = []
        for job in jobs:
            count = len(job.logs)
            if count == self._log_counts.get(job.id, 0):
                continue  # nothing new: no need to look through its entries
            self._log_counts[job.id] = count
            new = job.logs.entries_after(self._log_seqs.get(job.id, 0))
            if new:
                logs.append((job.id, new))
        return {
            "primary": primary,
            "projects": [
                (
                    p.id,
                    json.dumps(
                        {
                            "id": p.id,
                            "secret_key": p.secret_key,
                            "deployment_id": p.deployment_id,
                            "deployments": p.deployments,
                        }
                    ),
                )
                for p in store.projects.values()
            ],
            "dataset_ids": {d.id for p in store.projects.values() for d in p.datasets.values()},
            "datasets": datasets,
            "webhooks": [
                (w.id, _plain(w)) for p in store.projects.values() for w in p.webhooks.values()
            ],
            "jobs": [(j.id, _plain(j, "logs", "items")) for j in jobs],
            "items": [
                (j.id, json.dumps(list(j.items))) for j in jobs if j.id not in self._items_written
            ],
            "logs": logs,
        }

    def write(self, rows: dict[str, Any]) -> None:
        """Write collected rows in one transaction (in a worker thread)."""
        db = self._db
        job_ids = {job_id for job_id, _ in rows["jobs"]}
        with db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('primary', ?)", (rows["primary"],))
            db.execute("DELETE FROM projects")
            db.executemany("INSERT INTO projects VALUES (?, ?)", rows["projects"])
            db.execute("DELETE FROM webhooks")
            db.executemany("INSERT INTO webhooks VALUES (?, ?)", rows["webhooks"])
            db.execute("DELETE FROM jobs")
            db.executemany("INSERT INTO jobs VALUES (?, ?)", rows["jobs"])
            db.executemany("INSERT OR REPLACE INTO job_items VALUES (?, ?)", rows["items"])
            for (job_id,) in db.execute("SELECT id FROM job_items").fetchall():
                if job_id not in job_ids:
                    db.execute("DELETE FROM job_items WHERE id = ?", (job_id,))
                    db.execute("DELETE FROM logs WHERE job_id = ?", (job_id,))
            for (dataset_id,) in db.execute("SELECT id FROM datasets").fetchall():
                if dataset_id not in rows["dataset_ids"]:
                    db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
            db.executemany(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?)",
                [(ident, body) for ident, (_, body) in rows["datasets"].items()],
            )
            for job_id, entries in rows["logs"]:
                db.executemany(
                    "INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(job_id, t, seq, level, *row) for t, seq, level, row in entries],
                )
        # Only once committed: a failed write is tried again in full next time.
        for ident, (key, _) in rows["datasets"].items():
            self._datasets[ident] = key
        for job_id, entries in rows["logs"]:
            self._log_seqs[job_id] = max(self._log_seqs.get(job_id, 0), *(e[1] for e in entries))
        self._items_written.update(job_id for job_id, _ in rows["items"])

    def close(self) -> None:
        self._db.close()


def end_interrupted(store: Store) -> None:
    """Jobs restored unfinished: they were running when the server stopped."""
    for job in store.jobs_by_id.values():
        if not job.terminal:
            job.overview, job.message, job.reason = "Failed", "Server restarted", RESTART_REASON
            job.update_date = job.status_date = now_ms()
            job.logs.add("JobFinished", "Error", status="Failed", reason=RESTART_REASON)


def _dataset_key(dataset: Dataset) -> tuple[Any, ...]:
    return (dataset.update_date, dataset.overview, dataset.message, len(dataset.items))
