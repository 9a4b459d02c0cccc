"""The endpoints Recover calls: RetryStatus, Retry Results and End of Dunning.

Answers follow ``docs/RECOVER_API.md``: RetryStatus errors are 401/404/500 with ``{"detail": …}``;
webhooks are acknowledged with ``{"detail": "Event delivered successfully"}`` only once the PSP
was updated and the hooks ran — anything else makes Recover redeliver (every 12 h for 7 days).
Deliveries are de-duplicated on ``X-Butter-Webhook-Deduplication-ID`` (a hash of the body when
the header is absent) and — because that header is not signed — on the message itself: kind +
invoice id + the canonical form of the parsed body. A replay (new dedupe id, no header, a
pretty-printed or key-duplicated copy) is answered 200 with no side effects and counted as
``recoverkit_recover_webhooks_total{outcome="replay"}``; an expiry further ahead than
``butter_max_expiry_ahead`` is refused (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from decimal import Decimal
from typing import Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from recoverkit import redact, signing
from recoverkit.config import EndpointAuth
from recoverkit.errors import ConfigurationError, SignatureError, WireValidationError
from recoverkit.provider import Capability, InvoiceRef
from recoverkit.schema import (
    EndOfDunning,
    RetryResults,
    RetryStatusRequest,
    RetryStatusResponse,
    WebhookAck,
    dumps,
    parse,
)
from recoverkit.service.auth import credentials_ok
from recoverkit.service.http import BodyTimeout, BodyTooLarge, detail, one_line, read_body
from recoverkit.service.runtime import utcnow
from recoverkit.service.state import ServiceState
from recoverkit.store import repo

__all__ = ["end_of_dunning", "retry_results", "retry_status"]

log = logging.getLogger(__name__)

NOT_FOUND = "An invoice with the provided ID cannot be found"
SERVER_ERROR = "A server error has occurred"
BAD_CREDENTIALS = "Missing or invalid API key"


def _unauthorized(auth: EndpointAuth, what: str) -> Response:
    if not auth.configured:
        log.error("%s called but no credentials are configured for it", what)
    headers = {"WWW-Authenticate": 'Basic realm="recoverkit"'} if auth.username else None
    return detail(401, BAD_CREDENTIALS, headers)


def invoice_ref(entry: repo.LedgerEntry) -> InvoiceRef:
    """The provider-facing view of a ledger row."""
    return InvoiceRef(
        provider=entry.provider,
        invoice_id=entry.invoice_id,
        customer_id=entry.customer_id,
        subscription_id=entry.subscription_id,
        psp_invoice_id=entry.psp_invoice_id,
        psp_subscription_id=entry.psp_subscription_id,
        psp_customer_id=entry.psp_customer_id,
        psp_transaction_id=entry.psp_transaction_id,
        payment_method_id=entry.payment_method_id,
        amount=Decimal(entry.amount) if entry.amount is not None else None,
        currency=entry.currency,
        extra=dict(entry.extra or {}),
    )


def _decide(state: ServiceState, entry: repo.LedgerEntry) -> RetryStatusResponse:
    """Provider's answer (or the ledger's, without that capability), then the merchant veto."""
    invoice = invoice_ref(entry)
    provider = state.providers.get(entry.provider)
    if provider.supports(Capability.RETRY_STATUS):
        status = provider.retry_status(invoice)
    else:
        open_ = entry.state == "failed"
        status = RetryStatusResponse(
            retry=open_,
            reason=None if open_ else f"invoice is {entry.state}",
            amount=invoice.amount if open_ else None,
        )
    if status.retry:
        veto = state.plugins.retry_veto(invoice, status)
        if veto:
            status = status.model_copy(update={"retry": False, "reason": veto})
    return status


async def retry_status(request: Request) -> Response:
    """``POST /retry/{invoice_id}``: may Recover retry this invoice now?"""
    state: ServiceState = request.app.state.service
    metrics = state.metrics.recover_webhooks
    auth = state.settings.retry_status
    if not credentials_ok(auth, request.headers):
        metrics.labels("retry_status", "unauthorized").inc()
        return _unauthorized(auth, "RetryStatus")
    try:
        body = await read_body(
            request, state.settings.max_body_bytes, state.settings.body_read_timeout
        )
        if body.strip():
            parse(RetryStatusRequest, body)
    except BodyTooLarge:
        return detail(413, "body too large")
    except BodyTimeout:
        return detail(408, "request body not received in time")
    except RecursionError:
        return detail(400, "body nests too deeply")
    except (WireValidationError, ClientDisconnect) as exc:
        return detail(400, one_line(exc))
    invoice_id = request.path_params["invoice_id"]
    entry = await run_in_threadpool(repo.get_ledger, state.engine, invoice_id)
    if entry is None:
        metrics.labels("retry_status", "not_found").inc()
        return detail(404, NOT_FOUND)
    try:
        status = await run_in_threadpool(_decide, state, entry)
    except Exception:
        log.exception("RetryStatus for invoice %s failed", invoice_id)
        metrics.labels("retry_status", "error").inc()
        return detail(500, SERVER_ERROR)
    metrics.labels("retry_status", "retry" if status.retry else "no_retry").inc()
    log.info(
        "RetryStatus for invoice %s: %s%s",
        invoice_id,
        "retry" if status.retry else "no retry",
        f" ({status.reason})" if status.reason else "",
        extra={"event": "retry_status", "invoice_id": invoice_id, "retry": status.retry},
    )
    # What leaves for Recover passes the card-data scrubber too (a plugin's reason or metadata).
    answer = redact.scrub_json(dumps(status), event=f"retry_status/{invoice_id}", path="response")
    return Response(answer, media_type="application/json")


Kind = Literal["retry_results", "end_of_dunning"]


def message_key(kind: Kind, message: RetryResults | EndOfDunning) -> str:
    """SHA-256 of kind + invoice id + the parsed body in canonical form (sorted keys, compact).

    Whatever bytes carried the message — another dedupe id, no header, pretty-printed, a key
    repeated — the same message has the same key, so a replay is recognised.
    """
    canonical = json.dumps(
        message.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), default=str
    )
    text = "\x00".join((kind, message.invoice_id, canonical))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _apply(state: ServiceState, kind: Kind, message: RetryResults | EndOfDunning) -> None:
    """Update the PSP, the ledger and the hooks; runs in a worker thread."""
    entry = repo.get_ledger(state.engine, message.invoice_id)
    if entry is None:
        raise LookupError(message.invoice_id)
    invoice = invoice_ref(entry)
    provider = state.providers.get(entry.provider)
    if isinstance(message, RetryResults):
        if provider.supports(Capability.RECONCILE):
            provider.reconcile(message, invoice)
        if message.success:
            repo.set_ledger_state(state.engine, invoice.invoice_id, "recovered", utcnow())
        state.plugins.on_retry_result(message, invoice)
    else:
        if provider.supports(Capability.END_DUNNING):
            provider.end_dunning(message, invoice, state.settings.end_of_dunning_policy)
        final = "recovered" if message.recovered else "dunning_ended"
        repo.set_ledger_state(state.engine, invoice.invoice_id, final, utcnow())
        state.plugins.on_end_of_dunning(message, invoice)


def _count_and_log(
    state: ServiceState,
    kind: Kind,
    message: RetryResults | EndOfDunning,
    dedupe_id: str,
    outcome: Literal["delivered", "replay"],
) -> None:
    """Count a Retry Results / End of Dunning delivery and log the operator's line for it."""
    state.metrics.recover_webhooks.labels(kind, outcome).inc()
    if outcome == "replay":
        log.info(
            "%s for invoice %s: replay of a delivery already applied (dedupe id %s), ignored",
            kind,
            message.invoice_id,
            dedupe_id,
            extra={"event": kind, "invoice_id": message.invoice_id, "dedupe_id": dedupe_id},
        )
        return
    if isinstance(message, RetryResults):
        done = f"retry {'succeeded' if message.success else 'failed'}, PSP reconciled"
    else:
        policy = state.settings.end_of_dunning_policy.value
        done = "recovered" if message.recovered else f"not recovered, action {policy}"
    log.info(
        "%s for invoice %s applied: %s (dedupe id %s)",
        kind,
        message.invoice_id,
        done,
        dedupe_id,
        extra={"event": kind, "invoice_id": message.invoice_id, "dedupe_id": dedupe_id},
    )


