"""Behaviour of every hook, and of the plugin manager that calls them.

``tests/test_docs.py`` checks that each hookspec name appears in a ``test_hook_<name>…`` function
here, so a new hook cannot ship without a behavioural test. Plugins are plain objects with
``@recoverkit.hookimpl`` methods, registered with ``load_entry_points=False``; the entry-point
tests stand in real ``importlib.metadata.EntryPoint`` objects for installed distributions.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import recoverkit
from recoverkit import (
    BillingContext,
    DuplicateProviderError,
    InvoiceRef,
    PaymentAmendment,
    PluginError,
    Plugins,
    Provider,
    ProviderEvent,
    UnknownProviderError,
)
from recoverkit import plugins as plugin_manager
from recoverkit.schema import (
    EndOfDunning,
    PaymentEvent,
    RetryResults,
    RetryStatusResponse,
    dumps,
    parse,
)

NOW = datetime(2025, 1, 22, 22, 31, 8, tzinfo=UTC)


# -- fixtures: providers, events, wire messages --------------------------------------------------


class AcmeProvider(Provider):
    """A provider registered by the test plugins."""

    name = "acme"


class ZetaProvider(Provider):
    """A second provider, to check sorting and several registrations from one plugin."""

    name = "zeta"


def _make_provider(name: str) -> type[Provider]:
    return type(f"{name.title()}Provider", (Provider,), {"name": name, "__module__": __name__})


def _registering(*classes: type[Provider]) -> object:
    class Plugin:
        @recoverkit.hookimpl
        def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
            for cls in classes:
                register(cls)

    return Plugin()


def _event(provider: str = "acme") -> ProviderEvent:
    return ProviderEvent(
        provider=provider,
        dedupe_key=f"{provider}:evt_1",
        type="payment.failed",
        occurred_at=NOW,
        data={"id": "pay_1", "shopper": "shopper-42"},
        object_id="pay_1",
    )


def _payment(custom: dict[str, Any] | None = None) -> PaymentEvent:
    transaction = {
        "psp": "stripe",
        "acquirer_country": "US",
        "amount": 12.23,
        "currency": "USD",
        "funding_source": "CREDIT",
        "outcome": {"raw_response_message": "insufficient_funds"},
        "payment_method_id": "pm_12345",
        "psp_transaction_created_at": "2023-10-25T03:57:26Z",
        "scheme": "visa",
        "success": False,
    }
    return parse(
        PaymentEvent,
        {
            "customer": {"id": "cust_1234"},
            "subscription": {"id": "sub_1234", "start_date": "2023-10-25T03:57:26Z"},
            "invoice": {"id": "inv_12345", "created_at": "2023-10-25T03:57:26Z"},
            "transactions": [
                {**transaction, "id": "ch_1", "psp_transaction_id": "ch_1"},
                {**transaction, "id": "ch_2", "psp_transaction_id": "ch_2"},
            ],
            "custom": custom,
        },
    )


def _invoice() -> InvoiceRef:
    return InvoiceRef(
        provider="acme",
        invoice_id="inv_12345",
        customer_id="cust_1234",
        psp_invoice_id="in_1",
        amount=Decimal("12.23"),
        currency="USD",
    )


def _retry_results() -> RetryResults:
    return parse(
        RetryResults,
        {
            "timestamp": "2025-01-22T22:31:08.893377",
            "butter_id": "1040432066964226052",
            "invoice_id": "inv_12345",
            "original_amount": 12.23,
            "amount_collected": 12.23,
            "currency": "USD",
            "success": True,
        },
    )


def _end_of_dunning() -> EndOfDunning:
    return parse(
        EndOfDunning,
        {"timestamp": "2025-04-05T19:41:01.396550", "invoice_id": "inv_12345", "recovered": False},
    )


def _plugins(*plugins: object) -> Plugins:
    return Plugins(plugins=plugins, load_entry_points=False)


# -- register_providers ----------------------------------------------------------------------


def test_hook_register_providers_adds_provider_by_name() -> None:
    registry = _plugins(_registering(ZetaProvider, AcmeProvider))

    assert registry.providers == {"acme": AcmeProvider, "zeta": ZetaProvider}
    assert list(registry.providers) == ["acme", "zeta"]  # sorted, whatever the order registered
    assert registry.provider_class("zeta") is ZetaProvider
    assert registry.origin("acme") is None  # registered directly, not from an entry point


def test_hook_register_providers_from_several_plugins_are_all_kept() -> None:
    registry = _plugins(_registering(AcmeProvider), _registering(ZetaProvider))

    assert set(registry.providers) == {"acme", "zeta"}


def test_register_rejects_something_that_is_not_a_provider_class() -> None:
    with pytest.raises(PluginError, match="Provider subclass"):
        _plugins(_registering(AcmeProvider()))  # type: ignore[arg-type]  # an instance


@pytest.mark.parametrize("bad_name", ["Acme", "acme-pay", "", "1acme"])
def test_register_rejects_a_name_that_is_not_a_lowercase_identifier(bad_name: str) -> None:
    with pytest.raises(PluginError, match="lower-case identifier"):
        _plugins(_registering(_make_provider_named(bad_name)))


def _make_provider_named(name: str) -> type[Provider]:
    return type("OddlyNamedProvider", (Provider,), {"name": name, "__module__": __name__})


def test_duplicate_provider_names_raise_naming_both_classes() -> None:
    first = _make_provider("acme")
    second = type("OtherAcmeProvider", (Provider,), {"name": "acme", "__module__": "vendor.acme"})

    with pytest.raises(DuplicateProviderError) as caught:
        _plugins(_registering(first), _registering(second))

    message = str(caught.value)
    assert "'acme'" in message
    assert f"{__name__}.AcmeProvider" in message
    assert "vendor.acme.OtherAcmeProvider" in message
    assert "RECOVERKIT_DISABLE_PLUGINS" in message  # says what to do
    assert isinstance(caught.value, PluginError)


def test_registering_the_same_provider_class_twice_is_harmless() -> None:
    registry = _plugins(_registering(AcmeProvider), _registering(AcmeProvider))

    assert registry.providers == {"acme": AcmeProvider}


def test_unknown_provider_names_the_known_ones() -> None:
    registry = _plugins(_registering(AcmeProvider, ZetaProvider))

    with pytest.raises(UnknownProviderError, match=r"'stripe' \(known: acme, zeta\)"):
        registry.provider_class("stripe")


# -- register_commands -----------------------------------------------------------------------


def test_hook_register_commands_adds_a_working_command() -> None:
    sub_app = typer.Typer()

    @sub_app.command("ping")
    def ping(times: int = 1) -> None:
        typer.echo("pong " * times)

    class CommandPlugin:
        @recoverkit.hookimpl
        def register_commands(self, cli: typer.Typer) -> None:
            cli.add_typer(sub_app, name="acme")

    cli = typer.Typer()

    @cli.command("version")
    def version() -> None:
        typer.echo("0")

    _plugins(CommandPlugin()).register_commands(cli)
    result = CliRunner().invoke(cli, ["acme", "ping", "--times", "2"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "pong pong"


# -- billing_context -------------------------------------------------------------------------


def _context(invoice_id: str) -> BillingContext:
    return BillingContext(
        customer_id="cust_42",
        subscription_id="sub_42",
        invoice_id=invoice_id,
        subscription_start=datetime(2024, 1, 1, tzinfo=UTC),
        invoice_created_at=NOW,
    )


class ContextPlugin:
    """Answers for one provider, records that it was asked."""

    def __init__(self, provider: str, answer: BillingContext | None) -> None:
        self.provider = provider
        self.answer = answer
        self.asked: list[str] = []

    @recoverkit.hookimpl
    def billing_context(self, provider: str, event: ProviderEvent) -> BillingContext | None:
        self.asked.append(event.dedupe_key)
        return self.answer if provider == self.provider else None


def test_hook_billing_context_first_answer_wins() -> None:
    early = ContextPlugin("adyen", _context("inv_early"))
    late = ContextPlugin("adyen", _context("inv_late"))
    registry = _plugins(early, late)  # pluggy calls the later-registered plugin first

    assert registry.billing_context("adyen", _event("adyen")) == _context("inv_late")
    assert early.asked == []  # firstresult: nobody is asked after an answer


def test_hook_billing_context_none_defers_to_the_next_plugin() -> None:
    answering = ContextPlugin("adyen", _context("inv_1"))
    other_psp = ContextPlugin("stripe", _context("inv_never"))
    registry = _plugins(answering, other_psp)

    assert registry.billing_context("adyen", _event("adyen")) == _context("inv_1")
    assert other_psp.asked == ["adyen:evt_1"]
    assert registry.billing_context("braintree", _event("braintree")) is None


def test_hook_billing_context_reaches_providers_from_create_provider() -> None:
    class Registers:
        @recoverkit.hookimpl
        def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
            register(AcmeProvider)

    answering = ContextPlugin("acme", _context("inv_1"))
    provider = _plugins(Registers(), answering).create_provider("acme")
    assert provider.billing_context is not None
    assert provider.billing_context(_event("acme")) == _context("inv_1")
    # Without an implementation the provider keeps its own default (here: none).
    assert _plugins(Registers()).create_provider("acme").billing_context is None


# -- amend_payment_event ---------------------------------------------------------------------


def _amending(amendment: object, **opts: bool) -> object:
    class AmendPlugin:
        @recoverkit.hookimpl(**opts)
        def amend_payment_event(self, event: ProviderEvent, payment: PaymentEvent) -> object:
            return amendment

    return AmendPlugin()


def test_hook_amend_payment_event_merges_every_amendment() -> None:
    payment = _payment(custom={"plan": "pro"})
    registry = _plugins(
        _amending(PaymentAmendment(custom={"brand": "early", "region": "eu"})),
        _amending(None),
        _amending(PaymentAmendment(custom={"brand": "late"}, reporting_group="brand-late")),
    )

    amended = registry.amend_payment_event(_event(), payment)

    assert amended.custom == {"plan": "pro", "brand": "late", "region": "eu"}
    assert [t.reporting_group for t in amended.transactions] == ["brand-late", "brand-late"]
    assert payment.custom == {"plan": "pro"}  # the original message is not changed
    assert payment.transactions[0].reporting_group is None
    # Still a valid wire message, and everything else is untouched.
    reparsed = parse(PaymentEvent, dumps(amended))
    assert reparsed == amended
    assert [t.id for t in amended.transactions] == ["ch_1", "ch_2"]
    assert amended.invoice == payment.invoice


def test_amend_payment_event_tryfirst_plugin_wins_a_key_conflict() -> None:
    registry = _plugins(
        _amending(PaymentAmendment(custom={"brand": "tryfirst"}), tryfirst=True),
        _amending(PaymentAmendment(custom={"brand": "registered-later"})),
    )

    assert registry.amend_payment_event(_event(), _payment()).custom == {"brand": "tryfirst"}


def test_amend_payment_event_without_amendments_returns_the_same_message() -> None:
    payment = _payment()

    assert _plugins(_amending(None)).amend_payment_event(_event(), payment) is payment
    assert _plugins().amend_payment_event(_event(), payment) is payment


def test_amend_payment_event_rejects_a_return_value_of_the_wrong_type() -> None:
    registry = _plugins(_amending({"custom": {"brand": "x"}}))

    with pytest.raises(PluginError, match="PaymentAmendment or None"):
        registry.amend_payment_event(_event(), _payment())


# -- retry_veto ------------------------------------------------------------------------------


def _vetoing(reason: str | None, calls: list[str] | None = None) -> object:
    class VetoPlugin:
        @recoverkit.hookimpl
        def retry_veto(self, invoice: InvoiceRef, status: RetryStatusResponse) -> str | None:
            if calls is not None:
                calls.append(invoice.invoice_id)
            return reason

    return VetoPlugin()


@pytest.mark.parametrize("refuser_first", [True, False])
def test_hook_retry_veto_refusal_wins(refuser_first: bool) -> None:
    status = RetryStatusResponse(retry=True, amount=Decimal("12.23"))
    plugins = [_vetoing("user cancellation"), _vetoing(None)]
    registry = _plugins(*(plugins if refuser_first else reversed(plugins)))

    assert registry.retry_veto(_invoice(), status) == "user cancellation"


def test_hook_retry_veto_none_from_everyone_allows_the_retry() -> None:
    calls: list[str] = []
    registry = _plugins(_vetoing(None, calls), _vetoing(None, calls))

    assert registry.retry_veto(_invoice(), RetryStatusResponse(retry=True)) is None
    assert calls == ["inv_12345", "inv_12345"]  # every implementation was asked
    assert _plugins().retry_veto(_invoice(), RetryStatusResponse(retry=True)) is None


# -- on_retry_result / on_end_of_dunning -----------------------------------------------------


class Recorder:
    """Records the notification hooks' arguments."""

    def __init__(self) -> None:
        self.results: list[tuple[RetryResults, InvoiceRef]] = []
        self.endings: list[tuple[EndOfDunning, InvoiceRef]] = []

    @recoverkit.hookimpl
    def on_retry_result(self, result: RetryResults, invoice: InvoiceRef) -> None:
        self.results.append((result, invoice))

    @recoverkit.hookimpl
    def on_end_of_dunning(self, notice: EndOfDunning, invoice: InvoiceRef) -> None:
        self.endings.append((notice, invoice))


