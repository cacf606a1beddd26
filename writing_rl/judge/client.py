"""Async client for any OpenAI-compatible chat-completions endpoint, built for judging at scale.

One client per process and event loop. It composes small parts: `JudgeLimits` (concurrency,
requests/min, tokens/min), tenacity retries (only on transient errors, honouring Retry-After),
`JudgementCache` (never pay twice) and `UsageMeter` (tokens and latency of every call).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)

from writing_rl.judge.cache import JudgementCache, cache_key
from writing_rl.judge.errors import JudgeConnectError, JudgeRequestError, JudgeUnavailable, RetryableJudgeError
from writing_rl.judge.limits import JudgeLimits
from writing_rl.judge.settings import JudgeSettings
from writing_rl.judge.usage import UsageMeter

logger = logging.getLogger(__name__)

Message = Mapping[str, str]
_MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class JudgeReply:
    """The judge's raw answer to one request, with what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Seconds the answered HTTP request took (queueing for limits and earlier attempts excluded)."""
    attempts: int
    cached: bool


class JudgeClient:
    """`await client.complete(messages)` -> JudgeReply, or raises JudgeUnavailable / JudgeRequestError.

    HTTP goes through aiohttp: its connection pool stays cheap with hundreds of requests in
    flight, where httpx's pool spends more CPU than the requests themselves.

    `fail_fast_on_connect=True` (the interactive commands) raises JudgeConnectError at once when
    connecting fails before the judge has ever answered, instead of retrying: a refused
    connection, a TLS mismatch or an unknown host then means a wrong URL, not a busy server.
    Training keeps the default, so a judge restarting mid-run is waited for.
    """

    def __init__(self, settings: JudgeSettings, *, fail_fast_on_connect: bool = False):
        self.settings = settings
        self.fail_fast_on_connect = fail_fast_on_connect
        self._answered = False
        self.usage = UsageMeter()
        self._limits = JudgeLimits(settings.max_concurrency, settings.requests_per_minute,
                                   settings.tokens_per_minute)
        self._cache = JudgementCache(settings.cache_path) if settings.cache_path else None
        self._pending: dict[str, asyncio.Future[JudgeReply]] = {}
        self._base_url = settings.base_url.rstrip("/")
        self._completions_url = f"{self._base_url}/chat/completions"
        self._request_headers = {"Content-Type": "application/json", **self._headers()}
        self._session: aiohttp.ClientSession | None = None  # created inside the running loop

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.max_concurrency),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._cache is not None:
            self._cache.close()

    def request_body(self, messages: Sequence[Message], extra_body: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "messages": [dict(m) for m in messages],
                                "temperature": s.temperature, "max_tokens": s.max_tokens}
        body.update(s.extra_body)
        body.update(extra_body or {})
        return body

    async def complete(self, messages: Sequence[Message], *, vote: int = 0,
                       extra_body: Mapping[str, Any] | None = None) -> JudgeReply:
        """One judgement. `vote` distinguishes repeated samples of the same request in the cache."""
        body = self.request_body(messages, extra_body)
        self.usage.calls += 1
        if self._cache is None:
            return await self._complete_uncached(body)
        key = cache_key(body, vote)
        hit = self._cache.get(key)
        if hit is not None:
            self.usage.cache_hits += 1
            return JudgeReply(hit[0], hit[1], hit[2], 0.0, 0, cached=True)
        if key in self._pending:  # the same judgement is already on its way: share it
            self.usage.cache_hits += 1
            return await asyncio.shield(self._pending[key])
        future: asyncio.Future[JudgeReply] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            reply = await self._complete_uncached(body)
            self._cache.put(key, self.settings.model, reply.text, reply.prompt_tokens,
                            reply.completion_tokens)
            future.set_result(reply)
            return reply
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._pending[key]

    async def _complete_uncached(self, body: dict[str, Any]) -> JudgeReply:
        estimate = sum(len(m.get("content") or "") for m in body["messages"]) // 4 + body["max_tokens"]
        try:
            # The first attempt skips the retry machinery: at hundreds of requests in flight its
            # per-call set-up was a fifth of the client's CPU, and most calls never need it.
            (text, prompt_tokens, completion_tokens, latency), attempts = await self._attempt(body, estimate), 1
        except RetryableJudgeError as first_error:
            (text, prompt_tokens, completion_tokens, latency), attempts = await self._retry(body, estimate,
                                                                                             first_error)
        except JudgeRequestError:
            self.usage.failures += 1
            raise
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        self.usage.latencies_s.append(latency)
        return JudgeReply(text, prompt_tokens, completion_tokens, latency, attempts, cached=False)

    async def _attempt(self, body: dict[str, Any], estimate: int) -> tuple[str, int, int, float]:
        async with self._limits.slot(estimate):
            started = time.monotonic()
            text, prompt_tokens, completion_tokens = await self._send(body)
            return text, prompt_tokens, completion_tokens, time.monotonic() - started

    async def _retry(self, body: dict[str, Any], estimate: int, first_error: RetryableJudgeError
                     ) -> tuple[tuple[str, int, int, float], int]:
        """The slow path after a transient failure: up to max_retries more attempts (tenacity)."""
        if self.settings.max_retries == 0:
            self.usage.failures += 1
            raise JudgeUnavailable(1, first_error) from first_error
        first_wait = self._wait_seconds(first_error, 1)
        self._note_retry(first_error, 1, first_wait)
        await asyncio.sleep(first_wait)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries),
            wait=lambda state: self._wait_seconds(_outcome_error(state), state.attempt_number + 1),
            retry=retry_if_exception_type(RetryableJudgeError),
            before_sleep=lambda state: self._note_retry(_outcome_error(state), state.attempt_number + 1,
                                                        state.next_action.sleep if state.next_action else 0.0),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    result = await self._attempt(body, estimate)
        except RetryableJudgeError as exc:
            self.usage.failures += 1
            raise JudgeUnavailable(1 + retrying.statistics.get("attempt_number", 1), exc) from exc
        except JudgeRequestError:
            self.usage.failures += 1
            raise
        return result, 1 + retrying.statistics.get("attempt_number", 1)

    async def _send(self, body: dict[str, Any]) -> tuple[str, int, int]:
        self.usage.http_requests += 1
        try:
            async with self._http().post(self._completions_url, data=orjson.dumps(body),
                                         headers=self._request_headers) as response:
                status = response.status
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                payload = await response.read()
        except asyncio.TimeoutError as exc:
            raise RetryableJudgeError(f"no answer within {self.settings.timeout_s}s", kind="timeout") from exc
        except aiohttp.ClientPayloadError as exc:
            raise RetryableJudgeError(f"response body cut off: {exc}", kind="malformed") from exc
        except aiohttp.ClientConnectorError as exc:
            if self.fail_fast_on_connect and not self._answered:
                raise JudgeConnectError(self._connect_problem(exc)) from exc
            raise RetryableJudgeError(f"connection failed: {type(exc).__name__}: {exc}",
                                      kind="connection") from exc
        except aiohttp.ClientError as exc:
            raise RetryableJudgeError(f"connection failed: {type(exc).__name__}: {exc}",
                                      kind="connection") from exc
        self._answered = True
        if status == 429:
            raise RetryableJudgeError("rate limited (HTTP 429)", kind="rate_limited", retry_after_s=retry_after)
        if status >= 500:
            detail = self._error_detail(payload).strip()[:80]
            raise RetryableJudgeError(f"server error (HTTP {status}{': ' + detail if detail else ''})",
                                      kind="server_error", retry_after_s=retry_after)
        if status >= 400:
            raise self._request_error(status, payload)
        return _read_completion(payload)

    def _connect_problem(self, exc: aiohttp.ClientConnectorError) -> str:
        if isinstance(exc, aiohttp.ClientSSLError):
            hint = "the TLS handshake failed: if the server speaks plain HTTP, use http:// instead of https://"
        elif isinstance(exc.os_error, socket.gaierror):
            hint = "the host name does not resolve: check the host in the URL"
        elif isinstance(exc.os_error, ConnectionRefusedError):
            hint = "nothing listens there: is the judge server started, and is the port right?"
        else:
            hint = "is the server started, the host and port right, and http:// vs https:// right?"
        return f"cannot connect to the judge at {self._base_url} ({type(exc).__name__}: {exc}); {hint}"

    def _request_error(self, status: int, payload: bytes) -> JudgeRequestError:
        """A 4xx as a JudgeRequestError; a 404 from a base URL without /v1 suggests adding it."""
        detail = self._error_detail(payload)
        suggestion = with_v1(self._base_url)
        if status == 404 and suggestion:
            detail += f" (did you mean {suggestion} ?)"
        return JudgeRequestError(status, detail)

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _error_detail(self, payload: bytes) -> str:
        """The start of an error body, with the key blanked out should the server echo it."""
        text = payload[:_MAX_DETAIL_CHARS].decode("utf-8", "replace")
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _wait_seconds(self, error: BaseException | None, attempt_number: int) -> float:
        """Retry-After when the server sent one, else exponential backoff with jitter."""
        if isinstance(error, RetryableJudgeError) and error.retry_after_s is not None:
            return max(0.0, error.retry_after_s)
        s = self.settings
        return min(s.backoff_max_s, s.backoff_initial_s * 2 ** (attempt_number - 1)) + random.uniform(
            0, s.backoff_initial_s)

    def _note_retry(self, error: BaseException | None, attempt_number: int, wait: float) -> None:
        kind = getattr(error, "kind", "error")
        self.usage.retries[kind] += 1
        logger.warning("judge attempt %d failed (%s: %s); retrying in %.2fs", attempt_number, kind, error, wait)

    async def list_models(self) -> list[str]:
        """GET /models: a cheap reachability check that costs no tokens."""
        try:
            async with self._http().get(f"{self._base_url}/models", headers=self._headers()) as response:
                status, payload = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise JudgeUnavailable(1, RetryableJudgeError(f"{type(exc).__name__}: {exc}")) from exc
        if status >= 400:
            raise self._request_error(status, payload)
        try:
            return [str(m["id"]) for m in orjson.loads(payload).get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JudgeRequestError(status, f"unexpected /models body: {exc}") from exc


def with_v1(base_url: str) -> str | None:
    """`BASE/v1` for a base URL without the /v1 that OpenAI-compatible servers answer under (the usual cause of
    HTTP 404 on every call); None when it ends in /v1 already."""
    url = base_url.rstrip("/")
    return None if url.endswith("/v1") else f"{url}/v1"


def _outcome_error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _read_completion(payload: bytes) -> tuple[str, int, int]:
    """Text and token counts from a chat-completions body; a broken body is a transient error."""
    try:
        data = orjson.loads(payload)
        message = data["choices"][0]["message"]
        text = message.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableJudgeError(f"malformed response body ({type(exc).__name__}: {exc})",
                                  kind="malformed") from exc
    usage = data.get("usage") or {}
    return str(text), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
