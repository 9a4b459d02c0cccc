"""The end-to-end demo: PSP webhooks → bridge → sandbox → retries → reconciled results.

Both servers are real (uvicorn on loopback); only the PSP accounts are simulated.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from example_provider import ExamplePlugin

import recoverkit.demo.loop as loop
from recoverkit import Plugins
from recoverkit.demo.loop import run_demo


def test_example_provider_runs_the_whole_loop() -> None:
    report = run_demo(Plugins([ExamplePlugin()], load_entry_points=False))
    assert report.problems == []
    tally = report.providers["example"]
    # Samples: a failed charge, the same invoice's success (held back: the retry collects it),
    # a card update and an ignored customer event.
    assert (tally.webhooks, tally.held_back, tally.failed_invoices) == (3, 1, 1)
    assert tally.recovered == 1
    assert tally.retries >= 1
    assert str(tally.recovered_amount["USD"]) == "19.99"
    # One Payments event and one Payment Method Update reached the sandbox through the bridge.
    assert report.forwarded == 2
    # Every Retry Results and End of Dunning the sandbox sent was verified by the bridge.
    assert report.webhooks_sent >= 2
    assert report.webhooks_verified == report.webhooks_sent


def test_every_installed_plugin_runs_the_whole_loop() -> None:
    plugins = Plugins()
    if not plugins.providers:
        pytest.skip("no provider plugin is installed (./scripts/test installs plugins/*)")
    report = run_demo(plugins)
    assert report.problems == []
    for name, tally in report.providers.items():
        assert tally.webhooks > 0, name
        # Each failed invoice ended: recovered, or End of Dunning reached the bridge.
        assert tally.recovered + tally.ended == tally.failed_invoices, name
    assert report.webhooks_verified == report.webhooks_sent > 0


def test_a_bridge_that_cannot_verify_webhooks_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_settings = loop.Settings

    def wrong_secret(**kwargs: object) -> object:
        kwargs["butter_signing_secrets"] = ["not_the_sandbox_secret"]
        return real_settings(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "Settings", wrong_secret)
    report = run_demo(Plugins([ExamplePlugin()], load_entry_points=False), days=3)
    assert not report.ok
    assert any("not accepted by the bridge" in p for p in report.problems)
    assert report.webhooks_verified == 0


def test_recoverkit_demo_exits_0_within_60_seconds() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "recoverkit", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert time.monotonic() - started < 60
    assert "every invoice charged at most once, every webhook verified" in result.stdout
    assert "Traceback" not in result.stderr
