"""The state the endpoints share (``app.state.service``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from recoverkit.client import RecoverClient
from recoverkit.config import Settings
from recoverkit.plugins import Plugins
from recoverkit.service.ingest import InboxWriter
from recoverkit.service.metrics import Metrics
from recoverkit.service.runtime import ProviderRegistry
from recoverkit.service.worker import Worker

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    """Settings, plugins, engine, providers, metrics and (when running) the in-process worker."""

    settings: Settings
    plugins: Plugins
    engine: Engine
    providers: ProviderRegistry
    metrics: Metrics
    writer: InboxWriter
    client: RecoverClient | None = None
    worker: Worker | None = None
    stop: threading.Event = field(default_factory=threading.Event)
