"""The service with the real Stripe plugin (its bundled, signed samples; no network)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from service_support import API_KEY, FakeRecover, call, make_settings
from sqlalchemy import Engine

from recoverkit import Plugins
from recoverkit.client import RecoverClient
from recoverkit.service import Worker, create_app
from recoverkit.service.runtime import ProviderRegistry

stripe_plugin = pytest.importorskip(
    "recoverkit_stripe.provider",
    reason="recoverkit-stripe is not installed (pip install -e plugins/recoverkit-stripe)",
)


def test_stripe_samples_are_stored_once_and_forwarded_once(tmp_path: Path, engine: Engine) -> None:
    provider = stripe_plugin.StripeProvider.for_demo()
    samples = provider.sample_webhooks()  # signed now; seeds the cache with what they refer to
    recover = FakeRecover()
    settings = make_settings(tmp_path)
    plugins = Plugins(load_entry_points=False)
    client = RecoverClient(
        api_key=API_KEY,
        base_url=settings.recover_base_url,
        transport=httpx.MockTransport(recover.handler),
        max_attempts=1,
    )
    app = create_app(
        settings, plugins, engine, providers={"stripe": provider}, client=client, run_worker=False
    )
    for sample in samples * 2:  # every delivery twice
        response = call(
            app, "POST", "/webhooks/stripe", content=sample.body, headers=dict(sample.headers)
        )
        assert response.status_code == 200, response.text
    tampered = samples[0]
    response = call(
        app,
        "POST",
        "/webhooks/stripe",
        content=tampered.body + b" ",
        headers=dict(tampered.headers),
    )
    assert response.status_code == 401
    worker = Worker(
        settings=settings,
        plugins=plugins,
        engine=engine,
        providers=ProviderRegistry(settings, plugins, {"stripe": provider}),
        client=client,
    )
    while worker.run_once():
        pass
    worker.close()
    expected = {
        message.dedupe_key
        for sample in samples
        for event in provider.parse(sample)
        for message in provider.translate(event).messages
    }
    assert expected, "the Stripe samples produced nothing for Recover"
    assert len(recover.accepted) == len(expected)  # each message once, despite two deliveries
    bodies = [json.loads(body) for _, body in recover.accepted]
    keys = [json.dumps(b, sort_keys=True) for b in bodies]
    assert len(keys) == len(set(keys)), "a message was forwarded twice"
    paths = set(recover.paths())
    assert paths <= {"/recover/payments", "/recover/payment_method_updates"}
