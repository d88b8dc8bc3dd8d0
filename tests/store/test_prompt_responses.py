"""The "From project…" reads: prompts with two or more responses, searched, and one prompt's
responses."""

from __future__ import annotations

import pytest
from builders import add_pairs

from rmstudio.core.errors import ProjectError
from rmstudio.core.data.records import Text
from rmstudio.core.labeling.prompt_responses import find_prompts, prompt_with_responses
from rmstudio.core.store.inserts import ProjectWriter


def test_prompts_with_responses_are_listed_searched_and_read(project):
    add_pairs(project, 3, prompt="capital question {i}", a="Paris {i}", b="Lyon {i}")
    add_pairs(project, 1, prompt="100% sure_{i}?", a="yes", b="no")
    with project.write():
        writer = ProjectWriter(project)
        lonely, _, _ = writer.prompt(Text("a prompt with one response"))
        writer.response(lonely, Text("only one"), "m1")
        writer.prompt(Text("a prompt with none"))
    listed = find_prompts(project)
    assert [c.text for c in listed] == [f"capital question {i}" for i in range(3)] + ["100% sure_0?"]
    assert all(c.responses == 2 for c in listed)
    assert [c.text for c in find_prompts(project, "QUESTION 1")] == ["capital question 1"]
    assert [c.text for c in find_prompts(project, "% sure_")] == ["100% sure_0?"]  # LIKE wildcards are text
    assert find_prompts(project, "%x") == [] and len(find_prompts(project, limit=2)) == 2
    chosen = listed[1].prompt_id
    assert prompt_with_responses(project, chosen) == ("capital question 1", ["Paris 1", "Lyon 1"])


def test_a_prompt_without_responses_or_gone_is_one_clear_error(project):
    with project.write():
        empty, _, _ = ProjectWriter(project).prompt(Text("nothing yet"))
    with pytest.raises(ProjectError, match=f"prompt #{empty} has no responses"):
        prompt_with_responses(project, empty)
    with pytest.raises(ProjectError, match="no prompt #999"):
        prompt_with_responses(project, 999)
