"""Chat text both ways: a conversation flattened to one string, and an HH-style dialogue
("\\n\\nHuman: ...\\n\\nAssistant: ...") read back into messages.

The row parser, the exporter, the policy data and the reward API all need the same flattening,
so it lives here rather than inside any one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rmstudio.core.data.records import Message

ASSISTANT_MARKER = "\n\nAssistant:"


def render_messages(messages: Sequence[Message]) -> str:
    """Flat text for a conversation, used wherever a model or a list needs a plain string.

    A lone user turn is just its content, and a response (assistant turns only) is its
    contents, so single-turn conversational data reads the same as plain-text data.
    """
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    if messages and all(m.role == "assistant" for m in messages):
        return "\n\n".join(m.content for m in messages)
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in messages)


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def hh_to_messages(prompt_text: str) -> tuple[Message, ...] | None:
    """Parse an HH-style dialogue ("\\n\\nHuman: ...\\n\\nAssistant: ...") into messages.

    A trailing bare "\\n\\nAssistant:" (the turn the model is to write) is dropped. Returns
    None when the text is not in that form.
    """
    if not prompt_text.startswith("\n\nHuman:"):
        return None
    markers = list(_HH_TURN.finditer(prompt_text))
    messages = []
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(prompt_text)
        content = prompt_text[marker.end():end]
        content = content.removeprefix(" ")  # the space after "Human:" belongs to the format
        role = "user" if marker.group(1) == "Human" else "assistant"
        messages.append(Message(role, content))
    if messages[-1].role == "assistant" and not messages[-1].content:
        messages.pop()
    if not messages:
        return None
    return tuple(messages)
