"""Parse one untrusted .gguf or .safetensors file; run as ``python -m rmstudio.core.models.model_probe PATH``.

It runs in a child process (see ``models.check_model_file``) so that a native crash while
reading a malformed file ends only this process. Exit status 0 means the header is sound;
otherwise the last line on stderr says why.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


def probe_gguf(path: Path) -> dict:
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("missing the GGUF magic bytes")
    from gguf import GGUFReader

    reader = GGUFReader(path, "r")  # parses every key/value and tensor descriptor
    return {"format": "gguf", "tensors": len(reader.tensors), "fields": len(reader.fields)}


def probe_safetensors(path: Path) -> dict:
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError("file is shorter than the 8-byte header length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > _MAX_SAFETENSORS_HEADER or 8 + header_len > size:
            raise ValueError(f"header length {header_len} does not fit in a {size}-byte file")
        header = json.loads(f.read(header_len))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data_len = size - 8 - header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        itemsize = _SAFETENSORS_ITEMSIZE.get(info.get("dtype") if isinstance(info, dict) else None)
        if itemsize is None:
            raise ValueError(f"tensor '{name}' has no known dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"tensor '{name}' has a malformed shape")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise ValueError(f"tensor '{name}' points outside the file")
        if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
            raise ValueError(f"tensor '{name}' has {offsets[1] - offsets[0]} bytes for shape {shape}")
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:  # the library's own checks too
        count = len(list(f.keys()))
    return {"format": "safetensors", "tensors": count}


def probe(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return probe_gguf(path)
    if suffix == ".safetensors":
        return probe_safetensors(path)
    raise ValueError(f"unknown model file type '{suffix}'; expected .gguf or .safetensors")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m rmstudio.core.models.model_probe PATH", file=sys.stderr)
        return 2
    try:
        info = probe(Path(argv[0]))
    except Exception as exc:  # any failure to parse is the answer, not a bug here
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
