"""Policy tests run torch on one thread: their matrices are 32 wide, and on a shared 2-core
machine a second intra-op thread only waits for the other (a GRPO step took 5 s, not 0.3 s)."""

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def policy_model(tmp_path):
    from policy_helpers import save_policy_model

    return save_policy_model(tmp_path / "policy")
