"""Serve a loopback test server's aiohttp app until killed, announcing its port through a file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web


async def serve_until_killed(app: web.Application, host: str, port: int, port_file: Path | None, label: str) -> None:
    """Port 0 picks a free port; it is written to `port_file` atomically, so a reader never sees half a number."""
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"{label} listening on http://{host}:{bound}/v1", flush=True)
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        tmp.rename(port_file)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
