"""SQLite storage for the embedded FHIR server: bulk build, indexed search, isolated writes.

Layout (one file, built once and then only read):
- `res(seq, type, id, patient, json)`: resources in insertion order (`seq`), compact JSON,
  `patient` = the MRN the resource belongs to (its own id for a Patient);
- `tok`, `str`, `dt`: search index rows (token, string, date) per parameter id, carrying the
  patient so patient-scoped searches touch only that patient's rows;
- `params(id, key)`: parameter ids ('Observation.code' ...); `meta`: schema version, counts.

A running `FhirStore` opens the base file read-only (`immutable=1`, so several xdist workers can
share one cached file) and attaches a private writes database with the same tables plus a
namespace column for POSTed resources; every search runs on both and merges, so writes are
searchable and `reset_writes()` drops them without touching the base file.

The writes database lives in memory (SQLite's `memdb` VFS, shared by this store's connections
only): nothing is ever written to the temp folder, so a killed or SIGTERMed server leaves no
file behind. Each write belongs to one namespace (`""` by default); reads and searches see the
base data plus the writes of their own namespace only, so attempts running side by side never
see each other's POSTs. Ids come from one counter, so they are unique across namespaces.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import secrets
import sqlite3
import string
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import orjson

from medbench.fastjson import loads
from medbench.fhir.dates import now_instant
from medbench.fhir.errors import FhirError
from medbench.fhir.search import (
    ANY_SYSTEM,
    DateClause,
    Query,
    StringClause,
    TokenClause,
)
from medbench.fhir.searchparams import index_rows, param_keys, patient_of

SCHEMA_VERSION = "3"  # 3: `_lastUpdated` indexed for every type

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.res (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
    patient TEXT, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.tok (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT,
    system TEXT, code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.str (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT,
    norm TEXT NOT NULL, exact TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.dt (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT,
    low INTEGER NOT NULL, high INTEGER NOT NULL);
"""
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS {s}.res_type_id ON res (type, id);
CREATE INDEX IF NOT EXISTS {s}.res_type_patient ON res (type, patient, seq);
CREATE INDEX IF NOT EXISTS {s}.tok_code_patient ON tok (param, code, patient, seq);
CREATE INDEX IF NOT EXISTS {s}.str_norm ON str (param, norm, seq);
CREATE INDEX IF NOT EXISTS {s}.dt_patient_low ON dt (param, patient, low, high, seq);
"""
# The writes layer: the same tables with the namespace as an extra column, leading every index.
_WRITE_TABLES = """
CREATE TABLE w.res (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, patient TEXT,
    json TEXT NOT NULL, ns TEXT NOT NULL);
CREATE TABLE w.tok (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT, system TEXT,
    code TEXT NOT NULL, ns TEXT NOT NULL);
CREATE TABLE w.str (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT, norm TEXT NOT NULL,
    exact TEXT NOT NULL, ns TEXT NOT NULL);
CREATE TABLE w.dt (seq INTEGER NOT NULL, param INTEGER NOT NULL, patient TEXT, low INTEGER NOT NULL,
    high INTEGER NOT NULL, ns TEXT NOT NULL);
CREATE UNIQUE INDEX w.res_type_id ON res (type, id);
CREATE INDEX w.res_ns_type_patient ON res (ns, type, patient, seq);
CREATE INDEX w.tok_ns_code ON tok (ns, param, code, patient, seq);
CREATE INDEX w.str_ns_norm ON str (ns, param, norm, seq);
CREATE INDEX w.dt_ns_patient_low ON dt (ns, param, patient, low, high, seq);
"""
_BATCH = 20_000
_SOURCE_CHARS = string.ascii_letters + string.digits
# Bytes of resource JSON the writes layer may hold (all namespaces together): POSTs are small
# (a few KB), so this only stops a runaway or hostile client from filling memory.
MAX_WRITES_BYTES = 64 * 1024 * 1024
# Writes files of medbench versions before the in-memory writes layer, swept on start once stale.
_LEGACY_WRITES_GLOB = "medbench-fhir-writes-*.sqlite*"
_LEGACY_STALE_S = 24 * 3600


def build_database(
    path: Path | str, resources: Iterable[dict[str, Any]], later_parts: Sequence[Callable[[], Path]] = ()
) -> int:
    """Write `resources` (insertion order kept) into a new SQLite file at `path`; returns the count.

    Bulk and atomic: rows go in with executemany inside one transaction with journaling and
    syncing off, indexes are created afterwards, and the file is renamed into place only when
    complete, so a reader never sees a half-built database.

    `later_parts` give the files of the resources that follow `resources`, in order, each built
    by `build_part` (typically in other processes, while this one writes its own share): their
    rows are appended after these, renumbered, before the indexes are made.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path)
    try:
        count = _build(tmp, resources, later_parts)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def build_part(path: Path | str, resources: Iterable[dict[str, Any]]) -> int:
    """Write `resources` as a part file for `build_database(..., later_parts=...)`: the same rows,
    numbered from 1, without indexes; returns the count."""
    return _build(Path(path), resources, (), complete=False)


