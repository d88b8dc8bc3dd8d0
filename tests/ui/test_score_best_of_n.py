"""The Score page's best-of-n box and "From project…": generated or stored responses become the
page's candidates, ranked by the reward model, the best one marked; Cancel and a slow model
leave the window usable."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from builders import add_pairs
from tiny_models import save_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reward"))
import reward_folders  # noqa: E402

import rmstudio  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402

PROMPT = "What is the capital of France?"
WAIT_MS = 180_000


instant_dir = reward_folders.instant_dir  # the shared fixture (reward_folders.py)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny")


@pytest.fixture
def page(qtbot, tmp_path, instant_dir):
    from rmstudio.gui.score_page import ScorePage
    from rmstudio.gui.store_writer import StoreWriter

    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        add_pairs(project, 3, prompt="capital question {i}", a="Paris is the capital {i}", b="Lyon {i}")
    project = Project.open(path)
    writer = StoreWriter(path)
    made = ScorePage()
    qtbot.addWidget(made)
    made.resize(1200, 860)
    made.set_project(project)
    made.set_writer(writer)
    made.use_model_folder(str(instant_dir))
    made.show()
    yield made
    made.shutdown()
    writer.stop()
    project.close()


@pytest.fixture
def slow_generator(monkeypatch):
    """Best-of-n with a generator that takes 0.2 s a response (sleeping: the GIL is free, as
    it mostly is while torch generates) and no model to load."""
    from rmstudio.core.models import loading
    from rmstudio.core.reward import best_of_n

    def generator(_model, _tokenizer, seed=0, **_kwargs):
        def generate(prompt, k):
            time.sleep(0.2)
            return f" answer {k}" + " Paris" * (k % 3)
        return generate

    monkeypatch.setattr(best_of_n, "lm_generator", generator)
    monkeypatch.setattr(loading, "load_causal_lm", lambda source, device="cpu", sink=None: (None, None))


def test_best_of_4_fills_4_candidates_ranked_with_the_best_marked(page, qtbot, instant_dir, policy_dir,
                                                                  tmp_path):
    box = page.best_of_n
    box.picker.set_source("hf_dir", str(policy_dir))
    page.prompt.setPlainText(PROMPT)
    box.n_spin.setValue(4)
    with qtbot.waitSignal(box.sig_ranked, timeout=WAIT_MS) as ranked:
        box.generate_button.click()
    qtbot.waitUntil(lambda: not page.engine.busy and len(page.rewards) == 4, timeout=WAIT_MS)
    generated = [r.text for r in ranked.args[1]]
    texts = [c.text() for c in page.candidates]
    assert len(texts) == 4 and texts == generated and all(t.strip() for t in texts)
    expected = rmstudio.load_reward_model(instant_dir, device="cpu").score(PROMPT, texts)
    assert page.rewards == pytest.approx(expected, abs=1e-4)
    assert page.rewards == sorted(page.rewards, reverse=True)  # response 1 is the winner
    assert [c.best for c in page.candidates] == [True, False, False, False]
    assert page.candidates[0].title() == "Response 1 · best"
    assert page.candidates[0].reward.text().startswith("#1 ") and "response 1" in page.headline.text()
    assert page.matrix.rowCount() == 4
    assert box.status.text().startswith("Best of 4; the best is response 1")
    assert box.generate_button.isVisible() and not box.cancel_button.isVisible()
    page.grab().save(str(tmp_path / "best-of-4.png"))


def test_cancel_ranks_what_was_generated_and_leaves_the_page_usable(page, qtbot, slow_generator):
    box = page.best_of_n
    page.prompt.setPlainText(PROMPT)
    box.n_spin.setValue(16)
    box.generate_button.click()
    qtbot.waitUntil(lambda: box.progress.value() >= 2, timeout=WAIT_MS)
    assert box.cancel_button.isVisible() and not box.n_spin.isEnabled()
    assert "of 16 generated · about" in box.status.text() and "left" in box.status.text()
    with qtbot.waitSignal(box.sig_ranked, timeout=WAIT_MS) as ranked:
        box.cancel_button.click()
    kept = len(ranked.args[1])
    assert 2 <= kept < 16 and len(page.candidates) == kept
    assert box.status.text().startswith(f"Cancelled after {kept} of 16")
    assert box.generate_button.isVisible() and box.n_spin.isEnabled()
    qtbot.waitUntil(lambda: not page.engine.busy, timeout=WAIT_MS)
    page.candidates[0].edit.setPlainText(" typed after the cancel")  # the page scores again
    with qtbot.waitSignal(page.engine.sig_scored, timeout=WAIT_MS) as scored:
        pass
    assert scored.args[0].responses[0] == " typed after the cancel"


def test_best_of_n_never_blocks_the_window(page, qtbot, slow_generator):
    from PySide6.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    page.prompt.setPlainText(PROMPT)
    page.best_of_n.n_spin.setValue(6)
    timer.start(10)
    with qtbot.waitSignal(page.best_of_n.sig_ranked, timeout=WAIT_MS):
        page.best_of_n.generate_button.click()
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(page.candidates) == 6
    assert len(ticks) > 50 and max(gaps) < 0.3  # the window kept ticking while it generated


def test_best_of_n_needs_a_prompt_and_a_reward_model(page):
    box = page.best_of_n
    assert not box.start("   ", page.model_path()) and box.status.text() == "Type a prompt first."
    assert not box.start(PROMPT, "") and "Choose a reward model" in box.status.text()
    assert not box.running and len(page.candidates) == 2


def test_from_project_fills_the_prompt_and_its_responses(page, qtbot):
    dialog = page.open_project_prompts()
    assert dialog.list.count() == 3 and "3 prompts" in dialog.note.text()
    dialog.search.setText("question 1")
    dialog.refresh()  # what the pause in typing does
    assert dialog.list.count() == 1
    with qtbot.waitSignal(page.engine.sig_scored, timeout=WAIT_MS):
        dialog.use_button.click()
    assert page.prompt.toPlainText() == "capital question 1"
    assert [c.text() for c in page.candidates] == ["Paris is the capital 1", "Lyon 1"]
    assert len(page.rewards) == 2 and sum(c.best for c in page.candidates) == 1
    page.prompt.setPlainText("")
    page.score_now()
    assert not any(c.best for c in page.candidates)  # nothing ranked, nothing marked
    dialog = page.open_project_prompts()
    dialog.search.setText("no such prompt")
    dialog.refresh()
    assert dialog.list.count() == 0 and not dialog.use_button.isEnabled()
    assert "No prompt matches" in dialog.note.text()
    dialog.reject()


def test_cancel_while_waiting_for_the_reward_model_drops_the_run(page, qtbot, slow_generator, monkeypatch):
    from rmstudio.core.reward import api

    real = api.RewardModel.score

    def slow(self, prompt, responses):
        time.sleep(0.6)
        return real(self, prompt, responses)

    monkeypatch.setattr(api.RewardModel, "score", slow)
    box, ranked = page.best_of_n, []
    box.sig_ranked.connect(lambda prompt, result: ranked.append(result))
    page.set_texts(PROMPT, [" Paris."])
    page.score_now()
    assert page.engine.busy and box.start(PROMPT, page.model_path())  # waits for the scoring
    assert "Waiting for the reward model" in box.status.text()
    box.cancel_button.click()
    assert not box.running and box.status.text() == "Cancelled before anything was generated."
    qtbot.waitUntil(lambda: not page.engine.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    assert ranked == [] and [c.text() for c in page.candidates] == [" Paris."]


def test_a_generation_model_that_fails_to_load_is_one_line(page, qtbot, monkeypatch):
    from rmstudio.core.models import loading

    def broken(source, device="cpu", sink=None):
        raise loading.ModelError("could not load model tiny: config.json is not valid JSON")

    monkeypatch.setattr(loading, "load_causal_lm", broken)
    box = page.best_of_n
    assert box.start(PROMPT, page.model_path())
    qtbot.waitUntil(lambda: not box.running, timeout=WAIT_MS)
    assert box.status.text() == "Best-of-n failed: could not load model tiny: config.json is not valid JSON"
    assert box.generate_button.isVisible() and len(page.candidates) == 2
