import json
from dataclasses import asdict

from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.reward.train import RewardTrainConfig
from rmstudio.gui.process_job import ProcessJob


def test_child_training_reaches_the_gui_as_signals(qtbot, tmp_path):
    tiny = save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=40)
    job = ProcessJob("rmstudio.core.reward.child",
                     [str(path), json.dumps(asdict(RewardTrainConfig(base=str(tiny), device="cpu")))])
    progress = []
    job.sig_progress.connect(lambda step, metrics: progress.append(metrics))
    with qtbot.waitSignal(job.sig_finished, timeout=120000) as finished:
        job.start()
    assert finished.args[0]["status"] == "finished"
    assert any(m.get("stage") == "features" for m in progress)


def test_a_crashing_child_becomes_an_error_signal(qtbot):
    job = ProcessJob("rmstudio.core.reward.child", ["--crash"])  # wrong arguments: exits with an error
    with qtbot.waitSignal(job.sig_failed, timeout=60000) as failed:
        job.start()
    assert failed.args[0]


def test_a_killed_child_is_reported(qtbot, tmp_path):
    job = ProcessJob("rmstudio.core.reward.child", [])
    job.process.setArguments(["-c", "import os; os.abort()"])  # a native crash
    with qtbot.waitSignal(job.sig_failed, timeout=60000) as failed:
        job.start()
    assert "ended unexpectedly" in failed.args[0]