def _temporary_beside(path: Path) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp_name)


def _append_part(conn: sqlite3.Connection, part: Path, offset: int) -> tuple[int, int]:
    """Copy a part file's rows after the `offset` rows already written; (its count, its max id).
    Called between transactions: SQLite attaches and detaches only outside one."""
    conn.execute("ATTACH DATABASE ? AS part", (str(part),))
    try:
        conn.execute("BEGIN")
        meta = dict(conn.execute("SELECT key, value FROM part.meta"))
        conn.execute("INSERT INTO main.res SELECT seq + ?, type, id, patient, json FROM part.res", (offset,))
        for table, columns in _PART_COLUMNS.items():
            sql = f"INSERT INTO main.{table} SELECT seq + ?, param, patient, {columns} FROM part.{table}"
            conn.execute(sql, (offset,))
        conn.execute("COMMIT")
    finally:
        conn.execute("DETACH DATABASE part")
    return int(meta["count"]), int(meta["max_numeric_id"])


_PART_COLUMNS = {"tok": "system, code", "str": "norm, exact", "dt": "low, high"}


def _build(
    path: Path, resources: Iterable[dict[str, Any]], later_parts: Sequence[Callable[[], Path]], complete: bool = True
) -> int:
    # SQLite inserts run on a writer thread (sqlite3 releases the GIL while stepping), so they
    # overlap with generating, serialising and indexing the next batch on this thread.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "locking_mode=EXCLUSIVE",
            "cache_size=-200000",
            "temp_store=MEMORY",
        ):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        _run_script(conn, _TABLES.format(s="main"))
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE params (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)")
        param_ids = {key: i for i, key in enumerate(param_keys(), start=1)}
        conn.executemany("INSERT INTO params VALUES (?, ?)", [(i, k) for k, i in param_ids.items()])
        count, max_numeric_id = 0, 0
        pending: deque[Future[None]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fhir-build") as writer:
            for batch in _batches(resources, _BATCH):
                rows, batch_max_id = _batch_rows(batch, count, param_ids, _dumps_base)
                count += len(batch)
                max_numeric_id = max(max_numeric_id, batch_max_id)
                pending.append(writer.submit(_insert, conn, rows))
                if len(pending) > 2:
                    pending.popleft().result()
            for future in pending:
                future.result()
        if not complete:  # a part: its rows and counts only, committed as they are
            meta = {"count": str(count), "max_numeric_id": str(max_numeric_id)}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
            return count
        if later_parts:
            conn.execute("COMMIT")
            for later in later_parts:
                part_count, part_max_id = _append_part(conn, later(), count)
                count += part_count
                max_numeric_id = max(max_numeric_id, part_max_id)
            conn.execute("BEGIN")
        try:
            _run_script(conn, _INDEXES.format(s="main"))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"duplicate resource type/id in the input ({exc})") from None
        meta = {"schema_version": SCHEMA_VERSION, "count": str(count), "max_numeric_id": str(max_numeric_id)}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("ANALYZE")
        conn.execute("COMMIT")
    finally:
        conn.close()
    return count


_Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _batch_rows(
    batch: list[dict[str, Any]], first_seq: int, param_ids: dict[str, int], dumps: Callable[[Any], str] | None = None
) -> tuple[_Rows, int]:
    """Rows of the res/tok/str/dt tables for one batch, and the batch's largest numeric id.

    `dumps` writes the stored JSON: compact `json.dumps` by default (POSTed resources, whatever
    they hold); the bulk build passes `_dumps_base`."""
    dumps = dumps or _compact
    res_rows: list[tuple[Any, ...]] = []
    tok_rows: list[tuple[Any, ...]] = []
    str_rows: list[tuple[Any, ...]] = []
    dt_rows: list[tuple[Any, ...]] = []
    max_numeric_id = 0
    for seq, resource in enumerate(batch, start=first_seq + 1):
        rid = resource.get("id")
        rtype = resource.get("resourceType")
        if not rid or not rtype:
            raise ValueError(f"resource #{seq} lacks resourceType or id: {str(resource)[:200]}")
        if rid.isdigit():
            max_numeric_id = max(max_numeric_id, int(rid))
        patient = patient_of(resource)
        res_rows.append((seq, rtype, rid, patient, dumps(resource)))
        rows = index_rows(resource)
        tok_rows.extend((seq, param_ids[k], patient, system, code) for k, system, code in rows.tokens)
        str_rows.extend((seq, param_ids[k], patient, norm, exact) for k, norm, exact in rows.strings)
        dt_rows.extend((seq, param_ids[k], patient, low, high) for k, low, high in rows.dates)
    return (res_rows, tok_rows, str_rows, dt_rows), max_numeric_id


def _compact(resource: Any) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def _dumps_base(resource: Any) -> str:
    """Base data as orjson writes it: compact, several times faster than `json.dumps`, and it
    refuses integers beyond 64 bits, so the base data can be read back with orjson exactly
    (`medbench.fastjson`). The text may differ from `json.dumps` (`1e-5` for `1e-05`); the
    parsed values, and so every rendered answer, do not."""
    return orjson.dumps(resource).decode("utf-8")


