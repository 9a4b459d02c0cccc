"""``python -m recoverkit.service``: run the service without the ``recoverkit`` CLI.

Options mirror ``recoverkit serve``; ``--plugin module:attr`` registers extra plugin objects
(an application's own provider, or a test provider) besides the installed entry points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recoverkit.config import load_settings
from recoverkit.errors import ConfigurationError
from recoverkit.service.server import load_plugins, run_server, run_worker


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the server (or only a worker with ``--worker-only``)."""
    parser = argparse.ArgumentParser(prog="python -m recoverkit.service")
    parser.add_argument("--config", type=Path, default=None, help="TOML settings file")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--no-worker", action="store_true", help="receiver only")
    parser.add_argument("--worker-only", action="store_true", help="worker only, no HTTP")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE:ATTR")
    args = parser.parse_args(argv)
    # Logging is configured from the settings (log_format, log_level) by run_server/run_worker.
    try:
        settings = load_settings(args.config)
        plugins = load_plugins(args.plugin)
        if args.worker_only:
            run_worker(settings, plugins)
        else:
            run_server(
                settings,
                plugins,
                host=args.host,
                port=args.port,
                run_worker=False if args.no_worker else None,
            )
    except ConfigurationError as exc:
        print(f"recoverkit: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
