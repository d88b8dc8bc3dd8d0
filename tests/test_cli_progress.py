"""The tqdm sinks the headless commands share (rmstudio/cli_progress.py) and the one-line bad-input
wrapper (rmstudio/cli_errors.py)."""

import io

import pytest

from rmstudio.cli_errors import BAD_INPUT, reports_bad_input
from rmstudio.cli_progress import CompareProgress, TqdmSink, TrainProgress
from rmstudio.core.errors import RmstudioError


@pytest.fixture(autouse=True)
def drawn_bars(monkeypatch):
    """Bars drawn into a string: under pytest stderr is no terminal, and tqdm would hide them
    (a hidden bar counts nothing)."""
    import tqdm

    real = tqdm.tqdm

    def drawn(*args, **kwargs):
        return real(*args, **{**kwargs, "disable": False, "file": io.StringIO()})

    monkeypatch.setattr(tqdm, "tqdm", drawn)


def test_a_counting_bar_follows_the_step_and_closes_once():
    sink = TqdmSink("scoring", "texts", total=10)
    sink.log(4, {})
    sink.log(3, {})  # a late, smaller step never counts backwards
    assert sink.bar.n == 4 and sink.bar.total == 10 and not sink.should_stop()
    sink.close()
    sink.close()
    assert sink.bar is None


def test_reward_training_gets_one_bar_per_stage_with_the_latest_metrics():
    progress = TrainProgress()
    progress.log(0, {"stage": "features", "total": 6, "done": 6})
    features = progress.bar
    assert features.desc.startswith("features") and features.n == 6
    progress.log(1, {"stage": "train", "total_steps": 5, "done": 2, "train/loss": 0.69314})
    assert progress.bar is not features and progress.bar.desc.startswith("training")
    assert progress.bar.n == 2 and progress.bar.total == 5
    assert progress.bar.postfix == "loss=0.693"
    progress.close()
    assert progress.bar is None


def test_the_compare_bar_takes_its_total_from_the_first_report():
    bar = CompareProgress()
    bar.log(2, {"total": 8, "done": 2})
    bar.log(8, {"stage": "score", "total": 8, "done": 8})
    assert bar.bar.total == 8 and bar.bar.n == 8 and bar.bar.desc.startswith("scoring")
    bar.close()


@pytest.mark.parametrize("also, error, caught", [
    ((), RmstudioError("no such run"), True),
    ((), ValueError("beta must be > 0"), False),
    ((ValueError,), ValueError("beta must be > 0"), True),
])
def test_bad_input_is_one_line_and_status_2(also, error, caught, capsys):
    def cmd_fail(args):
        raise error

    wrapped = reports_bad_input(cmd_fail, also=also)
    assert wrapped.__name__ == "cmd_fail"
    if not caught:
        with pytest.raises(ValueError):
            wrapped(None)
        return
    assert wrapped(None) == BAD_INPUT
    assert capsys.readouterr().err == f"rmstudio: error: {error}\n"
