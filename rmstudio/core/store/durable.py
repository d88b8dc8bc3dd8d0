"""Putting written files on disk before they are renamed into place, and saying why a write
failed in words.

A rename can reach the disk before the data of the file it names: after a power cut the new
name may point at an empty file that replaced a good one. So every atomic write in rmstudio
(exports, backups, restores, checkpoints, new projects) syncs the file, renames it, then syncs
the folder that holds the new name.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush one file's data to disk (through a descriptor of our own: the writer may be a
    library that has already closed its own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make renames and new names in ``folder`` durable (POSIX). Best effort: Windows cannot
    open a folder, and some file systems (network, FAT) refuse to sync one; the data of the
    files is synced by then, and the rename itself is still atomic."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file and folder entry under ``folder``, files before the folders that hold them."""
    for path in sorted(Path(folder).rglob("*"), reverse=True):
        if path.is_file():
            fsync_file(path)
        elif path.is_dir():
            fsync_folder(path)
    fsync_folder(folder)


def os_reason(exc: BaseException) -> str:
    """'no space left on device (/x/y)' rather than "[Errno 28] No space left on device: '/x/y'"."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() + (f" ({exc.filename})" if exc.filename else "")
    return " ".join(str(exc).split()) or type(exc).__name__
