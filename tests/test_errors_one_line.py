"""User-facing failures end in one `rmstudio: error:` line (or quietly), never in a traceback
or pages of library text: a closed pipe, a full disk, a broken chat template, refused models."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
from builders import add_pairs, project_from_rows
from conftest import REPO

from rmstudio.cli import main
from rmstudio.core.data import exporter
from rmstudio.core.store.project import Project

ROWS = [{"prompt": f"question {i}?", "chosen": f"Paris {i}", "rejected": f"dog {i}"} for i in range(3)]


def _rmstudio(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -m rmstudio ARGS` in a fresh interpreter, importing this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "rmstudio", *args], stderr=subprocess.PIPE,
                          text=True, timeout=120, env=env, **kwargs)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rmstudio: error: "), stderr
    return lines[0]


# --- 1. a reader that closes the pipe early -----------------------------------------------------

def test_stats_into_a_closed_pipe_exits_quietly(tmp_path):
    path = project_from_rows(tmp_path, "p", ROWS)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as `| head -1` can be
    try:
        result = _rmstudio("stats", str(path), stdout=write_end)
    finally:
        os.close(write_end)
    assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr == ""
    assert result.returncode == 141  # 128 + SIGPIPE, as other Unix tools report it


def test_stats_piped_into_head_like_reader(tmp_path):
    path = project_from_rows(tmp_path, "p", ROWS)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "rmstudio", "stats", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()  # read one line, then go away like `head -1`
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"prompts")
    assert b"Traceback" not in err and b"BrokenPipeError" not in err
    assert proc.returncode in (0, 141)  # 0 when everything fit in the pipe before it closed


# --- 2. a full disk during export ----------------------------------------------------------------

def _export_args(tmp_path):
    path = project_from_rows(tmp_path, "p", ROWS)
    out = tmp_path / "out" / "prefs.jsonl"
    out.parent.mkdir()
    return path, out


def test_export_onto_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    path, out = _export_args(tmp_path)
    out.write_bytes(b"previous export\n")

    def full_disk(fh, fmt, rows):
        fh.write("half a row")
        fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(exporter, "_write_text", full_disk)
    assert main(["export", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    line = _one_error_line(err)
    assert str(out) in line and "No space left on device" in line
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous export\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["prefs.jsonl"]  # no temp file left


def test_export_parquet_failure_removes_the_temp_file(tmp_path, monkeypatch, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    path, out = _export_args(tmp_path)
    out = out.with_suffix(".parquet")

    def full_disk(table, where, *args, **kwargs):
        with open(where, "wb") as fh:
            fh.write(b"PAR1")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", full_disk)
    assert main(["export", str(path), str(out)]) == 1
    assert "No space left on device" in _one_error_line(capsys.readouterr().err)
    assert list(out.parent.iterdir()) == []


def test_oserror_escaping_a_command_is_one_line(tmp_path, monkeypatch, capsys):
    # The fallback in main(): an OSError no core code turned into a typed error.
    path = project_from_rows(tmp_path, "p", ROWS)

    def vanished(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/gone/file.db")

    monkeypatch.setattr("rmstudio.core.labeling.stats.project_stats", vanished)
    assert main(["stats", str(path)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line == "rmstudio: error: /gone/file.db: No such file or directory"


def test_sqlite_error_escaping_a_command_is_one_line(tmp_path, monkeypatch, capsys):
    import sqlite3

    path = project_from_rows(tmp_path, "p", ROWS)

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("rmstudio.core.labeling.stats.project_stats", full)
    assert main(["stats", str(path)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "database or disk is full" in line


# --- 3. exported files get the user's normal mode --------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_export_mode_follows_the_umask(tmp_path, capsys, umask, mode):
    path, out = _export_args(tmp_path)
    old = os.umask(umask)
    try:
        assert main(["export", str(path), str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == mode
    assert len(out.read_text().splitlines()) == 3


def test_export_fsyncs_the_file_before_the_rename(tmp_path, monkeypatch):
    path, out = _export_args(tmp_path)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        return real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        return real_replace(src, dst)

    monkeypatch.setattr(exporter.os, "fsync", fsync)
    monkeypatch.setattr(exporter.os, "replace", replace)
    with Project.open(path) as project:
        exporter.export_project(project, out)
    assert events[:2] == ["fsync", "replace"]  # the data is on disk before the name points at it
    if os.name == "posix":
        assert events[2:] == ["fsync"]  # and the folder after, so the rename survives a crash


# --- 4. a broken chat template ------------------------------------------------------------------

BROKEN_TEMPLATE = "{% for m in messages %}{{ m['content'] }{% endfor %}"


def _model_dir(tmp_path, name="tiny", chat_template=None):
    import tiny_models

    model, tokenizer = tiny_models.tiny_model_and_tokenizer()
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    folder = tmp_path / name
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_broken_chat_template_is_a_typed_one_line_error():
    import tiny_models

    from rmstudio.core.errors import RmstudioError
    from rmstudio.core.models.generation import ChatTemplateError, format_prompt
    from rmstudio.core.data.records import Text

    tokenizer = tiny_models.tiny_tokenizer(chat_template=BROKEN_TEMPLATE)
    tokenizer.name_or_path = "tiny-broken"
    with pytest.raises(ChatTemplateError) as info:
        format_prompt(tokenizer, Text("hello"))
    assert isinstance(info.value, RmstudioError)
    message = str(info.value)
    assert "\n" not in message
    assert "tiny-broken" in message and "unexpected '}'" in message


def test_template_raise_exception_is_a_typed_error():
    import tiny_models

    from rmstudio.core.models.generation import ChatTemplateError, format_prompt
    from rmstudio.core.data.records import Text

    tokenizer = tiny_models.tiny_tokenizer(
        chat_template="{{ raise_exception('Conversation roles must alternate') }}")
    with pytest.raises(ChatTemplateError, match="Conversation roles must alternate"):
        format_prompt(tokenizer, Text("hello"))


def test_generate_with_a_broken_template_prints_one_error_line(tmp_path, capsys):
    folder = _model_dir(tmp_path, "broken-template", BROKEN_TEMPLATE)
    with Project.create(tmp_path / "g.rmstudio") as project:
        add_pairs(project, 1)
    code = main(["generate", str(tmp_path / "g.rmstudio"), "--model", str(folder), "--all-prompts",
                 "--max-new-tokens", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    # transformers draws a "Loading weights" bar on stderr before generation starts; the error
    # itself is the last line, and the only one that is not that bar.
    errors = [line for line in err.splitlines() if line.startswith("rmstudio:")]
    assert len(errors) == 1
    assert "broken-template" in errors[0] and "chat template" in errors[0] and "unexpected '}'" in errors[0]


# --- 5. refused pickles and remote code --------------------------------------------------------

class _CallsCode:
    # What a hostile pytorch_model.bin holds: unpickling it calls a function. os.getpid is
    # harmless, and torch's weights_only unpickler refuses it all the same.
    def __reduce__(self):
        return (os.getpid, ())


def _pickle_only_dir(tmp_path):
    import tiny_models
    import torch

    model, tokenizer = tiny_models.tiny_model_and_tokenizer()
    folder = tmp_path / "pickled"
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.save({"weights": _CallsCode()}, folder / "pytorch_model.bin")
    return folder


def _remote_code_dir(tmp_path):
    folder = _model_dir(tmp_path, "custom-code")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "rmstudio-test-custom"  # unknown to transformers: only its code loads it
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig",
                          "AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("configuration_custom.py", "modeling_custom.py"):
        (folder / name).write_text("raise SystemExit('custom code ran')\n")
    return folder


@pytest.mark.parametrize("make, words", [
    (_pickle_only_dir, ["pickle", "refused", "posix.getpid"]),
    (_remote_code_dir, ["trust_remote_code", "custom code"]),
])
def test_refused_model_is_exactly_one_stderr_line(tmp_path, make, words):
    folder = make(tmp_path)
    project = project_from_rows(tmp_path, "p", ROWS)
    result = _rmstudio("generate", str(project), "--model", str(folder), "--all-prompts",
                       "--max-new-tokens", "2", "--device", "cpu")
    assert result.returncode == 1
    line = _one_error_line(result.stderr)  # no "[transformers] You are using a model of type ..."
    assert folder.name in line
    for word in words:
        assert word in line
    assert "weights_only" not in line and "custom code ran" not in result.stderr
