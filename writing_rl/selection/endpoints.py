"""The endpoints file: the policy and the K candidate models, each an OpenAI-compatible endpoint.

TOML with one `[policy]` table and `[[candidates]]` tables. Each table takes `JudgeSettings`' keys
(`base_url`, `model`, `api_key_env`, sampling, limits, `cache_path`) plus `name` and optional prices
`usd_per_mtok_in` / `usd_per_mtok_out`. A table without `api_key_env` sends no key: a key meant for one
provider never travels to another endpoint. Every problem names the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError, json_type
from writing_rl.judge.settings import JudgeSettings
from writing_rl.selection.costs import usd_cost
from writing_rl.text_files import read_user_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NO_KEY_ENV = "WRITING_RL_NO_API_KEY"
"""The variable name a table without `api_key_env` reads its key from: unset, so no key is sent."""
PRICE_KEYS = ("usd_per_mtok_in", "usd_per_mtok_out")
_SETTINGS_KEYS = [name for name in JudgeSettings.field_names() if name != "output_constraint"]
_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]")
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "str | None": (str,)}


@dataclass(frozen=True)
class Endpoint:
    """One model to generate with: where it lives, how hard to push it, what it costs."""

    name: str
    settings: JudgeSettings
    where: str
    """The table in the endpoints file, for error messages: `endpoints.toml [[candidates]] #2`."""
    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None
    """None: the file gives no price, so the cost is unknown (not zero)."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        return usd_cost(prompt_tokens, completion_tokens, self.usd_per_mtok_in, self.usd_per_mtok_out)

    def with_default_cache(self, folder: Path) -> Endpoint:
        """This endpoint with its own cache file in `folder` unless the table names one."""
        if self.settings.cache_path:
            return self
        safe = _UNSAFE_IN_FILE_NAMES.sub("_", self.name)
        if safe != self.name:  # keep names that differ only in unsafe characters apart
            safe += "-" + hashlib.sha256(self.name.encode("utf-8")).hexdigest()[:8]
        cache = str(folder / f"generations_{safe}.sqlite")
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, cache_path=cache))


@dataclass(frozen=True)
class Endpoints:
    policy: Endpoint
    candidates: tuple[Endpoint, ...]

    @property
    def all(self) -> tuple[Endpoint, ...]:
        return (self.policy, *self.candidates)


def load_endpoints(path: Path) -> Endpoints:
    text = read_user_text(path, DataError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - {"policy", "candidates"})
    if unknown:
        raise DataError(f"{path}: unknown top-level key(s) {unknown}; expected a [policy] table and "
                        "[[candidates]] tables")
    if not isinstance(data.get("policy"), dict):
        raise DataError(f"{path}: missing the [policy] table (base_url, model, ...) of the model being trained")
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise DataError(f"{path}: missing [[candidates]] tables: give at least one strong model, one "
                        "[[candidates]] table each")
    policy = _endpoint(data["policy"], f"{path} [policy]", "policy")
    found = [_endpoint(table, f"{path} [[candidates]] #{n}", None) for n, table in enumerate(candidates, start=1)]
    names: dict[str, str] = {}
    for endpoint in (policy, *found):
        if endpoint.name in names:
            raise DataError(f"{endpoint.where}: name {endpoint.name!r} is also the name of {names[endpoint.name]}; "
                            "give each table a distinct `name`")
        names[endpoint.name] = endpoint.where
    return Endpoints(policy, tuple(found))


def _endpoint(table: Any, where: str, default_name: str | None) -> Endpoint:
    if not isinstance(table, dict):
        raise DataError(f"{where}: expected a table, got {json_type(table)}")
    known = {"name", *PRICE_KEYS, *_SETTINGS_KEYS}
    unknown = sorted(set(table) - known)
    if unknown:
        hint = " (give api_key_env, the variable's NAME, never the key)" if "api_key" in unknown else ""
        raise DataError(f"{where}: unknown key(s) {unknown}{hint}; known keys are {sorted(known)}")
    for key in ("base_url", "model"):
        if key not in table:
            raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(table[key], str) or not table[key].strip():
            raise DataError(f"{where}: {key} must be a non-empty string")
    cache = table.get("cache_path")
    if isinstance(cache, str) and Path(cache).is_dir():
        raise DataError(f"{where}: cache_path {cache!r} is a directory; give a file name, e.g. "
                        f"{Path(cache) / 'judge_cache.sqlite'}")
    name = table.get("name", default_name if default_name is not None else table["model"])
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: name must be a non-empty string")
    values = {key: value for key, value in table.items() if key in _SETTINGS_KEYS}
    values.setdefault("api_key_env", NO_KEY_ENV)
    _check_types(values, where)
    prices = {key: table.get(key) for key in PRICE_KEYS}
    for key, value in prices.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                                  or not math.isfinite(value)):
            raise DataError(f"{where}: {key} must be a number >= 0 (US dollars per million tokens)")
    try:
        settings = JudgeSettings.from_mapping(values, source=where)
    except ValueError as exc:
        raise DataError(f"{where}: {str(exc).removeprefix('invalid judge settings: ')}") from exc
    price_in, price_out = (None if prices[k] is None else float(prices[k]) for k in PRICE_KEYS)
    return Endpoint(name, settings, where, price_in, price_out)


def _check_types(values: dict[str, Any], where: str) -> None:
    fields = {f.name: str(f.type) for f in dataclasses.fields(JudgeSettings)}
    for key, value in values.items():
        if key == "extra_body":
            if not isinstance(value, dict):
                raise DataError(f"{where}: extra_body must be a table, e.g. extra_body = {{ top_p = 0.95 }}")
            continue
        allowed = _TYPES[fields[key]]
        if isinstance(value, bool) or not isinstance(value, allowed):
            wanted = "a string" if allowed == (str,) else "a number"
            raise DataError(f"{where}: {key} must be {wanted}, got {json_type(value)}")
