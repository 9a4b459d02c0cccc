"""Real uvicorn servers on loopback ports, run in threads of the demo process."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from recoverkit.errors import RecoverkitError

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """A uvicorn server on 127.0.0.1. The port is bound at once (so two servers can be told
    each other's address before either app exists); :meth:`start` serves an app on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, app: ASGIApp, timeout: float = 20.0) -> None:
        """Serve ``app``; raise if the server is not up within ``timeout`` seconds."""
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RecoverkitError(f"{self.name} did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._socket.close()
