"""Read user-supplied rows from JSONL or parquet, with errors that name the file and the row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


class DataError(ValueError):
    """Bad input data; the message names the file, the row and how to fix it."""


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a `.jsonl`/`.json` (one JSON object per line) or `.parquet` file, row numbers from 1."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:
            raise DataError(f"{path}: cannot read as parquet ({exc})") from exc
    if path.suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .parquet")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {line_number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {line_number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def require_text(row: dict[str, Any], key: str, where: str) -> str:
    """row[key] as a non-empty string, or a DataError naming `where` (file and row) and the key."""
    value = row.get(key)
    if value is None:
        raise DataError(f"{where}: missing field {key!r}")
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: field {key!r} is empty")
    return value
