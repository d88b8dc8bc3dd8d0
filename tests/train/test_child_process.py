"""Training in a child process: progress as JSON lines, stop via stdin, crashes reported."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
from tiny_models import save_tiny_model
from builders import synthetic_project

from rmstudio.core.runs import codec
from rmstudio.core.reward.train import RewardTrainConfig


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_config_round_trips_through_json():
    config = RewardTrainConfig(method="instant", base="embedded", annotators=["ann"])
    assert codec.loads(RewardTrainConfig, codec.dumps(config)) == config
    rated = RewardTrainConfig(method="full", objective="regression", monitor_file="test.jsonl",
                              finetune={"average_last": 0.25, "learning_rate": 1e-5})
    assert codec.loads(RewardTrainConfig, json.dumps(asdict(rated))) == rated
    with pytest.raises(ValueError, match="config: unknown setting 'colour'"):
        codec.decode(RewardTrainConfig, {"colour": "blue"})
    with pytest.raises(ValueError, match=r"config.features.layers\[0\]: expected a whole number"):
        codec.decode(RewardTrainConfig, {"features": {"layers": ["last"]}})


def test_child_reports_progress_and_result(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=40)
    config = json.dumps(asdict(RewardTrainConfig(base=str(tiny_dir), device="cpu")))
    done = subprocess.run([sys.executable, "-m", "rmstudio.core.reward.child", str(path), config],
                          input="", capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(e["event"] == "progress" for e in events)
    assert events[-1]["event"] == "finished" and events[-1]["result"]["status"] == "finished"


def test_child_failure_is_an_event_not_a_hang(tmp_path):
    path = synthetic_project(tmp_path, n=10)
    config = json.dumps(asdict(RewardTrainConfig(base=str(tmp_path / "no-such-model"))))
    done = subprocess.run([sys.executable, "-m", "rmstudio.core.reward.child", str(path), config],
                          input="", capture_output=True, text=True, timeout=120)
    last = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 1
    assert last["event"] == "failed" and "no-such-model" in last["message"]


def test_stop_line_cancels_the_child(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=200)
    config = json.dumps(asdict(RewardTrainConfig(base=str(tiny_dir), device="cpu")))
    child = subprocess.Popen([sys.executable, "-m", "rmstudio.core.reward.child", str(path), config],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in child.stdout:  # wait for the first feature batch, then ask it to stop
        if '"features"' in line:
            child.stdin.write("stop\n")
            child.stdin.flush()
            break
    rest = child.stdout.read()
    child.wait(timeout=120)
    last = json.loads(rest.strip().splitlines()[-1])
    assert last["event"] == "finished" and last["result"]["status"] == "cancelled"
