"""`rmstudio report PROJECT RUN --out FILE`: the run's HTML report from the shell."""

from __future__ import annotations

from rmstudio.cli import main
from rmstudio.core.runs.store import finish_run, log_metrics, start_run
from rmstudio.core.store.project import Project


def test_report_writes_the_run_and_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "team.rmstudio"
    with Project.create(path) as project:
        run_id = start_run(project, "reward", "lora on tiny", {"method": "lora"})
        log_metrics(project, run_id, 3, {"val/accuracy": 0.625})
        finish_run(project, run_id, "finished")
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "team"), str(run_id), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "lora on tiny" in html and "0.625" in html
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(path), str(run_id)]) == 0
    assert (tmp_path / f"run-{run_id}-report.html").exists()
    capsys.readouterr()
    for argv, words in ((["report", str(path), "9"], "there is no run 9"),
                        (["report", str(path), str(run_id), "--out", str(tmp_path / "no" / "r.html")],
                         "cannot write the report")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "Traceback" not in err
