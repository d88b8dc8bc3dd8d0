"""While a project file is open in this process, nothing else in the process may open it.

Why: SQLite's locks are POSIX advisory locks, and POSIX drops *every* lock a process holds on a
file when the process closes *any* descriptor of that file ("How To Corrupt An SQLite Database
File", section 2.2). A plain ``open(project_path).close()`` (reading the header, ``shutil.copy``,
``Path.read_bytes``) while a connection is open silently unlocks that connection. Another
process that then closes its own connection believes it is the last one, checkpoints and
*deletes* the ``-wal``/``-shm`` files, and every later commit of ours goes to an unlinked WAL
that nobody can see: acknowledged labels vanish with the next crash. SQLite shares its locks
between its own connections in one process, so only non-SQLite opens are dangerous.

This module makes that mistake impossible rather than unlikely: ``Project`` registers each file
it connects to, and a Python audit hook (PEP 578; it sees ``open``, ``os.open``, ``io.open_code``
and everything built on them) refuses any open of a registered file, or of its ``-wal``,
``-shm`` or ``-journal``, with a ``ProjectFileInUse`` error instead of a silent unlock. SQLite
opens files in C, below the hook, so its own connections are unaffected. Code that must read or
copy a project file does it through SQLite (the backup API), which keeps the locks.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmstudio.core.errors import ProjectError

_SIDE_FILES = ("-wal", "-shm", "-journal")

_lock = threading.Lock()
_open: dict[str, int] = {}  # real path -> number of live SQLite connections in this process
_names: set[str] = set()  # their base names: a cheap first filter for the audit hook
_installed = False


class ProjectFileInUse(ProjectError):
    """A plain file open of a project that SQLite has open in this process (it would unlock it),
    or a file operation (restore, replace) on a project that is still open."""


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def _base(path: str) -> str:
    for suffix in _SIDE_FILES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _audit(event: str, args: tuple) -> None:
    # Called for every audited event in the process: keep the common path to two comparisons.
    if event != "open" or not _open:
        return
    target = args[0] if args else None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not isinstance(target, str):
        return  # an open by file descriptor
    if _base(os.path.basename(target)) not in _names:
        return
    real = _base(_real(target))
    if real in _open:
        raise ProjectFileInUse(
            f"refused to open {target} outside SQLite while the project is open in this process: "
            "closing that handle would drop SQLite's locks and can lose committed labels "
            "(use the project's connection or rmstudio.core.store.backups instead)")


def install() -> None:
    """Install the audit hook once per process (hooks cannot be removed; it is cheap when idle)."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


def register(path: Path) -> None:
    install()
    real = _real(path)
    with _lock:
        _open[real] = _open.get(real, 0) + 1
        _names.add(os.path.basename(real))
        _names.add(os.path.basename(os.fspath(path)))


def unregister(path: Path) -> None:
    real = _real(path)
    with _lock:
        left = _open.get(real, 0) - 1
        if left > 0:
            _open[real] = left
        else:
            _open.pop(real, None)  # _names may keep the name: it is only a cheap first filter


def is_open(path: str | Path) -> bool:
    """Whether this process holds a connection to the project file."""
    return _real(path) in _open


def require_closed(path: str | Path, doing: str) -> None:
    if is_open(path):
        raise ProjectFileInUse(f"cannot {doing} {path}: it is open in this window or process; "
                               "close the project first")


@contextmanager
def registered(path: Path) -> Iterator[None]:
    register(path)
    try:
        yield
    finally:
        unregister(path)
