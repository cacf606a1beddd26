"""Before any paid call: every endpoint must answer `GET /models` (free), or the selection does not start."""

from __future__ import annotations

import logging

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeError, JudgeRequestError, JudgeUnavailable

logger = logging.getLogger(__name__)


class EndpointUnreachable(JudgeError):
    """An endpoint of the selection cannot be used; the message names it and says what to check."""


async def check_reachable(where: str, client: JudgeClient) -> None:
    settings = client.settings
    url = settings.base_url
    try:
        served = await client.list_models()
    except JudgeUnavailable as exc:
        raise EndpointUnreachable(
            f"{where}: cannot reach {url} ({exc.last}); is the server started, are the host and port right, "
            "http:// vs https://, and does the base URL end in /v1?") from exc
    except JudgeRequestError as exc:
        if exc.status in (401, 403):
            raise EndpointUnreachable(f"{where}: {url} refused the request ({exc}); check api_key_env "
                                      f"({settings.api_key_env}) and that the variable is set") from exc
        return  # the server answered; some providers do not list models
    if served and settings.model not in served:
        logger.warning("%s: %s does not list model %r (it lists %s); requests may fail", where, url,
                       settings.model, served[:10])
