"""Time as rmstudio stores it, and how long something took or has left, in words a person
reads at a glance."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    """The time stamps stored in a project: UTC, ISO 8601, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def format_duration(seconds: float | None) -> str:
    """'—', '8.4 s', '42 s', '3 min 05 s', '2 h 07 min', '3.5 days'."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    if whole < 48 * 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole / 86400:.1f} days"
