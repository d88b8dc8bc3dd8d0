"""The Score page: typing scores, the ranking follows the model, the heat map explains, pairs go
to the label queue, and a slow model never blocks the window."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reward"))
import reward_folders  # noqa: E402

import rmstudio  # noqa: E402
from rmstudio.core.reward.explain import prefix_rewards  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402

PROMPT = "What is the capital of France?"


finetuned_dir, instant_dir = reward_folders.finetuned_dir, reward_folders.instant_dir  # shared fixtures


@pytest.fixture
def page(qtbot, tmp_path):
    from rmstudio.gui.score_page import ScorePage
    from rmstudio.gui.store_writer import StoreWriter

    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    project = Project.open(path)
    writer = StoreWriter(path)
    made = ScorePage()
    qtbot.addWidget(made)
    made.resize(1200, 800)
    made.set_project(project)
    made.set_writer(writer)
    made.show()
    yield made
    made.shutdown()
    writer.stop()
    project.close()


def _scored(page, qtbot, timeout=30000):
    """Wait for the engine's answer to the latest text on the page."""
    with qtbot.waitSignal(page.engine.sig_scored, timeout=timeout):
        page.score_now()


def test_typing_scores_ranks_and_explains(page, qtbot, finetuned_dir, tmp_path):
    page.use_model_folder(str(finetuned_dir))
    assert page.model_path() == str(finetuned_dir)
    page.prompt.setPlainText(PROMPT)
    page.candidates[0].edit.setPlainText(" Paris.")
    with qtbot.waitSignal(page.engine.sig_scored, timeout=30000):
        pass  # the debounce timer fires by itself after typing
    model = rmstudio.load_reward_model(finetuned_dir)
    first = page.rewards[0]
    assert first == pytest.approx(model.score(PROMPT, " Paris."), abs=1e-4)

    page.candidates[0].edit.setPlainText(" Paris is the capital of France.")
    page.candidates[1].edit.setPlainText(" I do not know, sorry.")
    page.add_candidate(" The quick brown fox.")
    _scored(page, qtbot)
    texts = [c.text() for c in page.candidates]
    expected = model.score(PROMPT, texts)
    assert page.rewards == pytest.approx(expected, abs=1e-4) and page.rewards[0] != first  # typing changed it
    order = sorted(range(3), key=lambda i: -expected[i])
    for rank, i in enumerate(order, 1):
        assert page.candidates[i].reward.text().startswith(f"#{rank} ")
    assert f"response {order[0] + 1}" in page.headline.text()
    assert page.matrix.rowCount() == 3 and page.matrix.item(0, 0).text() == "—"

    # The heat map explains the chosen response: one weight per token, prefix rewards ending at
    # the full reward (the same forward pass as the score).
    page.explain_box.setCurrentIndex(1)
    _scored(page, qtbot)
    prefix = prefix_rewards(model, PROMPT, texts[1])
    assert len(page.explain.weights) == len(prefix.tokens) == len(page.explain.pieces)
    assert page.explain.weights == pytest.approx(prefix.contributions, abs=1e-5)
    _, ys = page.explain.curve.getData()
    assert ys[-1] == pytest.approx(expected[1], abs=1e-4)
    page.grab().save(str(tmp_path / "score.png"))


def test_occlusion_runs_in_the_background_with_one_weight_per_word(page, qtbot, instant_dir):
    page.use_model_folder(str(instant_dir))
    page.set_texts(PROMPT, [" Paris is lovely in spring.", " No idea."])
    _scored(page, qtbot)
    page.explain_box.setCurrentIndex(0)
    with qtbot.waitSignal(page.engine.sig_occlusion_done, timeout=30000) as done:
        page.occlude_button.click()
    result = done.args[0]
    assert len(result.contributions) == 5 and not result.stopped
    assert [w for w in page.explain.weights] == pytest.approx(result.contributions)
    assert "Leave one word out" in page.explain.method_note.text()


def test_two_ticked_responses_become_a_comparison_in_the_queue(page, qtbot, instant_dir):
    page.use_model_folder(str(instant_dir))
    page.set_texts(PROMPT, [" Paris.", " Lyon."])
    for candidate in page.candidates:
        candidate.pick.setChecked(True)
    with qtbot.waitSignal(page.sig_pairs_sent, timeout=10000) as sent:
        page.send_button.click()
    assert sent.args[0] == 1 and "label queue" in page.message.text()
    with Project.open(page.project.path) as project:
        assert project.counts()["comparisons"] == 1
        models = {m for (m,) in project.conn.execute("SELECT model FROM responses")}
    assert models == {"typed in Score"}
    page.candidates[0].pick.setChecked(True)  # one ticked is not a pair
    page.send_button.click()
    assert "exactly two" in page.message.text()


def test_a_slow_model_never_blocks_the_window_and_stale_answers_are_dropped(page, qtbot, instant_dir,
                                                                          monkeypatch):
    from rmstudio.core.reward import api

    real = api.RewardModel.score

    def slow(self, prompt, responses):
        time.sleep(0.6)
        return real(self, prompt, responses)

    monkeypatch.setattr(api.RewardModel, "score", slow)
    page.use_model_folder(str(instant_dir))
    page.set_texts(PROMPT, [" first text"])
    answers = []
    page.engine.sig_scored.connect(lambda request, result: answers.append(request.responses[0]))
    ticks = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    page.score_now()
    page.candidates[0].edit.setPlainText(" second text")
    page.score_now()  # asked while the first is running: it waits, the first answer is stale
    page.candidates[0].edit.setPlainText(" third text")
    page.score_now()  # replaces the waiting one
    qtbot.waitUntil(lambda: not page.engine.busy, timeout=30000)
    timer.stop()
    assert answers == [" third text"]  # neither stale answer reached the page
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 50 and max(gaps) < 0.3  # the window kept ticking while the model worked
