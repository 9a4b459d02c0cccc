"""Settings from the environment, the SDK environment override, and plugin registration."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from bt_support import make_provider, make_settings
from pydantic import ValidationError
from recoverkit_braintree import BraintreeSettings
from recoverkit_braintree.gateway import environment_for

from recoverkit.provider import EndOfDunningPolicy


def test_settings_read_several_key_pairs_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOVERKIT_BRAINTREE_MERCHANT_ID", "m_env")
    monkeypatch.setenv(
        "RECOVERKIT_BRAINTREE_KEY_PAIRS",
        '[{"public_key": "pk1", "private_key": "s1"}, {"public_key": "pk2", "private_key": "s2"}]',
    )
    monkeypatch.setenv("RECOVERKIT_BRAINTREE_END_OF_DUNNING_POLICY", "cancel_subscription")
    settings = BraintreeSettings()
    assert settings.merchant_id == "m_env"
    assert [p.public_key for p in settings.key_pairs] == ["pk1", "pk2"]
    assert settings.end_of_dunning_policy is EndOfDunningPolicy.CANCEL_SUBSCRIPTION
    assert "s1" not in repr(settings)
    assert "s2" not in str(settings)


def test_unsupported_end_of_dunning_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="cancel_subscription"):
        make_settings(end_of_dunning_policy="mark_uncollectible")


def test_duplicate_public_keys_are_refused() -> None:
    pair = {"public_key": "pk", "private_key": "a"}
    with pytest.raises(ValidationError, match="only once"):
        make_settings(key_pairs=[pair, pair])


def test_api_base_url_points_the_sdk_at_an_emulator_with_the_port_as_text() -> None:
    env = environment_for(make_settings(api_base_url="http://127.0.0.1:3000"))
    assert env.base_url == "http://127.0.0.1:3000"
    assert env.server_and_port == "127.0.0.1:3000"  # only works when port is a string
    assert environment_for(make_settings(api_base_url=None, environment="production")).server == (
        "api.braintreegateway.com"
    )


def test_bad_api_base_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="api_base_url"):
        make_settings(api_base_url="ftp://x")


def test_entry_point_registers_the_plugin_module() -> None:
    [ep] = [ep for ep in entry_points(group="recoverkit") if ep.name == "braintree"]
    assert ep.value == "recoverkit_braintree.plugin"
    registered: list[type] = []
    ep.load().register_providers(registered.append)
    assert [cls.name for cls in registered] == ["braintree"]  # type: ignore[attr-defined]


def test_doctor_reminds_that_braintrees_own_retries_must_be_off() -> None:
    checks = make_provider().doctor()
    reminder = [c for c in checks if "retries" in c.name]
    assert reminder
    assert not reminder[0].ok
    assert "Control Panel" in reminder[0].detail
