"""Issue 11 item 10: the sandbox refuses its default credentials on a non-loopback address."""

from __future__ import annotations

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from recoverkit.sandbox.server.commands import add_server_commands, default_credentials
from recoverkit.sandbox.server.settings import SandboxSettings


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_defaults_are_fine_on_loopback(host: str) -> None:
    assert default_credentials(SandboxSettings(), host) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "sandbox.example.com"])
def test_defaults_are_named_on_any_other_address(host: str) -> None:
    assert default_credentials(SandboxSettings(), host) == [
        "api_keys",
        "merchant_api_key",
        "signing_secret",
    ]
    own = SandboxSettings(
        api_keys=[SecretStr("k1")],
        merchant_api_key=SecretStr("k2"),
        signing_secret=SecretStr("k3"),
    )
    assert default_credentials(own, host) == []


def test_serve_exits_2_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_KEYS", "MERCHANT_API_KEY", "SIGNING_SECRET"):
        monkeypatch.delenv(f"RECOVERKIT_SANDBOX_{name}", raising=False)
    app = typer.Typer()
    sandbox = typer.Typer()
    add_server_commands(sandbox)
    app.add_typer(sandbox, name="sandbox")
    result = CliRunner().invoke(app, ["sandbox", "serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "RECOVERKIT_SANDBOX_SIGNING_SECRET" in result.output
