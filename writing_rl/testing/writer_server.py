"""A scriptable OpenAI-compatible server that plays several writer models at once (real HTTP on 127.0.0.1).

The reply for (model, prompt) is a deterministic text carrying `QUALITY=<q>`, so the loopback judge
(`judge_server.py`) judges it by that number and a test knows every verdict in advance. `q` is the
model's quality (`qualities`), unless an override names the model and a text the prompt contains
(`overrides`: [{"model": ..., "prompt_contains": ..., "quality": ...}], first match wins); that lets a
test give some prompts small margins or tied candidates. A model not in `qualities` gets HTTP 404, as
vLLM answers a wrong model name.

Faults per model (`faults`: {model: kind}): `error_503`, `bad_request` (400) or `hang` (answers after
`hang_s`). `latency_s` delays every reply.

Control API: GET /control/stats (requests, per model, and `repeated`: request bodies seen more than
once), POST /control/reset, POST /control/config.
Run: python -m writing_rl.testing.writer_server --config '{"qualities": {"policy": 3}}' --port-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from writing_rl.testing.serve import serve_until_killed


@dataclass
class WriterConfig:
    qualities: dict[str, float] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    hang_s: float = 30.0
    words: int = 12
    """Filler words per reply, so replies have a length worth counting."""

    def quality(self, model: str, prompt: str) -> float:
        for rule in self.overrides:
            if rule["model"] == model and rule["prompt_contains"] in prompt:
                return float(rule["quality"])
        return float(self.qualities[model])


@dataclass
class WriterStats:
    requests: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    repeated: int = 0
    """Requests whose body (model, messages, sampling) had been seen before: paid twice by a client."""


class WriterServer:
    def __init__(self, config: WriterConfig):
        self.config = config
        self.stats = WriterStats()
        self._seen: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.post("/v1/chat/completions", self.chat),
            web.get("/v1/models", self.models),
            web.get("/control/stats", self.get_stats),
            web.post("/control/reset", self.reset),
            web.post("/control/config", self.set_config),
        ])
        return app

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list",
                                  "data": [{"id": name, "object": "model"} for name in self.config.qualities]})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.stats))

    async def reset(self, request: web.Request) -> web.Response:
        self.stats = WriterStats()
        self._seen.clear()
        return web.json_response({"ok": True})

    async def set_config(self, request: web.Request) -> web.Response:
        updates = await request.json()
        unknown = set(updates) - set(asdict(self.config))
        if unknown:
            return web.json_response({"error": f"unknown config keys {sorted(unknown)}"}, status=400)
        for key, value in updates.items():
            setattr(self.config, key, value)
        return web.json_response(asdict(self.config))

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = str(body.get("model"))
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
        self._seen[key] += 1
        self.stats.requests += 1
        self.stats.by_model[model] = self.stats.by_model.get(model, 0) + 1
        self.stats.repeated += self._seen[key] > 1
        await asyncio.sleep(self.config.latency_s)
        if model not in self.config.qualities:
            return web.json_response({"error": {"message": f"The model `{model}` does not exist."}}, status=404)
        fault = self.config.faults.get(model)
        if fault == "error_503":
            return web.json_response({"error": {"message": "service unavailable"}}, status=503)
        if fault == "bad_request":
            return web.json_response({"error": {"message": "bad request"}}, status=400)
        if fault == "hang":
            await asyncio.sleep(self.config.hang_s)
        prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user")
        content = self._write(model, prompt)
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
        completion_tokens = max(1, len(content) // 4)
        return web.json_response({
            "id": f"cmpl-{self.stats.requests}", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def _write(self, model: str, prompt: str) -> str:
        quality = self.config.quality(model, prompt)
        digest = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:8]
        filler = " ".join(["word"] * self.config.words)
        return f"{model} writes ({digest}): {filler}. QUALITY={quality:g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--config", default="{}", help="WriterConfig fields as JSON")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the test writers only listen on loopback")
    server = WriterServer(WriterConfig(**json.loads(args.config)))
    asyncio.run(serve_until_killed(server.app(), args.host, args.port, args.port_file, "test writers"))


if __name__ == "__main__":
    sys.exit(main())
