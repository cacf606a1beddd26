"""Read user-supplied rows from JSONL, JSON or parquet, with errors that name the file and the row."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from writing_rl.text_files import read_user_text

SUFFIXES = (".jsonl", ".json", ".parquet")


class DataError(ValueError):
    """Bad input data; the message names the file, the row and how to fix it."""


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as a user who wrote the file would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list | tuple) else "object"


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a `.jsonl` (one JSON object per line), `.json` (the same, or one array of objects) or
    `.parquet` file, row numbers from 1. Suffixes are matched case-insensitively."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a .jsonl, .json or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:
            raise DataError(f"{path}: cannot read as parquet ({exc})") from exc
    if suffix not in SUFFIXES:
        what = f"file type {path.suffix!r}" if path.suffix else "file without an extension"
        raise DataError(f"{path}: unsupported {what}; use .jsonl (one JSON object per line), .json or .parquet")
    text = read_user_text(path, DataError)
    if suffix == ".json" and text.lstrip().startswith("["):
        return _array_rows(path, text)
    return _line_rows(path, text)


def _array_rows(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array of objects, got {json_type(items)}")
    for number, item in enumerate(items, start=1):
        where = f"{path}, item {number} of the array"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object, got {json_type(item)}")
        _require_encodable(item, where, text)
    return items


def _line_rows(path: Path, text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}){_array_hint(line, path)}") from exc
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {json_type(row)}{_array_hint(line, path)}")
        _require_encodable(row, where, line)
        rows.append(row)
    return rows


def _array_hint(line: str, path: Path) -> str:
    if not line.lstrip().startswith("["):
        return ""
    return ("; the file looks like a JSON array: save one object per line as .jsonl"
            + ("" if path.suffix.lower() == ".json" else ", or name the file .json to read it as an array"))


def _require_encodable(row: dict[str, Any], where: str, source: str) -> None:
    r"""A `\ud800`-style escape decodes to half a UTF-16 pair, which is not text and breaks later writes."""
    if "\\u" not in source:
        return
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{where}: contains a lone surrogate escape (\\u{ord(exc.object[exc.start]):04x}), "
                        "half of a UTF-16 pair and not text; fix or remove that escape") from exc


def require_text(row: dict[str, Any], key: str, where: str) -> str:
    """row[key] as a non-empty string, or a DataError naming `where` (file and row) and the key."""
    value = row.get(key)
    if value is None:
        raise DataError(f"{where}: missing field {key!r}")
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {json_type(value)}")
    if not value.strip():
        raise DataError(f"{where}: field {key!r} is empty")
    return value


def row_id(row: dict[str, Any], where: str) -> str | None:
    """The row's `id` as a string; None when the row has none (absent or null). Integers are accepted
    and written as strings; floats, booleans, containers and blank strings are refused."""
    value = row.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise DataError(f"{where}: 'id' must be a string, got {json_type(value)} {shown}; "
                        'write ids as strings, e.g. "id": "w1"')
    if not str(value).strip():
        raise DataError(f"{where}: 'id' is blank; give a non-empty string or leave 'id' out")
    return str(value)


def unique_ids(ids: Sequence[str | None], where: Callable[[int], str], generated: Callable[[int], str],
               generated_from: str = "its position") -> list[str]:
    """One id per row (row numbers from 1): the row's own, or `generated(number)` for a row without one.

    A clash is reported with the row that holds the id first, and says when one side's id was
    generated, since the user never wrote that id and cannot find it in the file.
    """
    first: dict[str, tuple[int, bool]] = {}
    result = []
    for number, own in enumerate(ids, start=1):
        value, is_generated = (own, False) if own is not None else (generated(number), True)
        if value in first:
            raise DataError(_clash(where(number), value, is_generated, *first[value], generated_from))
        first[value] = (number, is_generated)
        result.append(value)
    return result


def identified_rows(rows: Sequence[dict[str, Any]], label: str, *,
                    generated: Callable[[int], str] = str,
                    own_id: Callable[[dict[str, Any], str], str | None] = row_id,
                    ) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, where, row) per row, `where` being "LABEL, row N" for error messages: the row's own id, or
    `generated(N)` (N from 1) for a row without one; ids must be unique."""

    def where(number: int) -> str:
        return f"{label}, row {number}"

    ids = unique_ids([own_id(row, where(n)) for n, row in enumerate(rows, start=1)], where, generated)
    return [(i, where(n), row) for n, (i, row) in enumerate(zip(ids, rows, strict=True), start=1)]


def _clash(where: str, value: str, is_generated: bool, first_row: int, first_generated: bool,
           generated_from: str) -> str:
    if is_generated:
        return (f"{where}: this row has no id, and the id generated from {generated_from}, {value!r}, is already "
                f"the id of row {first_row}; give every row an id (or none)")
    if first_generated:
        return (f"{where}: id {value!r} is also the id generated from {generated_from.replace('its ', 'the ')} of row "
                f"{first_row}, which has no id; give every row an id (or none)")
    return f"{where}: duplicate id {value!r} (first in row {first_row}); ids must be unique"
