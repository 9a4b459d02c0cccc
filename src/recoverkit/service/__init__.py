"""The bridge service: PSP webhook receiver, durable inbox/outbox, worker, merchant endpoints."""

from recoverkit.service.app import create_app
from recoverkit.service.worker import Worker

__all__ = ["Worker", "create_app"]
