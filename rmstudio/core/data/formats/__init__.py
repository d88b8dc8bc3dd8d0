"""Reading preference data files (JSONL, JSON, CSV, Parquet; optionally gzipped) as Records."""

from rmstudio.core.data.formats.chat import hh_to_messages, render_messages
from rmstudio.core.data.formats.parse import iter_records, parse_row
from rmstudio.core.data.formats.readers import Limits, iter_rows

__all__ = ["Limits", "hh_to_messages", "iter_records", "iter_rows", "parse_row", "render_messages"]