def test_hook_on_retry_result_reaches_every_plugin() -> None:
    first, second = Recorder(), Recorder()
    result, invoice = _retry_results(), _invoice()

    _plugins(first, second).on_retry_result(result, invoice)

    assert first.results == [(result, invoice)]
    assert second.results == [(result, invoice)]
    assert first.endings == []
    assert first.results[0][0].amount_collected == Decimal("12.23")


def test_hook_on_end_of_dunning_reaches_every_plugin() -> None:
    first, second = Recorder(), Recorder()
    notice, invoice = _end_of_dunning(), _invoice()

    _plugins(first, second).on_end_of_dunning(notice, invoice)

    assert first.endings == [(notice, invoice)]
    assert second.endings == [(notice, invoice)]
    assert first.results == []


def test_an_exception_in_a_notification_hook_reaches_the_caller() -> None:
    class Failing:
        @recoverkit.hookimpl
        def on_end_of_dunning(self, notice: EndOfDunning, invoice: InvoiceRef) -> None:
            raise RuntimeError("crm is down")

    with pytest.raises(RuntimeError, match="crm is down"):
        _plugins(Failing()).on_end_of_dunning(_end_of_dunning(), _invoice())


# -- misspelled hookimpls fail loudly --------------------------------------------------------


def test_misspelled_hookimpl_name_fails_loudly() -> None:
    class Misspelled:
        @recoverkit.hookimpl
        def retry_vetoo(self, invoice: InvoiceRef, status: RetryStatusResponse) -> str | None:
            return "never called"

    with pytest.raises(PluginError, match="retry_vetoo"):
        _plugins(Misspelled())


