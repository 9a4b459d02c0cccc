"""Benchmark: Adyen standard notifications (failed AUTHORISATION) through the real plugin.

Two payloads, each measured in interleaved rounds against its own floor (CPU time):

- single: the bundled ``authorisation_refused_not_enough_balance`` sample, one item;
- batch:  three failed AUTHORISATION items in one notification (Adyen batches up to six), each
          its own payment and invoice, every item HMAC-signed.

Sides, on the same bytes:

- ours:  ``AdyenProvider.verify`` + ``parse`` + ``translate`` (the issue's definition);
- ours + wire JSON: the same plus the JSON of each Recover message (``schema.dumpb``), for
         reference;
- floor: exactly the floor's work: ``json.loads`` of the body plus, for each item, the HMAC-SHA256
         of its signing string and a constant-time compare.

Target: ours >= 25 % of the floor for both payloads.

    .venv/bin/python bench/bench_adyen_webhook.py [--rounds 7] [--seconds 0.3]
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
from collections.abc import Callable
from importlib.resources import files

from _harness import arguments, interleave, ratio, report_rates
from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider, AdyenSettings

from recoverkit.provider import WebhookRequest
from recoverkit.schema import dumpb

TARGET = 0.25
_SIGNED = ("pspReference", "originalReference", "merchantAccountCode", "merchantReference")


def batch_body(items: int) -> bytes:
    """``items`` failed authorisations in one notification, each for its own invoice."""
    sample = json.loads(
        (
            files("recoverkit_adyen") / "samples" / "authorisation_refused_not_enough_balance.json"
        ).read_bytes()
    )
    template = sample["notificationItems"][0]
    wrappers = []
    for n in range(items):
        wrapper = copy.deepcopy(template)
        item = wrapper["NotificationRequestItem"]
        item["pspReference"] = f"QFQTPCQ8HXSKGK{80 + n}"
        invoice = f"inv_{3001 + n}"
        item["additionalData"]["metadata.rk_invoice"] = invoice
        item["merchantReference"] = item["merchantReference"].replace("inv_3001", invoice)
        item["amount"]["value"] = 4999 + 1000 * n
        wrappers.append(wrapper)
    sample["notificationItems"] = wrappers
    return json.dumps(sample, separators=(",", ":")).encode()


def sides(provider: AdyenProvider, request: WebhookRequest) -> dict[str, Callable[[], object]]:
    body = request.body
    key = binascii.a2b_hex(TEST_HMAC_KEY)
    items = len(json.loads(body)["notificationItems"])

    def floor() -> object:
        data = json.loads(body)
        for wrapper in data["notificationItems"]:
            item = wrapper["NotificationRequestItem"]
            amount = item["amount"]
            signing = (
                ":".join(str(item.get(name, "") or "") for name in _SIGNED)
                + f":{amount['value']}:{amount['currency']}:{item['eventCode']}:{item['success']}"
            )
            digest = base64.b64encode(hmac.new(key, signing.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(digest, item["additionalData"]["hmacSignature"].encode()):
                raise AssertionError("floor: bad signature")
        return data

    def ours() -> object:
        provider.verify(request)
        out = []
        for event in provider.parse(request):
            out.extend(provider.translate(event).messages)
        if len(out) != items:
            raise AssertionError(f"expected {items} Recover messages, got {len(out)}")
        return out

    def ours_wire() -> object:
        provider.verify(request)
        out = []
        for event in provider.parse(request):
            for message in provider.translate(event).messages:
                out.append(dumpb(message.body))
        if len(out) != items:
            raise AssertionError(f"expected {items} Recover messages, got {len(out)}")
        return out

    return {"ours": ours, "ours+wire": ours_wire, "floor": floor}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    provider = AdyenProvider(AdyenSettings(webhook_secrets=[TEST_HMAC_KEY], acquirer_country="NL"))
    single = provider.sample_webhooks()[0]
    batch = provider.sign_test_webhook(batch_body(3))
    print(f"CPU time; {args.rounds} interleaved rounds of {args.seconds:g} s per side")
    lines, refs = [], []
    for name, request in (("single", single), ("batch3", batch)):
        results = interleave(
            sides(provider, request), rounds=args.rounds, seconds=args.seconds, clock="cpu"
        )
        print(f"-- {name}: {len(request.body)} bytes")
        report_rates({f"{name} {side}": spread for side, spread in results.items()})
        refs.append(
            ratio(
                f"adyen+wire JSON/floor {name}", results["ours+wire"], results["floor"], target=None
            )
        )
        lines.append(ratio(f"adyen/floor {name}", results["ours"], results["floor"], target=TARGET))
    for line in refs + lines:
        print(line.line())


if __name__ == "__main__":
    main()
