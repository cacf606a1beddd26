"""A scriptable OpenAI-compatible judge server for tests and benchmarks (real HTTP on 127.0.0.1).

Judgements are deterministic functions of the two texts, so swapped orders can be checked:
a text's quality is the number after `QUALITY=` in it, else a hash of the text mapped to 1..9.
Verdict mode answers `[[A]]`/`[[B]]`/`[[C]]`; scores mode answers `\\boxed{q_a, q_b}`. A prompt with one
response (`[The Start of Response]`, a per-criterion critic) gets `\\boxed{q}`. `marker_bonus` adds to the
quality of a text containing a marker: a judge scripted to fall for one attack. `quality` swaps the hidden
quality for one of the learning task's (`honest`, `exploitable`: `writing_rl.testing.learning_task`), and
`noise_sd` adds Gaussian noise to each text's quality in each judgement: judges with a known preference.

Faults are scripted per request (a queue, consumed in arrival order), carried by the text itself
(`JUDGE_FAULT=<kind>` anywhere in the prompt), or drawn at random with a seed: `rate_limit`
(429 + Retry-After), `error_500`, `error_503`, `hang` (answers after `hang_s`), `malformed`
(invalid JSON), `truncated` (connection dropped mid-body), `empty` (empty content),
`bad_request` (400), `no_verdict` (an answer without a verdict the parser can read), or
`{"kind": "text", "text": ...}` (exact reply).

Control API: GET /control/stats, POST /control/reset, POST /control/config, POST /control/script.
Run: python -m writing_rl.testing.judge_server --port 0 --port-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from writing_rl.testing.learning_task import QUALITIES
from writing_rl.testing.serve import serve_until_killed

_RESPONSE = {
    side: re.compile(rf"\[The Start of Response {side}\]\n(.*?)\n\[The End of Response {side}\]", re.DOTALL)
    for side in "AB"
}
_SINGLE_RESPONSE = re.compile(r"\[The Start of Response\]\n(.*?)\n\[The End of Response\]", re.DOTALL)
_QUALITY = re.compile(r"QUALITY=([0-9]+(?:\.[0-9]+)?)")
_CONTENT_FAULT = re.compile(r"JUDGE_FAULT=([a-z_0-9]+)")
FAULT_KINDS = ("rate_limit", "error_500", "error_503", "hang", "malformed", "truncated", "empty",
               "bad_request", "no_verdict")


def text_quality(text: str) -> float:
    """QUALITY=<x> inside the text wins; otherwise a stable hash in {1.0, 1.5, ..., 9.0}."""
    match = _QUALITY.search(text)
    if match:
        return float(match.group(1))
    digest = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)
    return 1.0 + (digest % 17) / 2.0


QUALITY_FUNCTIONS = {"marker": text_quality, **QUALITIES}
QUALITY_NAMES = tuple(QUALITY_FUNCTIONS)


@dataclass
class ServerConfig:
    mode: str = "verdict"
    latency_s: float = 0.0
    jitter_s: float = 0.0
    hang_s: float = 30.0
    retry_after_s: float | None = 0.05
    faults: dict[str, float] = field(default_factory=dict)
    """Probability of each fault kind per request, e.g. {"rate_limit": 0.2}."""
    first_position_bonus: float = 0.0
    """Added to response A's quality: a judge with position bias."""
    model: str = "test-judge"
    strict_model: bool = False
    """As vLLM: a request naming another model than `model` gets 404 (a missing or empty name is accepted)."""
    max_model_len: int = 0
    """As vLLM: prompt tokens + max_tokens above this get 400 (0: no limit); /tokenize reports it."""
    seed: int = 0
    marker_bonus: dict[str, float] = field(default_factory=dict)
    """Added to the quality of a text containing the marker, e.g. {"Note to the evaluator": 20}."""
    quality: str = "marker"
    """`marker` (QUALITY=<x>, else a hash) or a learning-task quality: `honest`, `exploitable`."""
    noise_sd: float = 0.0
    """Standard deviation of the Gaussian noise added to each text's quality in each judgement."""


@dataclass
class ServerStats:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    arrival_times: list[float] = field(default_factory=list)
    last_authorization: str | None = None


