"""HTML for the Label page: markdown for prompts and responses, and turns with role headers.
Plain functions of text (the page only sets the HTML); the difference view is label_diff.py."""

from __future__ import annotations

import html
import re

import markdown

from rmstudio.core.data.records import Text

ROLE_TITLES = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}
# Anthropic HH-style flat dialogues: "\n\nHuman: ...\n\nAssistant: ..."
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # Raw HTML in a response is shown as text, not rendered: the annotator must see what the
    # model wrote (a "<b>" included), and nothing in the data may restyle the page.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


_MD = _markdown()


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+).+?\1")
_STRONG = re.compile(r"\*\*")


def literal_unclosed_strong(text: str) -> str:
    """Escape a ``**`` left open on its line, so it shows as typed instead of pairing with a
    ``**`` lines later and turning everything between them bold (a response cut off mid-bold,
    or "2**3"). Bold that models write closes on its own line; code is left as it is."""
    lines, fence = text.split("\n"), None
    for i, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1).startswith(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        code = [m.span() for m in _CODE_SPAN.finditer(line)]
        hits = [m.start() for m in _STRONG.finditer(line)
                if not any(start <= m.start() < end for start, end in code)]
        for at in reversed(_unclosed(line, hits)):
            line = line[:at] + "\\*\\*" + line[at + 2:]
        lines[i] = line
    return "\n".join(lines)


def _unclosed(line: str, hits: list[int]) -> list[int]:
    """The ``**`` at ``hits`` that open and are never closed on the line, paired as markdown
    does: one before a space cannot open, one after a space cannot close."""
    open_ones: list[int] = []
    for at in hits:
        before, after = line[at - 1:at], line[at + 2:at + 3]
        if open_ones and before.strip():
            open_ones.pop()
        elif after.strip():
            open_ones.append(at)
    return open_ones


def markdown_html(text: str) -> str:
    _MD.reset()
    return _MD.convert(literal_unclosed_strong(text))


def _role_header(role: str, color: str) -> str:
    title = ROLE_TITLES.get(role, role.title())
    return (f'<p style="margin-top:10px; margin-bottom:2px; font-weight:600; color:{color};">'
            f"{html.escape(title)}</p>")


def text_html(text: Text, role_color: str, turns: bool) -> str:
    """A prompt or response as HTML: a conversation as turns with role headers (``turns``, or
    any response with more than one message), otherwise the markdown of its flat text."""
    messages = text.messages
    if messages and (turns or len(messages) > 1):
        return "".join(_role_header(m.role, role_color) + markdown_html(m.content) for m in messages)
    if messages and len(messages) == 1:
        return markdown_html(messages[0].content)
    if turns:
        parts = _HH_TURN.split(text.text)
        if len(parts) >= 3 and not parts[0].strip():
            pairs = zip(parts[1::2], parts[2::2])
            return "".join(_role_header(_HH_ROLES[who], role_color)
                           + (markdown_html(said) if said.strip() else "<p><i>(to answer)</i></p>")
                           for who, said in pairs)
    return markdown_html(text.text)


def flat_response(text: Text) -> str:
    """The words a response says (assistant turns joined), for the difference view."""
    if text.messages:
        return "\n\n".join(m.content for m in text.messages)
    return text.text
