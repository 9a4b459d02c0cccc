"""Settings: defaults from RECOVER_API.md, TOML + env precedence, secrets only from env/files."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoverkit import ConfigurationError, EndOfDunningPolicy
from recoverkit.config import load_settings, provider_overrides


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("RECOVERKIT_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_documented_decisions() -> None:
    s = load_settings()
    assert s.recover_base_url == "https://api.butterpayments.com/recover"
    assert s.butter_signature_fallback is True
    assert s.butter_clock_skew == 60
    assert s.extra_psp_names == []
    assert s.database_url == "sqlite:///recoverkit.db"
    assert s.end_of_dunning_policy is EndOfDunningPolicy.NONE
    assert s.retry_status.require_signature is False  # Butter lists no signature for RetryStatus
    assert s.retry_results.require_signature is True


def test_toml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "recoverkit.toml"
    config.write_text(
        'database_url = "postgresql://db/rk"\n'
        "butter_clock_skew = 30\n"
        'extra_psp_names = ["paddle"]\n'
        "[retry_results]\n"
        'username = "butter"\n'
        "[providers.stripe]\n"
        'api_base = "http://localhost:12111"\n'
    )
    monkeypatch.setenv("RECOVERKIT_BUTTER_CLOCK_SKEW", "90")
    monkeypatch.setenv("RECOVERKIT_RETRY_RESULTS__PASSWORD", "pw")
    s = load_settings(config)
    assert s.database_url == "postgresql://db/rk"
    assert s.butter_clock_skew == 90
    assert s.extra_psp_names == ["paddle"]
    assert s.retry_results.username == "butter"
    assert s.retry_results.password is not None
    assert s.retry_results.password.get_secret_value() == "pw"
    assert s.retry_results.configured
    assert provider_overrides(s, "stripe") == {"api_base": "http://localhost:12111"}
    assert provider_overrides(s, "adyen") == {}


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rk.toml"
    config.write_text("port = 9123\n")
    monkeypatch.setenv("RECOVERKIT_CONFIG", str(config))
    assert load_settings().port == 9123


@pytest.mark.parametrize(
    "toml",
    [
        'recover_api_key = "k"\n',
        '[end_of_dunning]\npassword = "p"\n',
        '[providers.stripe]\nwebhook_secret = "whsec"\n',
    ],
)
def test_secrets_in_the_toml_file_are_refused(tmp_path: Path, toml: str) -> None:
    config = tmp_path / "recoverkit.toml"
    config.write_text(toml)
    with pytest.raises(ConfigurationError, match="secrets come only from"):
        load_settings(config)


def test_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("rk_live_abc\n")
    (tmp_path / "signing").write_text("old\nnew\n")
    (tmp_path / "whsec").write_text("whsec_123\n")
    config = tmp_path / "recoverkit.toml"
    config.write_text(
        f'recover_api_key_file = "{tmp_path / "key"}"\n'
        f'butter_signing_secret_file = "{tmp_path / "signing"}"\n'
        f'[providers.stripe]\nwebhook_secret_file = "{tmp_path / "whsec"}"\n'
    )
    s = load_settings(config)
    assert s.recover_api_key is not None
    assert s.recover_api_key.get_secret_value() == "rk_live_abc"
    assert [x.get_secret_value() for x in s.butter_signing_secrets] == ["old", "new"]
    assert provider_overrides(s, "stripe") == {"webhook_secret": "whsec_123"}
    assert "rk_live_abc" not in repr(s)


def test_missing_secret_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="recover_api_key_file"):
        load_settings(recover_api_key_file=tmp_path / "nope")


def test_invalid_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_BUTTER_CLOCK_SKEW", "-5")
    with pytest.raises(ConfigurationError, match="butter_clock_skew"):
        load_settings()


def test_unknown_setting_in_toml_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "recoverkit.toml"
    config.write_text("recover_base_ulr = 'typo'\n")
    with pytest.raises(ConfigurationError, match="recover_base_ulr"):
        load_settings(config)


def test_env_lists_and_nested_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_BUTTER_SIGNING_SECRETS", '["a", "b"]')
    monkeypatch.setenv("RECOVERKIT_RETRY_STATUS__API_KEY", "mk")
    s = load_settings()
    assert [x.get_secret_value() for x in s.butter_signing_secrets] == ["a", "b"]
    assert s.retry_status.configured


def test_provider_secret_files_become_lists_for_list_settings(tmp_path: Path) -> None:
    from pydantic import BaseModel, SecretStr

    class StripeLike(BaseModel):
        webhook_secrets: list[SecretStr] = []
        api_key: SecretStr | None = None

    (tmp_path / "whsec").write_text("whsec_old\nwhsec_new\n")
    (tmp_path / "one").write_text("whsec_only\n")
    (tmp_path / "key").write_text("sk_test_1\n")
    config = tmp_path / "recoverkit.toml"
    config.write_text(
        "[providers.stripe]\n"
        f'webhook_secrets_file = "{tmp_path / "one"}"\n'
        f'api_key_file = "{tmp_path / "key"}"\n'
        "[providers.other]\n"
        f'webhook_secrets_file = "{tmp_path / "whsec"}"\n'
    )
    s = load_settings(config)
    assert provider_overrides(s, "stripe", StripeLike) == {
        "webhook_secrets": ["whsec_only"],
        "api_key": "sk_test_1",
    }
    # Without the settings class: several lines make a list, one line a string.
    assert provider_overrides(s, "other") == {"webhook_secrets": ["whsec_old", "whsec_new"]}
    assert provider_overrides(s, "stripe")["webhook_secrets"] == "whsec_only"
