"""Turn one row dict into a Record, recognising the common preference-data layouts.

The layout is detected per row from its keys (unknown keys are ignored), so one reader
handles TRL/HH chosen-rejected files, unlabeled or labeled A/B pairs, rankings and bare
prompts. Every problem is a ``FormatError`` naming the file, line and field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator

# hh_to_messages and render_messages are imported from here too (core/policy, reward/api)
from rmstudio.core.data.formats.chat import ASSISTANT_MARKER, hh_to_messages, render_messages  # noqa: F401
from rmstudio.core.errors import FormatError, LimitError
from rmstudio.core.data.formats.readers import DEFAULT_LIMITS, Limits, describe_json_type, iter_rows
from rmstudio.core.data.records import (
    CHOICES,
    ROLES,
    Message,
    PairRecord,
    PromptRecord,
    RankingRecord,
    Record,
    Text,
)

ACCEPTED_LAYOUTS = (
    "prompt+chosen+rejected, chosen+rejected (implicit prompt), prompt+response_a+response_b "
    "(optionally with choice), prompt+responses (ranking), prompt alone, or messages alone"
)
_RESPONSE_TEXT_KEYS = ("text", "response", "content", "completion")


def iter_records(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Iterator[Record]:
    """Read every row of ``path`` as a Record; raises FormatError/LimitError on bad input."""
    path = os.fspath(path)
    for line, row in iter_rows(path, limits):
        yield parse_row(row, line, path, limits)


def parse_row(row: dict, line: int, path: str, limits: Limits = DEFAULT_LIMITS) -> Record:
    """Detect the layout of one row from its keys and build the matching Record."""
    return _RowParser(row, line, str(path), limits).parse()


class _RowParser:
    """Holds the row and where it came from, so every helper can raise a precise error."""

    def __init__(self, row: dict, line: int, path: str, limits: Limits):
        self.row = row
        self.line = line
        self.path = path
        self.limits = limits

    def fail(self, message: str, field: str | None = None) -> FormatError:
        return FormatError(self.path, message, line=self.line, field=field)

    def over_limit(self, message: str, field: str) -> LimitError:
        return LimitError(self.path, message, line=self.line, field=field)

    def parse(self) -> Record:
        has = self.row.__contains__
        for first, second in (("chosen", "rejected"), ("response_a", "response_b")):
            if has(first) != has(second):
                present, missing = (first, second) if has(first) else (second, first)
                raise self.fail(f"row has '{present}' but no '{missing}'", field=missing)
        if has("chosen"):
            if has("prompt"):
                return self._explicit_pair()
            return self._implicit_pair()
        if has("response_a"):
            if not has("prompt"):
                raise self.fail("a response_a/response_b row needs a prompt", field="prompt")
            return self._ab_pair()
        if has("prompt") and (has("responses") or has("completions")):
            return self._ranking()
        if has("prompt"):
            return PromptRecord(prompt=self._prompt(self.row["prompt"], "prompt"), line=self.line)
        if has("messages"):
            return self._messages_prompt()
        keys = ", ".join(repr(k) for k in list(self.row)[:20]) or "none"
        raise self.fail(f"unrecognised row (keys found: {keys}); expected {ACCEPTED_LAYOUTS}")

    # --- layouts -------------------------------------------------------------------------

    def _explicit_pair(self) -> PairRecord:
        return PairRecord(
            prompt=self._prompt(self.row["prompt"], "prompt"),
            response_a=self._text(self.row["chosen"], "chosen"),
            response_b=self._text(self.row["rejected"], "rejected"),
            choice="a",
            line=self.line,
        )

    def _implicit_pair(self) -> PairRecord:
        chosen = self._content(self.row["chosen"], "chosen")
        rejected = self._content(self.row["rejected"], "rejected")
        if chosen == rejected:
            raise self.fail("chosen and rejected are identical", field="rejected")
        if isinstance(chosen, str) and isinstance(rejected, str):
            cut = self._implicit_cut(chosen, rejected)
            prompt = self._checked_prompt(Text(chosen[:cut]), "chosen")
            response_a, response_b = Text(chosen[cut:]), Text(rejected[cut:])
        elif isinstance(chosen, tuple) and isinstance(rejected, tuple):
            shared = 0
            while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
                shared += 1
            if shared == 0:
                raise self.fail("chosen and rejected share no leading messages", field="rejected")
            for name, messages in (("chosen", chosen), ("rejected", rejected)):
                if shared == len(messages):
                    raise self.fail(f"{name} has no messages after the shared prompt", field=name)
            prompt = self._checked_prompt(self._from_messages(chosen[:shared], "chosen"), "chosen")
            response_a = self._from_messages(chosen[shared:], "chosen")
            response_b = self._from_messages(rejected[shared:], "rejected")
        else:
            raise self.fail(
                "chosen and rejected must both be text or both be lists of messages",
                field="rejected",
            )
        return PairRecord(prompt, response_a, response_b, choice="a", line=self.line)

    def _implicit_cut(self, chosen: str, rejected: str) -> int:
        """Where the shared prompt ends: after the last HH assistant marker both share.

        Without such a marker, fall back to the last whitespace in the common prefix (as TRL
        does), so the responses keep their leading space and prompt + response is exact.
        """
        common = os.path.commonprefix([chosen, rejected])
        marker = common.rfind(ASSISTANT_MARKER)
        if marker >= 0:
            return marker + len(ASSISTANT_MARKER)
        cut = len(common) - 1
        while cut >= 0 and not common[cut].isspace():
            cut -= 1
        if cut < 0 or not common[:cut].strip():
            raise self.fail(
                "cannot find a shared prompt in chosen and rejected; add a 'prompt' field",
                field="chosen",
            )
        return cut

    def _ab_pair(self) -> PairRecord:
        prompt = self._prompt(self.row["prompt"], "prompt")
        response_a = self._text(self.row["response_a"], "response_a")
        response_b = self._text(self.row["response_b"], "response_b")
        choice = self._choice()
        if choice is None:
            return PairRecord(prompt, response_a, response_b, line=self.line)
        return PairRecord(
            prompt, response_a, response_b,
            choice=choice,
            annotator=self._optional_str("annotator"),
            strength=self._strength(),
            note=self._optional_str("note"),
            created_at=self._optional_str("created_at"),
            line=self.line,
        )

    def _ranking(self) -> RankingRecord:
        prompt = self._prompt(self.row["prompt"], "prompt")
        key = "responses" if "responses" in self.row else "completions"
        items = self._list(key)
        if len(items) < 2:
            raise self.fail(f"a ranking needs at least 2 responses, got {len(items)}", field=key)
        if len(items) > self.limits.max_ranking_responses:
            raise self.over_limit(f"{len(items)} responses is more than "
                                  f"max_ranking_responses={self.limits.max_ranking_responses}", key)
        responses, item_scores = [], []
        for i, item in enumerate(items):
            text, score = self._ranking_item(item, f"{key}[{i}]")
            responses.append(text)
            item_scores.append(score)
        scores, scale = self._ranking_scores(key, item_scores)
        return RankingRecord(
            prompt=prompt,
            responses=tuple(responses),
            scores=tuple(scores),
            annotator=self._optional_str("annotator"),
            line=self.line,
            scale=scale,
        )

    def _messages_prompt(self) -> PromptRecord:
        messages = self._content(self.row["messages"], "messages")
        if not isinstance(messages, tuple):
            raise self.fail("expected a list of messages", field="messages")
        if messages[-1].role == "assistant":
            raise self.fail(
                "messages ends with an assistant turn; a prompt-only row must end with the "
                "turn to be answered (for pairs use chosen/rejected)",
                field="messages",
            )
        prompt = self._checked_prompt(self._from_messages(messages, "messages"), "messages")
        return PromptRecord(prompt, line=self.line)

    # --- ranking helpers -----------------------------------------------------------------

    def _ranking_item(self, item, field: str) -> tuple[Text, tuple[str, float] | None]:
        if not isinstance(item, dict):
            return self._text(item, field), None
        text_key = next((k for k in _RESPONSE_TEXT_KEYS if k in item), None)
        if text_key is None:
            raise self.fail(
                f"a response object needs one of {', '.join(_RESPONSE_TEXT_KEYS)}", field=field
            )
        text = self._text(item[text_key], f"{field}.{text_key}")
        for name in ("score", "rating", "rank"):
            if name in item and item[name] is not None:
                value = self._number(item[name], f"{field}.{name}")
                return text, (name, -value if name == "rank" else value)
        return text, None

    def _ranking_scores(self, key: str, item_scores: list) -> tuple[list[float], str]:
        """The scores (higher is better) and their scale: 'rating' for scores or ratings as
        given, 'order' for ranks or a bare list order."""
        row_keys = [k for k in ("scores", "ratings", "ranks", "ranking") if k in self.row]
        given = [s for s in item_scores if s is not None]
        if len(row_keys) > 1 or (row_keys and given):
            found = row_keys + (["per-response scores"] if given else [])
            raise self.fail(f"scores are given more than once: {', '.join(found)}", field=key)
        if row_keys:
            name = row_keys[0]
            values = self._list(name)
            if len(values) != len(item_scores):
                raise self.fail(
                    f"{name} has {len(values)} values but {key} has {len(item_scores)}", field=name
                )
            numbers = [self._number(v, f"{name}[{i}]") for i, v in enumerate(values)]
            if name in ("ranks", "ranking"):
                return [-n for n in numbers], "order"
            return numbers, "rating"
        if given:
            if len(given) != len(item_scores) or len({kind for kind, _ in given}) > 1:
                raise self.fail(
                    "every response needs the same kind of score, rating or rank", field=key
                )
            return [value for _, value in given], "order" if given[0][0] == "rank" else "rating"
        return [-(i + 1.0) for i in range(len(item_scores))], "order"  # list order is the ranking

    def _list(self, key: str) -> list:
        value = self.row[key]
        if isinstance(value, str) and value.lstrip().startswith("["):
            value = self._json_in_cell(value, key)  # CSV cells hold lists as JSON
        if not isinstance(value, list):
            raise self.fail(f"expected a list, got {describe_json_type(value)}", field=key)
        return value

    def _number(self, value, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"expected a number, got {describe_json_type(value)}", field=field)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(f"expected a finite number, got {value}", field=field)
        return number

    # --- label helpers -------------------------------------------------------------------

    def _choice(self) -> str | None:
        value = self.row.get("choice")
        if value is None or value == "":
            return None  # an empty CSV cell means the pair is unlabeled
        if not isinstance(value, str):
            raise self.fail(f"expected one of {', '.join(CHOICES)}, got {describe_json_type(value)}",
                            field="choice")
        choice = value.strip().lower().replace("-", "_").replace(" ", "_")
        if choice not in CHOICES:
            raise self.fail(f"expected one of {', '.join(CHOICES)}, got {value!r}", field="choice")
        return choice

    def _strength(self) -> int | None:
        value = self.row.get("strength")
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip() in ("1", "2"):
            return int(value)  # CSV cells are strings
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
            return value
        raise self.fail(f"expected 1, 2 or null, got {value!r}", field="strength")

    def _optional_str(self, key: str) -> str | None:
        value = self.row.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(f"expected text or null, got {describe_json_type(value)}", field=key)
        self._check_length(value, key)
        self._check_encodable(value, key)
        return value

    # --- text helpers --------------------------------------------------------------------

    def _prompt(self, value, field: str) -> Text:
        return self._checked_prompt(self._text(value, field), field)

    def _checked_prompt(self, prompt: Text, field: str) -> Text:
        if not prompt.text.strip():
            raise self.fail("prompt is empty", field=field)
        return prompt

    def _text(self, value, field: str) -> Text:
        content = self._content(value, field)
        if isinstance(content, str):
            return Text(content)
        return self._from_messages(content, field)

    def _from_messages(self, messages: tuple[Message, ...], field: str) -> Text:
        text = render_messages(messages)
        self._check_length(text, field)
        return Text(text=text, messages=messages)

    def _content(self, value, field: str) -> str | tuple[Message, ...]:
        """A text field's value: a plain string or validated messages."""
        if isinstance(value, str):
            self._check_length(value, field)
            messages = self._messages_in_cell(value)
            if messages is None:
                self._check_encodable(value, field)
                return value
            value = messages
        if not isinstance(value, list):
            raise self.fail(
                f"expected text or a list of messages, got {describe_json_type(value)}", field=field
            )
        if not value:
            raise self.fail("the list of messages is empty", field=field)
        return tuple(self._message(item, f"{field}[{i}]") for i, item in enumerate(value))

    def _messages_in_cell(self, value: str) -> list | None:
        """Messages stored as a JSON string (how CSV holds them), else None for plain text."""
        if not value.lstrip().startswith("[{"):
            return None
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if isinstance(parsed, list) and parsed and all(
            isinstance(m, dict) and "role" in m and "content" in m for m in parsed
        ):
            return parsed
        return None

    def _message(self, item, field: str) -> Message:
        if not isinstance(item, dict):
            raise self.fail(f"expected a message object, got {describe_json_type(item)}", field=field)
        role = item.get("role")
        if role not in ROLES:
            raise self.fail(f"role must be one of {', '.join(ROLES)}, got {role!r}",
                            field=f"{field}.role")
        content = item.get("content")
        if not isinstance(content, str):
            raise self.fail(f"expected text, got {describe_json_type(content)}", field=f"{field}.content")
        self._check_length(content, f"{field}.content")
        self._check_encodable(content, f"{field}.content")
        return Message(role, content)

    def _json_in_cell(self, value: str, field: str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise self.fail(f"invalid JSON: {exc}", field=field) from None

    def _check_length(self, text: str, field: str) -> None:
        if len(text) > self.limits.max_field_chars:
            raise self.over_limit(f"text is {len(text)} characters, more than "
                                  f"max_field_chars={self.limits.max_field_chars}", field)

    def _check_encodable(self, text: str, field: str) -> None:
        # JSON "\ud800" escapes decode to lone surrogates that no UTF-8 store can hold.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.fail("text contains an unpaired UTF-16 surrogate", field=field) from None
