"""A local preference file (JSONL, JSON, CSV or parquet) -> our pairs parquet: `id, prompt, chosen, rejected`.

Two layouts are read: LitBench's (`prompt`, `chosen_story`, `rejected_story`, other columns ignored) and the
generic one (`prompt`, `chosen`, `rejected`, optional `id`). Exact duplicates (same prompt and texts, whatever
their ids) are dropped after the first, as are pairs whose two texts are identical and pairs that appear in both
directions (a contradiction: no side is preferred).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from writing_rl.data.build import check_out_dir, move_stale_test_file, write_rows
from writing_rl.data.rows import DataError, read_rows, require_text, row_id, unique_ids
from writing_rl.text_files import read_user_text

PAIR_COLUMNS = ("id", "prompt", "chosen", "rejected")
LAYOUTS = {
    "litbench": {"prompt": "prompt", "chosen": "chosen_story", "rejected": "rejected_story"},
    "generic": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
}
"""Per layout: our column -> the input's column."""


@dataclass
class PairsResult:
    layout: str
    detected: bool
    """True when the layout was detected from the columns rather than given with --layout."""
    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Pairs left out, by reason: duplicate, identical texts, contradictory, too short, too long."""
    written: dict[Path, int] = field(default_factory=dict)
    moved_stale: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "detected": self.detected, "read": self.read,
                "kept": sum(self.written.values()), "dropped": dict(self.dropped),
                "written": {str(p): n for p, n in self.written.items()},
                "moved_stale": str(self.moved_stale) if self.moved_stale else None}


def read_preference_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .csv (header line, UTF-8, every cell read as text) or of anything `read_rows` reads."""
    kinds = ".jsonl, .json, .csv or .parquet"
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a preference file ({kinds})")
    if path.exists() and path.suffix.lower() not in (".csv", ".jsonl", ".json", ".parquet"):
        what = f"file type {path.suffix!r}" if path.suffix else "file without an extension"
        raise DataError(f"{path}: unsupported {what}; give a preference file ({kinds})")
    if path.suffix.lower() != ".csv" or not path.is_file():
        return read_rows(path)  # (and its "not found" error)
    read_user_text(path, DataError)  # encoding problems named with their line
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({exc}); a header line and comma-separated, "
                        "double-quoted cells are expected") from exc
    return frame.to_dict(orient="records")


def detect_layout(path: Path, rows: list[dict[str, Any]], layout: str) -> tuple[str, bool]:
    """The layout to read (given, or detected from the columns) and whether it was detected."""
    columns = set().union(*(row.keys() for row in rows))
    if layout != "auto":
        missing = sorted(set(LAYOUTS[layout].values()) - columns)
        if missing:
            raise DataError(f"{path}: --layout {layout} needs column(s) {missing}, which no row has; "
                            f"columns found: {sorted(columns)}")
        return layout, False
    fits = [name for name, names in LAYOUTS.items() if set(names.values()) <= columns]
    if len(fits) == 1:
        return fits[0], True
    if fits:
        raise DataError(f"{path}: the columns fit more than one layout ({', '.join(fits)}); choose one with "
                        "--layout")
    expected = "; ".join(f"{name}: {', '.join(names.values())}" for name, names in LAYOUTS.items())
    raise DataError(f"{path}: no known layout in columns {sorted(columns)}; expected {expected} (rename the "
                    "columns, or pick a layout with --layout)")


_CONVERT = "`writing-rl data pairs FILE --out-dir DIR` and give DIR/train.parquet"


def pair_texts(row: dict[str, Any], where: str) -> dict[str, str]:
    """The prompt, chosen and rejected texts of a row of our pairs file. A row without them is refused, and where it
    looks like a row of another kind of file the message says which kind and which file to give instead."""
    try:
        return {key: require_text(row, key, where) for key in ("prompt", "chosen", "rejected")}
    except DataError as exc:
        hint = _not_pairs_hint(row)
        if hint is None:
            raise
        raise DataError(f"{exc}; {hint}") from exc


def _not_pairs_hint(row: dict[str, Any]) -> str | None:
    columns = set(row)
    if set(LAYOUTS["litbench"].values()) <= columns:
        return f"this looks like a raw LitBench file (chosen_story, rejected_story): convert it with {_CONVERT}"
    if "messages" in columns:
        return ("this looks like an SFT parquet (a 'messages' column, as `writing-rl genrm synthesize` writes), not "
                "pairs: give the pairs file it was made from, the train.parquet of `writing-rl data pairs`")
    if "reward_model" in columns:
        return ("this looks like a verl RL parquet (a chat 'prompt' and 'reward_model', as `writing-rl data build` "
                "and `writing-rl data genrm-rl` write), not pairs: give the pairs file instead, the train.parquet of "
                "`writing-rl data pairs`")
    if not {"chosen", "rejected"} <= columns:
        return f"pairs need the fields prompt, chosen and rejected; for a file of another layout run {_CONVERT}"
    return None


def _content_id(prompt: str, chosen: str, rejected: str) -> str:
    """A stable id for a row without one, so a rebuild gives every pair the same id."""
    digest = hashlib.sha1("\x00".join((prompt, chosen, rejected)).encode("utf-8")).hexdigest()
    return f"p{digest[:12]}"


def _length_problem(texts: tuple[str, str], min_words: int | None, max_words: int | None) -> str | None:
    words = [len(text.split()) for text in texts]
    if min_words is not None and min(words) < min_words:
        return "too short"
    if max_words is not None and max(words) > max_words:
        return "too long"
    return None


