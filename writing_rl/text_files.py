"""Reading text files a user wrote (data rows, pair files, prompt files, `@FILE` arguments).

Editors on some systems save UTF-8 with a byte-order mark, or save in another encoding; both
should give an answer a user can act on, never a codec traceback. A BOM is accepted silently.
"""

from __future__ import annotations

from pathlib import Path

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_user_text(path: Path, error: type[Exception]) -> str:
    """The file's text (UTF-8, an optional BOM dropped); problems raise `error` naming the file and line."""
    if path.is_dir():
        raise error(f"{path}: is a directory, not a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise error(f"{path}: file not found") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(_decode_problem(path, data, exc)) from exc


def _decode_problem(path: Path, data: bytes, exc: UnicodeDecodeError) -> str:
    if data.startswith(_UTF16_BOMS):
        return f"{path}: saved as UTF-16, not UTF-8; re-save the file as UTF-8"
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return (f"{path}, line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "re-save the file as UTF-8")
