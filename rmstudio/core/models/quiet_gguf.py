"""Keep transformers' GGUF de-quantisation bar off stderr while rmstudio loads a GGUF model.

transformers draws "Converting and de-quantizing GGUF tensors..." with ``tqdm.auto.tqdm``
imported straight into ``transformers.modeling_gguf_pytorch_utils`` (checked in 4.5x-5.x), not
with its own ``transformers.utils.logging.tqdm``, so ``disable_progress_bar()`` does not reach
it. Every run that loads a GGUF file printed a bar over the progress rmstudio already reports
(its conversion stages through the sink), so the module's ``tqdm`` is swapped for a disabled
one while a load runs, and put back after.
"""

from __future__ import annotations

import contextlib
import functools
import threading

_lock = threading.Lock()
_users = 0  # loads in progress (threads may load at once); the last one out restores the bar
_original = None


def _gguf_module():
    try:
        from transformers import modeling_gguf_pytorch_utils
    except ImportError:  # a transformers without GGUF support: there is no bar to hide
        return None
    return modeling_gguf_pytorch_utils if hasattr(modeling_gguf_pytorch_utils, "tqdm") else None


@contextlib.contextmanager
def gguf_bar_silenced():
    """While inside, transformers' GGUF conversion bar draws nothing."""
    global _users, _original
    module = _gguf_module()
    if module is None:
        yield
        return
    with _lock:
        if _users == 0:
            _original = module.tqdm
            module.tqdm = functools.partial(_original, disable=True)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                module.tqdm, _original = _original, None
