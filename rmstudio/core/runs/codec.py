"""Run configs to JSON and back, typed: one codec for every run kind.

A run's config crosses processes (the GUI starts a child, ``accelerate launch`` starts several)
and is stored with the run, so it must survive JSON exactly and be checked once, on the way in.
A config is a dataclass whose fields carry type annotations; ``decode`` walks those annotations
(nested dataclasses, ``list[...]``, ``tuple[...]``, ``dict[str, ...]``, ``X | None``, ``Path``)
and builds the dataclass, so its ``__post_init__`` validates it as if it had been made in code.
A wrong type or an unknown key is a ``ValueError`` that names the setting (``finetune.lr``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints


def encode(config: Any) -> Any:
    """A dataclass (or anything inside one) as plain JSON values."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: encode(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [encode(v) for v in config]
    if isinstance(config, dict):
        return {str(k): encode(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


def dumps(config: Any) -> str:
    return json.dumps(encode(config), sort_keys=True)


def decode(cls: type, data: Any, where: str = "config") -> Any:
    """Build ``cls`` (a dataclass) from ``encode``'s output; ValueError names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected settings (a JSON object), got {_kind(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown setting {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(fields))}")
    values = {name: _value(hints[name], raw, f"{where}.{name}") for name, raw in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field missing
        raise ValueError(f"{where}: {exc}") from None


def loads(cls: type, text: str, where: str = "config") -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    return decode(cls, data, where)


def _value(hint: Any, raw: Any, where: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return raw
    if origin in (Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _value(option, raw, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {_kind(raw)} fits none of "
                         f"{' | '.join(_name(a) for a in args)}")
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{where}: must be one of {', '.join(map(repr, args))}, got {raw!r}")
        return raw
    if dataclasses.is_dataclass(hint):
        return decode(hint, raw, where)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(raw, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {_kind(raw)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(raw) != len(args):
                raise ValueError(f"{where}: expected {len(args)} values, got {len(raw)}")
            items = [_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, raw))]
        else:
            item = args[0] if args else Any
            items = [_value(item, v, f"{where}[{i}]") for i, v in enumerate(raw)]
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected settings (a JSON object), got {_kind(raw)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _value(item, v, f"{where}.{k}") for k, v in raw.items()}
    if hint is Path:
        if not isinstance(raw, str):
            raise ValueError(f"{where}: expected a path, got {_kind(raw)}")
        return Path(raw)
    if hint is bool:
        if not isinstance(raw, bool):
            raise ValueError(f"{where}: expected true or false, got {_kind(raw)}")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"{where}: expected a whole number, got {_kind(raw)}")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"{where}: expected a number, got {_kind(raw)}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ValueError(f"{where}: expected text, got {_kind(raw)}")
        return raw
    raise ValueError(f"{where}: the codec cannot read settings of type {_name(hint)}")


def _kind(raw: Any) -> str:
    return {dict: "an object", list: "a list", str: f"text {raw!r}", bool: str(raw).lower(),
            type(None): "null"}.get(type(raw), f"{type(raw).__name__} {raw!r}")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))
