"""Rolling backups of a project, made with SQLite's online backup API, and restore.

A backup is a consistent copy taken through the open connection (``Connection.backup``), so it
never opens the project file with a plain ``open()`` (see ``file_guard``) and never waits for
labelers: in WAL mode readers and the copy do not block writers. Each copy is written under a
temporary name, checked, fsynced and renamed, so a backup that exists is complete.

Backups live next to the project in ``<name>.backups/`` (found with the file, on the same disk:
they guard against damage and mistakes, not against losing the disk). They are thinned the way
Anki thins its own: every backup of the last ``RECENT`` kept, then one per day for ``DAILY``
days, then one per week for ``WEEKLY`` weeks.

Restore is check-then-rename: the chosen backup is integrity-checked, copied to a temporary file
beside the project, fsynced, and renamed over the project. The file it replaces is never
deleted: it is kept as ``<name>.replaced-<time>`` with its ``-wal``/``-shm`` (moved together,
so SQLite can never replay an old WAL into the restored file).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rmstudio.core.store import file_guard
from rmstudio.core.store.durable import fsync_file, fsync_folder, os_reason
from rmstudio.core.errors import ProjectError
from rmstudio.core.store.integrity import DamagedProject, check_copy, check_project_file, read_only_uri

RECENT, DAILY, WEEKLY = 10, 7, 8
PERIODIC_MINUTES = 15  # the app backs up a changed project this often
STAMP = "%Y%m%d-%H%M%S-%f"


class UnusableBackup(DamagedProject):
    """A file offered for a restore that is damaged: the project it would replace is untouched."""

    def __init__(self, backup: Path, project_path: Path, reason: str):
        self.path, self.reason = Path(backup), reason
        ProjectError.__init__(self, f"{Path(backup).name} cannot be restored: it is damaged ({reason}); "
                                    f"{Path(project_path).name} was not changed")


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime  # UTC
    reason: str
    size: int

    def describe(self) -> str:
        local = self.taken_at.astimezone()
        return f"{local:%Y-%m-%d %H:%M:%S}  {self.reason:<18} {self.size / 1024:,.0f} KiB  {self.path.name}"


def backup_dir(project_path: Path) -> Path:
    project_path = Path(project_path)
    return project_path.with_name(project_path.name + ".backups")


def list_backups(project_path: Path) -> list[Backup]:
    """The project's backups, newest first."""
    found = []
    folder = backup_dir(project_path)
    if not folder.is_dir():
        return []
    for path in folder.glob("*.rmstudio"):
        parsed = _parse_name(path)
        if parsed is not None:
            found.append(Backup(path, parsed[0], parsed[1], path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def _parse_name(path: Path) -> tuple[datetime, str] | None:
    # <stamp>_<reason>.rmstudio
    stem = path.name[: -len(".rmstudio")]
    stamp, _, reason = stem.partition("_")
    try:
        taken = datetime.strptime(stamp, STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return taken, reason or "manual"


def backup_project(conn: sqlite3.Connection, project_path: Path, reason: str = "manual",
                   thin: bool = True) -> Backup:
    """Copy the project behind ``conn`` into its backup folder; returns the new backup."""
    project_path = Path(project_path)
    folder = backup_dir(project_path)
    now = datetime.now(timezone.utc)
    final = folder / f"{now.strftime(STAMP)}_{reason}.rmstudio"
    tmp = folder / (final.name + ".partial")
    try:
        folder.mkdir(exist_ok=True)
        _copy_through_sqlite(conn, tmp)
        check_copy(tmp)
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_folder(folder)
    except (OSError, sqlite3.Error, ProjectError) as exc:
        _remove_quietly(tmp)
        raise ProjectError(f"backup of {project_path.name} failed: {os_reason(exc)}; "
                           "the project itself is unchanged") from None
    if thin:
        thin_backups(project_path)
    return Backup(final, now, reason, final.stat().st_size)


def _copy_through_sqlite(conn: sqlite3.Connection, dest: Path) -> None:
    _remove_quietly(dest)
    target = sqlite3.connect(dest, isolation_level=None)
    try:
        conn.backup(target, pages=-1)
        # A backup is a plain file that opens anywhere: no WAL beside it.
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()


def backup_if_changed(conn: sqlite3.Connection, project_path: Path,
                      min_minutes: float = PERIODIC_MINUTES) -> Backup | None:
    """The periodic backup: only when the project changed since the newest backup and that
    backup is older than ``min_minutes``. Reads file times with ``stat`` (never ``open``)."""
    project_path = Path(project_path)
    newest = next(iter(list_backups(project_path)), None)
    if newest is not None:
        age = datetime.now(timezone.utc) - newest.taken_at
        if age < timedelta(minutes=min_minutes):
            return None
        changed = max(_mtime(project_path), _mtime(Path(str(project_path) + "-wal")))
        if changed <= newest.taken_at.timestamp():
            return None
    return backup_project(conn, project_path, "periodic")


def thin_backups(project_path: Path, now: datetime | None = None) -> list[Path]:
    """Delete backups the rotation no longer keeps; returns what was deleted."""
    now = now or datetime.now(timezone.utc)
    backups = list_backups(project_path)
    keep = {b.path for b in backups[:RECENT]}
    seen: set = set()
    for b in backups:  # newest first: the newest of each day (then week) is the one kept
        age = now - b.taken_at
        if age < timedelta(days=DAILY):
            period = ("day", b.taken_at.date())
        elif age < timedelta(weeks=WEEKLY):
            period = ("week", tuple(b.taken_at.isocalendar()[:2]))
        else:
            continue
        if period not in seen:
            seen.add(period)
            keep.add(b.path)
    deleted = []
    for b in backups:
        if b.path not in keep:
            _remove_quietly(b.path)
            deleted.append(b.path)
    return deleted


def restore_backup(project_path: Path, backup: Path, newest_schema: int) -> Path:
    """Replace the project with ``backup``; returns where the replaced file was kept (or the
    project path itself when there was no file to replace)."""
    project_path, backup = Path(project_path), Path(backup)
    file_guard.require_closed(project_path, "restore over")
    if not backup.is_file():
        raise ProjectError(f"no backup file {backup}")
    try:
        check_copy(backup)
        check_project_file(backup, newest_schema)
    except DamagedProject as exc:  # the candidate, not the project: say so, and that nothing changed
        raise UnusableBackup(backup, project_path, exc.reason) from None
    stamp = datetime.now(timezone.utc).strftime(STAMP)
    tmp = project_path.with_name(f"{project_path.name}.restoring-{stamp}")
    try:
        source = sqlite3.connect(read_only_uri(backup), uri=True)
        try:
            _copy_through_sqlite(source, tmp)
        finally:
            source.close()
        check_copy(tmp)
        fsync_file(tmp)
        kept = project_path
        if project_path.exists():
            kept = project_path.with_name(f"{project_path.name}.replaced-{stamp}")
            os.replace(project_path, kept)
            for side in ("-wal", "-shm", "-journal"):
                old = Path(str(project_path) + side)
                if old.exists():
                    os.replace(old, Path(str(kept) + side))
        os.replace(tmp, project_path)
        fsync_folder(project_path.parent)
    except (OSError, sqlite3.Error) as exc:
        _remove_quietly(tmp)
        raise ProjectError(f"restore of {project_path.name} from {backup.name} failed: "
                           f"{os_reason(exc)}") from None
    return kept


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _remove_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def newest_good_backup(project_path: Path) -> Backup | None:
    """The newest backup that passes its integrity check (for the damaged-file dialog)."""
    for b in list_backups(project_path):
        try:
            check_copy(b.path)
            return b
        except ProjectError:
            continue
    return None


__all__ = ["Backup", "backup_dir", "list_backups", "backup_project", "backup_if_changed",
           "thin_backups", "restore_backup", "newest_good_backup"]