def test_misspelled_hookimpl_argument_fails_as_a_plugin_error() -> None:
    class WrongArgument:
        @recoverkit.hookimpl
        def retry_veto(self, invoice: InvoiceRef, stauts: RetryStatusResponse) -> str | None:
            return None

    with pytest.raises(PluginError, match="stauts"):
        _plugins(WrongArgument())


# -- entry points and the RECOVERKIT_LOAD_PLUGINS / RECOVERKIT_DISABLE_PLUGINS switches ------


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Provider]]:
    """Three 'installed' plugins: entry points alpha, beta, broken (its module cannot import).

    Real ``EntryPoint`` objects whose modules are in ``sys.modules``, so ``ep.load()`` runs as for
    an installed distribution; only the listing of entry points is replaced.
    """
    providers: dict[str, type[Provider]] = {}
    points = []
    for name in ("alpha", "beta"):
        module = types.ModuleType(f"recoverkit_test_{name}")
        providers[name] = _make_provider(name)
        vars(module)["register_providers"] = _registering(providers[name]).register_providers
        monkeypatch.setitem(sys.modules, module.__name__, module)
        points.append(EntryPoint(name=name, value=module.__name__, group="recoverkit"))
    points.append(
        EntryPoint(name="broken", value="recoverkit_test_not_installed", group="recoverkit")
    )

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in points if ep.group == group]

    monkeypatch.setattr(plugin_manager, "entry_points", entry_points)
    return providers


