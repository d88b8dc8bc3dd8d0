"""Pairs made in the app (Score candidates, policy before/after) join the label queue."""

import pytest

from rmstudio.core.errors import RmstudioError
from rmstudio.core.labeling.new_pairs import NewPair, add_pairs
from rmstudio.core.store.project import Project


def test_new_pairs_are_queued_once_with_their_models(tmp_path):
    with Project.create(tmp_path / "p.rmstudio") as project:
        pairs = [NewPair("Name a city.", "Paris.", "Lyon is nice.", "policy step 0", "policy step 40"),
                 NewPair("Name a city.", "Rome.", "Paris.")]
        first = add_pairs(project, pairs)
        assert first["added"] == 2 and len(set(first["comparison_ids"])) == 2
        again = add_pairs(project, [NewPair("Name a city.", "Lyon is nice.", "Paris.")])  # sides swapped
        assert again == {"comparison_ids": [first["comparison_ids"][0]], "added": 0}
        counts = project.counts()
        assert counts["prompts"] == 1 and counts["comparisons"] == 2 and counts["responses"] == 3
        models = dict(project.conn.execute("SELECT text, model FROM responses"))
        assert models["Lyon is nice."] == "policy step 40" and models["Paris."] == "policy step 0"


@pytest.mark.parametrize("bad, message", [
    (NewPair(" ", "a", "b"), "pair 2: the prompt is empty"),
    (NewPair("p", "same", "same "), "pair 2: the two responses are the same text"),
    (NewPair("p", "", "b"), "pair 2: a response is empty"),
])
def test_a_bad_pair_adds_nothing_and_says_which(tmp_path, bad, message):
    with Project.create(tmp_path / "p.rmstudio") as project:
        with pytest.raises(RmstudioError, match=message):
            add_pairs(project, [NewPair("ok", "x", "y"), bad])
        assert project.counts()["comparisons"] == 0