async def _recover_webhook(request: Request, kind: Kind) -> Response:
    state: ServiceState = request.app.state.service
    settings = state.settings
    metrics = state.metrics.recover_webhooks
    auth: EndpointAuth = getattr(settings, kind)
    if not credentials_ok(auth, request.headers):
        metrics.labels(kind, "unauthorized").inc()
        return _unauthorized(auth, kind)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        metrics.labels(kind, "unsupported_media").inc()
        return detail(415, f"expected application/json, got {media or 'no content type'}")
    try:
        body = await read_body(request, settings.max_body_bytes, settings.body_read_timeout)
    except BodyTooLarge:
        return detail(413, "body too large")
    except BodyTimeout:
        return detail(408, "request body not received in time")
    except ClientDisconnect:
        return detail(400, "client disconnected")
    if auth.require_signature:
        try:
            signing.verify(
                body,
                request.headers,
                [s.get_secret_value() for s in settings.butter_signing_secrets],
                now=time.time(),
                clock_skew=settings.butter_clock_skew,
                fallback=settings.butter_signature_fallback,
                max_ahead=settings.butter_max_expiry_ahead,
            )
        except ConfigurationError as exc:
            log.error("%s refused: %s", kind, exc)
            metrics.labels(kind, "misconfigured").inc()
            return detail(503, "webhook signing is not configured on this server")
        except SignatureError as exc:
            log.warning("%s refused: %s", kind, exc)
            metrics.labels(kind, "signature").inc()
            return detail(401, one_line(exc))
    try:
        message: RetryResults | EndOfDunning = (
            parse(RetryResults, body) if kind == "retry_results" else parse(EndOfDunning, body)
        )
    except WireValidationError as exc:
        metrics.labels(kind, "malformed").inc()
        return detail(400, one_line(exc))
    except RecursionError:
        metrics.labels(kind, "malformed").inc()
        return detail(400, "body nests too deeply")
    dedupe_id = request.headers.get(signing.DEDUPE_HEADER) or (
        "sha256:" + hashlib.sha256(body).hexdigest()
    )
    key = message_key(kind, message)
    seen = await run_in_threadpool(
        repo.claim_butter_webhook,
        state.engine,
        dedupe_id,
        kind,
        message.invoice_id,
        utcnow(),
        message_key=key,
    )
    if seen == "done":
        _count_and_log(state, kind, message, dedupe_id, "replay")
        return Response(dumps(WebhookAck()), media_type="application/json")
    if seen == "processing":
        return detail(409, "this delivery is being processed; deliver again later")
    try:
        await run_in_threadpool(_apply, state, kind, message)
    except LookupError:
        await run_in_threadpool(repo.release_butter_webhook, state.engine, dedupe_id, key)
        metrics.labels(kind, "not_found").inc()
        return detail(404, NOT_FOUND)
    except Exception as exc:
        await run_in_threadpool(repo.release_butter_webhook, state.engine, dedupe_id, key)
        log.exception("%s for invoice %s failed", kind, message.invoice_id)
        metrics.labels(kind, "error").inc()
        return detail(500, f"Event not delivered: {type(exc).__name__}")
    await run_in_threadpool(repo.complete_butter_webhook, state.engine, dedupe_id, key)
    _count_and_log(state, kind, message, dedupe_id, "delivered")
    return Response(json.dumps({"detail": WebhookAck().detail}), media_type="application/json")


async def retry_results(request: Request) -> Response:
    """The Retry Results webhook: reconcile the PSP, then ``on_retry_result``."""
    return await _recover_webhook(request, "retry_results")


async def end_of_dunning(request: Request) -> Response:
    """The End of Dunning webhook: apply ``end_of_dunning_policy``, then ``on_end_of_dunning``."""
    return await _recover_webhook(request, "end_of_dunning")
