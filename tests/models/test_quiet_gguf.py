"""Loading a GGUF model draws no "Converting and de-quantizing GGUF tensors" bar on stderr."""

from __future__ import annotations

import threading

import pytest
from tiny_models import save_tiny_gguf

from rmstudio.core.models.quiet_gguf import gguf_bar_silenced

BAR = "de-quantizing GGUF tensors"


@pytest.fixture
def tiny_gguf(tmp_path):
    return save_tiny_gguf(tmp_path / "tiny.gguf")


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)


def test_the_bar_is_silenced_while_loading_and_back_after(tiny_gguf, capfd):
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    _load(tiny_gguf)
    assert BAR in capfd.readouterr().err  # the bar this is about, drawn by a plain load
    with gguf_bar_silenced():
        model = _load(tiny_gguf)
    assert BAR not in capfd.readouterr().err
    assert model.config.hidden_size == 32
    assert gguf_utils.tqdm is original


def test_overlapping_loads_restore_the_bar_once_both_are_done():
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    inside, release = threading.Event(), threading.Event()

    def other_load():
        with gguf_bar_silenced():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other_load)
    thread.start()
    inside.wait(5)
    with gguf_bar_silenced():
        pass
    assert gguf_utils.tqdm is not original  # the other load still runs: still quiet
    release.set()
    thread.join(5)
    assert gguf_utils.tqdm is original


def test_rmstudio_loads_of_a_gguf_draw_no_bar(tiny_gguf, capfd, monkeypatch, tmp_path):
    from rmstudio.core.models import loading

    model, tokenizer = loading.load_causal_lm(str(tiny_gguf))
    assert model.config.hidden_size == 32 and tokenizer("AB")["input_ids"]
    # the embedded model's one-time conversion, pointed at the tiny file (in a cache of its
    # own: the session's cache must keep the real embedded model)
    monkeypatch.setenv("RMSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(loading, "embedded_gguf_path", lambda: tiny_gguf)
    assert (loading.ensure_embedded_cache() / "model.safetensors").is_file()
    assert BAR not in capfd.readouterr().err
