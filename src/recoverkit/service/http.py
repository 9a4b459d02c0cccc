"""Small HTTP helpers shared by the endpoints: bounded body reads and ``{"detail": …}`` answers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["BodyTimeout", "BodyTooLarge", "detail", "one_line", "read_body"]


class BodyTooLarge(Exception):
    """The request body exceeds ``max_body_bytes``."""


class BodyTimeout(Exception):
    """The request body did not arrive within ``body_read_timeout`` (a slow-body attack)."""


def detail(status: int, text: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"detail": text}`` with ``status`` — the error shape of Recover's merchant endpoints."""
    return JSONResponse({"detail": text}, status_code=status, headers=headers)


def one_line(exc: Exception) -> str:
    """An exception as one short line (a reason safe to return to a caller)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes.

    Checks the declared ``Content-Length`` first, then counts the streamed bytes, so a huge body
    is refused without being buffered. A body still arriving after ``timeout`` seconds raises
    :class:`BodyTimeout`, so a client trickling bytes cannot hold a connection open for ever.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)
