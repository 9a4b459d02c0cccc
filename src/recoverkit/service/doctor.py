"""``recoverkit doctor``: validate the settings, the database and every provider's own checks."""

from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import Engine, text

from recoverkit.config import Settings
from recoverkit.plugins import Plugins
from recoverkit.provider import DoctorCheck
from recoverkit.service.runtime import ProviderRegistry
from recoverkit.store import current_revision, head_revision, repo

__all__ = ["run_checks"]


def _database(engine: Engine) -> list[DoctorCheck]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return [DoctorCheck("database", False, f"unreachable: {type(exc).__name__}: {exc}")]
    checks = [DoctorCheck("database", True, f"{engine.dialect.name} reachable")]
    current, head = current_revision(engine), head_revision()
    checks.append(
        DoctorCheck(
            "migrations",
            current == head,
            f"at {head}"
            if current == head
            else f"at {current}, need {head}: recoverkit db upgrade",
        )
    )
    if current == head:
        dead = repo.counts(engine).get("outbox", {}).get("dead", 0)
        checks.append(
            DoctorCheck(
                "dead letters",
                dead == 0,
                "none" if not dead else f"{dead} dead: recoverkit outbox list --state dead",
            )
        )
    return checks


def _recover(settings: Settings) -> list[DoctorCheck]:
    url = urlparse(settings.recover_base_url)
    local = url.hostname in {"127.0.0.1", "localhost", "::1"}
    return [
        DoctorCheck(
            "recover_api_key",
            settings.recover_api_key is not None,
            "set" if settings.recover_api_key else "missing: export RECOVERKIT_RECOVER_API_KEY",
        ),
        DoctorCheck(
            "recover_base_url",
            url.scheme == "https" or local,
            settings.recover_base_url
            + ("" if url.scheme == "https" or local else " (plain http to a remote host)"),
        ),
    ]


def _endpoints(settings: Settings) -> list[DoctorCheck]:
    checks = []
    for name in ("retry_status", "retry_results", "end_of_dunning"):
        auth = getattr(settings, name)
        checks.append(
            DoctorCheck(
                f"{name} credentials",
                auth.configured,
                "configured"
                if auth.configured
                else f"none: every call is refused; set RECOVERKIT_{name.upper()}__API_KEY "
                f"or __USERNAME/__PASSWORD",
            )
        )
        if auth.require_signature:
            have = bool(settings.butter_signing_secrets)
            checks.append(
                DoctorCheck(
                    f"{name} signature",
                    have,
                    f"{len(settings.butter_signing_secrets)} signing secret(s)"
                    if have
                    else "no butter_signing_secrets: every call is refused",
                )
            )
    return checks


def _providers(settings: Settings, plugins: Plugins) -> list[DoctorCheck]:
    registry = ProviderRegistry(settings, plugins)
    names = registry.names()
    if not names:
        return [DoctorCheck("providers", False, "no provider plugin installed or enabled")]
    checks = []
    for name in names:
        try:
            provider = registry.get(name)
        except Exception as exc:
            checks.append(DoctorCheck(f"provider {name}", False, str(exc)))
            continue
        checks.append(DoctorCheck(f"provider {name}", True, f"/webhooks/{name}"))
        try:
            own = provider.doctor()
        except Exception as exc:
            own = [DoctorCheck("doctor()", False, f"{type(exc).__name__}: {exc}")]
        checks += [DoctorCheck(f"{name}: {c.name}", c.ok, c.detail) for c in own]
    return checks


def run_checks(settings: Settings, plugins: Plugins, engine: Engine) -> list[DoctorCheck]:
    """Every check, in the order ``doctor`` prints them."""
    return [
        *_database(engine),
        *_recover(settings),
        *_endpoints(settings),
        *_providers(settings, plugins),
    ]
