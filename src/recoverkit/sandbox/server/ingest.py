"""The sandbox's Recover API: ``POST /recover/payments`` and ``/recover/payment_method_updates``.

Answers as Butter documents: 200 ``{message, request_id}``; 400/403/415 ``{message, errors}``;
404 ``{message}``. Requests are validated by the core's strict wire models.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from recoverkit.errors import WireValidationError
from recoverkit.sandbox.server.dunning import DunningBook
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, parse

__all__ = ["create_ingest_app"]

MAX_BODY = 1024 * 1024


def _error(status: int, message: str, errors: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _authorised(request: Request, settings: SandboxSettings) -> bool:
    given = request.headers.get("x-api-key", "")
    return any(
        hmac.compare_digest(given.encode(), key.get_secret_value().encode())
        for key in settings.api_keys
    )


async def _read_json(request: Request) -> tuple[Any, JSONResponse | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return None, _error(
            415,
            "Unsupported Media Type",
            [f"Content-Type must be application/json, not {content_type or 'missing'!r}"],
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        return None, _error(400, "Request body too large", [f"limit is {MAX_BODY} bytes"])
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _error(400, "Malformed JSON", [str(exc)])


def create_ingest_app(
    settings: SandboxSettings, book: DunningBook, clock: Callable[[], datetime]
) -> Starlette:
    """The ASGI app Recover's clients talk to."""
    context = {"extra_psp_names": set(settings.extra_psp_names)}

    async def ingest(request: Request) -> JSONResponse:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ("payments", "payment_method_updates"):
            return _error(404, "Not Found")
        if not _authorised(request, settings):
            return _error(403, "Forbidden", ["missing or invalid x-api-key"])
        data, problem = await _read_json(request)
        if problem is not None:
            return problem
        request_id = str(uuid.uuid4())
        try:
            if endpoint == "payments":
                event = parse(PaymentEvent, data, context=context)
                await run_in_threadpool(book.record_payment_event, event, request_id, clock())
            else:
                update = parse(PaymentMethodUpdate, data, context=context)
                await run_in_threadpool(
                    book.record_payment_method_update, update, request_id, clock()
                )
        except WireValidationError as exc:
            errors = [{"field": path, "message": msg} for path, msg in exc.errors]
            return _error(400, "Validation failed", errors)
        return JSONResponse(
            {"message": "Request submitted for processing", "request_id": request_id}
        )

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return _error(404, "Method not found")
        return _error(status, "Not Found" if status == 404 else "Server error")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/recover/{endpoint:str}", ingest, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