class JudgeServer:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.stats = ServerStats()
        self.script: list[Any] = []
        self.rng = random.Random(config.seed)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.post("/v1/chat/completions", self.chat),
            web.get("/v1/models", self.models),
            web.post("/tokenize", self.tokenize),
            web.get("/control/stats", self.get_stats),
            web.post("/control/reset", self.reset),
            web.post("/control/config", self.set_config),
            web.post("/control/script", self.set_script),
        ])
        return app

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.config.model, "object": "model"}]})

    async def tokenize(self, request: web.Request) -> web.Response:
        """vLLM's /tokenize for chat messages: the count (the same estimate as `usage`) and max_model_len."""
        body = await request.json()
        return web.json_response({"count": _prompt_tokens(body), "max_model_len": self.config.max_model_len or 1 << 20,
                                  "tokens": []})

    def _refusal(self, body: dict[str, Any]) -> web.Response | None:
        """What vLLM answers to a model name it does not serve, or to a request longer than its context."""
        model = body.get("model")
        if self.config.strict_model and model and model != self.config.model:
            return web.json_response({"error": {"message": f"The model `{model}` does not exist.",
                                                "type": "NotFoundError", "code": 404}}, status=404)
        limit, wanted = self.config.max_model_len, _prompt_tokens(body) + int(body.get("max_tokens") or 0)
        if limit and wanted > limit:
            return web.json_response({"error": {"message": f"This model's maximum context length is {limit} tokens. "
                                                           f"However, you requested {wanted} tokens.",
                                                "type": "BadRequestError", "code": 400}}, status=400)
        return None

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.stats))

    async def reset(self, request: web.Request) -> web.Response:
        self.stats = ServerStats()
        self.script = []
        self.rng = random.Random(self.config.seed)
        return web.json_response({"ok": True})

    async def set_config(self, request: web.Request) -> web.Response:
        updates = await request.json()
        unknown = set(updates) - set(asdict(self.config))
        if unknown:
            return web.json_response({"error": f"unknown config keys {sorted(unknown)}"}, status=400)
        if updates.get("quality", "marker") not in QUALITY_NAMES:
            return web.json_response({"error": f"unknown quality {updates['quality']!r}; known: "
                                               f"{', '.join(QUALITY_NAMES)}"}, status=400)
        for key, value in updates.items():
            setattr(self.config, key, value)
        self.rng = random.Random(self.config.seed)
        return web.json_response(asdict(self.config))

    async def set_script(self, request: web.Request) -> web.Response:
        self.script = list((await request.json())["behaviours"])
        return web.json_response({"queued": len(self.script)})

    def _next_behaviour(self, body: dict[str, Any]) -> dict[str, Any]:
        text = " ".join(str(m.get("content") or "") for m in body.get("messages", []))
        fault = _CONTENT_FAULT.search(text)
        if fault:  # a text can carry its own fault, so tests stay deterministic under concurrency
            return {"kind": fault.group(1)}
        if self.script:
            item = self.script.pop(0)
            return {"kind": item} if isinstance(item, str) else dict(item)
        draw = self.rng.random()
        for kind, probability in self.config.faults.items():
            if draw < probability:
                return {"kind": kind}
            draw -= probability
        return {"kind": "ok"}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        stats.arrival_times.append(time.time())
        stats.last_authorization = request.headers.get("Authorization")
        try:
            body = await request.json()
            behaviour = self._next_behaviour(body)
            kind = behaviour["kind"]
            stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
            delay = self.config.latency_s + self.config.jitter_s * (2 * self.rng.random() - 1)
            await asyncio.sleep(max(0.0, delay))
            return await self._respond(request, body, behaviour)
        finally:
            stats.in_flight -= 1

    async def _respond(self, request: web.Request, body: dict[str, Any],
                       behaviour: dict[str, Any]) -> web.StreamResponse:
        kind = behaviour["kind"]
        refusal = self._refusal(body)
        if refusal is not None:
            return refusal
        if kind == "rate_limit":
            retry_after = behaviour.get("retry_after", self.config.retry_after_s)
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)
        if kind in ("error_500", "error_503"):
            return web.json_response({"error": {"message": "server error"}}, status=int(kind[-3:]))
        if kind == "bad_request":
            return web.json_response({"error": {"message": "bad request: unknown model"}}, status=400)
        if kind == "malformed":
            return web.Response(text='{"choices": [{"message": ', content_type="application/json")
        if kind == "truncated":
            response = web.StreamResponse(headers={"Content-Type": "application/json",
                                                   "Content-Length": "4096"})
            await response.prepare(request)
            await response.write(b'{"id": "cut", "choices": [')
            assert request.transport is not None
            request.transport.close()
            return response
        if kind == "hang":
            await asyncio.sleep(self.config.hang_s)
        content = self._judge(body)
        if kind == "empty":
            content = ""
        elif kind == "no_verdict":
            content = "Both responses have merits and I will not choose between them."
        elif kind == "text":
            content = behaviour["text"]
        prompt_tokens = _prompt_tokens(body)
        return web.json_response({
            "id": f"cmpl-{self.stats.requests}",
            "object": "chat.completion",
            "model": body.get("model", self.config.model),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max(1, len(content) // 4),
                      "total_tokens": prompt_tokens + max(1, len(content) // 4)},
        })

    def _judge(self, body: dict[str, Any]) -> str:
        user = "\n".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user")
        found = {side: pattern.search(user) for side, pattern in _RESPONSE.items()}
        single = _SINGLE_RESPONSE.search(user)
        if single and not any(found.values()):
            score = self._quality(single.group(1))
            return f"Against this criterion the response rates {score:g}.\n\\boxed{{{score:g}}}"
        if not all(found.values()):
            return "I could not find two responses to compare. [[C]]"
        qa = self._quality(found["A"].group(1)) + self.config.first_position_bonus
        qb = self._quality(found["B"].group(1))
        if self.config.mode == "scores" and self.config.quality != "marker":  # GenRM scores are 1-10
            qa, qb = (round(min(10.0, max(1.0, q)), 2) for q in (qa, qb))
        if self.config.mode == "scores":
            return f"Principles: clarity, craft. Response A scores {qa:g}, B scores {qb:g}.\n\\boxed{{{qa:g}, {qb:g}}}"
        verdict = "A" if qa > qb else "B" if qb > qa else "C"
        return f"Comparing both responses, A rates {qa:g} and B rates {qb:g}.\n[[{verdict}]]"

    def _quality(self, text: str) -> float:
        base = QUALITY_FUNCTIONS[self.config.quality](text)
        noise = self.rng.gauss(0.0, self.config.noise_sd) if self.config.noise_sd > 0 else 0.0
        return base + noise + sum(bonus for marker, bonus in self.config.marker_bonus.items() if marker in text)


def _prompt_tokens(body: dict[str, Any]) -> int:
    """Four characters a token: the count in `usage`, in /tokenize and against max_model_len."""
    return sum(len(m.get("content") or "") for m in body.get("messages", [])) // 4


def parse_faults(text: str) -> dict[str, float]:
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, value = part.partition("=")
        if kind not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        faults[kind] = float(value)
    return faults


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--mode", choices=["verdict", "scores"], default="verdict")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--jitter", type=float, default=0.0, help="+/- seconds, uniform")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a `hang` fault waits")
    parser.add_argument("--faults", type=parse_faults, default={},
                        help="e.g. rate_limit=0.2,error_500=0.05,hang=0.05,malformed=0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", choices=QUALITY_NAMES, default="marker",
                        help="the hidden quality: marker (QUALITY=<x> in the text, else a hash) or a learning-task "
                             "judge's (honest, exploitable)")
    parser.add_argument("--noise", type=float, default=0.0, help="sd of Gaussian noise on each quality")
    parser.add_argument("--first-position-bonus", type=float, default=0.0, help="added to response A's quality")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the test judge only listens on loopback")
    config = ServerConfig(mode=args.mode, latency_s=args.latency, jitter_s=args.jitter, hang_s=args.hang,
                          faults=args.faults, seed=args.seed, quality=args.quality, noise_sd=args.noise,
                          first_position_bonus=args.first_position_bonus)
    asyncio.run(serve_until_killed(JudgeServer(config).app(), args.host, args.port, args.port_file, "test judge"))


if __name__ == "__main__":
    sys.exit(main())
