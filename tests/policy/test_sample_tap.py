"""The answers a policy run shows while it trains: TRL's own reward calls, every few steps."""

from types import SimpleNamespace

from rmstudio.core.policy.rewards import SampleTap


class Recorder:
    def __init__(self):
        self.logs = []

    def log(self, step, metrics):
        self.logs.append((step, metrics))


def length(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


def test_training_calls_report_scored_answers_every_few_steps_and_the_guards_do_not():
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=0))
    recorder = Recorder()
    tap = SampleTap(length, recorder, trainer, every=5, rows=2)
    assert tap.__name__ == "length"  # TRL names the logged reward after it
    prompts, answers = ["p1", "p2", "p3"], ["a", "bbb", [{"role": "assistant", "content": "cc"}]]
    assert tap(prompts, answers, trainer_state=trainer.state) == [1.0, 3.0, 1.0]  # what the function says
    [(step, metrics)] = recorder.logs
    assert step == 0 and metrics["samples"] == [{"prompt": "p1", "completion": "a", "reward": 1.0},
                                                {"prompt": "p2", "completion": "bbb", "reward": 3.0}]
    tap(prompts, answers, trainer_state=trainer.state)  # the same step again: nothing new
    trainer.state.global_step = 3
    tap(prompts, answers, trainer_state=trainer.state)  # not a reporting step
    trainer.state.global_step = 5
    tap(prompts, answers)  # the guard's call (no trainer_state): not a training sample
    assert len(recorder.logs) == 1
    tap(prompts, answers, trainer_state=trainer.state)
    assert [s for s, _ in recorder.logs] == [0, 5]
