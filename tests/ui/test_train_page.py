"""The Train page with a tiny random backbone: runs, results, errors, preview, cancel, live curves."""

from __future__ import annotations

import json
import os
import re

import pytest
from tiny_models import save_tiny_model
from builders import rated_project, synthetic_project

from rmstudio.core.store.project import Project
from rmstudio.core.reward.train import RewardTrainConfig, split_preview
from rmstudio.core.runs.store import list_runs, run_artifacts, run_metrics


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def make_page(qtbot):
    from rmstudio.gui.train_page import TrainPage

    made = []

    def make(path, base=None):
        project = Project.open(path)
        page = TrainPage()
        qtbot.addWidget(page)
        page.resize(1200, 800)
        page.set_annotator("alice")
        page.set_project(project)
        if base is not None:
            page.base_picker.set_source("hf_dir", str(base))
        page.show()
        made.append((page, project))
        return page

    yield make
    for page, project in made:
        page.shutdown()
        page.set_project(None)
        project.close()


@pytest.fixture
def captured_errors(monkeypatch):
    """Replace the page's QMessageBox with a recorder (no window, nothing blocks)."""
    from rmstudio.gui import run_panel

    shown = []

    class FakeBox:
        Critical = 3

        def __init__(self, parent=None):
            self.text = ""

        def setText(self, text):  # noqa: N802 - Qt API
            self.text = text
            shown.append(text)

        def open(self):
            pass

        def __getattr__(self, name):
            return lambda *a, **k: None

    monkeypatch.setattr(run_panel, "QMessageBox", FakeBox)
    return shown


def test_instant_run_finishes_shows_results_and_appears_in_runs(tmp_path, tiny_dir, make_page, qtbot):
    from rmstudio.gui.runs_page import RunsPage

    path = synthetic_project(tmp_path, n=80)
    page = make_page(path, tiny_dir)
    page.val_share.setValue(25)
    page.settings.cross_validation.setCurrentIndex(page.settings.cross_validation.findData("off"))
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000) as blocker:
        page.start_button.click()
    result = blocker.args[0]
    assert result["status"] == "finished"
    assert "20 validation pairs" in page.results.headline.text()
    assert "only 20 validation pairs" in page.results.headline.text()  # under 30: said plainly
    accuracy = result["evaluation"]["accuracy"]
    assert f"Validation accuracy {100 * accuracy:.1f}%" in page.results.headline.text()
    assert "prefer-longer" in page.results.headline.text()
    assert page.tabs.currentWidget() is page.results
    assert page.results.mistakes.rowCount() == len(result["evaluation"]["confident_mistakes"])
    assert page.start_button.isEnabled() and not page.cancel_button.isEnabled()

    runs = RunsPage()
    qtbot.addWidget(runs)
    with Project.open(path) as project:
        runs.set_project(project)
        assert runs.table.rowCount() == 1
        assert runs.table.item(0, 3).text() == "finished"
        assert runs.table.item(0, 6).text() == f"{100 * result['metrics']['val/accuracy']:.1f}%"
        runs.set_project(None)
        # Trained in a child process, recorded by this process's writer: the run is ours, its
        # curves and artifacts arrived as events.
        [run] = list_runs(project, "reward")
        assert json.loads(run["owner"])["pid"] == os.getpid()
        assert run_metrics(project, run["id"])["val/accuracy"]
        kinds = {a["kind"] for a in run_artifacts(project, run["id"])}
        assert {"model", "evaluation"} <= kinds


def test_ratings_train_by_regression_from_the_page(tmp_path, tiny_dir, make_page, qtbot):
    """The 'Learn from' choice offers ratings only where there are some, previews rated
    responses, and the run's results speak of correlation and RMSE, not pair accuracy."""
    plain = make_page(synthetic_project(tmp_path, n=20), tiny_dir)
    assert not plain.objective.model().item(1).isEnabled()
    assert "none in this project" in plain.objective.itemText(1)

    page = make_page(rated_project(tmp_path, n=80), tiny_dir)
    page.val_share.setValue(25)
    assert page.objective.model().item(1).isEnabled() and page.objective.itemText(1).endswith("240")
    page.objective.setCurrentIndex(1)
    assert not page.finetune_box.distill.isEnabled()  # no pairwise teacher for ratings
    page.refresh_preview()
    assert "240</b> rated responses" in page.preview.text()
    assert page.config().objective == "regression"
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000) as blocker:
        page.start_button.click()
    result = blocker.args[0]
    assert result["status"] == "finished" and result["objective"] == "regression"
    headline = page.results.headline.text()
    assert f"Pearson {result['evaluation']['pearson']:.2f}" in headline and "RMSE" in headline
    assert "pairs the ratings imply" in headline
    results = page.results
    assert results.ratings_plot.isVisible() and not results.reliability_plot.isVisible()
    assert not results.mistakes_panel.isVisible()  # no pair "mistakes" to send back for ratings
    points = results.ratings_plot.getPlotItem().listDataItems()[-1].getData()[1]
    assert len(points) == result["evaluation"]["responses"]
    page.grab().save(str(tmp_path / "regression.png"))
    results.show_result({"status": "finished", "evaluation": {"pairs": 0}})  # a pairwise run again
    assert results.reliability_plot.isVisible() and not results.ratings_plot.isVisible()


