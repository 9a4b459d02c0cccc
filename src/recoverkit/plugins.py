"""The plugin manager: discovers plugins, collects providers, calls hooks through a typed facade.

Plugins are distributions with an entry point in the ``recoverkit`` group. Two environment
switches narrow what is loaded (comma-separated entry-point names):

- ``RECOVERKIT_LOAD_PLUGINS`` — load only these (empty string: load none);
- ``RECOVERKIT_DISABLE_PLUGINS`` — load all but these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from recoverkit import hookspecs
from recoverkit.errors import DuplicateProviderError, PluginError, UnknownProviderError
from recoverkit.hookspecs import PaymentAmendment
from recoverkit.provider import Provider

if TYPE_CHECKING:
    import typer

    from recoverkit.provider import BillingContext, InvoiceRef, ProviderEvent
    from recoverkit.schema import EndOfDunning, PaymentEvent, RetryResults, RetryStatusResponse

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "Plugins"]

ENTRY_POINT_GROUP = "recoverkit"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """Where a provider came from: the entry point and its distribution."""

    entry_point: str
    distribution: str
    version: str


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class Plugins:
    """Loads plugins and holds the registered providers.

    ``plugins`` are extra plugin objects (modules or instances with hookimpls) registered after the
    entry points, e.g. by tests or by an application embedding recoverkit.
    """

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self._origin: dict[object, PluginInfo] = {}
        if load_entry_points:
            self._load_entry_points(
                only=_names(env.get("RECOVERKIT_LOAD_PLUGINS")),
                skip=_names(env.get("RECOVERKIT_DISABLE_PLUGINS")) or set(),
            )
        for plugin in plugins:
            self._register(plugin)
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
        self._providers: dict[str, type[Provider]] = {}
        self._provider_origin: dict[str, PluginInfo | None] = {}
        self._collect_providers()

    def _load_entry_points(self, *, only: set[str] | None, skip: set[str]) -> None:
        found = entry_points(group=ENTRY_POINT_GROUP)
        if only:
            unknown = sorted(only - {ep.name for ep in found})
            if unknown:
                installed = ", ".join(sorted({ep.name for ep in found})) or "none"
                raise PluginError(
                    f"RECOVERKIT_LOAD_PLUGINS names {', '.join(map(repr, unknown))}, which is not "
                    f"an installed plugin (installed: {installed})"
                )
        for ep in found:
            if (only is not None and ep.name not in only) or ep.name in skip:
                continue
            if self.manager.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                source = f" from {ep.dist.name}" if ep.dist else ""
                raise PluginError(
                    f"plugin {ep.name!r}{source} ({ep.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}; fix or uninstall it, or skip it with "
                    f"RECOVERKIT_DISABLE_PLUGINS={ep.name}"
                ) from exc
            self._register(plugin, name=ep.name)
            dist = ep.dist
            self._origin[plugin] = PluginInfo(
                entry_point=ep.name,
                distribution=dist.name if dist else "?",
                version=dist.version if dist else "?",
            )

    def _register(self, plugin: object, name: str | None = None) -> None:
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r} is invalid: {exc}") from None
        except ValueError as exc:  # pluggy: the same plugin object or name registered twice
            raise PluginError(f"plugin {name or plugin!r} cannot be registered: {exc}") from None

    def _collect_providers(self) -> None:
        for impl in self.manager.hook.register_providers.get_hookimpls():
            origin = self._origin.get(impl.plugin)

            def register(cls: type[Provider], origin: PluginInfo | None = origin) -> None:
                self._add_provider(cls, origin)

            impl.function(register=register)

    def _add_provider(self, cls: type[Provider], origin: PluginInfo | None) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise PluginError(f"register() takes a Provider subclass, got {cls!r}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
            raise PluginError(f"{cls.__qualname__}.name must be a lower-case identifier: {name!r}")
        existing = self._providers.get(name)
        if existing is not None and existing is not cls:
            where = self._provider_origin.get(name)
            raise DuplicateProviderError(
                f"provider {name!r} is registered twice: by {existing.__module__}."
                f"{existing.__qualname__}"
                f"{f' ({where.distribution})' if where else ''} and by {cls.__module__}."
                f"{cls.__qualname__}{f' ({origin.distribution})' if origin else ''}; "
                "uninstall one, or disable it with RECOVERKIT_DISABLE_PLUGINS"
            )
        self._providers[name] = cls
        self._provider_origin[name] = origin

    # -- providers -----------------------------------------------------------------------------

    @property
    def providers(self) -> dict[str, type[Provider]]:
        """Registered provider classes by name, sorted."""
        return dict(sorted(self._providers.items()))

    def provider_class(self, name: str) -> type[Provider]:
        """The provider class registered as ``name``, or :class:`UnknownProviderError`."""
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none installed"
            raise UnknownProviderError(f"no provider {name!r} (known: {known})") from None

    def create_provider(
        self, name: str, *, secret: str | None = None, **overrides: Any
    ) -> Provider:
        """An instance of provider ``name`` with settings from ``overrides`` and the environment.

        ``secret`` replaces the webhook secrets. When a plugin implements the ``billing_context``
        hook and the provider has no resolver of its own, the provider's ``billing_context`` is
        pointed at the hook.
        """
        cls = self.provider_class(name)
        if secret is not None:
            provider = cls.with_webhook_secret(secret, **overrides)
        else:
            provider = cls.from_overrides(**overrides)
        if provider.billing_context is None and self.manager.hook.billing_context.get_hookimpls():
            provider.billing_context = partial(self.billing_context, name)
        return provider

    def origin(self, name: str) -> PluginInfo | None:
        """The entry point and distribution that registered provider ``name`` (None if direct)."""
        self.provider_class(name)
        return self._provider_origin.get(name)

    # -- typed hook facade ---------------------------------------------------------------------

    def register_commands(self, cli: typer.Typer) -> None:
        """Let plugins add CLI commands."""
        self.manager.hook.register_commands(cli=cli)

    def billing_context(self, provider: str, event: ProviderEvent) -> BillingContext | None:
        """The first implementation's billing facts for ``event``, or None."""
        result: BillingContext | None = self.manager.hook.billing_context(
            provider=provider, event=event
        )
        return result

    def amend_payment_event(self, event: ProviderEvent, payment: PaymentEvent) -> PaymentEvent:
        """``payment`` with every implementation's amendment applied."""
        amendments: list[PaymentAmendment | None] = self.manager.hook.amend_payment_event(
            event=event, payment=payment
        )
        custom: dict[str, Any] = dict(payment.custom or {})
        group: str | None = None
        for amendment in reversed(amendments):  # pluggy calls last-registered first
            if amendment is None:
                continue
            if not isinstance(amendment, PaymentAmendment):
                raise PluginError(
                    f"amend_payment_event must return PaymentAmendment or None, got {amendment!r}"
                )
            custom.update(amendment.custom)
            group = amendment.reporting_group or group
        if not custom and group is None:
            return payment
        transactions = payment.transactions
        if group is not None:
            transactions = [t.model_copy(update={"reporting_group": group}) for t in transactions]
        return payment.model_copy(
            update={"custom": custom or payment.custom, "transactions": transactions}
        )

    def retry_veto(self, invoice: InvoiceRef, status: RetryStatusResponse) -> str | None:
        """The first implementation's reason to refuse a retry, or None."""
        reason: str | None = self.manager.hook.retry_veto(invoice=invoice, status=status)
        return reason

    def on_retry_result(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Tell every implementation about a reconciled retry result."""
        self.manager.hook.on_retry_result(result=result, invoice=invoice)

    def on_end_of_dunning(self, notice: EndOfDunning, invoice: InvoiceRef) -> None:
        """Tell every implementation that dunning ended for ``invoice``."""
        self.manager.hook.on_end_of_dunning(notice=notice, invoice=invoice)
