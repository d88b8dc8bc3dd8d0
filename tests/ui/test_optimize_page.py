"""The Optimize page: a policy kind runs through the shared run panel, live, with the length warning."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "policy"))
from policy_helpers import save_policy_model  # noqa: E402
from builders import synthetic_project  # noqa: E402

from PySide6.QtWidgets import QLabel  # noqa: E402

from rmstudio.core.runs.store import list_runs, run_metrics  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402


@pytest.fixture
def page(qtbot, tmp_path, monkeypatch):
    from rmstudio.gui.optimize_page import OptimizePage

    # The child process finds the synthetic reward, and trains on one thread (32-wide matrices).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS / "policy"), str(TESTS), str(TESTS.parent),
                                                      os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = synthetic_project(tmp_path, n=40)
    project = Project.open(path)
    made = OptimizePage()
    qtbot.addWidget(made)
    made.resize(1300, 850)
    made.set_project(project)
    made.show()
    yield made
    made.shutdown()
    made.set_project(None)
    project.close()


def test_grpo_runs_live_through_the_run_panel_and_warns_about_clipped_answers(page, qtbot, tmp_path):
    policy = save_policy_model(tmp_path / "policy")
    page.policy_picker.set_source("hf_dir", str(policy))
    assert not page.panel.start_button.isEnabled()  # no reward model yet: it says so
    assert "reward model" in page.panel.start_button.toolTip()
    page.reward_choice.setCurrentIndex(page.reward_choice.findData("__folder__"))
    page.reward_folder.setText("policy_helpers:even_share")
    page._update()
    page.steps.setValue(3)
    page.length.setValue(4)  # every answer is cut: the warning must show
    page.learning_rate.setText("1e-3")
    page.check_choice.addItem("odd tokens", "policy_helpers:odd_share")  # a check the policy never sees
    page.check_choice.setCurrentIndex(page.check_choice.count() - 1)
    page.guard_every.setValue(1)
    from rmstudio.core.policy.data import preview

    expected = preview(page.project, "grpo", 0.1, 0)
    assert expected["train"] + expected["held_out"] == 40
    assert f"{expected['train']} prompts to train on, {expected['held_out']} held out" in page.preview.text()
    config = page.config()
    assert (config.method, config.beta, config.lora, config.per_device_batch) == ("grpo", 0.04, True, 4)
    assert (config.check_reward, config.guard_every, config.best_of_n) == ("policy_helpers:odd_share", 1, True)
    with qtbot.waitSignal(page.sig_run_finished, timeout=120000) as done:
        page.panel.start_button.click()
    result = done.args[0]
    assert result["status"] == "finished" and result["steps"] == 3
    page.panel.plots.flush()
    assert len(page.panel.plots.values("train/reward")) == 3
    assert all(kl >= 0 for kl in page.panel.plots.values("train/kl"))
    rewards = [float(page.samples.item(r, 0).text()) for r in range(page.samples.rowCount())]
    assert rewards and rewards == sorted(rewards, reverse=True)  # the answers of step 0, best first
    assert not page.warning.isHidden() and "length" in page.warning.text().lower()
    with Project.open(page.project.path) as project:
        [run] = list_runs(project, "policy")
        assert run["status"] == "finished" and len(run_metrics(project, run["id"])["train/reward"]) == 3
    page.grab().save(str(tmp_path / "optimize.png"))

    # Results: the guard's evaluations and best-of-n share the reward-against-√KL plot.
    results = page.results
    assert page.tabs.currentWidget() is results and "Run #1 finished after 3 steps" in results.headline.text()
    names = {item.name() for item in results.kl_plot.getPlotItem().listDataItems()}
    assert {"RL: reward (optimised)", "RL: check reward", "best-of-n: reward", "best-of-n: check"} <= names
    [guard_curve] = [i for i in results.kl_plot.getPlotItem().listDataItems() if i.name() == "RL: check reward"]
    assert len(guard_curve.getData()[0]) == 4  # before the first step, then after each of 3

    # Before/after on held-out prompts, sent to the label queue through the writer.
    results.compare_button.click()
    qtbot.waitUntil(lambda: results.comparison is not None, timeout=120000)
    comparison = results.comparison
    assert results.pairs.rowCount() == len(comparison.rows) > 0
    assert "Tuned beats start under the reward model" in results.verdict.text()
    assert "not labeled yet" in results.verdict.text()
    results.send_button.click()
    qtbot.waitUntil(lambda: _queued(page.project.path) > 0, timeout=10000)
    assert _queued(page.project.path) == sum(r.start.strip() != r.tuned.strip() for r in comparison.rows)

    # Export: a folder transformers loads as it is.
    out = tmp_path / "exported"
    results.choose_export_folder = lambda: str(out)
    results.export_button.click()
    qtbot.waitUntil(lambda: "Exported to" in results.verdict.text(), timeout=60000)
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out) is not None
    results.grab().save(str(tmp_path / "optimize_results.png"))


def _queued(path) -> int:
    with Project.open(path) as project:
        return project.conn.execute(
            "SELECT count(*) FROM comparisons c JOIN responses r ON r.id = c.response_a_id "
            "WHERE r.model LIKE 'policy %'").fetchone()[0]


def test_dpo_needs_no_reward_model_and_counts_labeled_pairs(page):
    page.method_buttons["dpo"].setChecked(True)
    assert not page.reward_box.isVisible() and not page.group.isEnabled()
    assert "pairs to train on" in page.preview.text()
    assert page.panel.start_button.isEnabled()
    assert page.config().reward == ""
    page.learning_rate.setText("fast")
    with pytest.raises(ValueError, match="learning rate must be a number"):
        page.config()


def test_a_cancelled_run_is_offered_for_comparison_at_its_checkpoint_step(qtbot, tmp_path):
    from rmstudio.gui.optimize_results import OptimizeResults

    results = OptimizeResults()
    qtbot.addWidget(results)
    results.show_result({"run_id": 4, "status": "cancelled", "steps": 7, "run_folder": str(tmp_path),
                         "checkpoint": str(tmp_path / "checkpoints" / "checkpoint-5")})
    assert "cancelled after 7 steps" in results.headline.text()
    assert "last checkpoint is step 5" in results.headline.text()
    assert results.compare_button.isEnabled()
    results.show_result({"run_id": 5, "status": "cancelled", "steps": 1, "checkpoint": None})
    assert not results.compare_button.isEnabled() and "checkpoint" not in results.headline.text()


def test_the_live_model_is_a_reward_choice_snapshotted_at_start_and_auto_check_is_the_default(page, tmp_path):
    from rmstudio.core.policy.auto_check import AUTO, TRAINED_ON_FILE
    from rmstudio.core.policy.live_reward import SNAPSHOTS
    from rmstudio.core.reward.live import LiveInstantModel
    from rmstudio.gui.live_model import LiveModelController
    from rmstudio.gui.optimize_reward import AUTO_NOTE, LIVE_MODEL

    # 40 labels: enough to spare some for a check, so "auto" is the default, explained in the box
    assert page.check_choice.currentData() == AUTO and page.rewards.check() == AUTO
    assert any(AUTO_NOTE == label.text() for label in page.guard_box.findChildren(QLabel))
    assert page.reward_choice.findData(LIVE_MODEL) < 0  # no live model yet
    controller = LiveModelController(page)
    controller.model = LiveInstantModel(base=str(save_policy_model(tmp_path / "base")), device="cpu")
    status = controller.model.refresh(str(page.project.path))
    page.attach_live_model(controller)
    controller.sig_fitted.emit(True)
    index = page.reward_choice.findData(LIVE_MODEL)
    assert index == 0
    items = page.reward_choice.count()
    controller.sig_fitted.emit(True)  # a refit renames the entry in place
    assert page.reward_choice.count() == items and page.reward_choice.findData(LIVE_MODEL) == 0
    assert page.reward_choice.itemText(0).startswith(f"Live instant model ({status.pairs} labels, fitted ")
    page.reward_choice.setCurrentIndex(index)
    page._update()
    started = []
    page.panel.run = lambda kind, path, config, status="": started.append(config)
    page.start()
    [config] = started
    snapshot = Path(config.reward)
    assert snapshot.parent.name == SNAPSHOTS and (snapshot / TRAINED_ON_FILE).is_file()
    assert config.check_reward == AUTO
    page.grab().save(str(tmp_path / "optimize_live.png"))
    # a small project: too few labels to spare, the guard stays off by default
    small = Project.open(synthetic_project(tmp_path, n=10, name="small"))
    try:
        page.check_choice.setCurrentIndex(0)
        page.check_choice.clear()
        page.set_project(small)
        assert page.check_choice.currentData() == ""
    finally:
        page.set_project(None)
        small.close()
