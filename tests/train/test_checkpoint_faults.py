"""A disk that fills up while a checkpoint is written: one clear message, the previous checkpoint
untouched, no partial checkpoint left under a step-N name, and a resume continues from it."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import torch
from test_finetune import RecordingSink, config, make_pairs

import tiny_models
from rmstudio.core.errors import RmstudioError
from rmstudio.core.reward import checkpoints
from rmstudio.core.reward.finetune import FinetuneError, list_checkpoints, train_finetune


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return str(tiny_models.save_tiny_model(tmp_path_factory.mktemp("tiny")))


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill_disk_in(monkeypatch, folder_prefix: str, target: str):
    """Make the write of ``target`` in a temp folder named ``folder_prefix``... write a few bytes
    and then fail as a full disk does: state.pt (torch.save) and meta.json (the last file) with
    OSError(ENOSPC), trainable.safetensors with the SafetensorError that safetensors raises for it.
    Returns what the temp folder held when the fault came."""
    seen: dict[str, list[str]] = {"before": []}

    def in_temp(where) -> Path | None:
        path = Path(where if isinstance(where, (str, Path)) else where.name)  # a path or an open file
        return path if path.parent.name.startswith(folder_prefix) and path.name == target else None

    def full(path: Path, fh=None):
        seen["before"] = sorted(p.name for p in path.parent.iterdir() if p != path)
        if fh is None:
            path.write_bytes(b"\0" * 100)
        else:
            fh.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    if target == "state.pt":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if (path := in_temp(f)) is not None:
                full(path, None if isinstance(f, (str, Path)) else f)
            return real_save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", save)
    elif target == "trainable.safetensors":
        import safetensors.torch
        from safetensors import SafetensorError

        real_save_file = safetensors.torch.save_file

        def save_file(tensors, filename, *args, **kwargs):
            if (path := in_temp(filename)) is not None:
                seen["before"] = sorted(p.name for p in path.parent.iterdir())
                path.write_bytes(b"\0" * 100)
                raise SafetensorError("Error while serializing: I/O error: No space left on device "
                                      "(os error 28)")
            return real_save_file(tensors, filename, *args, **kwargs)

        monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    else:
        real_write = Path.write_text

        def write_text(self, *args, **kwargs):
            if in_temp(self) is not None:
                full(self)
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    return seen


@pytest.mark.parametrize("method,target", [("lora", "state.pt"), ("full", "meta.json"),
                                           ("full", "trainable.safetensors")])
def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(base_dir, tmp_path, monkeypatch,
                                                                       method, target):
    train, val = make_pairs(48), make_pairs(8, seed=1)
    cfg = config(method=method, learning_rate=1e-2 if method == "lora" else 1e-3, epochs=1,
                 eval_every_steps=0, save_every_steps=2)  # 6 steps: checkpoints at 2 and 4

    class Snapshot(RecordingSink):
        """Remembers step-2 as written, before the fault at step 4 can touch anything."""
        def log(self, step, metrics):
            super().log(step, metrics)
            if step == 3 and "train/loss" in metrics:
                self.kept = _fingerprint(tmp_path / "checkpoints" / "step-2")

    sink = Snapshot()
    seen = _fill_disk_in(monkeypatch, ".tmp-step-4-", target)
    with pytest.raises(FinetuneError) as caught:
        train_finetune(base_dir, train, val, cfg, tmp_path, sink)
    if target != "trainable.safetensors":  # the fault came after a file was written
        assert "trainable.safetensors" in seen["before"]

    message = str(caught.value)
    assert isinstance(caught.value, RmstudioError)
    assert "\n" not in message and "Traceback" not in message
    root = tmp_path / "checkpoints"
    assert str(root / "step-4") in message
    assert "no space left" in message.lower()
    assert "step-2" in message.replace(str(root / "step-4"), "")  # says what is kept for a resume
    assert "(os error" not in message and "Errno" not in message

    # No half checkpoint under a final name, and no temp folder left eating the (full) disk.
    assert sorted(p.name for p in root.iterdir()) == ["step-2"]
    assert list_checkpoints(tmp_path) == [root / "step-2"]
    assert _fingerprint(root / "step-2") == sink.kept
    assert caught.value.result["checkpoint"] == str(root / "step-2")

    monkeypatch.undo()  # space freed: the resume continues from step 2 and finishes
    resumed = RecordingSink()
    result = train_finetune(base_dir, train, val, cfg, tmp_path, resumed, resume=True)
    assert result["status"] == "finished" and result["steps"] == result["total_steps"] == 6
    assert min(step for step, m in resumed.logs if "train/loss" in m) == 3


def test_a_full_disk_while_saving_the_best_weights_is_one_line_too(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 1)
    checkpoints.save_best(tmp_path, model, 1, {"loss": 0.5})
    kept = _fingerprint(tmp_path / "best")
    _fill_disk_in(monkeypatch, ".tmp-best-", "meta.json")
    with pytest.raises(FinetuneError, match="(?i)no space left") as caught:
        checkpoints.save_best(tmp_path, model, 2, {"loss": 0.4})
    assert "\n" not in str(caught.value) and str(tmp_path / "best") in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    assert _fingerprint(tmp_path / "best") == kept


@pytest.mark.skipif(not os.environ.get("RMSTUDIO_SLOW"), reason="mounts a tmpfs: set RMSTUDIO_SLOW=1")
@pytest.mark.parametrize("method,leave", [("full", 0), ("full", 160 * 1024)])
def test_a_really_full_disk_while_writing_a_checkpoint(base_dir, tmp_path, method, leave):
    """A real full disk (a 2 MiB tmpfs, filled after step-2 is written): with no room at all
    safetensors fails on the first file (a SafetensorError, '... (os error 28)'); with room for
    the weights, torch.save fails on state.pt (a RuntimeError whose context is the OSError)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        out = mount_point / "run"
        filler = mount_point / "filler.bin"

        class FillAfterStep2(RecordingSink):
            def log(self, step, metrics):
                super().log(step, metrics)
                if step == 3 and "train/loss" in metrics:
                    self.kept = _fingerprint(out / "checkpoints" / "step-2")
                    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
                    try:
                        for size in (1 << 16, 1 << 12, 1 << 9, 1):
                            while True:
                                try:
                                    os.write(fd, b"\0" * size)
                                except OSError:
                                    break
                        os.ftruncate(fd, os.fstat(fd).st_size - leave)
                    finally:
                        os.close(fd)

        cfg = config(method=method, learning_rate=1e-3, epochs=1, eval_every_steps=0, save_every_steps=2)
        train, val = make_pairs(48), make_pairs(8, seed=1)
        sink = FillAfterStep2()
        with pytest.raises(FinetuneError) as caught:
            train_finetune(base_dir, train, val, cfg, out, sink)
        message = str(caught.value)
        root = out / "checkpoints"
        assert message == (f"cannot write checkpoint {root / 'step-4'}: No space left on device; step-2 is "
                           "kept and a resume continues from it")
        assert sorted(p.name for p in root.iterdir()) == ["step-2"]
        assert _fingerprint(root / "step-2") == sink.kept
        filler.unlink()
        result = train_finetune(base_dir, train, val, cfg, out, RecordingSink(), resume=True)
        assert result["status"] == "finished" and result["steps"] == 6
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