def test_a_bad_base_model_shows_an_error_and_the_page_stays_usable(tmp_path, make_page, qtbot,
                                                                     captured_errors):
    path = synthetic_project(tmp_path, n=20)
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "nonsense"}))
    page = make_page(path, broken)
    page.start_button.click()
    qtbot.waitUntil(lambda: bool(captured_errors) and not page.running, timeout=180000)
    assert page.start_button.isEnabled() and not page.cancel_button.isEnabled()
    assert "failed" in page.status.text().lower()
    with Project.open(path) as project:  # the project and its labels are intact
        assert project.counts()["labels"] == 20
        [run] = list_runs(project, "reward")  # remembered as failed, with the reason
        assert run["status"] == "failed" and run["error"]
    # The page can start again: nothing is left running or locked.
    page.base_picker.set_source("embedded")
    assert page.start_button.isEnabled()


def test_no_labels_is_an_error_not_a_crash(tmp_path, tiny_dir, make_page, qtbot, captured_errors):
    path = tmp_path / "empty.rmstudio"
    Project.create(path).close()
    page = make_page(path, tiny_dir)
    assert "No labeled pairs" in page.preview.text()
    page.start_button.click()
    qtbot.waitUntil(lambda: bool(captured_errors) and not page.running, timeout=30000)
    assert "no labeled pairs" in captured_errors[0]
    assert page.start_button.isEnabled()


def test_the_split_preview_matches_the_core(tmp_path, make_page, qtbot):
    path = synthetic_project(tmp_path, n=60)
    page = make_page(path)
    page.val_share.setValue(30)
    page.seed.setValue(7)
    page.method_buttons["lora"].setChecked(True)  # fine-tunes always use the share
    page.refresh_preview()
    with Project.open(path) as project:
        expected = split_preview(project, RewardTrainConfig(method="lora", val_fraction=0.3, seed=7))
    numbers = [int(n.replace(",", "")) for n in re.findall(r"<b>([\d,]+)</b>", page.preview.text())]
    assert numbers == [expected["pairs"], expected["train"], expected["val"]] == [60, 42, 18]
    assert f"from {expected['prompts_val']} prompts" in page.preview.text()
    assert "Only 18 validation pairs" in page.preview.text()
    assert "both-bad" in page.preview.text()
    page.method_buttons["instant"].setChecked(True)  # 18 is under 30: an instant run cross-validates
    page.refresh_preview()
    assert "cross-validated in <b>5</b> folds by prompt" in page.preview.text()
    assert "trains on all <b>60</b> pairs" in page.preview.text()


def test_an_instant_run_on_few_labels_cross_validates_and_the_preview_said_so(tmp_path, tiny_dir, make_page,
                                                                             qtbot):
    path = synthetic_project(tmp_path, n=30)
    page = make_page(path, tiny_dir)
    page.refresh_preview()
    assert page.split["folds"] == 5 and page.split["train"] == 30
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000) as blocker:
        page.start_button.click()
    result = blocker.args[0]
    cv = result["cross_validation"]
    assert (cv["folds"], result["train_pairs"], result["val_pairs"]) == \
        (5, page.split["train"], page.split["val"])
    headline = page.results.headline.text()
    expected = (f"Cross-validated accuracy {cv['accuracy_mean']:.2f} ± {cv['accuracy_std']:.2f} "
                "(5 folds by prompt)")
    assert expected in headline
    assert "30 labeled pairs, each scored out of fold; the saved model trains on all" in headline
    assert "Per fold" in headline
    assert "Out-of-fold rewards" in page.results.hist_plot.getPlotItem().titleLabel.text
    page.results.grab().save("/tmp/cv-results.png")


