"""Scores and explanations for the Score page, computed off the UI thread, newest request wins.

One reward model is loaded at a time (``core.reward.api``) and used by one job at a time: a
request made while a job runs replaces any request already waiting (typing fast never queues
up work), and an answer for anything but the latest request is dropped, so the page never
shows the score of text that is no longer there. Occlusion (many forward passes) is its own
job with progress and cancel, and so is a task lent the model (best-of-n, ``run_with_model``):
while either runs, score requests wait, so the model is never used by two threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from rmstudio.gui.worker import start_job


@dataclass
class ScoreRequest:
    model_path: str
    prompt: str
    responses: list[str]
    explain: int | None = None
    """The response whose prefix rewards are wanted (one extra forward pass), or None."""


class ScoreEngine(QObject):
    sig_scored = Signal(object, object)  # the ScoreRequest, {"rewards", "normalized", "prefix", "model"}
    sig_failed = Signal(str)
    sig_busy = Signal(bool)
    sig_occlusion_progress = Signal(int, int)  # done, total
    sig_occlusion_done = Signal(object)  # core.reward.explain.Occlusion

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.model = None  # core.reward.api.RewardModel, loaded in a job
        self.model_path = ""
        self._job = None
        self._waiting: ScoreRequest | None = None
        self._latest: ScoreRequest | None = None
        self._occlusion = None
        self._task = None  # (thread, worker) of a run_with_model task
        self._task_waiting: tuple | None = None

    @property
    def busy(self) -> bool:
        return self._job is not None or self._occlusion is not None or self._task is not None

    def request(self, request: ScoreRequest) -> None:
        self._latest = request
        if self.busy:
            self._waiting = request
            return
        self._start(request)

    def _load(self, path: str):
        from rmstudio.core.reward.api import load

        if self.model is None or self.model_path != path:
            self.model = None  # a failed load leaves no half-known model behind
            self.model = load(path)
            self.model_path = path
        return self.model

    def _start(self, request: ScoreRequest) -> None:
        def job(_sink):
            from rmstudio.core.reward.explain import prefix_rewards

            model = self._load(request.model_path)
            rewards = model.score(request.prompt, list(request.responses)) if request.responses else []
            normalized = ([(r - model.stats[0]) / model.stats[1] for r in rewards]
                          if model.stats and model.stats[1] else None)
            prefix = None
            if request.explain is not None and request.explain < len(request.responses):
                prefix = prefix_rewards(model, request.prompt, request.responses[request.explain])
            return {"rewards": rewards, "normalized": normalized, "prefix": prefix, "model": model}

        self.sig_busy.emit(True)
        self._job = start_job(self, job, lambda result: self._done(request, result),
                              lambda message, _details: self._failed(request, message))

    def _done(self, request: ScoreRequest, result: dict) -> None:
        self._job = None
        if request is self._latest:
            self.sig_scored.emit(request, result)
        self._next()

    def _failed(self, request: ScoreRequest, message: str) -> None:
        self._job = None
        if request is self._latest:
            self.sig_failed.emit(message)
        self._next()

    def _next(self) -> None:
        task, self._task_waiting = self._task_waiting, None
        if task is not None:
            self._start_task(*task)
            return
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._start(waiting)
        else:
            self.sig_busy.emit(False)

    # -- occlusion -----------------------------------------------------------------------

    def occlude(self, model_path: str, prompt: str, response: str) -> None:
        """Leave-one-word-out for one response, in the background (``cancel_occlusion`` stops)."""
        if self.busy:
            return

        def job(sink):
            from rmstudio.core.reward.explain import occlusion

            return occlusion(self._load(model_path), prompt, response, sink=sink)

        def progress(done, metrics):
            self.sig_occlusion_progress.emit(int(done), int(metrics.get("total", 0)))

        self.sig_busy.emit(True)
        self._occlusion = start_job(self, job, self._occluded,
                                    lambda message, _details: self._occlusion_failed(message), progress)

    def cancel_occlusion(self) -> None:
        if self._occlusion is not None:
            self._occlusion[1].cancel()

    def _occluded(self, result) -> None:
        self._occlusion = None
        self.sig_occlusion_done.emit(result)
        self._next()

    def _occlusion_failed(self, message: str) -> None:
        self._occlusion = None
        self.sig_failed.emit(message)
        self._next()

    # -- tasks lent the model (best-of-n) -------------------------------------------------

    def run_with_model(self, model_path: str, work, on_finished, on_failed, on_progress=None) -> None:
        """Run ``work(model, sink)`` in the background with the loaded reward model, as soon as
        no other job uses it (a task asked for while another waits replaces it)."""
        self._task_waiting = (model_path, work, on_finished, on_failed, on_progress)
        if not self.busy:
            self._next()

    def cancel_task(self) -> bool:
        """Drop the task if it has not started (True: none of its callbacks will come), else
        ask the running one to stop at its next check (False: its callbacks still come)."""
        if self._task_waiting is not None:
            self._task_waiting = None
            return True
        if self._task is not None:
            self._task[1].cancel()
        return False

    def _start_task(self, model_path, work, on_finished, on_failed, on_progress) -> None:
        # The engine moves on first: what the callback asks for (scoring the new candidates)
        # then queues behind, or starts, as any request would.
        def finished(result):
            self._task = None
            self._next()
            on_finished(result)

        def failed(message, _details):
            self._task = None
            self._next()
            on_failed(message)

        self.sig_busy.emit(True)
        self._task = start_job(self, lambda sink: work(self._load(model_path), sink), finished, failed,
                               on_progress)

    def shutdown(self) -> None:
        self._task_waiting = None
        for job in (self._job, self._occlusion, self._task):
            if job is not None:
                job[1].cancel()
                job[0].quit()
                job[0].wait(30000)
        self._job = self._occlusion = self._task = None
        self._waiting = None