def test_a_plugin_that_fails_to_import_is_a_plugin_error_naming_it(
    installed: dict[str, type[Provider]],
) -> None:
    with pytest.raises(PluginError, match=r"'broken' .*failed to load"):
        Plugins(environ={})


def test_disable_plugins_skips_the_named_entry_points_without_importing_them(
    installed: dict[str, type[Provider]],
) -> None:
    registry = Plugins(environ={"RECOVERKIT_DISABLE_PLUGINS": "broken"})

    assert registry.providers == installed
    origin = registry.origin("alpha")
    assert origin is not None
    assert origin.entry_point == "alpha"


def test_disable_plugins_takes_a_comma_separated_list(
    installed: dict[str, type[Provider]],
) -> None:
    registry = Plugins(environ={"RECOVERKIT_DISABLE_PLUGINS": " beta ,broken,"})

    assert list(registry.providers) == ["alpha"]


def test_load_plugins_loads_only_the_named_entry_points(
    installed: dict[str, type[Provider]],
) -> None:
    registry = Plugins(environ={"RECOVERKIT_LOAD_PLUGINS": "beta"})

    assert registry.providers == {"beta": installed["beta"]}


def test_load_plugins_empty_loads_none_and_disable_still_applies(
    installed: dict[str, type[Provider]],
) -> None:
    assert Plugins(environ={"RECOVERKIT_LOAD_PLUGINS": ""}).providers == {}
    both = {"RECOVERKIT_LOAD_PLUGINS": "alpha,beta", "RECOVERKIT_DISABLE_PLUGINS": "alpha"}
    assert list(Plugins(environ=both).providers) == ["beta"]


def test_environ_argument_replaces_the_process_environment(
    installed: dict[str, type[Provider]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "alpha")
    monkeypatch.setenv("RECOVERKIT_DISABLE_PLUGINS", "broken")

    assert list(Plugins().providers) == ["alpha"]  # reads os.environ by default
    with pytest.raises(PluginError, match="'broken'"):
        Plugins(environ={})  # the mapping given is the whole environment


def test_load_entry_points_false_ignores_installed_plugins(
    installed: dict[str, type[Provider]],
) -> None:
    assert Plugins(load_entry_points=False).providers == {}


def test_plugins_passed_directly_are_registered_after_entry_points(
    installed: dict[str, type[Provider]],
) -> None:
    clash = type("AlphaClone", (Provider,), {"name": "alpha", "__module__": "vendor.clone"})

    with pytest.raises(DuplicateProviderError, match=r"vendor\.clone\.AlphaClone"):
        Plugins([_registering(clash)], environ={"RECOVERKIT_DISABLE_PLUGINS": "broken"})
