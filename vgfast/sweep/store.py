"""The results store: one SQLite file, one row per run, written only by the process that sweeps.

Table ``runs``:

=========== ======= =================================================================
column      type    meaning
=========== ======= =================================================================
key         TEXT    primary key: sha256 of the canonical config JSON and the run's name
status      TEXT    ``done``, ``error`` or ``lost``
run         TEXT    the run function's module-qualified name
config      TEXT    the run's config as canonical JSON (sorted keys)
result      TEXT    what the run returned, as JSON (NULL unless ``done``)
error       TEXT    the traceback of an ``error``, the reason of a ``lost`` run
started     REAL    Unix time the run started on its worker (NULL when not known)
finished    REAL    Unix time the run ended (for ``lost``: when the caller heard of it)
worker      TEXT    where it ran: a Dask worker's address, or ``thread:NAME@HOST``
attempts    INTEGER how many times a worker started it in the call that wrote the row
=========== ======= =================================================================

and a table ``meta`` (``name``, ``value``) whose row ``format`` reads ``vgfast-sweep`` and whose
row ``version`` the schema version: that is how a vgfast store is told from any other SQLite file.

While a sweep runs, its connection holds SQLite's exclusive lock (``locking_mode=EXCLUSIVE``): a
second sweep, or any other program, gets a "locked" error rather than interleaving writes
(readers too: read the store when the sweep returns, or use the rows it returns). Each result
is committed as it arrives (``synchronous=FULL``, SQLite's default), so an interrupted sweep
keeps every finished run.
"""
import hashlib
import json
import math
import os
import sqlite3
import time

FORMAT = "vgfast-sweep"
VERSION = "1"
COLUMNS = ("key", "status", "run", "config", "result", "error", "started", "finished", "worker",
           "attempts")
STATUSES = ("done", "error", "lost")

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('done', 'error', 'lost')),
    run TEXT NOT NULL,
    config TEXT NOT NULL,
    result TEXT,
    error TEXT,
    started REAL,
    finished REAL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
"""


class StoreError(ValueError):
    """The store file is not a vgfast sweep store (or not SQLite at all)."""


class StoreLockedError(RuntimeError):
    """Another connection (another sweep, or another program) holds the store's lock."""


# ---------------------------------------------------------------------------- keys and JSON


def _check_json(value, where):
    """Raise TypeError/ValueError naming `where` unless value is plain JSON data."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}; JSON has no NaN or Infinity (use None)")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; JSON objects need str keys")
            _check_json(v, f"{where}[{k!r}]")
        return
    hint = (" (convert numpy numbers with int() or float(), arrays with .tolist())"
            if type(value).__module__ == "numpy" else "")
    raise TypeError(f"{where} is a {type(value).__name__} ({value!r:.60}); only JSON values "
                    f"(None, bool, int, float, str, lists and dicts of them) are allowed{hint}")


def canonical_json(value, where="value"):
    """The canonical JSON text of plain data (sorted keys, no spaces); errors name `where`."""
    _check_json(value, where)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_name(run):
    """The module-qualified name of a run function: part of every run's key."""
    return f"{run.__module__}.{run.__qualname__}"


