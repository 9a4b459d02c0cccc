"""Group commit for the receiver: concurrent webhooks are verified, parsed and stored together.

Each request waits for the commit that holds its rows, so "2xx only after the commit" holds for
every request; batching only changes how many requests one commit (one fsync) serves. While one
batch is processed in a worker thread, newly arriving requests queue up and form the next batch,
so batches grow with load and a lone request is handled at once.

The provider's ``verify`` and ``parse`` run in that same worker thread (never on the event loop),
saving a thread hop per request. A request whose verification or parsing fails gets its own
exception and is left out of the batch; if the batch's transaction fails, its requests are
written one by one so that one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from recoverkit.errors import ConfigurationError, MalformedWebhookError, WebhookError
from recoverkit.provider import Provider, ProviderEvent, WebhookRequest
from recoverkit.store import repo

__all__ = ["InboxWriter"]

log = logging.getLogger(__name__)

_Item = tuple[Provider, WebhookRequest, "asyncio.Future[int]"]
_Result = int | Exception


#: What ``verify``/``parse`` may raise about the request: passed on unchanged.
_EXPECTED = (WebhookError, ConfigurationError)


def _as_input_error(provider: Provider, exc: Exception) -> Exception:
    """An unexpected exception from ``verify``/``parse`` is about the request bytes: answer 400.

    A plugin should raise :class:`MalformedWebhookError` for bad input, but a ``KeyError`` or
    ``RecursionError`` on a hostile body must not become a 500 (the PSP would redeliver it for
    days). The traceback is logged so the plugin can be fixed; nothing was stored.
    """
    if isinstance(exc, _EXPECTED):
        return exc
    log.error(
        "provider %s raised %s on a webhook instead of MalformedWebhookError; answered 400",
        provider.name,
        type(exc).__name__,
        exc_info=exc,
    )
    return MalformedWebhookError(
        f"{provider.name}: the webhook could not be parsed ({type(exc).__name__})"
    )


class InboxWriter:
    """Verifies, parses and commits webhooks from concurrent requests in batches."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        max_batch: int = 256,
        max_inflight: int = 1,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_batch = max_batch
        #: Batches processed at once. More than one lets the next batch be verified and parsed
        #: while one waits for its fsync; on SQLite the benchmark showed no gain, so 1.
        self.max_inflight = max_inflight
        self._pending: list[_Item] = []
        self._active = 0  # flush tasks running; changed only between awaits, so never racy
        self._tasks: set[asyncio.Task[None]] = set()

    async def receive(self, provider: Provider, request: WebhookRequest) -> int:
        """Verify, parse and store one webhook; returns once committed (the new event count).

        Raises what ``provider.verify``/``parse`` raise, or the storage error.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((provider, request, future))
        if self._active < self.max_inflight:
            self._active += 1
            # Keep a reference: the loop holds tasks weakly, and a collected task never finishes.
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                items = [(provider, request) for provider, request, _ in batch]
                results = await run_in_threadpool(self._process, items)
                for (_, _, future), result in zip(batch, results, strict=True):
                    if future.done():  # the request was cancelled (client went away)
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except asyncio.CancelledError:
            for _, _, future in self._pending:  # the loop is shutting down
                if not future.done():
                    future.set_exception(RuntimeError("inbox writer stopped"))
            self._pending.clear()
            raise
        finally:
            # Runs right after the last ``while`` check, with no await in between: a request
            # arriving later sees the lower count and starts a new task.
            self._active -= 1

    def _process(self, items: Sequence[tuple[Provider, WebhookRequest]]) -> list[_Result]:
        """Runs in a worker thread: verify and parse each request, then one transaction."""
        results: list[_Result] = []
        groups: list[list[ProviderEvent]] = []
        positions: list[int] = []
        for provider, request in items:
            try:
                provider.verify(request)
                events = provider.parse(request)
            except Exception as exc:
                results.append(_as_input_error(provider, exc))
                continue
            positions.append(len(results))
            results.append(0)
            groups.append(events)
        if not groups:
            return results
        try:
            counts: list[_Result] = list(
                repo.insert_event_groups(self.engine, groups, self.clock())
            )
        except Exception:
            if len(groups) > 1:
                log.warning("group commit of %d webhooks failed; writing one by one", len(groups))
            counts = [self._write_one(group) for group in groups]
        for position, count in zip(positions, counts, strict=True):
            results[position] = count
        return results

    def _write_one(self, events: Sequence[ProviderEvent]) -> _Result:
        try:
            return repo.insert_event_groups(self.engine, [events], self.clock())[0]
        except Exception as exc:
            return exc
