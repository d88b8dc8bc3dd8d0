"""The long reliability runs: `RMSTUDIO_SLOW=1 pytest tests/slow -q` (about 17 minutes on 2 cores).
Their figures are in the README's Reliability section."""

import os

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("RMSTUDIO_SLOW"),
                                reason="long run: set RMSTUDIO_SLOW=1")


def test_1000_kills_while_labeling(tmp_path):
    from store.test_kill_labeling import kill_rounds, make_project

    path = make_project(tmp_path / "p.rmstudio", pairs=500)
    rounds = int(os.environ.get("RMSTUDIO_KILLS", "1000"))
    acknowledged = kill_rounds(path, rounds=rounds, seed=1)
    print(f"\n{rounds} kills: {acknowledged} acknowledged labels, all present")
