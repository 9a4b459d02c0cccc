"""Benchmark: a Braintree ``subscription_charged_unsuccessfully`` webhook through recoverkit.

Three rates on the same signed payloads, measured in the same run:

- floor: HMAC-SHA1 check + base64 decode + ``xml.etree`` parse (the least any verifier must do);
- sdk: ``gateway.webhook_notification.parse`` (what the Braintree SDK costs on its own);
- recoverkit: ``verify`` + ``parse`` + ``translate`` of the provider, with the facts the webhook
  lacks (``transaction.find`` / ``subscription.find``) served from the provider's cache, seeded
  from the hand-written cassette ``cassettes/braintree/translate_charged_unsuccessfully.yaml``.

Every request is distinct (its signed timestamp differs), so the provider's verified-notification
cache never answers for a new webhook. Interleaved rounds through ``bench/_harness.py``, CPU time,
the median of the per-round ratios with their min-max. Target: recoverkit >= 50% of the SDK's
parse rate.

Run: ``.venv/bin/python bench/bench_braintree_webhook.py [--rounds 7] [--seconds 0.3]``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs

import yaml
from _harness import arguments, interleave, ratio, report_rates
from recoverkit_braintree import BraintreeProvider, BraintreeSettings
from recoverkit_braintree._sdk import braintree
from recoverkit_braintree.webhooks import notification_attributes

from recoverkit.provider import WebhookRequest

ROOT = Path(__file__).resolve().parents[1]
CASSETTE = ROOT / "cassettes" / "braintree" / "translate_charged_unsuccessfully.yaml"
PUBLIC, PRIVATE = "pk_bench", "sk_bench_private"


def _provider() -> BraintreeProvider:
    settings = BraintreeSettings(
        merchant_id="test_merchant",
        key_pairs=[{"public_key": PUBLIC, "private_key": PRIVATE}],  # type: ignore[list-item]
        api_base_url="http://braintree.emulator.test:3000",
        lookup_cache_seconds=3600,
    )
    provider = BraintreeProvider(settings)
    # Seed the lookup cache with the cassette's transaction and subscription (no HTTP in the run).
    interactions = yaml.safe_load(CASSETTE.read_text())["interactions"]
    for item in interactions:
        xml = item["response"]["body"]["string"].encode()
        provider.lookups.remember(braintree.util.xml_util.XmlUtil.dict_from_xml(xml))
    return provider


def _requests(provider: BraintreeProvider, count: int) -> list[WebhookRequest]:
    xml = (
        files("recoverkit_braintree") / "samples" / "subscription_charged_unsuccessfully.xml"
    ).read_bytes()
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        provider.sign_test_webhook(xml, timestamp=start + timedelta(seconds=i))
        for i in range(count)
    ]


def _cycling(work: Callable[[int], None], count: int) -> Callable[[], None]:
    """``work`` over the distinct requests in turn, as a no-argument call for the harness."""
    indexes = itertools.cycle(range(count))

    def call() -> None:
        work(next(indexes))

    return call


def main() -> None:
    args = arguments(
        __doc__.splitlines()[0],
        extra=lambda p: p.add_argument(
            "--distinct", type=int, default=3000, help="distinct signed requests"
        ),
    )

    provider = _provider()
    requests = _requests(provider, args.distinct)
    forms = [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in requests]
    signatures = [f["bt_signature"] for f in forms]
    payloads = [f["bt_payload"].encode() for f in forms]
    key = hashlib.sha1(PRIVATE.encode()).digest()
    gateway = provider.gateway

    # Check once, on another provider instance, that every path accepts the payload.
    checker = _provider()
    first = checker.parse(requests[0])[0]
    [message] = checker.translate(first).messages
    assert message.decline is not None
    assert gateway.webhook_notification.parse(signatures[0], payloads[0]).kind == first.type
    assert notification_attributes(base64.decodebytes(payloads[0]))["kind"] == first.type

    def floor(i: int) -> None:
        expected = signatures[i].split("|", 1)[1]
        digest = hmac.new(key, payloads[i], hashlib.sha1).hexdigest()
        if not hmac.compare_digest(digest, expected):
            raise AssertionError("floor: signature mismatch")
        ET.fromstring(base64.decodebytes(payloads[i]))

    def sdk(i: int) -> None:
        gateway.webhook_notification.parse(signatures[i], payloads[i])

    def ours(i: int) -> None:
        request = requests[i]
        provider.verify(request)
        for event in provider.parse(request):
            provider.translate(event)

    results = interleave(
        {
            "floor (HMAC-SHA1 + base64 + ElementTree)": _cycling(floor, args.distinct),
            "braintree SDK webhook_notification.parse": _cycling(sdk, args.distinct),
            "recoverkit verify+parse+translate": _cycling(ours, args.distinct),
        },
        rounds=args.rounds,
        seconds=args.seconds,
        clock="cpu",
    )
    print(f"CPU time; {args.rounds} interleaved rounds of {args.seconds:g} s per side")
    report_rates(results, "webhooks/s")
    rate_floor, rate_sdk, rate_ours = results.values()
    print(ratio("braintree sdk/floor (for reference)", rate_sdk, rate_floor, target=None).line())
    print(ratio("braintree/floor (for reference)", rate_ours, rate_floor, target=None).line())
    print(ratio("braintree/sdk", rate_ours, rate_sdk, target=0.50, unit="x").line())


if __name__ == "__main__":
    main()
