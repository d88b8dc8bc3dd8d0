"""Backups in the window: the rolling timer, File → Back up now / Restore backup…, and the
offer to restore when a project file turns out to be damaged. The work is in core.backups;
copies go through the label writer's connection (one writer), restores happen while the
project is closed (core.file_guard refuses them otherwise)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from rmstudio.core.store.backups import PERIODIC_MINUTES, list_backups, newest_good_backup, restore_backup
from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.schema import SCHEMA_VERSION
from rmstudio.gui.store_writer import StoreWriter

CHECK_EVERY_MS = 60_000  # how often the timer asks; a backup is made at most every PERIODIC_MINUTES


class BackupScheduler(QObject):
    """Asks the writer for a rolling backup every minute; the writer makes one only when the
    project changed and the newest backup is older than ``PERIODIC_MINUTES``."""

    sig_status = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.writer: StoreWriter | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)

    def attach(self, writer: StoreWriter | None) -> None:
        if self.writer is not None:
            self.writer.sig_saved.disconnect(self._on_saved)
        self.writer = writer
        if writer is None:
            self.timer.stop()
            return
        writer.sig_saved.connect(self._on_saved)
        self.timer.start(CHECK_EVERY_MS)

    def tick(self) -> None:
        if self.writer is not None:
            self.writer.backup(min_minutes=PERIODIC_MINUTES, reason="periodic")

    def backup_now(self, reason: str = "manual") -> None:
        if self.writer is not None:
            self.writer.backup(reason=reason)

    def _on_saved(self, result: dict) -> None:
        if result.get("op") != "backup":
            return
        if result.get("backup_error"):
            self.sig_status.emit(f"Backup failed: {result['backup_error']}")
        elif result.get("backup"):
            self.sig_status.emit(f"Backed up to {Path(result['backup']).name}")


def offer_restore(parent: QWidget, path: Path, problem: str) -> bool:
    """The damaged-file dialog: restore the newest intact backup, pick one, or leave it.
    Returns True when a backup was restored over ``path``."""
    newest = newest_good_backup(path)
    box = QMessageBox(QMessageBox.Critical, "Project file is damaged", problem, parent=parent)
    restore = None
    if newest is not None:
        when = newest.taken_at.astimezone().strftime("%Y-%m-%d %H:%M")
        box.setInformativeText(f"The newest intact backup is from {when}. Restoring keeps the "
                               "damaged file beside it, renamed, so nothing is deleted.")
        restore = box.addButton(f"Restore backup of {when}", QMessageBox.AcceptRole)
    else:
        box.setInformativeText("There is no intact backup of this project.")
    choose = box.addButton("Choose a backup…", QMessageBox.ActionRole) if list_backups(path) else None
    box.addButton(QMessageBox.Cancel)
    box.exec()
    if restore is not None and box.clickedButton() is restore:
        return _restore(parent, path, newest.path)
    if choose is not None and box.clickedButton() is choose:
        return choose_and_restore(parent, path)
    return False


def choose_and_restore(parent: QWidget, path: Path) -> bool:
    """File → Restore backup…: pick one of the project's backups (the project must be closed)."""
    backups = list_backups(path)
    if not backups:
        QMessageBox.information(parent, "Restore backup", f"There are no backups of {path.name} yet.")
        return False
    items = [b.describe() for b in backups]
    item, ok = QInputDialog.getItem(parent, "Restore backup",
                                    f"Replace {path.name} with this backup (newest first):",
                                    items, 0, False)
    if not ok:
        return False
    return _restore(parent, path, backups[items.index(item)].path)


def _restore(parent: QWidget, path: Path, backup: Path) -> bool:
    try:
        kept = restore_backup(path, backup, SCHEMA_VERSION)
    except RmstudioError as exc:
        QMessageBox.warning(parent, "Restore failed", str(exc))
        return False
    note = f"\n\nThe file it replaced is kept as {kept.name}." if kept != path else ""
    QMessageBox.information(parent, "Backup restored", f"{path.name} now holds {backup.name}.{note}")
    return True