def convert_pairs(input_path: Path, *, layout: str = "auto", min_words: int | None = None,
                  max_words: int | None = None) -> tuple[list[dict[str, str]], PairsResult]:
    """The kept pairs, in input order, and what happened to the rest."""
    rows = read_preference_rows(input_path)
    if not rows:
        raise DataError(f"{input_path}: no rows")
    chosen_layout, detected = detect_layout(input_path, rows, layout)
    result = PairsResult(layout=chosen_layout, detected=detected, read=len(rows))
    names = LAYOUTS[chosen_layout]

    def where(number: int) -> str:
        return f"{input_path}, row {number}"

    candidates: list[tuple[int, str | None, tuple[str, str, str]]] = []
    for number, row in enumerate(rows, start=1):
        texts = tuple(require_text(row, names[key], where(number)) for key in ("prompt", "chosen", "rejected"))
        own_id = row_id(row, where(number)) if chosen_layout == "generic" else None
        candidates.append((number, own_id, texts))  # type: ignore[arg-type]

    seen: set[tuple[str, str, str]] = set()
    directions = Counter(texts for _, _, texts in candidates)
    kept: list[tuple[int, str | None, tuple[str, str, str]]] = []
    for number, own_id, texts in candidates:
        prompt, chosen, rejected = texts
        if texts in seen:
            reason: str | None = "duplicate"
        elif chosen.strip() == rejected.strip():
            reason = "identical texts"
        elif directions[(prompt, rejected, chosen)]:
            reason = "contradictory"
        else:
            reason = _length_problem((chosen, rejected), min_words, max_words)
        seen.add(texts)
        if reason:
            result.dropped[reason] += 1
        else:
            kept.append((number, own_id, texts))

    ids = unique_ids([own for _, own, _ in kept], lambda i: where(kept[i - 1][0]),
                     generated=lambda i: _content_id(*kept[i - 1][2]), generated_from="its texts")
    pairs = [dict(zip(PAIR_COLUMNS, (pair_id, *texts), strict=True)) for pair_id, (_, _, texts) in zip(ids, kept,
                                                                                                       strict=True)]
    return pairs, result


def _groups_sharing_text(pairs: list[dict[str, str]]) -> list[list[int]]:
    """Pair indexes grouped so that pairs sharing a prompt or a text (directly or through others) are together."""
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[tuple[str, str], int] = {}
    for index, pair in enumerate(pairs):
        for key in (("prompt", pair["prompt"]), ("text", pair["chosen"]), ("text", pair["rejected"])):
            other = first_with.setdefault(key, index)
            parent[root(index)] = root(other)
    groups: dict[int, list[int]] = {}
    for index in range(len(pairs)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


def split_by_shared_text(pairs: list[dict[str, str]], test_size: int, seed: int) -> dict[str, list[dict[str, str]]]:
    """Train and test with no prompt and no text in both (a GenRM tested on stories it was trained on measures
    memory): whole groups of pairs sharing a prompt or a text are held out, in an order `seed` fixes, until the test
    split has at least `test_size` pairs."""
    groups = _groups_sharing_text(pairs)
    random.Random(seed).shuffle(groups)
    held_out: set[int] = set()
    for group in groups:
        if len(held_out) >= test_size:
            break
        held_out.update(group)
    if test_size and len(held_out) == len(pairs):
        largest = max(len(g) for g in groups)
        raise DataError(f"--test-size {test_size}: the {len(pairs)} pairs form {len(groups)} group(s) sharing a prompt "
                        f"or a text (the largest has {largest} pairs), and holding out {test_size} pairs this way "
                        "leaves none to train on; give a smaller --test-size")
    return {"train": [p for i, p in enumerate(pairs) if i not in held_out],
            "test": [p for i, p in enumerate(pairs) if i in held_out]}


def build_pairs(input_path: Path, out_dir: Path, *, test_size: int = 0, seed: int = 0, layout: str = "auto",
                min_words: int | None = None, max_words: int | None = None) -> PairsResult:
    """Write OUT_DIR/train.parquet (and test.parquet with at least `test_size` pairs held out, whole groups sharing
    a prompt or a text at a time, drawn with `seed`)."""
    for name, value in (("--min-words", min_words), ("--max-words", max_words)):
        if value is not None and value < 0:
            raise DataError(f"{name} {value}: must be 0 or more")
    if min_words is not None and max_words is not None and min_words > max_words:
        raise DataError(f"--min-words {min_words} is above --max-words {max_words}: no pair could pass")
    check_out_dir(input_path, out_dir)
    pairs, result = convert_pairs(input_path, layout=layout, min_words=min_words, max_words=max_words)
    if not pairs:
        raise DataError(f"{input_path}: no pair left after filtering ({dict(result.dropped)}); loosen "
                        "--min-words/--max-words or check the file")
    if not 0 <= test_size < len(pairs):
        raise DataError(f"--test-size {test_size} must be between 0 and {len(pairs) - 1} for {len(pairs)} pairs")
    splits = split_by_shared_text(pairs, test_size, seed)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out-dir {out_dir}: cannot create it ({exc.strerror})") from exc
    for split, split_pairs in splits.items():
        if split_pairs:
            write_rows(split_pairs, out_dir / f"{split}.parquet")
            result.written[out_dir / f"{split}.parquet"] = len(split_pairs)
    if not splits["test"]:
        result.moved_stale = move_stale_test_file(out_dir)
    return result
