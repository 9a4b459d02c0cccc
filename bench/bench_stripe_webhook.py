"""Benchmark: a Stripe ``invoice.payment_failed`` webhook through the real plugin.

Sides, measured in interleaved rounds on the same bytes (CPU time of this process):

- ours:   ``StripeProvider.verify`` + ``parse`` + ``translate`` (the issue's definition). The
          facts the webhook lacks (the invoice's payments, PaymentIntent, charge, subscription)
          come from the provider's cache, as after the first event of an invoice (no network).
- ours + wire JSON: the same plus the JSON of each Recover message (``schema.dumpb``), i.e.
          everything between the request body and the bytes sent to Recover (for reference).
- floor:  exactly the floor's work: the HMAC-SHA256 check of the ``Stripe-Signature`` header
          (parse it, compute, constant-time compare) + ``json.loads`` of the body.
- stripe: ``stripe.Webhook.construct_event`` on the same request (verify + build an Event).

The event (``bench/data/stripe_invoice.payment_failed.json``, ~3.5 KB compact) is what Stripe
sends for a subscription invoice with one line item on API version 2026-10-28 (Basil and later
invoice shape): the field list of Stripe's Invoice and InvoiceLineItem objects, demo values.

Targets: ours >= 25 % of the floor, ours >= 3x construct_event.

    .venv/bin/python bench/bench_stripe_webhook.py [--rounds 7] [--seconds 0.3]
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import stripe
from _harness import arguments, interleave, ratio, report_rates
from recoverkit_stripe import StripeProvider, StripeSettings

from recoverkit.schema import dumpb

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "plugins" / "recoverkit-stripe" / "tests" / "fixtures"
EVENT = Path(__file__).resolve().parent / "data" / "stripe_invoice.payment_failed.json"
SECRET = "whsec_bench_only"


def provider_with_cached_facts() -> StripeProvider:
    """The real provider, its enrichment cache holding the facts the event refers to."""
    provider = StripeProvider(
        StripeSettings(webhook_secrets=[SECRET], api_key="sk_test_bench_unused")
    )
    objects = json.loads((FIXTURES / "objects.json").read_text())
    for kind, items in objects.items():
        for item in items:
            provider.cache.put((kind, item["id"]), item, float("inf"))
    return provider


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    provider = provider_with_cached_facts()
    body = EVENT.read_bytes()
    request = provider.sign_test_webhook(body)
    header = request.headers["Stripe-Signature"]
    key = SECRET.encode()

    def ours() -> object:
        provider.verify(request)
        out = []
        for event in provider.parse(request):
            out.extend(provider.translate(event).messages)
        if not out:
            raise AssertionError("the event must become a Recover message")
        return out

    def ours_wire() -> object:
        provider.verify(request)
        out = []
        for event in provider.parse(request):
            for message in provider.translate(event).messages:
                out.append(dumpb(message.body))
        if not out:
            raise AssertionError("the event must become a Recover message")
        return out

    def floor() -> object:
        parts = dict(part.split("=", 1) for part in header.split(","))
        signed = parts["t"].encode() + b"." + body
        expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]):
            raise AssertionError("bad signature")
        return json.loads(body)

    def construct_event() -> object:
        return stripe.Webhook.construct_event(body, header, SECRET)

    ours()
    misses = provider.cache.misses
    print(f"invoice.payment_failed, one line item ({len(body)} bytes); CPU time")
    print(f"{args.rounds} interleaved rounds of {args.seconds:g} s per side")
    results = interleave(
        {
            "ours: verify + parse + translate": ours,
            "ours + wire JSON (dumpb)": ours_wire,
            "floor: HMAC-SHA256 verify + json.loads": floor,
            "stripe.Webhook.construct_event": construct_event,
        },
        rounds=args.rounds,
        seconds=args.seconds,
    )
    if provider.cache.misses != misses:
        raise AssertionError("a fact missed the cache: the run measured a network fetch")
    report_rates(results)
    ours_r, wire_r, floor_r, sdk_r = results.values()
    print(ratio("stripe+wire JSON/floor", wire_r, floor_r, target=None).line())
    print(ratio("stripe/construct_event", ours_r, sdk_r, target=3.0, unit="x").line())
    print(ratio("stripe/floor", ours_r, floor_r, target=0.25).line())


if __name__ == "__main__":
    main()
