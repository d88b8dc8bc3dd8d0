"""The over-optimisation guard: a check reward the policy never trains against, evaluated along
the run, to catch reward hacking while it happens.

Why: a policy tuned against a learned (proxy) reward finds texts the proxy overrates. Gao et al.
2022 ("Scaling laws for reward model overoptimization") show the true reward, plotted against
sqrt(KL) to the start policy, rises and then falls, while the proxy keeps rising. We have no true
reward, but a second reward model the policy never saw (``PolicyConfig.check_reward``) errs
differently: when the proxy rises while the check falls, the policy is exploiting the proxy.

Every ``guard_every`` steps (and once before the first step, the baseline) ``GuardCallback``
samples one completion per held-out prompt (at most ``GUARD_PROMPTS``, chosen by the seed; the
same seed for every evaluation, so two evaluations differ by the policy and not by the dice),
scores them with the proxy and the check, and estimates the KL to the start policy on those
samples (``sampling``: the sum over a completion's tokens of log pi - log ref, averaged). It
logs ``guard/proxy``, ``guard/check``, ``guard/kl``, ``guard/sqrt_kl``, ``guard/best_step`` and
``guard/diverging``; when ``diverging`` fires, ``guard/diverged_at`` and a ``warning`` text.

The policy with the best check reward so far is kept in ``guard_best/`` of the run folder (the
adapter under LoRA, a few MB; the whole model for a full fine-tune), so
``export_policy(run, out, step="best")`` can take it instead of the last one. The evaluations
are written to ``guard.json`` after each one, so a resumed run continues the history.

The check reward is a folder or ``module:function`` as ``reward`` is, or "auto": an instant
model fitted at the start on the labels the proxy did not train on (``auto_check``).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import TrainerCallback

from rmstudio.core.policy import sampling

GUARD_PROMPTS = 16
"""Held-out prompts a guard evaluation samples from (one completion each): enough for a mean,
few enough that an evaluation costs about one training step."""
GUARD_FILE = "guard.json"
BEST_DIR = "guard_best"
BEST_FILE = "guard_best.json"


@dataclass(frozen=True)
class GuardPoint:
    """One guard evaluation: the mean proxy and check rewards and KL (nats per completion)."""

    step: int
    proxy: float
    check: float
    kl: float

    @property
    def sqrt_kl(self) -> float:
        return math.sqrt(max(self.kl, 0.0))  # a Monte-Carlo estimate can dip below 0


def diverging(history: list[GuardPoint], patience: int = 3) -> int | None:
    """The step since which the run over-optimises, or None: over the last ``patience``
    evaluations the check fell at every one while the proxy never fell and rose overall.

    Consecutive on purpose: a single dip of a 16-prompt mean is noise, a run of them is a trend
    (3 falls in a row by chance alone is 1 in 8 for a flat check, and the proxy must rise too).
    The step returned is the evaluation before the first fall: the last good policy."""
    if patience < 1 or len(history) < patience + 1:
        return None
    window = history[-(patience + 1):]
    for before, after in zip(window, window[1:]):
        if not (after.check < before.check and after.proxy >= before.proxy):
            return None
    return window[0].step if window[-1].proxy > window[0].proxy else None


def first_divergence(history: list[GuardPoint], patience: int = 3) -> int | None:
    """The step ``diverging`` named first along ``history`` (what the run warned of), or None."""
    for end in range(patience + 1, len(history) + 1):
        since = diverging(history[:end], patience)
        if since is not None:
            return since
    return None


def divergence_message(patience: int, step: int) -> str:
    return (f"the check reward has fallen for {patience} evaluations while the reward rose: "
            f"likely over-optimisation since step {step}")


def choose_prompts(items: list, limit: int, seed: int) -> list:
    """At most ``limit`` of ``items`` (``PolicyPrompt``s), the same ones for the same seed."""
    ordered = sorted(items, key=lambda p: p.prompt_id)
    return ordered if len(ordered) <= limit else sorted(random.Random(seed).sample(ordered, limit),
                                                        key=lambda p: p.prompt_id)


def mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


class GuardCallback(TrainerCallback):
    """Evaluates the policy with the proxy and the check every ``config.guard_every`` steps (see
    the module docstring). ``attach(trainer)`` after the trainer is built: the guard samples from
    ``trainer.model`` and scores with the trainer's own reward function."""

    def __init__(self, recorder, config, rows: list, conversational: bool, run_folder: Path,
                 check_fn, load_start=None):
        self.recorder = recorder
        self.config = config
        self.rows = rows
        self.conversational = conversational
        self.folder = Path(run_folder)
        self.check_fn = check_fn
        self.load_start = load_start
        self.trainer = None
        self.metrics: dict[str, float] = {}
        """The last evaluation's ``guard/...`` metrics (the run's result keeps them)."""
        self.history: list[GuardPoint] = []
        self.best: GuardPoint | None = None
        self.diverged_at: int | None = None
        saved = self.folder / GUARD_FILE
        if saved.is_file():  # a resumed run: continue its history
            state = json.loads(saved.read_text())
            self.history = [GuardPoint(p["step"], p["proxy"], p["check"], p["kl"]) for p in state["history"]]
            self.diverged_at = state.get("diverged_at")
            best = state.get("best_step")
            self.best = next((p for p in self.history if p.step == best), None)

    def attach(self, trainer) -> None:
        self.trainer = trainer

    # -- when -----------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        # A resume restarts from its last checkpoint: evaluations after it judged a policy the
        # run is about to replace, so they go. The kept best stays only if it is still in the
        # history (else the next evaluation keeps its own: only a saved policy can be exported).
        self.history = [p for p in self.history if p.step <= state.global_step]
        if self.best is not None and self.best not in self.history:
            self.best = None
        self.diverged_at = first_divergence(self.history, self.config.guard_patience)
        if not self.history and state.global_step == 0:
            self.evaluate(0)  # the baseline: the start policy

    def on_step_end(self, args, state, control, **kwargs):
        every = self.config.guard_every
        # the last step sets should_training_stop too; only a cancel before it skips the evaluation
        ending = control.should_training_stop and state.global_step < state.max_steps
        if every and state.global_step % every == 0 and not ending:
            if not self.history or self.history[-1].step < state.global_step:
                self.evaluate(state.global_step)
        return control

    # -- what -----------------------------------------------------------------------------

    def measure(self, step: int) -> GuardPoint:
        """Sample, score, and estimate the KL of the current policy (no state changes)."""
        trainer, config = self.trainer, self.config
        model, tokenizer = trainer.model, trainer.processing_class
        samples = sampling.sample(model, tokenizer, self.rows, config.max_completion_length,
                                  config.temperature, config.seed)
        proxy = sampling.rewards(trainer.reward_funcs[0], samples, self.conversational)
        check = sampling.rewards(self.check_fn, samples, self.conversational)
        policy_logps = sampling.completion_logps(model, samples, config.temperature)
        with sampling.start_policy(model, getattr(trainer, "ref_model", None), self.load_start) as start:
            start_logps = sampling.completion_logps(start, samples, config.temperature)
        kl = mean([p - s for p, s in zip(policy_logps, start_logps)])
        return GuardPoint(step, mean(proxy), mean(check), kl)

    def evaluate(self, step: int) -> GuardPoint:
        point = self.measure(step)
        self.history.append(point)
        if self.best is None or point.check > self.best.check:
            self.best = point
            self.save_best(point)
        since = diverging(self.history, self.config.guard_patience)
        logged = {"stage": "guard", "guard/proxy": point.proxy, "guard/check": point.check,
                  "guard/kl": point.kl, "guard/sqrt_kl": point.sqrt_kl,
                  "guard/best_step": float(self.best.step), "guard/diverging": float(since is not None)}
        if since is not None and self.diverged_at is None:
            self.diverged_at = since
        if self.diverged_at is not None:
            text = self.message
            logged.update({"guard/diverged_at": float(self.diverged_at), "warning": text, "message": text})
        self.recorder.log(step, logged)
        self.metrics = {k: v for k, v in logged.items() if k.startswith("guard/")}
        (self.folder / GUARD_FILE).write_text(json.dumps(self.summary(), indent=1))
        return point

    def save_best(self, point: GuardPoint) -> None:
        """Keep the policy of ``point`` in ``guard_best/`` (written aside, then swapped in, so a
        killed run leaves the previous best whole)."""
        target, partial = self.folder / BEST_DIR, self.folder / (BEST_DIR + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.trainer.model.save_pretrained(partial)
        self.trainer.processing_class.save_pretrained(partial)
        (partial / BEST_FILE).write_text(json.dumps(asdict(point)))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)

    @property
    def message(self) -> str:
        if self.diverged_at is None:
            return ""
        return divergence_message(self.config.guard_patience, self.diverged_at)

    def summary(self) -> dict:
        """What the run's result keeps: every evaluation (the points of a reward against sqrt(KL)
        plot, next to ``best_of_n``'s), the best step, the divergence."""
        return {"history": [{**asdict(p), "sqrt_kl": p.sqrt_kl} for p in self.history],
                "best_step": self.best.step if self.best else None,
                "best_check": self.best.check if self.best else None,
                "best_dir": str(self.folder / BEST_DIR) if self.best else "",
                "diverged_at": self.diverged_at, "message": self.message}
