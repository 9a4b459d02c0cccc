"""``recoverkit sandbox serve``: run the embedded Recover on loopback."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer

from recoverkit.config import load_settings, provider_overrides
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider
from recoverkit.sandbox.clock import Clock, SimulatedClock, SystemClock
from recoverkit.sandbox.policies.base import RetryPolicy
from recoverkit.sandbox.policies.decline_aware import DeclineAwarePolicy
from recoverkit.sandbox.policies.fixed import FixedSchedule
from recoverkit.sandbox.server.settings import SandboxSettings

__all__ = ["add_server_commands", "default_credentials", "policy_by_name", "provider_factory"]

#: The documented sandbox credentials: fine on loopback, refused anywhere else.
_DEFAULTS = {
    "api_keys": "sandbox_key",
    "merchant_api_key": "merchant_key",
    "signing_secret": "sandbox_signing_secret",
}


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def default_credentials(settings: SandboxSettings, host: str) -> list[str]:
    """Settings still at their documented default when ``host`` is not a loopback address."""
    if _loopback(host):
        return []
    values = {
        "api_keys": [k.get_secret_value() for k in settings.api_keys],
        "merchant_api_key": [settings.merchant_api_key.get_secret_value()],
        "signing_secret": [settings.signing_secret.get_secret_value()],
    }
    return [name for name, default in _DEFAULTS.items() if default in values[name]]


def policy_by_name(name: str, model: Path | None = None) -> RetryPolicy:
    """``fixed``, ``rules`` or ``learned`` (needs a model from ``recoverkit sandbox train``)."""
    if name == "fixed":
        return FixedSchedule()
    if name == "rules":
        return DeclineAwarePolicy()
    if name == "adaptive":
        from recoverkit.sandbox.policies.adaptive import AdaptivePolicy

        return AdaptivePolicy()  # its learned state is loaded from the store (StoreLearner)
    if name == "learned":
        from recoverkit.sandbox.policies.learned import LearnedPolicy, SuccessModel

        if model is None or not model.exists():
            raise typer.BadParameter(
                "the learned policy needs --model PATH (fit one with `recoverkit sandbox train`)"
            )
        return LearnedPolicy(SuccessModel.load(model))
    raise typer.BadParameter(f"unknown policy {name!r}: use fixed, rules, learned or adaptive")


def provider_factory(config: Path | None = None) -> Any:
    """Providers by name, configured like the bridge service's (same TOML file and env)."""
    registry = Plugins()
    settings = load_settings(config)

    @cache
    def provider(name: str) -> Provider:
        cls = registry.provider_class(name)
        overrides = provider_overrides(settings, name, cls.settings_class)
        return registry.create_provider(name, **overrides)

    return provider


def add_server_commands(sandbox_app: typer.Typer) -> None:
    """Add ``serve`` to the ``recoverkit sandbox`` command group."""

    @sandbox_app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
        policy: Annotated[str | None, typer.Option(help="fixed, rules or learned.")] = None,
        model: Annotated[Path | None, typer.Option(help="Model file for `learned`.")] = None,
        speed: Annotated[
            float | None,
            typer.Option(help="Simulated seconds per real second (e.g. 86400: a day a second)."),
        ] = None,
        config: Annotated[
            Path | None, typer.Option(help="recoverkit.toml for PSP settings.")
        ] = None,
        poll: Annotated[float, typer.Option(help="Seconds between scheduler ticks.")] = 1.0,
    ) -> None:
        """Serve a local, Butter-compatible Recover: ingest, decide, retry, send webhooks."""
        import uvicorn

        # Imported here, not at start-up: every other `recoverkit` command would pay for it.
        from recoverkit.sandbox.server.app import Sandbox

        overrides: dict[str, Any] = {"policy": policy} if policy else {}
        settings = SandboxSettings(**overrides)
        unsafe = default_credentials(settings, host)
        if unsafe:  # issue 11 item 10: anyone on the network would know these
            names = ", ".join(f"RECOVERKIT_SANDBOX_{n.upper()}" for n in unsafe)
            typer.echo(
                f"error: refusing to listen on {host} with the default sandbox credentials; "
                f"set {names} (or listen on 127.0.0.1)",
                err=True,
            )
            raise typer.Exit(2)
        clock: Clock = SimulatedClock(datetime.now(UTC), speed=speed) if speed else SystemClock()
        chosen = policy_by_name(settings.policy, model)
        if settings.holdout_share > 0:
            from recoverkit.sandbox.policies.holdout import HoldoutPolicy

            chosen = HoldoutPolicy(
                chosen, policy_by_name(settings.holdout_policy), share=settings.holdout_share
            )
        sandbox = Sandbox.create(
            settings,
            policy=chosen,
            providers=provider_factory(config),
            clock=clock,
        )
        if isinstance(clock, SimulatedClock):  # simulated time never goes back after a restart
            from recoverkit.sandbox.server.engine import resume_simulated_clock

            resume_simulated_clock(sandbox.engine, clock)
        sandbox.run_in_background(poll)
        try:
            uvicorn.run(sandbox.app, host=host, port=port, log_level="warning")
        finally:
            sandbox.stop()