def test_cancel_stops_a_run(tmp_path, tiny_dir, make_page, qtbot):
    path = synthetic_project(tmp_path, n=400)
    page = make_page(path, tiny_dir)
    cancelled = []

    def on_progress(_step, metrics):
        if metrics.get("stage") == "features" and not cancelled:
            cancelled.append(True)
            page.cancel_button.click()

    page.start_button.click()
    page._worker.sig_progress.connect(on_progress)
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000) as blocker:
        pass
    assert cancelled
    assert blocker.args[0]["status"] == "cancelled"
    with Project.open(path) as project:
        assert list_runs(project, "reward")[-1]["status"] == "cancelled"
        kept = project.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0]
        assert kept < 800  # it did not go on to the end
    assert page.start_button.isEnabled()


def test_the_live_view_follows_the_method_and_the_objective(tmp_path, tiny_dir, make_page, qtbot):
    """The reward kind declares the curves of each run: pairwise fine-tunes plot loss, accuracy,
    margin and reward; ratings plot the correlation and no margin; instant has no curves and says
    why instead of showing empty axes."""
    from rmstudio.core.reward.kind import REWARD

    page = make_page(rated_project(tmp_path, n=20), tiny_dir)
    assert not page.panel.plots.isVisible() and "curves" in page.panel.note.text()  # before a run
    pairwise = [p.title for p in REWARD.plots_of(RewardTrainConfig(method="lora"))]
    assert pairwise == ["Loss (Bradley-Terry)", "Accuracy", "Mean margin r_c − r_r", "Mean reward"]
    ratings = [p.title for p in REWARD.plots_of(RewardTrainConfig(method="lora", objective="regression"))]
    assert ratings == ["Loss (MSE, standardised ratings)", "Correlation with the rating (Pearson)",
                       "Mean reward"]
    assert REWARD.plots_of(RewardTrainConfig(method="instant")) == ()
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000):
        page.start_button.click()  # instant
        assert "no per-step curves" in page.panel.note.text() and not page.panel.plots.isVisible()


def test_confident_mistakes_go_to_the_review_queue(tmp_path, make_page, qtbot):
    from rmstudio.core.labeling.relabel import review_queue

    path = synthetic_project(tmp_path, n=10)
    page = make_page(path)
    page.results.show_result({
        "status": "finished", "run_id": 1, "method": "instant", "metrics": {"val/accuracy": 0.5},
        "evaluation": {"pairs": 2, "accuracy": 0.5, "baseline_longer": 0.5, "ece": 0.1, "reliability": [],
                       "accuracy_by_margin": [], "reward_length_correlation": 0.0,
                       "accuracy_per_annotator": {}, "rewards_chosen": [0.1, 0.2],
                       "rewards_rejected": [0.3, 0.0],
                       "confident_mistakes": [{"comparison_id": 3, "annotator": "x", "p_chosen": 0.1,
                                               "r_chosen": 0.0, "r_rejected": 2.2}]}})
    page.results.relabel_button.click()
    assert review_queue(page.project) == [3]
    assert "queued for review" in page.results.relabel_status.text()


def test_fine_tune_settings_reach_the_config_and_resume_says_why_it_is_off(tmp_path, make_page):
    path = synthetic_project(tmp_path, n=10)
    page = make_page(path)
    assert not page.finetune_box.isVisibleTo(page)
    assert page.config().finetune == {}
    page.method_buttons["full"].setChecked(True)
    assert page.finetune_box.isVisibleTo(page)
    page.finetune_box.epochs.setValue(3)
    page.finetune_box.learning_rate.setText("2e-5")
    page.finetune_box.batch_size.setValue(4)
    page.finetune_box.max_length.setValue(256)
    page.finetune_box.overlong.setCurrentIndex(page.finetune_box.overlong.findData("skip"))
    assert page.config().finetune["head_init"] == "probe"  # on by default
    assert page.config().finetune["keep_best"] is True  # on by default
    page.finetune_box.probe_head.setChecked(False)
    page.finetune_box.keep_best.setChecked(False)
    page.finetune_box.distill.setValue(0.5)
    config = page.config()
    assert config.method == "full" and config.base == "embedded"
    assert config.finetune == {"epochs": 3, "learning_rate": 2e-5, "batch_size": 4, "max_length": 256,
                               "overlong": "skip", "head_init": "random", "keep_best": False,
                               "distill_weight": 0.5, "average_last": 0.5}  # full's default average
    page.method_buttons["lora"].setChecked(True)
    assert page.config().finetune["average_last"] == 0.0  # LoRA's default: none
    page.method_buttons["full"].setChecked(True)
    assert not page.resume_button.isEnabled()
    assert page.resume_button.toolTip()


