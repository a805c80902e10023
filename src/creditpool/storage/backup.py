"""A consistent copy of a live SQLite database (``creditpool backup PATH``).

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database page by page
while other connections keep reading and writing. The copy is made in one step, so it is a
single read transaction: under WAL it sees one committed state (writers go on meanwhile, and
a change committed during the copy is simply not in it) and it never has to start over, as
a step-by-step backup does each time another connection writes. The copy is written beside
its destination under a temporary name, checked, synced to disk and then renamed into place,
so ``PATH`` is either the previous file or a complete copy, never half of one.

PostgreSQL has its own tools, which this does not replace: ``pg_dump`` (a consistent logical
snapshot, restored with ``pg_restore``) or ``pg_basebackup`` with WAL archiving (physical,
point-in-time recovery).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from creditpool.storage.engine import SQLITE_BUSY_TIMEOUT_MS, normalize_url

POSTGRES_ADVICE = (
    "creditpool backup copies SQLite databases only; back up PostgreSQL with its own tools:"
    " pg_dump --format=custom --file=PATH DBNAME (a consistent snapshot, restored with"
    " pg_restore), or pg_basebackup with WAL archiving for point-in-time recovery"
)


class BackupError(Exception):
    """The backup could not be made (and nothing was written at the destination)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    source: Path
    destination: Path
    bytes: int
    seconds: float


def backup(
    url: str, destination: str | os.PathLike[str], *, overwrite: bool = False
) -> BackupResult:
    """Copy the SQLite database of ``url`` to ``destination``, consistently, while it is in
    use. Refuses a PostgreSQL URL (``POSTGRES_ADVICE``) and, unless ``overwrite``, an
    existing destination."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "postgresql":
        raise BackupError(POSTGRES_ADVICE)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise BackupError(f"not a SQLite database URL: {parsed.render_as_string()!r}")
    source = Path(parsed.database)
    target = Path(destination)
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists already (overwrite it with --force)")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent} to write the backup in")

    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    started = time.monotonic()
    try:
        _copy(source, partial)
        _sync(partial)
        os.replace(partial, target)
        _sync_directory(target.parent)
    except BaseException:
        for leftover in (partial, *_sidecars(partial)):
            leftover.unlink(missing_ok=True)
        raise
    return BackupResult(source, target, target.stat().st_size, time.monotonic() - started)


def _copy(source: Path, partial: Path) -> None:
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: everything in one step, one read transaction: one committed state.
            src.backup(dst, pages=-1)
            # The copy is a file of its own: no WAL beside it, nothing to lose on a rename.
            dst.execute("PRAGMA journal_mode = DELETE")
            problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise BackupError(f"the copy failed SQLite's check: {'; '.join(problems[:3])}")
        finally:
            dst.close()
    except sqlite3.Error as error:
        raise BackupError(f"backup of {source} failed: {error}") from error
    finally:
        src.close()


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_directory(path: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