def _insert(conn: sqlite3.Connection, rows: _Rows, schema: str = "main", namespace: str | None = None) -> None:
    """Insert one batch; rows of the writes layer carry their namespace as an extra column."""
    extra = () if namespace is None else (namespace,)
    marks = "?, ?, ?, ?, ?" + (", ?" if extra else "")
    for table, table_rows in zip(("res", "tok", "str", "dt"), rows):
        conn.executemany(f"INSERT INTO {schema}.{table} VALUES ({marks})", [row + extra for row in table_rows])


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run DDL statement by statement (executescript would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class FhirStore:
    """Read access to a built database plus a private, resettable writes layer.

    Thread-safe: readers take pooled connections; writes are serialised by a lock.
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.is_file():
            raise FileNotFoundError(
                f"FHIR database {self.db_path} does not exist; build it with medbench.ehr.cache.ensure_database"
            )
        self._base_uri = self.db_path.resolve().as_uri() + "?mode=ro&immutable=1"
        with closing(sqlite3.connect(self._base_uri, uri=True)) as base:
            meta = dict(base.execute("SELECT key, value FROM meta"))
            self.param_ids: dict[str, int] = dict(base.execute("SELECT key, id FROM params"))
            base_max_seq = base.execute("SELECT COALESCE(MAX(seq), 0) FROM res").fetchone()[0]
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.db_path} has schema version {meta.get('schema_version')}, this medbench needs {SCHEMA_VERSION}; "
                "delete the file (or the medbench cache's ehr/ folder) so it is rebuilt"
            )
        _sweep_legacy_writes_files()
        # A memdb name starting with "/" is shared by every connection of this process that
        # attaches it, and freed when the last one closes: the writer below holds it open.
        self._writes_uri = f"file:/medbench-fhir-writes-{uuid.uuid4().hex}?vfs=memdb"
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        _run_script(self._writer, _WRITE_TABLES)
        self.base_max_seq: int = base_max_seq  # seqs up to this are base data (immutable); above, writes
        self._seqs = itertools.count(base_max_seq + 1)
        self._ids = itertools.count(int(meta.get("max_numeric_id", "0")) + 1)
        self._written_bytes: dict[str, int] = {}
        self.max_writes_bytes = MAX_WRITES_BYTES
        self._base_latest: dict[str, int | None] = {}  # date param key -> latest `high` in the base data

    def _connect(self) -> sqlite3.Connection:
        # timeout: a reader waits (rather than fails) while a POST commits to the writes layer.
        conn = sqlite3.connect(self._base_uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30.0)
        conn.execute("ATTACH DATABASE ? AS w", (self._writes_uri,))
        return conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    def close(self) -> None:
        """Close every connection; the in-memory writes layer goes with the last one."""
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break
        self._writer.close()

    def read(self, resource_type: str, resource_id: str, namespace: str = "") -> dict[str, Any] | None:
        """The resource with this type and id (base, or written in `namespace`), or None."""
        with self._reader() as conn:
            row = conn.execute(
                "SELECT json FROM main.res WHERE type = ? AND id = ?", (resource_type, resource_id)
            ).fetchone()
            if row is not None:
                return loads(row[0])  # type: ignore[no-any-return]
            row = conn.execute(
                "SELECT json FROM w.res WHERE type = ? AND id = ? AND ns = ?",
                (resource_type, resource_id, namespace),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def search(self, query: Query, namespace: str = "") -> list[int]:
        """Sequence numbers of every match: insertion order, or `query.sort` order.

        Each clause is one index range scan; their results are intersected here, which keeps a
        broad clause (all of a patient's vital signs) from costing a probe per row. Writes
        count only when they belong to `namespace`."""
        seqs: list[int] = []
        sort_values: list[dict[int, Any]] = [{} for _ in query.sort]
        with self._reader() as conn:
            for schema in ("main", "w"):
                if schema == "main" and self._base_cannot_match(conn, query):
                    continue
                found: set[int] | None = None
                for sql, args in self._statements(schema, query, namespace):
                    rows = {row[0] for row in conn.execute(sql, args)}
                    found = rows if found is None else found & rows
                    if not found:
                        break
                matched = sorted(found or ())
                seqs.extend(matched)
                for position, (key, descending) in enumerate(query.sort):
                    if matched:
                        sort_values[position].update(self._sort_values(conn, schema, query, key, descending, matched))
        for position in reversed(range(len(query.sort))):
            values = sort_values[position]
            present = [s for s in seqs if values.get(s) is not None]
            present.sort(key=values.__getitem__, reverse=query.sort[position][1])
            seqs = present + [s for s in seqs if values.get(s) is None]
        return seqs

    def _base_cannot_match(self, conn: sqlite3.Connection, query: Query) -> bool:
        """Whether a date clause asks for values later than any in the (immutable) base data, so
        the base scan can be skipped: `_lastUpdated=gt<clinical now>` then reads the writes layer
        only, instead of every resource of the type (the state grader asks this per attempt)."""
        for clause in query.clauses:
            if (
                not isinstance(clause, DateClause)
                or clause.prefix not in ("gt", "sa", "ge")
                or clause.key not in self.param_ids
            ):
                continue
            if clause.key not in self._base_latest:
                row = conn.execute(
                    "SELECT MAX(high) FROM main.dt WHERE param = ?", (self.param_ids[clause.key],)
                ).fetchone()
                self._base_latest[clause.key] = row[0]
            latest = self._base_latest[clause.key]
            if latest is None or (latest < clause.low if clause.prefix == "ge" else latest <= clause.high):
                return True
        return False

    def _sort_values(
        self, conn: sqlite3.Connection, schema: str, query: Query, key: str, descending: bool, seqs: list[int]
    ) -> dict[int, Any]:
        """Sort value per matched seq: the id, or the earliest start (latest end when
        descending) of the date parameter; resources without one sort last."""
        if key == "_id":
            return dict(
                conn.execute(
                    f"SELECT seq, id FROM {schema}.res WHERE seq IN (SELECT value FROM json_each(?))",
                    (json.dumps(seqs),),
                )
            )
        sql = f"SELECT seq, {'high' if descending else 'low'} FROM {schema}.dt WHERE param = ?"
        args: list[Any] = [self._param_id(key)]
        if query.patients is not None:
            sql += f" AND patient IN ({','.join('?' * len(query.patients))})"
            args.extend(sorted(query.patients))
        sql += " AND seq IN (SELECT value FROM json_each(?))"
        args.append(json.dumps(seqs))
        pick = max if descending else min
        values: dict[int, Any] = {}
        for seq, value in conn.execute(sql, args):
            values[seq] = pick(values[seq], value) if seq in values else value
        return values

    def query_plan(self, query: Query) -> list[str]:
        """SQLite's plan for `query` on the base data, so tests and the benchmark can show
        which indexes a search uses."""
        with self._reader() as conn:
            return [
                row[3]
                for sql, args in self._statements("main", query)
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)
            ]

    def fetch(self, seqs: Iterable[int], namespace: str = "") -> list[dict[str, Any]]:
        """Resources for `seqs`, in that order (seqs dropped by a reset, or written in another
        namespace, are skipped)."""
        return [self.parse(seq, text) for seq, _, _, text in self.fetch_rows(seqs, namespace)]

    def parse(self, seq: int, text: str) -> dict[str, Any]:
        """A stored resource's JSON text parsed: base data with orjson (written by it), POSTed
        resources with the standard library (they may hold anything JSON allows)."""
        return loads(text) if seq <= self.base_max_seq else json.loads(text)  # type: ignore[no-any-return]

    def fetch_rows(self, seqs: Iterable[int], namespace: str = "") -> list[tuple[int, str, str, str]]:
        """(seq, type, id, stored JSON text) for `seqs`, in that order, skipped as in `fetch`;
        the server renders from the text, and keeps what it rendered for base seqs."""
        seqs = list(seqs)
        found: dict[int, tuple[int, str, str, str]] = {}
        wanted = json.dumps(seqs)
        with self._reader() as conn:
            for row in conn.execute(
                "SELECT seq, type, id, json FROM main.res WHERE seq IN (SELECT value FROM json_each(?))", (wanted,)
            ):
                found[row[0]] = row
            if seqs and max(seqs) > self.base_max_seq:
                sql = "SELECT seq, type, id, json FROM w.res WHERE ns = ? AND seq IN (SELECT value FROM json_each(?))"
                for row in conn.execute(sql, (namespace, wanted)):
                    found[row[0]] = row
        return [found[s] for s in seqs if s in found]

    def create(self, resource: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        """Store a POSTed resource in `namespace` of the writes layer with a new numeric id
        (unique across namespaces) and version-1 meta; the client's meta tags, profiles and
        security labels are kept, as HAPI keeps them.

        Raises FhirError(507) when the writes layer is full (`max_writes_bytes`)."""
        meta: dict[str, Any] = {"versionId": "1", "lastUpdated": now_instant()}
        meta["source"] = "#" + "".join(secrets.choice(_SOURCE_CHARS) for _ in range(16))
        client_meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        meta.update({k: v for k, v in client_meta.items() if k in ("profile", "security", "tag")})
        rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
        with self._write_lock:
            seq, new_id = next(self._seqs), str(next(self._ids))
            stored = {"resourceType": resource["resourceType"], "id": new_id, "meta": meta, **rest}
            rows, _ = _batch_rows([stored], seq - 1, self.param_ids)
            size = len(rows[0][0][4])
            if sum(self._written_bytes.values()) + size > self.max_writes_bytes:
                raise FhirError(
                    507,
                    f"The writes layer is full ({self.max_writes_bytes} bytes of POSTed resources): reset the writes of finished tasks",
                )
            with self._writer:
                self._writer.execute("BEGIN")
                _insert(self._writer, rows, schema="w", namespace=namespace)
            self._written_bytes[namespace] = self._written_bytes.get(namespace, 0) + size
        return stored

    def count_writes(self, namespace: str | None = None) -> int:
        """How many POSTed resources `namespace` (every namespace when None) holds."""
        with self._reader() as conn:
            if namespace is None:
                return int(conn.execute("SELECT COUNT(*) FROM w.res").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM w.res WHERE ns = ?", (namespace,)).fetchone()[0])

    def reset_writes(self, namespace: str | None = None) -> None:
        """Forget the POSTed resources of `namespace`, or of every namespace when None; the base
        data is untouched."""
        with self._write_lock, self._writer:
            self._writer.execute("BEGIN")
            for table in ("res", "tok", "str", "dt"):
                if namespace is None:
                    self._writer.execute(f"DELETE FROM w.{table}")
                else:
                    self._writer.execute(f"DELETE FROM w.{table} WHERE ns = ?", (namespace,))
            if namespace is None:
                self._written_bytes.clear()
            else:
                self._written_bytes.pop(namespace, None)

    def _statements(self, schema: str, query: Query, namespace: str = "") -> list[tuple[str, list[Any]]]:
        """One SELECT of seqs per clause within one schema; a match is in all of them.

        Index rows are keyed by 'Type.param', so clause rows already imply the resource type;
        the res table is read only for patient-only or id searches."""
        patients = sorted(query.patients) if query.patients is not None else None
        patient_filter = f" AND patient IN ({','.join('?' * len(patients))})" if patients is not None else ""
        ns_filter, ns_args = ("ns = ? AND ", [namespace]) if schema == "w" else ("", [])
        statements: list[tuple[str, list[Any]]] = []
        if not query.clauses or query.ids is not None:
            sql, args = (
                f"SELECT seq FROM {schema}.res WHERE {ns_filter}type = ?{patient_filter}",
                [*ns_args, query.resource_type, *(patients or [])],
            )
            if query.ids is not None:
                ids = sorted(query.ids)
                sql += f" AND id IN ({','.join('?' * len(ids))})"
                args.extend(ids)
            statements.append((sql, args))
        for clause in query.clauses:
            table, condition, cond_args = self._clause(clause)
            sql = f"SELECT seq FROM {schema}.{table} WHERE {ns_filter}param = ?{patient_filter} AND ({condition})"
            statements.append((sql, [*ns_args, self._param_id(clause.key), *(patients or []), *cond_args]))
        return statements

    def _param_id(self, key: str) -> int:
        if key not in self.param_ids:
            raise FhirError(400, f"search parameter {key} is not indexed in {self.db_path.name}; rebuild the database")
        return self.param_ids[key]

    @staticmethod
    def _clause(clause: TokenClause | StringClause | DateClause) -> tuple[str, str, list[Any]]:
        """(index table, SQL condition, arguments) for one search clause."""
        if isinstance(clause, TokenClause):
            parts, args = [], []
            for system, code in clause.alternatives:
                terms = []
                if code is not None:
                    terms.append("code = ?")
                    args.append(code)
                if system is None:
                    terms.append("system IS NULL")
                elif system is not ANY_SYSTEM:
                    terms.append("system = ?")
                    args.append(system)
                parts.append("(" + " AND ".join(terms or ["1"]) + ")")
            return "tok", " OR ".join(parts), args
        if isinstance(clause, StringClause):
            if clause.mode == "exact":
                return "str", " OR ".join("exact = ?" for _ in clause.values), list(clause.values)
            if clause.mode == "contains":
                pattern = [f"%{_like_escape(v)}%" for v in clause.values]
                return "str", " OR ".join("norm LIKE ? ESCAPE '\\'" for _ in clause.values), pattern
            args = [bound for v in clause.values for bound in (v, v + "\U0010ffff")]
            return "str", " OR ".join("(norm >= ? AND norm < ?)" for _ in clause.values), args
        return "dt", *_date_condition(clause)


def _sweep_legacy_writes_files() -> None:
    """Delete writes files that medbench versions before the in-memory writes layer left in the
    temp folder when killed; only stale ones (untouched for a day), as a running older server
    may still use a fresh one."""
    cutoff = time.time() - _LEGACY_STALE_S
    for path in Path(tempfile.gettempdir()).glob(_LEGACY_WRITES_GLOB):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date_condition(clause: DateClause) -> tuple[str, list[Any]]:
    """FHIR R4 prefix semantics on ranges: resource [low, high] against search [lo, hi]."""
    lo, hi = clause.low, clause.high
    conditions = {
        "eq": ("low >= ? AND high <= ?", [lo, hi]),
        "ne": ("NOT (low >= ? AND high <= ?)", [lo, hi]),
        "gt": ("high > ?", [hi]),
        "lt": ("low < ?", [lo]),
        "ge": ("high >= ?", [lo]),
        "le": ("low <= ?", [hi]),
        "sa": ("low > ?", [hi]),
        "eb": ("high < ?", [lo]),
        "ap": ("low <= ? AND high >= ?", [hi, lo]),
    }
    return conditions[clause.prefix]
