"""A transformers ``TrainerCallback`` that sends a Trainer's progress and logs to a run recorder.

Why: rmstudio's own training loop reports through a ``RunRecorder`` (``log`` /
``should_stop`` / ``artifact``). TRL's trainers (Reward, DPO, GRPO, RLOO...) are transformers
``Trainer`` subclasses, and they report only through callbacks. TRL's own
``RichProgressCallback`` (trl/trainer/callbacks.py) is the pattern: it uses ``on_train_begin``
to set up, ``on_step_end`` to advance, and ``on_log`` to show the latest numbers. Doing the
same with a recorder means both rmstudio's loop and TRL trainers write runs the same way, so a
GRPO/RLOO/DPO run gets live curves in the project, a progress bar and a Cancel button, in
the GUI or through a child process (``StreamRecorder``), with no change to the recorder.

Metric names (``metric_name``); each is stable, so a curve keeps its name from run to run:

- a key that already contains '/' is kept (TRL's ``rewards/chosen``, ``completions/clipped_ratio``);
- ``eval_*`` becomes ``val/*`` (``eval_loss`` -> ``val/loss``,
  ``eval_rewards/chosen`` -> ``val/rewards/chosen``);
- any other key becomes ``train/*`` (``loss`` -> ``train/loss``, ``grad_norm``, ``learning_rate``,
  ``epoch`` -> ``train/epoch``, TRL's plain ``kl``/``entropy`` -> ``train/kl``...). The
  end-of-training summary keeps its own names (``train_loss`` -> ``train/train_loss``), so
  it never overwrites the last step's ``train/loss``.

Values that are not finite real numbers (NaN, inf, strings, lists, bools) are dropped. Every
log also carries the progress: ``done`` (``state.global_step``), ``total`` and ``total_steps``
(``state.max_steps``; the latter is the name rmstudio's own loop and the Train page use).

Cancel: ``should_stop()`` is polled after every optimizer step (``on_step_end``) and after
every gradient-accumulation micro-batch (``on_substep_end``), so a cancel waits for at most one
forward/backward pass. When it is true the callback sets ``should_training_stop`` and clears
``should_save`` and ``should_evaluate`` (again in ``on_epoch_end``, where the Trainer may ask
for an epoch-end save or evaluation once more). Logging stays on: it is cheap and keeps the
last step's loss on the curve.

Why no save on cancel, even though rmstudio's own loop saves one: a transformers checkpoint is
written in place (``checkpoint-N/`` gets the weights, then the optimizer, then the trainer
state) and takes as long as the model is big, and the evaluation a step may ask for can take
minutes, so either would make a cancel arbitrarily slow. A cancel that is slow gets killed,
and a killed save leaves a half-written ``checkpoint-N``. ``get_last_checkpoint`` takes the
highest-numbered folder without checking it is complete, so a later resume would load that
broken folder. Without the save, a cancelled TRL run resumes from its last periodic
checkpoint (``save_steps``), which is complete. A caller who wants a checkpoint on cancel
can call ``trainer.save_model`` / ``trainer._save_checkpoint`` after ``train()`` returns.
"""

from __future__ import annotations

import math
from numbers import Real

from transformers import TrainerCallback

from rmstudio.core.runs.recorder import RunRecorder

SKIPPED_KEYS = frozenset({"step"})
"""Keys that are not metrics (``step`` is the x-axis; ``Trainer.log`` puts it only into
``log_history``, but a subclass may pass it to callbacks as well)."""


def metric_name(key: str) -> str:
    """The recorded name of a key in a Trainer's logs (see the module docstring)."""
    if key.startswith("eval_"):
        return "val/" + key[len("eval_"):]
    if "/" in key:
        return key
    return "train/" + key


def metric_value(value) -> float | None:
    """``value`` as a finite float, or None when it is not one (a bool, a string, a list, NaN)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        # numpy/torch scalars that are not Real subclasses still expose .item()
        item = getattr(value, "item", None)
        if item is None or getattr(value, "ndim", 0) != 0:
            return None
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):
            return None
        if isinstance(value, bool) or not isinstance(value, Real):
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def recorded_logs(logs: dict) -> dict[str, float]:
    """A Trainer's ``logs`` as the recorder's named metrics."""
    metrics = {}
    for key, value in logs.items():
        if key in SKIPPED_KEYS:
            continue
        number = metric_value(value)
        if number is not None:
            metrics[metric_name(key)] = number
    return metrics


class RecorderCallback(TrainerCallback):
    """Forwards a transformers/TRL Trainer's progress and logs to ``recorder``; stops training
    when ``recorder.should_stop()``.

    ``every_n_steps``: how often (in optimizer steps) a progress-only report (``done``/``total``)
    is sent between logs, so a progress bar moves even with a large ``logging_steps``; 0 sends
    none. ``should_stop`` is polled every step whatever this is.

    Only the main process should record: give the other processes of a distributed run a
    ``NullRecorder`` (``should_stop`` of a non-main process is then always False; the Trainer
    does not broadcast ``control``, so a multi-process cancel needs the stop flag shared).
    """

    def __init__(self, recorder: RunRecorder, every_n_steps: int = 1):
        self.recorder = recorder
        self.every_n_steps = max(0, int(every_n_steps))
        self.stopped = False
        """True once a cancel stopped the training (the caller reports 'cancelled')."""

    # -- progress --------------------------------------------------------------------------

    @staticmethod
    def progress(state) -> dict:
        # done/total for progress sinks; total_steps as rmstudio's own loop reports it (the Train
        # page shows "Step {step}/{total_steps}" for any report that has it)
        return {"done": state.global_step, "total": state.max_steps, "total_steps": state.max_steps,
                "unit": "steps"}

    def on_train_begin(self, args, state, control, **kwargs):
        self.stopped = False
        self.recorder.log(state.global_step, {"stage": "train", **self.progress(state)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.recorder.log(state.global_step, {**recorded_logs(logs or {}), **self.progress(state)})

    # -- cancel ----------------------------------------------------------------------------

    def _check_stop(self, control) -> None:
        if self.stopped or self.recorder.should_stop():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False

    def on_step_end(self, args, state, control, **kwargs):
        self._check_stop(control)
        if (not self.stopped and self.every_n_steps and not control.should_log
                and state.global_step % self.every_n_steps == 0):
            # a log follows this step anyway when should_log: it carries done/total itself
            self.recorder.log(state.global_step, self.progress(state))
        return control

    def on_substep_end(self, args, state, control, **kwargs):
        # Between gradient-accumulation micro-batches: the Trainer breaks out of its loop right
        # after this; the partly accumulated step is dropped (no optimizer step, no save).
        self._check_stop(control)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # DefaultFlowCallback (run before this one) may ask for an epoch-end save/evaluation.
        if self.stopped:
            control.should_save = False
            control.should_evaluate = False
        return control
