"""What the Train page says will train: the split of the project's labels, in words.

Kept apart from the page so the wording (counts, warnings) is read and tested in one place.
"""

from __future__ import annotations

from rmstudio.gui.theme import colour


def preview_html(split: dict, left_out: dict, objective: str) -> str:
    """Rich text for ``split`` (``reward.train.split_preview``) and the labels training leaves
    out (``labeling.stats.labels_left_out_of_training``)."""
    s = split
    if objective == "regression":
        return (f"<b>{s['ratings']:,}</b> rated responses: the reward learns to predict the rating "
                f"(mean squared error on the rating, standardised on the training split)<br>"
                f"train <b>{s['train']:,}</b> responses from {s['prompts_train']:,} prompts<br>"
                f"validation <b>{s['val']:,}</b> responses from {s['prompts_val']:,} prompts")
    if not s["pairs"]:
        text = "<b>No labeled pairs yet.</b> Label some pairs (A, B or tie) or import labeled data first."
    else:
        text = (f"<b>{s['pairs']:,}</b> labeled pairs ({s['ties']:,} ties)<br>"
                f"train <b>{s['train']:,}</b> pairs from {s['prompts_train']:,} prompts<br>"
                f"validation <b>{s['val']:,}</b> pairs from {s['prompts_val']:,} prompts")
        if s["val"] == 0:
            text += (f"<br><span style='color:{colour('error')}'>No validation pairs: results cannot "
                     "be measured.</span>")
    return text + (f"<br><small>Left out: {left_out.get('both_bad', 0):,} both-bad and "
                   f"{left_out.get('skip', 0):,} skipped labels (no preference between the two). "
                   "Each annotator's label is one example.</small>")