def run_key(config_json, name):
    """sha256 of the canonical config JSON and the run's name (hex, 32 characters)."""
    h = hashlib.sha256()
    h.update(name.encode())
    h.update(b"\0")
    h.update(config_json.encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------------- the store


class Store:
    """An open store. ``Store(path)`` creates a new file or opens a vgfast store; it refuses, and
    leaves untouched, a file that is not one or that another connection has locked.

    Parameters
    ----------
    path : str or os.PathLike
    exclusive : bool, default True
        Hold SQLite's exclusive lock until :meth:`close` (the sweeping process). ``False`` opens
        for reading only (:func:`vgfast.sweep.load`).
    """

    def __init__(self, path, exclusive=True):
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"store must be a file path (str or os.PathLike); got "
                            f"{type(path).__name__}")
        self.path = os.fspath(path)
        if self.path in ("", ":memory:"):
            raise ValueError(f"store must be a file path; got {self.path!r}")
        if os.path.isdir(self.path):
            raise ValueError(f"store: {self.path!r} is a directory; give a file path such as "
                             f"runs.sqlite")
        exists = os.path.exists(self.path)
        if not exclusive and not exists:
            raise FileNotFoundError(f"store {self.path!r} does not exist")
        if exists:
            self._check_header()
        elif not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            raise ValueError(f"store: the directory of {self.path!r} does not exist")
        uri = f"file:{os.path.abspath(self.path)}" + ("" if exclusive else "?mode=ro")
        self.db = sqlite3.connect(uri, uri=True, timeout=0.5, isolation_level=None)
        try:
            if exclusive:
                self._take_lock()
            self._check_or_create(exists, exclusive)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def memory(cls):
        """A store in memory: the results of one call, kept nowhere."""
        self = object.__new__(cls)
        self.path = ":memory:"
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self._check_or_create(False, True)
        return self

    def _check_header(self):
        """A non-empty file must start as SQLite files do: refuse anything else unopened."""
        with open(self.path, "rb") as f:
            head = f.read(16)
        if head and head != b"SQLite format 3\x00":
            raise StoreError(f"store {self.path!r} is not a vgfast sweep store (not an SQLite "
                             f"file); give a new file name or an existing store")

    def _take_lock(self):
        """Exclusive lock for the life of the connection, taken now (before any write) so that a
        locked store is reported before anything changes."""
        try:
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("BEGIN EXCLUSIVE")
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreLockedError(
                    f"store {self.path!r} is locked by another connection (another sweep "
                    f"writing it, or a program reading it); wait for it to finish or use "
                    f"another file") from None
            raise StoreError(f"store {self.path!r}: {e}") from None

    def _check_or_create(self, exists, writable):
        try:
            tables = {r[0] for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreLockedError(f"store {self.path!r} is locked by another connection "
                                       f"(a sweep writing it?); read it when that finishes") from None
            raise StoreError(f"store {self.path!r} is not a vgfast sweep store ({e})") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"store {self.path!r} is not a vgfast sweep store ({e})") from None
        if not tables:
            if not writable:
                raise StoreError(f"store {self.path!r} is empty: not a vgfast sweep store")
            self.db.execute("BEGIN")
            self.db.executescript(_SCHEMA)  # executescript commits
            self.db.executemany("INSERT INTO meta VALUES (?, ?)",
                                [("format", FORMAT), ("version", VERSION),
                                 ("created", str(time.time()))])
            return
        meta = {}
        if "meta" in tables:
            try:
                meta = dict(self.db.execute("SELECT name, value FROM meta"))
            except sqlite3.DatabaseError:
                meta = {}
        if meta.get("format") != FORMAT or "runs" not in tables:
            raise StoreError(f"store {self.path!r} is an SQLite file but not a vgfast sweep store "
                             f"(tables: {sorted(tables)}); give a new file name or an existing "
                             f"store")
        if meta.get("version") != VERSION:
            raise StoreError(f"store {self.path!r} has format version {meta.get('version')!r}; "
                             f"this vgfast reads version {VERSION}")

    # ------------------------------------------------------------------ reading
    def statuses(self, keys):
        """{key: status} of those keys that have a row."""
        out = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, status FROM runs WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(self.db.execute(q, chunk))
        return out

    def rows(self, keys=None):
        """Rows as dicts of the columns, JSON columns decoded; all rows (in the order they were
        last written) or those of `keys` in that order (a key without a row is left out)."""
        select = f"SELECT {', '.join(COLUMNS)} FROM runs"
        if keys is None:
            return [self._decode(v) for v in self.db.execute(select + " ORDER BY rowid")]
        keys, found = list(keys), {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for v in self.db.execute(f"{select} WHERE key IN ({','.join('?' * len(chunk))})",
                                     chunk):
                found[v[0]] = self._decode(v)
        return [found[k] for k in keys if k in found]

    @staticmethod
    def _decode(values):
        r = dict(zip(COLUMNS, values))
        r["config"] = json.loads(r["config"])
        r["result"] = None if r["result"] is None else json.loads(r["result"])
        return r

    # ------------------------------------------------------------------ writing
    def write(self, key, status, run, config_json, result_json=None, error=None, started=None,
              finished=None, worker=None, attempts=1):
        """Insert or replace one run's row and commit it (durable when this returns)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
        self.db.execute("BEGIN")
        try:
            self.db.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})",
                (key, status, run, config_json, result_json, error, started,
                 finished if finished is not None else time.time(), worker, int(attempts)))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
