"""Judge endpoint settings: one typed object, defaults in one place, env vars as fallback.

The API key itself is never stored here, only the *name* of the environment variable that
holds it, so a settings object can be printed, logged or saved without leaking a secret.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

ENV_PREFIX = "JUDGE_"
OUTPUT_CONSTRAINTS = ("none", "llama.cpp", "vllm")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PREFIXES = ("sk-", "sk_", "hf_", "gsk_", "xai-", "pk-", "rk-", "AIza", "Bearer")


@dataclass(frozen=True)
class JudgeSettings:
    """Where the judge lives and how hard we may push it."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "judge"
    api_key_env: str = "JUDGE_API_KEY"
    temperature: float = 0.1
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_concurrency: int = 64
    requests_per_minute: float = 0.0
    """0 means unlimited."""
    tokens_per_minute: float = 0.0
    """0 means unlimited; each request reserves its estimated prompt tokens plus max_tokens."""
    max_retries: int = 6
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    cache_path: str | None = None
    """SQLite file; None disables the cache."""
    output_constraint: str = "none"
    """Send the prompt file's grammar so the server can force the output format:
    "none", "llama.cpp" (body `grammar`) or "vllm" (body `structured_outputs.grammar`)."""
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Merged into every request body (server-specific sampling options)."""

    def __post_init__(self) -> None:
        problems = []
        if not self.base_url.startswith(("http://", "https://")):
            problems.append(f"base_url={self.base_url!r} must start with http:// or https://")
        for name in ("max_concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("timeout_s", "backoff_initial_s", "backoff_max_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}={getattr(self, name)} must be > 0")
        for name in ("requests_per_minute", "tokens_per_minute", "max_retries", "temperature"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must be >= 0")
        api_key_env_problem = _api_key_env_problem(self.api_key_env)
        if api_key_env_problem:
            problems.append(api_key_env_problem)
        if self.output_constraint not in OUTPUT_CONSTRAINTS:
            problems.append(f"output_constraint={self.output_constraint!r} must be one of {OUTPUT_CONSTRAINTS}")
        if problems:
            raise ValueError("invalid judge settings: " + "; ".join(problems))

    @property
    def api_key(self) -> str | None:
        """The key, read from the environment at the moment it is needed (never stored)."""
        return os.environ.get(self.api_key_env) or None

    @property
    def is_loopback(self) -> bool:
        """A judge on this machine (127.0.0.1, localhost, ::1), which usually needs no API key."""
        return urlparse(self.base_url).hostname in LOOPBACK_HOSTS

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "judge settings") -> JudgeSettings:
        """Build from a config mapping (e.g. `reward.reward_kwargs.judge`), rejecting unknown keys."""
        known = set(cls.field_names())
        unknown = sorted(set(values) - known)
        if unknown:
            hint = " (give api_key_env, the variable's NAME, never the key)" if "api_key" in unknown else ""
            raise ValueError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}{hint}")
        return cls(**dict(values))

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> JudgeSettings:
        """Defaults <- JUDGE_* environment variables <- explicit overrides (None values ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name == "extra_body":
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        return cls.from_mapping(values)

    def public_dict(self) -> dict[str, Any]:
        """Everything but secrets (there are none stored; this is safe to log)."""
        data = dataclasses.asdict(self)
        data["extra_body"] = dict(self.extra_body)
        data["api_key_set"] = self.api_key is not None
        return data


def _looks_like_key(value: str) -> bool:
    """A provider key's prefix, or a long mix of lower case, upper case and digits (names are not)."""
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value)
    return value.startswith(_KEY_PREFIXES) or (len(value) >= 24 and mixed)


def _api_key_env_problem(value: object) -> str | None:
    """What is wrong with an api_key_env value, never quoting it: a mix-up puts the key itself there."""
    if isinstance(value, str) and _ENV_NAME.fullmatch(value) and not _looks_like_key(value):
        return None
    why = ("the value given looks like a key itself" if isinstance(value, str) and _looks_like_key(value)
           else "the value given is not a valid variable name")
    return ("api_key_env must be the NAME of the environment variable holding the key, e.g. JUDGE_API_KEY; "
            f"{why} and is not shown")


def _coerce(type_name: Any, raw: str, name: str) -> Any:
    text = str(type_name)
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from exc
    if text.startswith("str | None") and raw == "":
        return None
    return raw
