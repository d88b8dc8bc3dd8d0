"""The one thread that writes labels, so the UI thread never waits on a commit's fsync.

``StoreWriter`` lives on its own ``QThread`` and owns its own ``Project`` connection, opened in
that thread (SQLite connections must not cross threads). Requests are queued signals, so they
run one at a time in the order they were made; each commit is answered with ``sig_saved(dict)``
and each error with ``sig_failed(str)``. The UI-thread connection reads what was committed at
once (WAL), so the page fetches the next pair when ``sig_saved`` arrives.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from rmstudio.core.errors import RmstudioError
from rmstudio.core.runs.kinds import load_kind
from rmstudio.core.runs.launch import start as start_run_of
from rmstudio.core.runs.recorder import ProjectRecorder, apply_event
from rmstudio.core.labeling.queue import add_better_response
from rmstudio.core.labeling.new_pairs import add_pairs
from rmstudio.core.labeling.relabel import send_to_relabel
from rmstudio.core.store.project import Project


class StoreWriter(QObject):
    sig_saved = Signal(dict)  # the request, with its result added
    sig_failed = Signal(str)
    _sig_request = Signal(dict)
    _sig_close = Signal()

    def __init__(self, path: str | Path):
        super().__init__()  # no parent: it moves to its own thread
        self.path = Path(path)
        self._project: Project | None = None
        self._recorders: dict = {}  # run id -> the recorder of a run a child process streams
        self._ids = itertools.count(1)
        self._thread = QThread()
        self._thread.setObjectName("rmstudio-store-writer")
        self.moveToThread(self._thread)
        # Emitted on the UI thread, received on the writer thread: queued, in order.
        self._sig_request.connect(self._on_request)
        self._sig_close.connect(self._on_close)
        self._thread.start()

    # -- called from the UI thread -------------------------------------------------------

    def submit(self, op: str, **args) -> int:
        """Queue one write; returns its request id (echoed back in sig_saved/sig_failed)."""
        request_id = next(self._ids)
        self._sig_request.emit({"op": op, "request_id": request_id, **args})
        return request_id

    def set_label(self, comparison_id: int, annotator: str, choice: str,
                  strength: int | None = None, note: str | None = None) -> int:
        return self.submit("set_label", comparison_id=comparison_id, annotator=annotator,
                           choice=choice, strength=strength, note=note)

    def undo(self, annotator: str) -> int:
        return self.submit("undo", annotator=annotator)

    def delete_label(self, comparison_id: int, annotator: str) -> int:
        return self.submit("delete", comparison_id=comparison_id, annotator=annotator)

    def add_better_response(self, comparison_id: int, annotator: str, text: str,
                            note: str | None = None) -> int:
        return self.submit("add_better_response", comparison_id=comparison_id,
                           annotator=annotator, text=text, note=note)

    def set_setting(self, key: str, value) -> int:
        return self.submit("set_setting", key=key, value=value)

    def backup(self, min_minutes: float | None = None, reason: str = "manual") -> int:
        """A backup through this thread's connection, in order with the labels before it (a
        read: it never waits for another connection's lock). With ``min_minutes``, only when
        the project changed since the newest backup and that one is older (the rolling one)."""
        return self.submit("backup", min_minutes=min_minutes, reason=reason)

    def run_begin(self, kind_ref: str, config: dict) -> int:
        """Record the start (or the resume) of a run of ``kind_ref`` with ``config`` (JSON); the
        answer carries its ``run_id``, or ``run_error`` when it cannot start."""
        return self.submit("run_begin", kind_ref=kind_ref, config=config)

    def run_event(self, run_id: int, event: dict) -> int:
        """Apply one event a run's child process streamed (progress, artifact, end)."""
        return self.submit("run_event", run_id=run_id, event=event)

    def add_pairs(self, pairs: list) -> int:
        """New comparisons for the label queue (``labeling.new_pairs.NewPair``); the result has
        'comparison_ids' and 'added', or 'pairs_error' with the reason nothing was added."""
        return self.submit("add_pairs", pairs=list(pairs))

    def send_to_relabel(self, comparison_ids: list[int]) -> int:
        """Queue comparisons for another look (``labeling.relabel``); the result has 'queued',
        or 'relabel_error' with the reason nothing was queued."""
        return self.submit("relabel", comparison_ids=[int(c) for c in comparison_ids])

    def stop(self, timeout_ms: int = 10_000) -> None:
        """Finish the queued writes, close the connection and end the thread."""
        if not self._thread.isRunning():
            return
        self._sig_close.emit()
        self._thread.quit()
        self._thread.wait(timeout_ms)

    # -- on the writer thread ------------------------------------------------------------

    def _open(self) -> Project:
        if self._project is None:
            self._project = Project.open(self.path)
        return self._project

    @Slot(dict)
    def _on_request(self, request: dict) -> None:
        try:
            project = self._open()
            op = request["op"]
            result = dict(request)
            if op == "set_label":
                label = project.set_label(request["comparison_id"], request["annotator"],
                                          request["choice"], request.get("strength"),
                                          request.get("note"))
                result.update(choice=label.choice, strength=label.strength, note=label.note,
                              created_at=label.created_at)
            elif op == "undo":
                result["comparison_id"] = project.undo_last(request["annotator"])
            elif op == "delete":
                result["deleted"] = project.delete_label(request["comparison_id"],
                                                         request["annotator"])
            elif op == "add_better_response":
                saved = add_better_response(
                    project, request["comparison_id"], request["annotator"], request["text"],
                    note=request.get("note"))
                result.update(response_id=saved.response_id,
                              comparisons_added=saved.comparisons_added)
            elif op == "backup":
                try:  # a failed backup is news, not a failed label: it goes in the result
                    if request["min_minutes"] is None:
                        made = project.backup(request["reason"])
                    else:
                        made = project.backup_if_changed(request["min_minutes"])
                    result["backup"] = str(made.path) if made else None
                except RmstudioError as exc:
                    result["backup_error"] = str(exc)
            elif op == "run_begin":
                try:  # a run that cannot start is news for its page, not a failed label
                    kind = load_kind(request["kind_ref"])
                    config = kind.config_from_json(request["config"])
                    recorder = ProjectRecorder(project=project)
                    result["run_id"] = start_run_of(kind, project.path, config, recorder)
                    self._recorders[result["run_id"]] = recorder
                except (RmstudioError, ValueError) as exc:
                    result["run_error"] = str(exc)
            elif op == "run_event":
                recorder = self._recorders.get(request["run_id"])
                if recorder is not None:
                    apply_event(request["event"], recorder)
                    if request["event"].get("event") in ("finished", "failed"):
                        del self._recorders[request["run_id"]]
            elif op == "add_pairs":
                try:  # a refused pair is news for its page, not a failed label
                    result.update(add_pairs(project, request["pairs"]))
                except RmstudioError as exc:
                    result["pairs_error"] = str(exc)
            elif op == "relabel":
                try:  # an unknown pair is news for its page, not a failed label
                    result["queued"] = send_to_relabel(project, request["comparison_ids"])
                except RmstudioError as exc:
                    result["relabel_error"] = str(exc)
            elif op == "set_setting":
                project.set_setting(request["key"], request["value"])
            else:
                raise ValueError(f"unknown write {op!r}")
        except Exception as exc:  # noqa: BLE001 - a failed write must reach the user, not the void
            self.sig_failed.emit(str(exc) or type(exc).__name__)
            return
        self.sig_saved.emit(result)

    @Slot()
    def _on_close(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None
