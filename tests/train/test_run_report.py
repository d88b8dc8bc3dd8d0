"""The HTML report of a run: one file with the run's figures, settings, files and inline charts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from html.parser import HTMLParser

import pytest
from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.errors import RmstudioError
from rmstudio.core.runs.report import build_report, write_report
from rmstudio.core.runs.store import add_artifact, finish_run, list_runs, log_metrics, run_metrics, start_run
from rmstudio.core.store.project import Project

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}
SVG_EMPTY = {"rect", "line", "circle", "polyline", "path"}  # self-closed inside the charts


class Checked(HTMLParser):
    """Parses a page and fails on an end tag that closes nothing open (broken nesting)."""

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.texts = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.texts.append(data)


def parse(html: str) -> Checked:
    parser = Checked()
    parser.feed(html)
    parser.close()
    assert parser.stack == [], f"left open: {parser.stack}"
    return parser


def section(html: str, heading: str) -> str:
    return html.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def lora_config() -> dict:
    from rmstudio.core.reward.train import RewardTrainConfig

    return json.loads(json.dumps(asdict(RewardTrainConfig(method="lora", base="tiny")), default=list))


def recorded_run(project, name: str = "lora on tiny") -> int:
    """A finished fine-tune as the recorder leaves it: curves, a result file, a model folder."""
    run_id = start_run(project, "reward", name, lora_config())
    for step in range(1, 21):
        log_metrics(project, run_id, step, {"train/loss": 1 / step, "train/accuracy": 0.5 + step / 50,
                                            "train/margin": step / 10})
        if step % 5 == 0:
            log_metrics(project, run_id, step, {"val/loss": 1.2 / step, "val/accuracy": 0.5 + step / 60})
    folder = project.path.parent / f"run-{run_id}"
    folder.mkdir()
    result = {"status": "finished", "train_pairs": 90, "val_pairs": 30, "steps": 20,
              "evaluation": {"pairs": 30, "accuracy": 0.8333, "baseline_longer": 0.5, "ece": 0.0712,
                             "reliability": [{"confidence": 0.6, "accuracy": 0.55, "count": 10},
                                             {"confidence": 0.9, "accuracy": 0.92, "count": 20}],
                             "accuracy_by_margin": [
                                 {"low": 0, "high": 0.5, "count": 10, "accuracy": 0.6},
                                 {"low": 0.5, "high": None, "count": 20, "accuracy": 0.95}],
                             "rewards_chosen": [0.5, 1.0, 1.5], "rewards_rejected": [-0.5, 0.0, 0.2]}}
    (folder / "result.json").write_text(json.dumps(result))
    add_artifact(project, run_id, "model", str(folder / "model"))
    add_artifact(project, run_id, "evaluation", str(folder / "result.json"))
    finish_run(project, run_id, "finished")
    return run_id


def test_a_recorded_run_has_its_figures_one_chart_per_plot_and_its_settings(project):
    run_id = recorded_run(project)
    html = build_report(project, run_id)
    page = parse(html)
    assert page.tags.count("html") == 1 and "script" not in page.tags
    text = " ".join(page.texts)
    assert "Run #1 · lora on tiny" in text and "finished" in text
    assert "0.8333" in section(html, "Results") and "0.0712" in html  # accuracy and ECE
    assert "0.8333" in html and "0.05" in section(html, "Results")  # train/loss at step 20: 1/20
    assert "90" in section(html, "Data") and "30" in section(html, "Data")
    curves = section(html, "Curves")
    # The reward kind's plots that have values: loss, accuracy, margin (mean reward was not logged).
    assert curves.count("<svg") == 3
    titles = [svg.findtext("{http://www.w3.org/2000/svg}title")
              for svg in (ET.fromstring(s.split("</svg>")[0] + "</svg>")
                          for s in ("<svg" + part for part in curves.split("<svg")[1:]))]
    assert titles == ["Loss (Bradley-Terry)", "Accuracy", "Mean margin r_c − r_r"]
    assert curves.count("<polyline") >= 5  # train and validation loss and accuracy, train margin
    assert section(html, "Evaluation").count("<svg") == 3  # reliability, by margin, rewards
    settings = section(html, "Settings")
    assert ">base<" in settings and ">tiny<" in settings and "features.max_prompt_tokens" in settings
    assert f"run-{run_id}/model" in section(html, "Files")


def test_text_from_the_run_stays_text(project):
    run_id = start_run(project, "reward", "<script>alert('x')</script>", {"note": "<b>bold</b> & co"})
    log_metrics(project, run_id, 1, {"val/<img src=x>": 0.5})
    finish_run(project, run_id, "failed", "<script>bad()</script>\ntrace")
    html = build_report(project, run_id)
    page = parse(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    text = "".join(page.texts)
    assert "<script>bad()</script>" in text and "<b>bold</b> & co" in text


def test_unknown_kinds_group_curves_by_measure_and_say_no_model(project):
    run_id = start_run(project, "something", "custom", {})
    for step in range(3):
        log_metrics(project, run_id, step, {"train/score": step, "val/score": step / 2, "lr": 0.1})
    finish_run(project, run_id, "finished")
    html = build_report(project, run_id)
    parse(html)
    assert section(html, "Curves").count("<svg") == 2  # score (train and val together) and lr
    assert "none saved" in section(html, "Files")


def test_a_missing_run_and_an_unwritable_file_are_one_line(project, tmp_path):
    with pytest.raises(RmstudioError, match="no run 99"):
        build_report(project, 99)
    run_id = recorded_run(project)
    with pytest.raises(RmstudioError) as error:
        write_report(project, run_id, tmp_path / "missing" / "report.html")
    assert "cannot write the report" in str(error.value) and "\n" not in str(error.value)
    out = write_report(project, run_id, tmp_path / "report.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_report_of_a_real_instant_run(tmp_path):
    from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model

    path = synthetic_project(tmp_path)
    base = save_tiny_model(tmp_path / "tiny")
    result = train_reward_model(path, RewardTrainConfig(method="instant", base=str(base), val_fraction=0.25,
                                                        device="cpu"))
    with Project.open(path) as project:
        [run] = list_runs(project, "reward")
        html = build_report(project, run["id"])
        metrics = run_metrics(project, run["id"])
    parse(html)
    results = section(html, "Results")
    assert f"{result['evaluation']['accuracy']:.4g}" in results
    for key, points in metrics.items():
        assert key in results and f"{points[-1][1]:.4g}" in results
    assert f"{result['val_pairs']}" in section(html, "Data")
    assert "Reliability" in section(html, "Evaluation")
    assert "<h2>Curves</h2>" not in html  # an instant fit logs one point per metric: no curves to draw
    assert result["model_dir"] in section(html, "Files")


def test_a_policy_run_has_its_declared_plots_and_reward_against_sqrt_kl(project):
    from rmstudio.core.policy.config import PolicyConfig

    config = json.loads(json.dumps(asdict(PolicyConfig(method="grpo", policy="tiny", reward="rm",
                                                       check_reward="check", guard_every=2)), default=list))
    run_id = start_run(project, "policy", "grpo on tiny", config)
    for step in range(1, 5):
        log_metrics(project, run_id, step, {"train/reward": step / 4, "train/reward_std": 0.1,
                                            "train/kl": step / 100})
        if step % 2 == 0:
            log_metrics(project, run_id, step, {"guard/proxy": step / 4, "guard/check": 0.3})
    folder = project.path.parent / "policy-run"
    folder.mkdir()
    history = [{"step": 2, "sqrt_kl": 0.1, "proxy": 0.5, "check": 0.3},
               {"step": 4, "sqrt_kl": 0.2, "proxy": 1.0, "check": 0.3}]
    (folder / "result.json").write_text(json.dumps({
        "status": "finished", "train_items": 12, "held_out_items": 4, "steps": 4,
        "guard": {"history": history}, "best_of_n": [{"sqrt_kl": 0.15, "proxy": 0.7, "check": 0.35}]}))
    add_artifact(project, run_id, "evaluation", str(folder / "result.json"))
    finish_run(project, run_id, "finished")
    html = build_report(project, run_id)
    parse(html)
    curves = section(html, "Curves")
    # GRPO's reward plot holds the mean and its spread; the guard's plot its two rewards.
    assert "<title>Reward</title>" in curves and "spread (std)" in curves
    assert "<title>Over-optimisation guard</title>" in curves and "check reward" in curves
    assert "Reward against √KL" in section(html, "Evaluation")
    assert "12" in section(html, "Data") and "held-out prompts" in section(html, "Data")
