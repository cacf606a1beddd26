"""Typed judge errors: each says whether a retry can help and what to do about it."""

from __future__ import annotations


class JudgeError(Exception):
    """Base class for every judge failure."""


class RetryableJudgeError(JudgeError):
    """A transient failure (429, 5xx, timeout, dropped connection, malformed body)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, kind: str = "transient"):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.kind = kind


class JudgeRequestError(JudgeError):
    """The server refused the request for a reason a retry cannot fix (a 4xx other than 429).

    Typical causes: a wrong model name (404), a missing or wrong API key (401/403), a prompt
    longer than the judge's context (400). Fix the settings; do not retry.
    """

    def __init__(self, status: int, detail: str):
        super().__init__(f"judge answered HTTP {status}: {detail}")
        self.status = status


class JudgeUnavailable(JudgeError):
    """Every allowed attempt failed; the last transient error is chained as the cause."""

    def __init__(self, attempts: int, last: RetryableJudgeError):
        super().__init__(f"judge unreachable after {attempts} attempt(s); last error: {last}")
        self.attempts = attempts
        self.last = last


class JudgeConnectError(JudgeError):
    """The very first connection to the judge failed (refused, TLS mismatch, unknown host).

    Raised instead of retrying only by clients made with `fail_fast_on_connect` (the interactive
    commands): there it is almost always a wrong URL or a server not started, and a minute of
    retries only hides that.
    """


class JudgeCacheError(JudgeError):
    """The judgement cache file cannot be opened or used (not a SQLite file, a folder, no permission)."""


class JudgeConfigurationError(JudgeRequestError):
    """The judge answers, but cannot answer requests like ours, for a cause found by asking it (a model name it
    does not serve, a prompt longer than its context). Fix the settings the message names; retrying cannot help."""

    def __init__(self, status: int, cause: str):
        JudgeError.__init__(self, cause)
        self.status = status
