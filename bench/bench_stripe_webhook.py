"""Benchmark: Stripe ``invoice.payment_failed`` through verify + parse + translate.

Prints, from one run on one machine:

- ours:   ``StripeProvider.verify`` + ``parse`` + ``translate`` + the JSON of the Recover message,
          with the facts the webhook lacks (charge, PaymentIntent, subscription) served from the
          provider's cache (no network);
- floor:  an HMAC-SHA256 check of the same header + ``json.loads`` of the same body +
          ``json.dumps`` of our output (the least any verifying translator must do);
- stripe: ``stripe.Webhook.construct_event`` on the same request (verify + build an Event).

Targets: ours >= 25 % of the floor and >= 3x construct_event. Short on purpose (~1 s per line):
``python bench/bench_stripe_webhook.py [seconds-per-measurement]``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import stripe
from recoverkit_stripe import StripeProvider, StripeSettings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "plugins" / "recoverkit-stripe" / "tests" / "fixtures"
SECRET = "whsec_bench_only"


def rate(label: str, fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(200):
        fn()
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        calls += 100
        now = time.perf_counter()
        if now >= deadline:
            break
    per_second = calls / (now - start)
    print(f"{label:<58} {per_second:>10,.0f} /s")
    return per_second


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    provider = StripeProvider(
        StripeSettings(webhook_secrets=[SECRET], api_key="sk_test_bench_unused")
    )
    objects = json.loads((FIXTURES / "objects.json").read_text())
    for kind, items in objects.items():  # enrichment served from the cache, as after warm-up
        for item in items:
            provider.cache.put((kind, item["id"]), item, float("inf"))

    body = (FIXTURES / "invoice.payment_failed.legacy.json").read_bytes()
    request = provider.sign_test_webhook(body)
    header = request.headers["Stripe-Signature"]
    timestamp, signature = (part.split("=", 1)[1] for part in header.split(","))
    key = SECRET.encode()

    def ours() -> object:
        provider.verify(request)
        (event,) = provider.parse(request)
        (message,) = provider.translate(event).messages
        return message

    def ours_with_json() -> str:
        provider.verify(request)
        (event,) = provider.parse(request)
        (message,) = provider.translate(event).messages
        return message.to_json()

    output = json.loads(ours_with_json())
    fetches_before = provider.cache.misses

    def floor() -> str:
        expected = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AssertionError("bad signature")
        json.loads(body)
        return json.dumps(output)

    def construct_event() -> object:
        return stripe.Webhook.construct_event(body, header, SECRET)

    print(f"invoice.payment_failed ({len(body)} bytes), {seconds:g} s per line")
    r_ours = rate("ours: verify + parse + translate (cached facts)", ours, seconds)
    r_json = rate("ours + core RecoverMessage.to_json()", ours_with_json, seconds)
    r_floor = rate("floor: HMAC-SHA256 + json.loads + json.dumps(output)", floor, seconds)
    r_stripe = rate("stripe.Webhook.construct_event", construct_event, seconds)
    assert provider.cache.misses == fetches_before, "a fact missed the cache"
    print(f"ours / floor            = {r_ours / r_floor:6.1%}   (target >= 25%)")
    print(f"ours / construct_event  = {r_ours / r_stripe:6.2f}x  (target >= 3x)")
    print(f"ours+to_json / floor    = {r_json / r_floor:6.1%}   (the core encoder's share)")


if __name__ == "__main__":
    main()
