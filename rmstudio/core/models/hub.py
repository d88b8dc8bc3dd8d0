"""Models from the Hugging Face hub: the download (safetensors and tokenizer files only) and
telling "no network" apart from other failures, so the loader can say "offline" in one line.
"""

from __future__ import annotations

import os

from rmstudio.core.progress import NullSink, ProgressSink

HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]


def download_from_hub(repo_id: str, sink: ProgressSink | None = None) -> str:
    """Fetch a hub model (safetensors and tokenizer files only, never pickles) into the Hugging
    Face cache, reporting bytes done / total to the sink; returns the local folder."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    sink = sink or NullSink()

    class SinkTqdm(tqdm):
        # The hub reports file progress through a tqdm; forward it (and stay quiet on the console).
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done = 0.0  # a disabled tqdm does not count, so count here

        def update(self, n=1):
            self.done += n or 0
            sink.log(0, {"stage": "download", "done": float(self.done), "total": float(self.total or 0)})

    return snapshot_download(repo_id, allow_patterns=HUB_FILES, tqdm_class=SinkTqdm)


def env_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def is_connection_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError)):
            return True
        name = type(exc).__name__
        if name in ("ConnectError", "ConnectTimeout", "NetworkError", "TimeoutException"):
            return True  # httpx's, without importing httpx
        if "couldn't connect" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False
