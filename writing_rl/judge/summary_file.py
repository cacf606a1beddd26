"""An evaluation summary saved with what it was measured on, and the comparison of two such files.

The file says which input (path, sha256, limit), which judge (endpoint settings without secrets,
prompt file) and whether the run finished, so that two runs are compared only when they measured
the same thing, and the reader can see when they did not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from writing_rl import __version__
from writing_rl.data.rows import DataError, json_type
from writing_rl.judge.settings import JudgeSettings
from writing_rl.text_files import read_user_text

JUDGE_KEYS = ("base_url", "model", "temperature", "max_tokens", "output_constraint", "extra_body")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summary_record(kind: str, summary: dict[str, Any], *, input_path: Path, limit: int | None,
                   settings: JudgeSettings, template: str, complete: bool) -> dict[str, Any]:
    judge = {key: value for key, value in settings.public_dict().items() if key in JUDGE_KEYS}
    return {"kind": kind, "complete": complete, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "writing_rl_version": __version__,
            "input": {"path": str(input_path), "sha256": file_sha256(input_path), "limit": limit},
            "judge": {**judge, "template": template}, "summary": summary}


def write_summary_file(path: Path, record: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"--summary-json {path}: cannot write ({exc.strerror}); the summary above is "
                        "complete") from exc


def read_summary_file(path: Path) -> dict[str, Any]:
    """A file written by `judge eval --summary-json`, or a DataError saying what is wrong with it."""
    try:
        record = json.loads(read_user_text(path, DataError))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise DataError(f"{path}: expected a JSON object written by `judge eval --summary-json`, "
                        f"got {json_type(record)}")
    for key, kind in (("kind", str), ("summary", dict), ("input", dict), ("judge", dict)):
        if not isinstance(record.get(key), kind):
            raise DataError(f"{path}: no {key!r} {'object' if kind is dict else 'string'}; is it a file written by "
                            "`judge eval --summary-json`?")
    return record


@dataclass(frozen=True)
class SummaryComparison:
    same_input: bool
    differences: dict[str, tuple[Any, Any]]
    """What differs besides the metrics: input, judge settings, completeness, {name: (base, new)}."""
    metrics: dict[str, tuple[float, float, float]]
    """{name: (base, new, new - base)} for every number both summaries hold."""
    only_in_base: list[str]
    only_in_new: list[str]
    not_numeric: list[str]
    """Metrics both summaries hold where at least one value is not a number: not compared."""

    def as_record(self) -> dict[str, Any]:
        return {"same_input": self.same_input,
                "differences": {k: {"base": b, "new": n} for k, (b, n) in self.differences.items()},
                "metrics": {k: {"base": b, "new": n, "delta": d} for k, (b, n, d) in self.metrics.items()},
                "only_in_base": self.only_in_base, "only_in_new": self.only_in_new, "not_numeric": self.not_numeric}

    def skipped_note(self, base_name: str, new_name: str) -> str | None:
        """What was left out of the comparison, or None when every metric was compared."""
        parts = [f"{label}: {', '.join(keys)}" for label, keys in (
            (f"only in {base_name}", self.only_in_base), (f"only in {new_name}", self.only_in_new),
            ("not numbers", self.not_numeric)) if keys]
        return "; ".join(parts) or None


def compare_summaries(base: dict[str, Any], new: dict[str, Any], *, base_name: str, new_name: str
                      ) -> SummaryComparison:
    """Metric by metric; summaries of different kinds (pairs vs best-of-k), or without a numeric metric in
    common, are refused."""
    if base["kind"] != new["kind"]:
        raise DataError(f"{base_name} is a {base['kind']!r} summary and {new_name} a {new['kind']!r} one; only "
                        "summaries of the same kind can be compared")
    differences = {f"input.{k}": (base["input"].get(k), new["input"].get(k)) for k in ("sha256", "limit")}
    differences |= {f"judge.{k}": (base["judge"].get(k), new["judge"].get(k))
                    for k in sorted(set(base["judge"]) | set(new["judge"]))}
    differences["complete"] = (base.get("complete"), new.get("complete"))
    metrics, not_numeric = {}, []
    for key, value in base["summary"].items():
        if key not in new["summary"]:
            continue
        other = new["summary"][key]
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in (value, other)):
            metrics[key] = (value, other, other - value)
        else:
            not_numeric.append(key)
    comparison = SummaryComparison(
        same_input=base["input"].get("sha256") == new["input"].get("sha256")
        and base["input"].get("limit") == new["input"].get("limit"),
        differences={k: v for k, v in differences.items() if v[0] != v[1]}, metrics=metrics,
        only_in_base=[k for k in base["summary"] if k not in new["summary"]],
        only_in_new=[k for k in new["summary"] if k not in base["summary"]], not_numeric=not_numeric)
    if not metrics:
        raise DataError(f"{base_name} and {new_name} have no numeric metric in common, nothing to compare "
                        f"({comparison.skipped_note(base_name, new_name) or 'both summaries are empty'}); give two "
                        "files written by `judge eval --summary-json`")
    return comparison