def test_a_fine_tune_result_without_evaluation_still_shows_validation_accuracy(tmp_path, make_page):
    page = make_page(synthetic_project(tmp_path, n=4))
    page.results.show_result({"status": "finished", "run_id": 2, "method": "lora", "seconds": 3.0,
                              "train": {"accuracy": 0.9}, "val": {"accuracy": 0.8125, "loss": 0.4}})
    assert "Validation accuracy 81.2%" in page.results.headline.text()


def test_a_cancelled_run_says_what_it_left_and_how_to_go_on(qtbot):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show_result({"run_id": 1, "method": "instant", "status": "cancelled"})
    assert "cached" in panel.headline.text()
    panel.show_result({"run_id": 2, "method": "lora", "status": "cancelled", "steps": 40,
                       "total_steps": 226, "checkpoint": "/runs/run-2/checkpoint-40"})
    text = panel.headline.text()
    assert "step 40 of 226" in text and "Resume" in text and "cached" not in text
    panel.show_result({"run_id": 3, "method": "full", "status": "cancelled", "steps": 0, "checkpoint": None})
    assert "nothing to resume" in panel.headline.text()


def test_results_say_how_many_overlong_pairs_were_cut_or_dropped(qtbot):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    evaluation = {"pairs": 4, "accuracy": 0.75, "baseline_longer": 0.5, "ece": 0.1,
                  "reward_length_correlation": 0.0, "rewards_chosen": [1, 2, 3, 4],
                  "rewards_rejected": [0, 1, 2, 5], "reliability": [], "accuracy_by_margin": [],
                  "accuracy_per_annotator": {}, "confident_mistakes": []}
    panel.show_result({"run_id": 3, "method": "lora", "status": "finished", "evaluation": evaluation,
                       "metrics": {}, "truncated": 12, "skipped": 0})
    assert "12 truncated" in panel.headline.text() and "0 skipped" in panel.headline.text()
    assert "Exported" not in panel.headline.text()
    panel.show_result({"run_id": 4, "method": "lora", "status": "finished", "evaluation": evaluation,
                       "metrics": {}, "steps": 200, "best_step": 150, "last_val": {"accuracy": 0.6}})
    assert "Exported: step 150 of 200" in panel.headline.text() and "60.0%" in panel.headline.text()
    assert "more than one standard error" in panel.headline.text()
    panel.show_result({"run_id": 5, "method": "full", "status": "finished", "evaluation": evaluation,
                       "metrics": {}, "steps": 200, "best_step": 200, "averaged_steps": 100})
    assert "mean of the last 100 steps" in panel.headline.text()


def test_learning_rate_follows_the_method_and_a_bad_one_is_named(qtbot):
    from rmstudio.gui.finetune_settings import FinetuneSettings

    box = FinetuneSettings()
    qtbot.addWidget(box)
    box.use_method_defaults("full")
    assert box.settings()["learning_rate"] == 3e-5
    box.use_method_defaults("lora")
    assert box.settings()["learning_rate"] == 1e-4
    box.learning_rate.setText("fast")
    with pytest.raises(ValueError, match="learning rate 'fast' is not a number"):
        box.settings()


def test_the_preview_counts_the_labels_left_out_of_training(tmp_path, make_page):
    from builders import add_pairs

    path = tmp_path / "left.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 6)
        for cid, choice in zip(ids, ["a", "b", "both_bad", "both_bad", "skip"]):
            project.set_label(cid, "alice", choice)
        project.set_label(ids[5], "bob", "skip")
    page = make_page(path)
    page.refresh_preview()
    assert "Left out: 2 both-bad and 2 skipped labels" in page.preview.text()


def test_labels_given_while_the_page_is_hidden_refresh_the_preview_only_when_it_shows(tmp_path, make_page,
                                                                                     qtbot):
    path = synthetic_project(tmp_path, n=10)
    page = make_page(path)
    page.hide()
    qtbot.waitUntil(lambda: not page._preview_timer.isActive(), timeout=2000)  # the show's own refresh
    refreshed = []
    page._preview_timer.timeout.connect(lambda: refreshed.append(True))
    page.labels_changed()
    qtbot.wait(300)
    assert not refreshed  # no per-label work while someone labels elsewhere
    page.show()
    qtbot.waitUntil(lambda: bool(refreshed), timeout=2000)
